"""``python -m obsku_checkpoint_sqlite``: the ``obsku-checkpoint`` command-line tool."""

from __future__ import annotations

from .cli import main

main()
