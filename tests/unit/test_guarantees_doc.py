"""Every test the Guarantees page names exists, so a promise cannot outlive its proof."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUARANTEES = ROOT / "docs" / "guarantees.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def guarantee_lines(document: Path) -> list[str]:
    """The bullets of the page's ``# Guarantees`` section (the page itself, from its title on)."""
    if not document.exists():
        return []
    text = document.read_text(encoding="utf-8")
    title = re.search(r"^# Guarantees$", text, flags=re.MULTILINE)
    if title is None:
        return []
    return [line for line in text[title.end() :].splitlines() if line.startswith("- ")]


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
    }


def test_every_guarantee_names_a_test_that_exists() -> None:
    lines = guarantee_lines(GUARANTEES)
    assert lines, f"no Guarantees section in {GUARANTEES.relative_to(ROOT)}"
    problems = []
    for line in lines:
        references = REFERENCE.findall(line)
        if not references:
            problems.append(f"no test named for: {line[:100]}")
        for file, test in references:
            path = ROOT / file
            if not path.exists() or test not in defined_tests(path):
                problems.append(f"{file}::{test} does not exist")
    assert not problems, "\n".join(problems)
