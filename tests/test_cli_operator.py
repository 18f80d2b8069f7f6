"""The command line as an operator meets it: secrets masked, hints that run as printed,
one-line errors, files written privately, tables that keep their numbers."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import stat
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import insert, make_url

import obsku_checkpoint_sqlite
from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.cli import app, reading
from obsku_checkpoint_sqlite.db.migrate import script_directory
from obsku_checkpoint_sqlite.db.queries import messages
from obsku_checkpoint_sqlite.db.values import now_ms
from obsku_checkpoint_sqlite.errors import SchemaError
from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine

from .test_cli import Filled, failed, fill, ok, run, runner

SCRIPT = Path(sys.executable).parent / "obsku-checkpoint"


def run_as_printed(command: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``command`` run by a POSIX shell, exactly as the tool printed it."""
    path = f"{SCRIPT.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        ["sh", "-c", command], cwd=cwd, env={**os.environ, **(env or {}), "PATH": path},
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def quoted_command(text: str) -> str:
    """The command between backticks in a message."""
    found = re.search(r"`(obsku-checkpoint [^`]*)`", text)
    assert found is not None, text
    return found.group(1)


def previous_revision() -> str:
    revisions = [script.revision for script in script_directory().walk_revisions()]
    return revisions[1]


# --- secrets ---------------------------------------------------------------------------


def test_the_downgrade_prompt_masks_the_password_and_declining_changes_nothing() -> None:
    url = "postgresql://me:hunter2@127.0.0.1:1/agents"
    result = runner.invoke(app, ["--db", url, "db", "downgrade", "base"], input="n\n")
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    assert "Downgrade postgresql://me:***@127.0.0.1:1/agents to base?" in result.stderr
    assert result.stderr.splitlines()[-1].endswith("Nothing changed.")
    assert "hunter2" not in failed(run(url, "sessions"))  # cannot reach it: the error names no password


@pytest.mark.parametrize("scratch_url", ["postgresql"], indirect=True)
def test_the_upgrade_hint_masks_the_password(scratch_url: str) -> None:
    # The local server trusts its clients: a password is accepted and ignored.
    url = make_url(scratch_url).set(password="hunter2").render_as_string(hide_password=False)
    ok(url, "db", "upgrade")
    ok(url, "db", "downgrade", previous_revision(), "--yes")

    message = failed(run(url, "sessions"))
    assert "hunter2" not in message
    assert "--db 'postgresql://postgres:***@" in message
    with sync.SqlAlchemyCheckpointStore(url, auto_migrate=False) as store, pytest.raises(SchemaError) as raised:
        store.list_sessions()
    assert "hunter2" not in str(raised.value)
    assert ":***@" in str(raised.value)


# --- hints that run as printed ------------------------------------------------------------


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A database in a directory whose name needs quoting, by a relative path, with sessions to filter."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my runs").mkdir()
    db = "my runs/checkpoints.db"
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{db}") as store:
        for title, workspace in [("scan one", "demo"), ("other", "demo"), ("scan two", "demo"), ("scan three", "x")]:
            store.create_session("/w", title=title, workspace_id=workspace)
    return db


def test_the_paging_hint_runs_as_printed_with_the_database_and_the_filters(demo: str, tmp_path: Path) -> None:
    first = ok(demo, "sessions", "--workspace", "demo", "--search", "scan", "--limit", "1").stdout
    assert "scan two" in first
    more = next(line for line in first.splitlines() if line.startswith("More: "))[len("More: ") :]
    assert more.startswith("obsku-checkpoint --db 'my runs/checkpoints.db' sessions --workspace demo --search scan ")

    second = run_as_printed(more, tmp_path)

    assert second.returncode == 0, second.stderr
    assert "scan one" in second.stdout
    assert not any(title in second.stdout for title in ("scan two", "scan three", "other"))


def test_a_hint_names_the_environment_variable_when_the_url_came_from_it(demo: str, tmp_path: Path) -> None:
    environment = {"OBSKU_CHECKPOINT_URL": demo}
    first = runner.invoke(app, ["sessions", "--limit", "1"], env=environment)
    more = next(line for line in first.stdout.splitlines() if line.startswith("More: "))[len("More: ") :]
    assert more.startswith('obsku-checkpoint --db "$OBSKU_CHECKPOINT_URL" sessions --limit 1 --cursor ')

    second = run_as_printed(more, tmp_path, environment)

    assert second.returncode == 0, second.stderr
    assert "scan two" in second.stdout  # the second newest; the first page showed "scan three"
    assert "scan three" not in second.stdout


def test_the_upgrade_hint_runs_as_printed(demo: str, tmp_path: Path) -> None:
    ok(demo, "db", "downgrade", previous_revision(), "--yes")
    message = failed(run(demo, "sessions"))
    assert "revision None" not in message
    assert "auto_migrate" not in message
    command = quoted_command(message)
    assert command == "obsku-checkpoint --db 'my runs/checkpoints.db' db upgrade"
    assert quoted_command(ok(demo, "db", "current").stdout) == command

    upgraded = run_as_printed(command, tmp_path)

    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.startswith("At revision ")
    assert "scan one" in ok(demo, "sessions").stdout


def test_the_store_says_how_to_upgrade_a_database_it_opened_without_migrating(demo: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    with (
        sync.SqlAlchemyCheckpointStore(f"sqlite:///{empty}", auto_migrate=False) as store,
        pytest.raises(SchemaError) as raised,
    ):
        store.list_sessions()
    message = str(raised.value)
    assert raised.value.needs_upgrade
    assert "has no schema yet, and the store was opened without automatic migration" in message
    assert "None" not in message
    assert "auto_migrate" not in message

    upgraded = run_as_printed(quoted_command(message), tmp_path)

    assert upgraded.returncode == 0, upgraded.stderr
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{empty}", auto_migrate=False) as store:
        assert store.list_sessions() == []


def test_the_dry_run_hint_of_prune_runs_as_printed(demo: str, tmp_path: Path) -> None:
    dry = ok(demo, "prune", "--idle-sessions", "0s", "--workspace", "x").stdout
    command = dry.splitlines()[-1].partition("To delete: ")[2]
    assert command == "obsku-checkpoint --db 'my runs/checkpoints.db' prune --idle-sessions 0s --workspace x --apply"

    applied = run_as_printed(command, tmp_path)

    assert applied.returncode == 0, applied.stderr
    assert "Deleted 1 session," in applied.stdout
    assert "scan three" not in ok(demo, "sessions").stdout


# --- tables -----------------------------------------------------------------------------------


@pytest.fixture
def big(tmp_path: Path) -> tuple[str, str]:
    """A session with 12345 messages and a checkpoint at step 12345."""
    db = str(tmp_path / "big.db")
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{db}") as store:
        session = store.create_session(
            "/srv/a/rather/long/project/directory", title="A long title that should give way to the numbers",
            workspace_id="a-workspace-with-a-long-name",
        )  # fmt: skip
        store.save_checkpoint(
            session_id=session.id, namespace="main", step=12345, version=12345,
            node_results={"plan": {"status": "completed"}}, pending_nodes=["scan"], source="loop",
        )  # fmt: skip
    engine = create_sync_engine(f"sqlite:///{db}")
    rows = [
        {"session_id": session.id, "role": "user", "content": f"message {n}", "tokens_in": 12345, "tokens_out": 12345,
         "created_at": now_ms()}
        for n in range(12345)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(messages), rows)
    engine.dispose()
    return db, session.id


@pytest.mark.parametrize("width", [80, 60])
def test_numbers_are_never_cut_in_tables(big: tuple[str, str], width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    db, session_id = big
    screen = io.StringIO()
    monkeypatch.setattr(reading, "out", Console(file=screen, width=width, highlight=False))

    for args in (["sessions"], ["checkpoints", session_id], ["messages", session_id, "--limit", "2"]):
        ok(db, *args)
        shown = screen.getvalue()
        screen.seek(0)
        screen.truncate()
        assert all(len(line) <= width for line in shown.splitlines()), shown
        numbers = re.findall(r"(?<![\w-])\d[\d/]*…?(?![\w-])", shown)
        assert not [number for number in numbers if number.endswith("…")], shown
        assert "12345" in shown, shown
        if args[0] == "sessions":
            assert shown.count("12345") == 2, shown  # messages and step
            if width == 80:
                assert session_id in shown  # the id stays whole while the text can give way
        elif args[0] == "checkpoints":
            assert shown.count("12345") == 2, shown  # step and version
        else:
            assert "12345/12345" in shown, shown


# --- errors and prompts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "error: No such option '--bogus'."),
        (["show"], "error: Missing argument 'SESSION_ID'."),
        (["sessions", "--limit", "many"], "error: Invalid value for '--limit' / '-n': 'many' is not a valid integer"),
    ],
)
def test_usage_errors_are_one_line_and_a_hint(filled: Filled, args: list[str], message: str) -> None:
    result = run(filled.db, *args)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(message), result.stderr
    command = "obsku-checkpoint" if args[0] == "--bogus" else f"obsku-checkpoint {args[0]}"
    assert lines[1:] == [f"Try '{command} --help'."]
    assert result.stdout == ""

    script = subprocess.run([str(SCRIPT), "--db", filled.db, *args], capture_output=True, text=True, check=False)
    assert (script.returncode, script.stderr) == (2, result.stderr)


def test_declining_a_confirmation_changes_nothing_and_exits_0(filled: Filled) -> None:
    declined = run(filled.db, "delete", filled.run, input="n\n")
    assert (declined.exit_code, declined.stderr.splitlines()[-1][-16:]) == (0, "Nothing deleted.")
    downgrade = run(filled.db, "db", "downgrade", "base", input="\n")
    assert (downgrade.exit_code, downgrade.stderr.splitlines()[-1][-16:]) == (0, "Nothing changed.")
    assert "(head)" in ok(filled.db, "db", "current").stdout
    assert filled.run in ok(filled.db, "sessions").stdout
    unanswered = run(filled.db, "delete", filled.run)  # no input at all: not a yes
    assert unanswered.exit_code == 1
    assert unanswered.stderr.splitlines()[-1].endswith(
        "error: No answer on standard input: pass --yes to go ahead without asking"
    )


def test_version_prints_the_package_version() -> None:
    assert obsku_checkpoint_sqlite.__version__ == version("obsku-checkpoint-sqlite")
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"obsku-checkpoint {obsku_checkpoint_sqlite.__version__}\n")


def test_diff_prints_values_as_json(tmp_path: Path) -> None:
    db = str(tmp_path / "diff.db")
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{db}") as store:
        session = store.create_session("/d")
        before = store.save_checkpoint(
            session_id=session.id, step=1, node_results={"plan": {"status": "completed", "output": {"a": 1}}},
            pending_nodes=["scan"], source="loop",
        )  # fmt: skip
        after = store.save_checkpoint(
            session_id=session.id, step=2, pending_nodes=["report"], source="loop",
            node_results={"plan": {"status": "failed", "output": {"a": 2}, "error": "it's broken"}},
        )  # fmt: skip

    shown = ok(db, "diff", before.id, after.id).stdout

    assert '~ plan  error null → "it\'s broken", output {"a": 1} → {"a": 2}, status "completed" → "failed"' in shown
    assert 'pending: +["report"] -["scan"]' in shown


# --- files ---------------------------------------------------------------------------------------------


def test_export_writes_a_private_new_file_and_replaces_one_only_with_force(filled: Filled, tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        for name in ("backup.jsonl", "backup.jsonl.gz"):
            path = tmp_path / name
            ok(filled.db, "export", str(path))
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert failed(run(filled.db, "export", str(path))) == (
                f"error: {path} exists already: pass --force to replace it"
            )
            path.chmod(0o644)
            ok(filled.db, "export", str(path), "--force")
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(previous)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "link.jsonl").symlink_to(victim)
    assert "exists already" in failed(run(filled.db, "export", str(tmp_path / "link.jsonl")))
    ok(filled.db, "export", str(tmp_path / "link.jsonl"), "--force")
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("compressed", [False, True])
def test_import_reads_standard_input(filled: Filled, tmp_path: Path, compressed: bool) -> None:
    data = ok(filled.db, "export").stdout_bytes
    piped = gzip.compress(data) if compressed else data
    target = str(tmp_path / "target.db")

    through_pipe = subprocess.run(
        [str(SCRIPT), "--db", target, "import", "-"], input=piped, capture_output=True, check=False
    )

    assert through_pipe.returncode == 0, through_pipe.stderr
    assert b"Imported 2 sessions, 5 messages and 3 checkpoints." in through_pipe.stdout
    copies = json.loads(runner.invoke(app, ["--db", target, "import", "-", "--new-ids", "--json"], input=piped).stdout)
    assert copies["sessions"] == 2


def test_a_truncated_or_corrupt_gzip_import_is_one_line_naming_the_problem(filled: Filled, tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl.gz"
    ok(filled.db, "export", str(export))
    data = export.read_bytes()
    (tmp_path / "cut.gz").write_bytes(data[: len(data) // 2])
    (tmp_path / "corrupt.gz").write_bytes(data[:-8] + bytes(byte ^ 0xFF for byte in data[-8:]))
    target = str(tmp_path / "target.db")

    cut = failed(run(target, "import", str(tmp_path / "cut.gz")))
    corrupt = failed(run(target, "import", str(tmp_path / "corrupt.gz")))

    assert re.fullmatch(r"error: Export file, line \d+: the gzip stream is truncated.*nothing was imported", cut)
    assert re.fullmatch(r"error: Export file, line \d+: the gzip stream is corrupt .*nothing was imported", corrupt)
    assert json.loads(ok(target, "sessions", "--json").stdout)["sessions"] == []


@pytest.fixture
def filled(tmp_path: Path) -> Filled:
    return fill(str(tmp_path / "checkpoints.db"))
