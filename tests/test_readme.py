"""The README's examples run as written: every block fenced as ``python`` is a complete program
(fragments are fenced as ``py``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_server

REPOSITORY = Path(__file__).resolve().parent.parent
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", (REPOSITORY / "README.md").read_text(), flags=re.DOTALL)


def run(arguments: list[str], cwd: Path) -> str:
    completed = subprocess.run(arguments, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.fixture(scope="module")
def readme_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One working directory for all blocks: they build on one another, as a reader's would."""
    return tmp_path_factory.mktemp("readme")


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[f"block{index}" for index in range(len(PYTHON_BLOCKS))])
def test_readme_python_blocks_run(block: str, readme_directory: Path, tmp_path: Path) -> None:
    if "postgresql://" in block:
        require_server("postgresql")
    script = tmp_path / "block.py"
    script.write_text(block)
    run([sys.executable, str(script)], cwd=readme_directory)


def test_example_runs_end_to_end_on_the_embedded_default(tmp_path: Path) -> None:
    output = run([sys.executable, str(REPOSITORY / "examples" / "quickstart.py")], cwd=tmp_path)

    assert "resuming 'Security Scan' at step 2 (version 2), 3 messages" in output
    assert "from step 1 with 2 messages" in output
    assert (tmp_path / "checkpoints.db").stat().st_mode & 0o777 == 0o600


def test_example_runs_on_postgresql(tmp_path: Path) -> None:
    url = require_server("postgresql")
    output = run([sys.executable, str(REPOSITORY / "examples" / "quickstart.py"), url], cwd=tmp_path)
    assert "from step 1 with 2 messages" in output
