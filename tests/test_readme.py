"""The README's and the documentation's examples run as written: every block fenced as ``python``
is a complete program (fragments are fenced as ``py``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_server

REPOSITORY = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").rglob("*.md"))]
# (document, block): the blocks of one document build on one another, as a reader's would.
PYTHON_BLOCKS = [
    (document.relative_to(REPOSITORY).as_posix(), block)
    for document in DOCUMENTS
    for block in re.findall(r"```python\n(.*?)```", document.read_text(encoding="utf-8"), flags=re.DOTALL)
]


def run(arguments: list[str], cwd: Path) -> str:
    completed = subprocess.run(arguments, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.fixture(scope="module")
def working_directories() -> dict[str, Path]:
    """One working directory per document, made when its first block runs and shared by the rest."""
    return {}


def block_ids() -> list[str]:
    ids, counts = [], dict.fromkeys((document for document, _ in PYTHON_BLOCKS), 0)
    for document, _ in PYTHON_BLOCKS:
        ids.append(f"{document}:block{counts[document]}")
        counts[document] += 1
    return ids


def test_readme_has_python_blocks() -> None:
    assert any(document == "README.md" for document, _ in PYTHON_BLOCKS)


@pytest.mark.parametrize(("document", "block"), PYTHON_BLOCKS, ids=block_ids())
def test_python_blocks_run(
    document: str,
    block: str,
    working_directories: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    if "postgresql://" in block:
        require_server("postgresql")
    if document not in working_directories:
        working_directories[document] = tmp_path_factory.mktemp(Path(document).stem)
    script = tmp_path / "block.py"
    script.write_text(block)
    run([sys.executable, str(script)], cwd=working_directories[document])


def test_example_runs_end_to_end_on_the_embedded_default(tmp_path: Path) -> None:
    output = run([sys.executable, str(REPOSITORY / "examples" / "quickstart.py")], cwd=tmp_path)

    assert "resuming 'Security Scan' at step 2 (version 2), 3 messages" in output
    assert "from step 1 with 2 messages" in output
    assert (tmp_path / "checkpoints.db").stat().st_mode & 0o777 == 0o600


def test_example_runs_on_postgresql(tmp_path: Path) -> None:
    url = require_server("postgresql")
    output = run([sys.executable, str(REPOSITORY / "examples" / "quickstart.py"), url], cwd=tmp_path)
    assert "from step 1 with 2 messages" in output
