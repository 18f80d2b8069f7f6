"""The documentation follows the code: the performance page is what its script renders from the latest
results, and the architecture page names every module."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "performance_page.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("performance_page", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_performance_page_is_generated_from_latest_results() -> None:
    script = load_script()
    expected = script.render(json.loads(script.RESULTS.read_text(encoding="utf-8")))
    assert script.PAGE.read_text(encoding="utf-8") == expected, (
        "docs/performance.md is stale: run `python scripts/performance_page.py`"
    )


def test_architecture_page_names_every_module() -> None:
    package = ROOT / "src" / "obsku_checkpoint_sqlite"
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = [
        path.relative_to(package).as_posix()
        for path in sorted(package.rglob("*.py"))
        if "migrations" not in path.parts and not (path.name == "__init__.py" and path.parent != package)
    ]
    missing = [module for module in modules if f"`{module}`" not in page]
    assert not missing, f"docs/architecture.md does not name: {', '.join(missing)}"
