"""Every test the README's Guarantees section names exists, so a promise cannot outlive its proof."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
DOCUMENTS = [ROOT / "README.md"]


def guarantee_lines(document: Path) -> list[str]:
    text = document.read_text(encoding="utf-8")
    start = text.find("## Guarantees")
    if start < 0:
        return []
    end = text.find("\n## ", start + 1)
    return [line for line in text[start : end if end >= 0 else None].splitlines() if line.startswith("- ")]


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
    }


def test_every_guarantee_names_a_test_that_exists() -> None:
    sections = {document.name: guarantee_lines(document) for document in DOCUMENTS if document.exists()}
    sections = {name: lines for name, lines in sections.items() if lines}
    assert sections, "no Guarantees section in README.md"
    problems = []
    for name, lines in sections.items():
        for line in lines:
            references = REFERENCE.findall(line)
            if not references:
                problems.append(f"{name}: no test named for: {line[:100]}")
            for file, test in references:
                path = ROOT / file
                if not path.exists() or test not in defined_tests(path):
                    problems.append(f"{name}: {file}::{test} does not exist")
    assert not problems, "\n".join(problems)
