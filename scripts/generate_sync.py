"""Generate the blocking store (sync.py) from the async one (store.py).

The async face is the only hand-written one, as in advanced-alchemy; this turns
``async def``/``await``/``async with`` into their blocking forms and swaps the async
runner for the sync one. Run it after editing store.py; a test fails while the two
are out of step.

    python scripts/generate_sync.py          # rewrite src/obsku_checkpoint_sqlite/sync.py
    python scripts/generate_sync.py --check  # exit 1 if sync.py is stale
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "obsku_checkpoint_sqlite"
SOURCE = PACKAGE / "store.py"
TARGET = PACKAGE / "sync.py"

HEADER = '''"""The blocking checkpoint store: the same classes, methods and semantics as the async one.

For scripts, notebooks and synchronous frameworks::

    from obsku_checkpoint_sqlite.sync import SqliteCheckpointStore

GENERATED from store.py by scripts/generate_sync.py: edit store.py and run the script.
"""
'''

REPLACEMENTS = [
    ("from sqlalchemy.ext.asyncio import AsyncEngine\n", ""),
    ("from sqlalchemy import URL\n", "from sqlalchemy import URL, Engine\n"),
    ("AsyncRunner", "SyncRunner"),
    ("open_async_runner", "open_sync_runner"),
    ("AsyncEngine", "Engine"),
    ("async def ", "def "),
    ("await ", ""),
    ("async with", "with"),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
    ("safe to share between tasks", "safe to share between threads"),
]


def generate() -> str:
    source = SOURCE.read_text()
    body = re.sub(r'\A""".*?"""\n', "", source, count=1, flags=re.DOTALL)
    for old, new in REPLACEMENTS:
        body = body.replace(old, new)
    return _formatted(HEADER + body)


def _formatted(code: str) -> str:
    # Dropping "await " shortens lines: a call store.py wraps may fit on one line here.
    completed = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(TARGET), "-"],
        input=code,
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout


def main() -> int:
    generated = generate()
    if "--check" in sys.argv[1:]:
        if TARGET.read_text() != generated:
            print(f"{TARGET} is stale: run python scripts/generate_sync.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(generated)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
