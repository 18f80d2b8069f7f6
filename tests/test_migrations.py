"""Schema versioning on every dialect: build, roll back, drift, adoption and refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from obsku_checkpoint_sqlite import SchemaError, sync
from obsku_checkpoint_sqlite.db.migrate import (
    current_revision,
    downgrade,
    head_revision,
    schema_drift,
    script_directory,
    upgrade,
)
from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine

REPOSITORY = Path(__file__).resolve().parent.parent
STORE_TABLES = {"sessions", "messages", "checkpoints"}


def in_transaction(url: str, action: Any) -> Any:
    engine = create_sync_engine(url)
    try:
        with engine.begin() as conn:
            return action(conn)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    return in_transaction(url, lambda conn: set(inspect(conn).get_table_names()))


def test_upgrade_downgrade_upgrade_and_no_drift(scratch_url: str) -> None:
    in_transaction(scratch_url, upgrade)
    assert STORE_TABLES | {"alembic_version"} <= table_names(scratch_url)
    assert in_transaction(scratch_url, current_revision) == head_revision()
    assert in_transaction(scratch_url, schema_drift) == []

    in_transaction(scratch_url, lambda conn: downgrade(conn, "base"))
    assert not STORE_TABLES & table_names(scratch_url)

    in_transaction(scratch_url, upgrade)
    assert in_transaction(scratch_url, schema_drift) == []


def test_every_revision_downgrades_one_step(scratch_url: str) -> None:
    revisions = [script.revision for script in reversed(list(script_directory().walk_revisions()))]
    for revision in revisions:
        in_transaction(scratch_url, lambda conn, target=revision: upgrade(conn, target))
    for revision in reversed(revisions[:-1]):
        in_transaction(scratch_url, lambda conn, target=revision: downgrade(conn, target))
        assert in_transaction(scratch_url, current_revision) == revision


def test_alembic_command_line_from_the_repository_root(scratch_url: str) -> None:
    def alembic(*args: str) -> str:
        completed = subprocess.run(
            [sys.executable, "-m", "alembic", "-x", f"url={scratch_url}", *args],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            check=True,
        )
        return completed.stdout + completed.stderr

    alembic("upgrade", "head")
    assert head_revision() in alembic("current")
    alembic("downgrade", "base")
    assert not STORE_TABLES & table_names(scratch_url)


def test_url_comes_from_the_environment_variable(tmp_path: Path) -> None:
    database = tmp_path / "from-env.db"
    environment = {**os.environ, "OBSKU_CHECKPOINT_URL": f"sqlite:///{database}"}
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=REPOSITORY, env=environment, check=True,
        capture_output=True,
    )  # fmt: skip
    assert table_names(f"sqlite:///{database}") >= STORE_TABLES


def test_store_upgrades_a_database_at_an_older_revision(scratch_url: str) -> None:
    in_transaction(scratch_url, lambda conn: upgrade(conn, "0001"))
    with sync.SqlAlchemyCheckpointStore(scratch_url) as store:
        session = store.create_session("/a")
        assert store.get_session(session.id) == session
    assert in_transaction(scratch_url, current_revision) == head_revision()


def test_store_refuses_a_newer_revision(scratch_url: str) -> None:
    in_transaction(scratch_url, upgrade)
    in_transaction(scratch_url, lambda conn: conn.execute(text("UPDATE alembic_version SET version_num = '9999'")))
    with sync.SqlAlchemyCheckpointStore(scratch_url) as store, pytest.raises(SchemaError, match=r"'9999'.*newer"):
        store.get_session("x")
    with pytest.raises(SchemaError, match=r"'9999'.*newer than this package knows"):
        in_transaction(scratch_url, upgrade)


def test_store_refuses_a_foreign_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'foreign.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE sessions (id TEXT PRIMARY KEY, name TEXT)"))
        conn.execute(text("CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT)"))
        conn.execute(text("CREATE TABLE checkpoints (id TEXT PRIMARY KEY)"))
    engine.dispose()
    with (
        sync.SqlAlchemyCheckpointStore(url) as store,
        pytest.raises(SchemaError, match=r"sessions\.directory is missing"),
    ):
        store.get_session("x")


def test_store_without_auto_migrate_refuses_an_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with sync.SqlAlchemyCheckpointStore(url, auto_migrate=False) as store, pytest.raises(SchemaError, match="upgrade"):
        store.get_session("x")
    assert table_names(url) == set()
