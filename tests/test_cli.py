"""The obsku-checkpoint command line, through Typer's CliRunner and the real console script."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import text
from typer.testing import CliRunner, Result

from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.cli import app, application, parse_age
from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine

runner = CliRunner()


def run(db: str, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, ["--db", db, *args], input=input, env=env)


def ok(db: str, *args: str, **kwargs: Any) -> Result:
    result = run(db, *args, **kwargs)
    assert result.exit_code == 0, result.output
    return result


def failed(result: Result) -> str:
    """The one error line of a failed command."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@dataclass
class Filled:
    db: str
    run: str
    fork: str
    first: str
    second: str


def fill(db: str) -> Filled:
    """A run with three messages and two checkpoints, and a fork of its first checkpoint."""
    url = db if "://" in db else f"sqlite:///{db}"
    with sync.SqlAlchemyCheckpointStore(url) as store:
        session = store.create_session("./my-project", title="Security Scan", workspace_id="demo")
        store.add_message(session.id, role="user", content="Scan example.com")
        store.add_message(
            session.id,
            role="assistant",
            tool_calls=[{"tool_use_id": "tu_1", "name": "nmap", "input": {"host": "example.com"}}],
            tokens_in=42,
            tokens_out=17,
        )
        first = store.save_checkpoint(
            session_id=session.id,
            namespace="main",
            step=1,
            node_results={"plan": {"status": "completed", "output": ["nmap"]}},
            pending_nodes=["scan"],
            source="loop",
        )
        store.add_message(session.id, role="tool", tool_results=[{"tool_use_id": "tu_1", "content": "22/tcp open"}])
        second = store.save_checkpoint(
            session_id=session.id,
            namespace="main",
            step=2,
            node_results={
                "plan": {"status": "completed", "output": ["nmap"]},
                "scan": {"status": "completed", "output": {"open_ports": [22]}},
            },
            pending_nodes=["report"],
            source="loop",
            parent_id=first.id,
        )
        forked = store.fork(first.id, title="Experiment")
    return Filled(db, session.id, forked.id, first.id, second.id)


@pytest.fixture
def filled(tmp_path: Path) -> Filled:
    return fill(str(tmp_path / "checkpoints.db"))


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("sessions", "show", "messages", "checkpoints", "checkpoint", "diff", "fork", "delete", "prune",
                    "export", "import", "copy", "db"):  # fmt: skip
        assert f" {command} " in result.output
    assert "OBSKU_CHECKPOINT_URL" in result.output
    db_help = runner.invoke(app, ["db", "--help"])
    assert all(name in db_help.output for name in ("upgrade", "downgrade", "current", "history"))


def test_sessions_lists_a_table_and_json(filled: Filled) -> None:
    table = ok(filled.db, "sessions").stdout
    assert "Security Scan" in table
    assert "Experiment (fork)" in table
    assert filled.run in table
    assert table.index(filled.fork) < table.index(filled.run)  # most recent first

    listed = json.loads(ok(filled.db, "sessions", "--json").stdout)
    by_id = {item["session"]["id"]: item for item in listed["sessions"]}
    assert by_id[filled.run]["message_count"] == 3
    assert by_id[filled.run]["checkpoint_count"] == 2
    assert by_id[filled.run]["latest_checkpoint"]["id"] == filled.second
    assert listed["next_cursor"] is None


def test_sessions_pages_searches_and_filters(filled: Filled) -> None:
    first = ok(filled.db, "sessions", "--limit", "1").stdout
    assert "sessions --limit 1 --cursor " in first
    cursor = first.split("--cursor ")[1].split()[0]
    second = json.loads(ok(filled.db, "sessions", "--limit", "1", "--cursor", cursor, "--json").stdout)
    assert [item["session"]["id"] for item in second["sessions"]] == [filled.run]

    found = json.loads(ok(filled.db, "sessions", "--search", "SCAN", "--json").stdout)
    assert [item["session"]["id"] for item in found["sessions"]] == [filled.run]
    assert "No sessions." in ok(filled.db, "sessions", "--workspace", "elsewhere").stdout


def test_show_prints_the_session_its_messages_and_checkpoints(filled: Filled) -> None:
    shown = ok(filled.db, "show", filled.run).stdout
    for expected in ("Security Scan", "./my-project", "Scan example.com", "→ nmap", "← 22/tcp open", filled.second):
        assert expected in shown
    assert json.loads(ok(filled.db, "show", filled.fork, "--json").stdout)["session"]["forked_from_checkpoint_id"] == (
        filled.first
    )


def test_messages_and_checkpoints_listings(filled: Filled) -> None:
    listed = json.loads(ok(filled.db, "messages", filled.run, "--json").stdout)
    assert [message["role"] for message in listed] == ["user", "assistant", "tool"]
    assert "Scan example.com" in ok(filled.db, "messages", filled.run).stdout
    last = json.loads(ok(filled.db, "messages", filled.run, "--limit", "1", "--json").stdout)
    assert [message["role"] for message in last] == ["tool"]

    saved = json.loads(ok(filled.db, "checkpoints", filled.run, "--json").stdout)
    assert [checkpoint["id"] for checkpoint in saved] == [filled.second, filled.first]
    assert saved[0]["nodes"] == {"plan": "completed", "scan": "completed"}
    assert json.loads(ok(filled.db, "checkpoints", filled.run, "--namespace", "other", "--json").stdout) == []


def test_checkpoint_prints_the_full_state(filled: Filled) -> None:
    state = json.loads(ok(filled.db, "checkpoint", filled.second).stdout)
    assert state["node_results"]["scan"]["output"] == {"open_ports": [22]}
    assert state["pending_nodes"] == ["report"]
    assert state["parent_id"] == filled.first


def test_diff_shows_node_and_pending_changes(filled: Filled) -> None:
    shown = ok(filled.db, "diff", filled.first, filled.second).stdout
    assert "step 1 → 2" in shown
    assert "+ scan  completed" in shown
    changes = json.loads(ok(filled.db, "diff", filled.first, filled.second, "--json").stdout)
    assert changes["nodes"] == {"added": ["scan"], "removed": [], "changed": {}}
    assert (changes["pending_added"], changes["pending_removed"]) == (["report"], ["scan"])


def test_fork_starts_a_new_session(filled: Filled) -> None:
    forked = json.loads(ok(filled.db, "fork", filled.second, "--title", "Retry", "--json").stdout)
    assert forked["title"] == "Retry"
    assert forked["forked_from_checkpoint_id"] == filled.second
    assert "Forked into session" in ok(filled.db, "fork", filled.first).stdout


def test_delete_asks_first_unless_yes(filled: Filled) -> None:
    declined = run(filled.db, "delete", filled.fork, input="n\n")
    assert declined.exit_code == 0
    assert declined.stderr.endswith("Nothing deleted.\n")
    assert filled.fork in ok(filled.db, "sessions").stdout

    accepted = ok(filled.db, "delete", filled.fork, input="y\n")
    assert "Deleted session" in accepted.stdout
    ok(filled.db, "delete", filled.run, "--yes")
    assert "No sessions." in ok(filled.db, "sessions").stdout


def test_prune_is_a_dry_run_until_apply(filled: Filled) -> None:
    before = ok(filled.db, "checkpoints", filled.run, "--json").stdout
    dry = ok(filled.db, "prune", "--keep-last", "1").stdout
    assert "Would delete 0 sessions, 0 messages and 0 checkpoints" in dry
    assert "Kept 1 checkpoint that" in dry  # the first: the second names it as parent, the fork too
    assert "Dry run" in dry
    assert ok(filled.db, "checkpoints", filled.run, "--json").stdout == before

    report = json.loads(ok(filled.db, "prune", "--keep-last", "1", "--break-lineage", "--json").stdout)
    assert (report["dry_run"], report["checkpoints"]) == (True, 1)
    applied = ok(filled.db, "prune", "--keep-last", "1", "--break-lineage", "--apply", "--vacuum").stdout
    assert "Deleted 0 sessions, 0 messages and 1 checkpoint." in applied
    assert "Vacuumed" in applied
    assert [c["id"] for c in json.loads(ok(filled.db, "checkpoints", filled.run, "--json").stdout)] == [filled.second]

    both = ", ".join(sorted([filled.run, filled.fork]))
    assert f"Idle sessions: {both}." in ok(filled.db, "prune", "--idle-sessions", "0s").stdout
    idle = json.loads(ok(filled.db, "prune", "--idle-sessions", "0s", "--break-lineage", "--json").stdout)
    assert idle["sessions"] == 2
    assert json.loads(ok(filled.db, "prune", "--older-than", "30d", "--json").stdout)["checkpoints"] == 0


@pytest.mark.parametrize(
    ("age", "millis"), [("30d", 30 * 86_400_000), ("12h", 12 * 3_600_000), ("45m", 2_700_000), ("2w", 1_209_600_000)]
)
def test_ages(age: str, millis: int) -> None:
    assert parse_age(age) == millis


def test_prune_refuses_a_bad_age_or_no_rule(filled: Filled) -> None:
    bad = run(filled.db, "prune", "--older-than", "soon")
    assert bad.exit_code == 2
    assert "not an age like 30d" in bad.output
    assert run(filled.db, "prune").exit_code == 2


def test_export_import_and_copy(filled: Filled, tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    result = ok(filled.db, "export", str(export))
    assert "Exported 2 sessions, 5 messages and 3 checkpoints" in result.stderr
    streamed = ok(filled.db, "export", "--session", filled.run).stdout_bytes
    assert streamed.splitlines()[-1] == b'{"type":"end","counts":{"sessions":1,"messages":3,"checkpoints":2}}'

    target = str(tmp_path / "target.db")
    assert "Imported 2 sessions, 5 messages and 3 checkpoints" in ok(target, "import", str(export)).stdout
    again = failed(run(target, "import", str(export)))
    assert "exists in the target already" in again
    assert "Skipped 2 existing sessions" in ok(target, "import", str(export), "--skip-existing").stdout
    copies = json.loads(ok(target, "import", str(export), "--new-ids", "--json").stdout)
    assert copies["sessions"] == 2
    assert len(json.loads(ok(target, "sessions", "--json").stdout)["sessions"]) == 4

    copied = str(tmp_path / "copied.db")
    assert (
        "Copied 2 sessions, 5 messages and 3 checkpoints; counts verified."
        in ok(filled.db, "copy", filled.db, copied).stdout
    )
    assert failed(run(filled.db, "copy", filled.db, copied)).endswith("use export and import.")


def test_a_corrupt_export_fails_with_its_line_number(filled: Filled, tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    ok(filled.db, "export", str(export))
    lines = export.read_bytes().splitlines(keepends=True)
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"".join(lines[:3]) + lines[3][:20])
    target = str(tmp_path / "target.db")

    message = failed(run(target, "import", str(broken)))

    assert "line 4:" in message
    assert "truncated" in message
    assert json.loads(ok(target, "sessions", "--json").stdout)["sessions"] == []


@pytest.mark.parametrize("command", ["checkpoint", "checkpoints", "diff"])
def test_a_corrupt_checkpoint_is_reported_as_corrupt(filled: Filled, command: str) -> None:
    connection = sqlite3.connect(filled.db)
    with connection:
        stored = '{"plan": {"status": "done"}}'
        connection.execute("UPDATE checkpoints SET node_results = ? WHERE id = ?", (stored, filled.second))
    connection.close()
    args = {"checkpoint": [filled.second], "checkpoints": [filled.run], "diff": [filled.first, filled.second]}

    message = failed(run(filled.db, command, *args[command]))

    assert message.startswith(f"error: Corrupt stored data in checkpoints row {filled.second!r}, column node_results")
    assert "plan.status" in message


def test_errors_are_one_line_and_exit_1(filled: Filled, tmp_path: Path) -> None:
    assert failed(run(filled.db, "show", "nope")) == "error: Session not found: nope"
    assert failed(run(filled.db, "messages", "nope")) == "error: Session not found: nope"
    assert failed(run(filled.db, "checkpoint", "nope")) == "error: Checkpoint not found: nope"
    assert failed(run(filled.db, "diff", filled.first, "nope")) == "error: Checkpoint not found: nope"
    assert failed(run(filled.db, "fork", "nope")) == "error: Checkpoint not found: nope"
    assert failed(run(filled.db, "delete", "nope", "--yes")) == "error: Session not found: nope"
    assert "No database at" in failed(run(str(tmp_path / "missing.db"), "sessions"))
    assert "Cannot reach the database" in failed(run("postgresql://postgres@127.0.0.1:1/test", "sessions"))
    assert "No such file" in failed(run(filled.db, "import", str(tmp_path / "missing.jsonl")))


def test_a_database_at_a_newer_schema_is_refused(filled: Filled) -> None:
    engine = create_sync_engine(f"sqlite:///{filled.db}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()

    assert "newer version" in failed(run(filled.db, "sessions"))
    assert "newer than this package" in ok(filled.db, "db", "current").stdout
    assert "newer than this package knows" in failed(run(filled.db, "db", "upgrade"))


def test_db_commands_wrap_the_migrations(tmp_path: Path) -> None:
    db = str(tmp_path / "new.db")
    assert "No database at" in failed(run(db, "db", "current"))
    assert ok(db, "db", "upgrade").stdout.startswith("At revision ")
    head = json.loads(ok(db, "db", "current", "--json").stdout)
    assert head["up_to_date"] is True
    assert "(head)" in ok(db, "db", "current").stdout
    assert "Already at revision" in ok(db, "db", "upgrade").stdout

    history = json.loads(ok(db, "db", "history", "--json").stdout)
    assert history[0]["revision"] == head["head"]
    assert history[-1]["down_revision"] is None
    previous = history[1]["revision"]

    declined = run(db, "db", "downgrade", previous, input="n\n")
    assert (declined.exit_code, declined.stderr.splitlines()[-1]) == (0, "Nothing changed.")
    assert "nonsense" in failed(run(db, "db", "downgrade", "nonsense", "--yes"))
    assert ok(db, "db", "downgrade", previous, "--yes").stdout == f"At revision {previous}.\n"
    assert "behind head" in ok(db, "db", "current").stdout
    assert "db upgrade" in failed(run(db, "sessions"))
    ok(db, "db", "upgrade")
    assert "No sessions." in ok(db, "sessions").stdout


def test_the_database_comes_from_the_environment(filled: Filled) -> None:
    result = runner.invoke(app, ["sessions", "--json"], env={"OBSKU_CHECKPOINT_URL": f"sqlite:///{filled.db}"})
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["sessions"]) == 2


def test_on_a_server_database(scratch_url: str) -> None:
    filled = fill(scratch_url)
    listed = json.loads(ok(scratch_url, "sessions", "--json").stdout)
    assert {item["session"]["id"] for item in listed["sessions"]} == {filled.run, filled.fork}
    assert "Security Scan" in ok(scratch_url, "show", filled.run).stdout
    assert "Would delete 0 sessions" in ok(scratch_url, "prune", "--keep-last", "1").stdout
    assert "(head)" in ok(scratch_url, "db", "current").stdout


def test_the_console_script_and_python_m(filled: Filled, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "obsku-checkpoint"
    shown = subprocess.run(
        [str(script), "--db", filled.db, "show", filled.run], capture_output=True, text=True, check=True
    )
    assert "Security Scan" in shown.stdout
    assert "\x1b[" not in shown.stdout  # no colour codes in a pipe

    export = subprocess.run(
        [sys.executable, "-m", "obsku_checkpoint_sqlite", "--db", filled.db, "export"],
        capture_output=True,
        check=True,
    )
    assert export.stdout.splitlines()[0].startswith(b'{"format":"obsku-checkpoint-export"')
    # Piped, so no progress bar: only the summary line.
    assert export.stderr.decode().strip().splitlines() == [
        "Exported 2 sessions, 5 messages and 3 checkpoints to standard output."
    ]

    missing = subprocess.run(
        [str(script), "--db", filled.db, "show", "nope"], capture_output=True, text=True, check=False
    )
    assert (missing.returncode, missing.stderr) == (1, "error: Session not found: nope\n")


def test_progress_bars_only_on_a_terminal(filled: Filled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = ok(filled.db, "export", str(tmp_path / "quiet.jsonl"))
    assert (
        quiet.stderr == "Exported 2 sessions, 5 messages and 3 checkpoints to " + str(tmp_path / "quiet.jsonl") + ".\n"
    )

    terminal = io.StringIO()
    monkeypatch.setattr(application, "err", Console(file=terminal, force_terminal=True, width=100))
    ok(filled.db, "export", str(tmp_path / "loud.jsonl"))
    drawn = terminal.getvalue()
    assert "Exporting sessions" in drawn
    assert "2/2" in drawn
