"""The blocking face is generated from the async one by unasyncd and must not drift from it."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
from pathlib import Path

from obsku_checkpoint_sqlite import store, sync

REPOSITORY = Path(__file__).resolve().parents[2]
SOURCE = Path("src/obsku_checkpoint_sqlite/store.py")
TARGET = Path("src/obsku_checkpoint_sqlite/sync.py")


def test_sync_module_is_current(tmp_path: Path) -> None:
    # unasyncd's --check compares file times, not contents: generate into a copy and compare.
    (tmp_path / SOURCE.parent).mkdir(parents=True)
    shutil.copy(REPOSITORY / SOURCE, tmp_path / SOURCE)
    shutil.copy(REPOSITORY / "pyproject.toml", tmp_path / "pyproject.toml")
    unasyncd = Path(sys.executable).with_name("unasyncd")
    completed = subprocess.run([str(unasyncd), "--force"], cwd=tmp_path, capture_output=True, text=True)
    # Exit status 1 means "a file was written", which is what this run does.
    assert completed.returncode in (0, 1), completed.stdout + completed.stderr
    generated = (tmp_path / TARGET).read_text()
    assert generated == (REPOSITORY / TARGET).read_text(), f"{TARGET} is stale: run `unasyncd` in the repository"


def test_both_faces_have_the_same_methods_and_signatures() -> None:
    for name in ("SqlAlchemyCheckpointStore", "SqliteCheckpointStore"):
        async_face, sync_face = getattr(store, name), getattr(sync, name)
        public = {attr for attr in dir(async_face) if not attr.startswith("_")}
        assert public == {attr for attr in dir(sync_face) if not attr.startswith("_")}
        for attr in public:
            if isinstance(inspect.getattr_static(async_face, attr), property):  # has_semantic_search
                assert isinstance(inspect.getattr_static(sync_face, attr), property), attr
                continue
            assert inspect.signature(getattr(async_face, attr)) == inspect.signature(getattr(sync_face, attr)), attr
            assert inspect.iscoroutinefunction(getattr(async_face, attr))
            assert not inspect.iscoroutinefunction(getattr(sync_face, attr))
