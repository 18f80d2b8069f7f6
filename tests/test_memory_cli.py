"""``obsku-checkpoint entities``, ``entity``, ``facts`` and ``fact`` on the TypeScript package's memory file."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from obsku_checkpoint_sqlite.cli import app
from tests._memory_fixtures import copy_sqlite_fixture, expected, expected_item

runner = CliRunner()


def test_entities_and_facts_listed_and_shown_as_the_typescript_store_reads_them(tmp_path: Path) -> None:
    db = f"sqlite:///{copy_sqlite_fixture(tmp_path)}"
    data = expected("ts-memory")
    # The command line reads without migrating: the file is brought to this package's schema first.
    assert runner.invoke(app, ["--db", db, "db", "upgrade"]).exit_code == 0
    listing = next(item for item in data["lists"] if item["method"] == "listEntities" and item["options"] == {})
    result = runner.invoke(app, ["--db", db, "entities", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert [item["id"] for item in printed["items"]] == listing["ids"]
    assert printed["skipped"] == []
    facts = next(item for item in data["lists"] if item["options"] == {"workspaceId": "ws-beta"})
    result = runner.invoke(app, ["--db", db, "facts", "--workspace", "ws-beta", "--limit", "1000", "--json"])
    assert [item["id"] for item in json.loads(result.output)["items"]] == facts["ids"]
    fact_id = data["ids"]["roles"]["fact_fullPrecision"]
    shown = json.loads(runner.invoke(app, ["--db", db, "fact", fact_id, "--json"]).output)
    assert {key: value for key, value in shown.items() if value is not None} == expected_item(data["facts"][fact_id])
    table = runner.invoke(app, ["--db", db, "entities", "--type", "person"], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert table.output.count("\n") >= 5
    assert runner.invoke(app, ["--db", db, "entity", "no-such-id"]).exit_code == 1
    assert runner.invoke(app, ["--db", db, "facts", "--min-confidence", "0.8"]).exit_code == 0
