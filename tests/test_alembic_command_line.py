"""Alembic's own command line does what ``obsku-checkpoint db upgrade`` does (issue 13, item 2).

``alembic`` runs in a directory of its own, with an ini that is not the repository's
(the two lines Alembic needs, or the one the package ships), on SQLite files: one made
by the TypeScript package and a new one. The result is compared with ``db upgrade``'s
on a twin of the same file, and Alembic's "Running upgrade" lines must be on stderr.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.cli import app
from obsku_checkpoint_sqlite.db import migrate
from tests.test_typescript_compat import ORIGINAL_SCHEMA

MINIMAL_INI = "[alembic]\nscript_location = obsku_checkpoint_sqlite.db:migrations\n"
SESSION = ("s-1", "/from-typescript", 1717243200000, 1717243205000)


def alembic(cwd: Path, ini: str, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", ini, "-x", f"url={url}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def db_upgrade(url: str) -> Any:
    return CliRunner().invoke(app, ["--db", url, "db", "upgrade"])


def typescript_file(path: Path) -> str:
    with closing(sqlite3.connect(path)) as connection:
        connection.executescript(ORIGINAL_SCHEMA)
        connection.execute("INSERT INTO sessions (id, directory, created_at, updated_at) VALUES (?, ?, ?, ?)", SESSION)
        connection.commit()
    return f"sqlite:///{path}"


def schema_of(url: str) -> dict[str, Any]:
    """Every table's columns (name, type, nullability) and indexes, and the revision."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            tables = {
                table: (
                    [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
                    sorted(
                        (i["name"] or "", tuple(i["column_names"]), bool(i["unique"]))
                        for i in inspector.get_indexes(table)
                    ),
                )
                for table in inspector.get_table_names()
            }
            return {"tables": tables, "revision": migrate.current_revision(conn)}
    finally:
        engine.dispose()


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A directory with no alembic.ini but the one written there, far from the repository."""
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    (directory / "mine.ini").write_text(MINIMAL_INI)
    return directory


@pytest.mark.parametrize("made_by", ["typescript", "nobody"])
def test_alembic_upgrade_head_does_what_db_upgrade_does(elsewhere: Path, made_by: str) -> None:
    def database(name: str) -> str:
        path = elsewhere / name
        return typescript_file(path) if made_by == "typescript" else f"sqlite:///{path}"

    by_alembic, by_db_upgrade = database("by-alembic.db"), database("by-db-upgrade.db")
    ran = alembic(elsewhere, "mine.ini", by_alembic, "upgrade", "head")
    assert ran.returncode == 0, ran.stderr
    assert db_upgrade(by_db_upgrade).exit_code == 0

    assert schema_of(by_alembic) == schema_of(by_db_upgrade)
    assert schema_of(by_alembic)["revision"] == migrate.head_revision()
    # It says what it ran, on stderr, as Alembic does.
    assert "Running upgrade  -> 0001" in ran.stderr
    assert f"-> {migrate.head_revision()}" in ran.stderr
    with sync.SqlAlchemyCheckpointStore(by_alembic, auto_migrate=False) as store:
        if made_by == "typescript":
            assert store.get_session(SESSION[0]) is not None
        session = store.create_session("/after-alembic")
        store.add_message(session.id, role="user", content="works")


def test_the_ini_the_package_ships_works_from_any_directory(elsewhere: Path) -> None:
    url = typescript_file(elsewhere / "from-typescript.db")
    ran = alembic(elsewhere, migrate.ALEMBIC_INI, url, "upgrade", "head")
    assert ran.returncode == 0, ran.stderr
    assert "INFO  [alembic.runtime.migration] Running upgrade 0001 -> 0002" in ran.stderr
    assert schema_of(url)["revision"] == migrate.head_revision()
    assert Path(migrate.ALEMBIC_INI).read_text() == (Path(__file__).parents[1] / "alembic.ini").read_text()


def test_alembic_refuses_what_db_upgrade_refuses_in_the_same_words(elsewhere: Path) -> None:
    path = elsewhere / "foreign.db"
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY, name TEXT)")
        connection.commit()
    url = f"sqlite:///{path}"
    refused = db_upgrade(url)
    assert refused.exit_code != 0
    ran = alembic(elsewhere, "mine.ini", url, "upgrade", "head")
    assert ran.returncode != 0
    # Alembic prints FAILED on stdout, and logs the message on stderr.
    assert "FAILED: The database has some of this package's tables but not checkpoints, messages" in ran.stdout
    assert "Traceback" not in ran.stdout + ran.stderr
    assert "it is not a checkpoint store" in refused.output
    assert schema_of(url)["tables"].keys() == {"sessions"}, "nothing was written"


def test_alembic_current_on_a_typescript_file_changes_nothing(elsewhere: Path) -> None:
    url = typescript_file(elsewhere / "from-typescript.db")
    before = schema_of(url)
    ran = alembic(elsewhere, "mine.ini", url, "current")
    assert ran.returncode == 0, ran.stderr
    assert schema_of(url) == before
