"""``obsku-checkpoint``: see and manage what an obsku checkpoint store holds.

Built on Typer and Rich, which come with the ``cli`` extra; nothing imports this
package unless the command runs. Every command uses the blocking store of
``obsku_checkpoint_sqlite.sync``.
"""

from __future__ import annotations

try:
    import rich  # noqa: F401
    import typer  # noqa: F401
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the installed extras
    raise SystemExit(f'obsku-checkpoint needs {exc.name}: pip install "obsku-checkpoint-sqlite[cli]"') from None

from . import changing, memory, moving, reading, schema
from .application import app, parse_age

__all__ = ["app", "changing", "main", "memory", "moving", "parse_age", "reading", "schema"]


def main() -> None:
    """The console script's entry point."""
    app(prog_name="obsku-checkpoint")
