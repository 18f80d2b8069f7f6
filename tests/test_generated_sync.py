"""The blocking face is generated from the async one and must not drift from it."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

from obsku_checkpoint_sqlite import store, sync

REPOSITORY = Path(__file__).resolve().parent.parent


def test_sync_module_is_current() -> None:
    completed = subprocess.run(
        [sys.executable, "scripts/generate_sync.py", "--check"], cwd=REPOSITORY, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr


def test_both_faces_have_the_same_methods_and_signatures() -> None:
    for name in ("SqlAlchemyCheckpointStore", "SqliteCheckpointStore"):
        async_face, sync_face = getattr(store, name), getattr(sync, name)
        public = {attr for attr in dir(async_face) if not attr.startswith("_")}
        assert public == {attr for attr in dir(sync_face) if not attr.startswith("_")}
        for attr in public:
            assert inspect.signature(getattr(async_face, attr)) == inspect.signature(getattr(sync_face, attr)), attr
            assert inspect.iscoroutinefunction(getattr(async_face, attr))
            assert not inspect.iscoroutinefunction(getattr(sync_face, attr))
