"""The blocking face is generated from the async one by unasyncd and must not drift from it."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

from obsku_checkpoint_sqlite import store, sync

REPOSITORY = Path(__file__).resolve().parents[2]
# Each hand-written async module and the blocking module unasyncd makes of it.
GENERATED = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["unasyncd"]["files"]


def test_the_generated_modules_are_named_in_pyproject() -> None:
    package = "src/obsku_checkpoint_sqlite"
    assert {
        f"{package}/store.py": f"{package}/sync.py",
        f"{package}/facade/tooling.py": f"{package}/facade/tooling_sync.py",
        f"{package}/facade/memory.py": f"{package}/facade/memory_sync.py",
    } == GENERATED


def test_every_generated_module_is_current(tmp_path: Path) -> None:
    # unasyncd's --check compares file times, not contents: generate into a copy and compare.
    for source in GENERATED:
        (tmp_path / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPOSITORY / source, tmp_path / source)
    shutil.copy(REPOSITORY / "pyproject.toml", tmp_path / "pyproject.toml")
    unasyncd = Path(sys.executable).with_name("unasyncd")
    completed = subprocess.run([str(unasyncd), "--force"], cwd=tmp_path, capture_output=True, text=True)
    # Exit status 1 means "a file was written", which is what this run does.
    assert completed.returncode in (0, 1), completed.stdout + completed.stderr
    for target in GENERATED.values():
        generated = (tmp_path / target).read_text()
        assert generated == (REPOSITORY / target).read_text(), f"{target} is stale: run `unasyncd` in the repository"


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
