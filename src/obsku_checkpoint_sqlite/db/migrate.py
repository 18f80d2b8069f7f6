"""Schema versioning: upgrade, adopt databases made by the original package, check drift.

The migration scripts ship inside this package (``obsku_checkpoint_sqlite/db/migrations``),
so stores and the command-line tool run them without an ``alembic.ini``; Alembic's own
command line runs them with ``ALEMBIC_INI`` or any ini that names them.
"""

from __future__ import annotations

import functools
import shlex
from argparse import Namespace
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, text

from ..errors import SchemaError
from .models import Base

VERSION_TABLE = "alembic_version"
# An ini for Alembic's command line: ``alembic -c <this path> upgrade head``.
ALEMBIC_INI = str(files("obsku_checkpoint_sqlite.db") / "migrations" / "alembic.ini")

# The original package's columns and whether each may be NULL. Adoption checks names
# and nullability only: the original declares plain TEXT and INTEGER.
ORIGINAL_COLUMNS: dict[str, dict[str, bool]] = {
    "sessions": {
        "id": False, "workspace_id": True, "title": True, "directory": False,
        "created_at": False, "updated_at": False, "metadata": True,
    },
    "messages": {
        "id": False, "session_id": False, "role": False, "content": True, "tool_calls": True,
        "tool_results": True, "tokens_in": True, "tokens_out": True, "created_at": False,
    },
    "checkpoints": {
        "id": False, "session_id": False, "namespace": False, "parent_id": True, "version": False,
        "step": False, "node_id": True, "node_results": False, "pending_nodes": True,
        "cycle_state": True, "source": True, "created_at": False,
    },
}  # fmt: skip


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic ``Config`` for the packaged migrations, bound to a connection or a URL."""
    config = Config(cmd_opts=Namespace(x=[f"url={url}"]) if url is not None else None)
    config.set_main_option("script_location", str(files("obsku_checkpoint_sqlite.db") / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def script_directory() -> ScriptDirectory:
    """Alembic's view of the packaged migration scripts."""
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest schema revision this package ships."""
    head = script_directory().get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision the database is stamped with, or None if it has no version table."""
    return MigrationContext.configure(conn).get_current_revision()


def ensure_schema(conn: Connection) -> None:
    """Bring the database on ``conn`` to the head revision, in the caller's transaction.

    An empty database is built; an older revision is upgraded; a database made by the
    original TypeScript package is checked and upgraded in place (the first revision
    finds its tables and indexes there already), its other tables left alone.
    Concurrent callers are serialized by a lock.

    Raises:
        SchemaError: a newer revision than this package knows, or tables that are not
            this package's.
    """
    if _is_at_head(conn):
        return
    with _schema_lock(conn):
        if current_revision(conn) == head_revision():
            return
        _refuse_what_is_not_ours(conn)
        command.upgrade(alembic_config(conn), "head")


def require_head(conn: Connection) -> None:
    """Raise ``SchemaError`` unless the database is at the head revision (no changes made)."""
    if _is_at_head(conn):
        return
    revision = current_revision(conn)
    if revision is not None and not is_known_revision(revision):
        raise SchemaError(_newer_revision_message(revision))
    state = "has no schema yet" if revision is None else f"is at schema revision {revision}, before {head_revision()}"
    # The command runs as printed: --db before the command, the URL quoted, its password masked.
    database = shlex.quote(conn.engine.url.render_as_string(hide_password=True))
    raise SchemaError(
        f"The database {state}, and the store was opened without automatic migration: "
        f"upgrade it with `obsku-checkpoint --db {database} db upgrade`.",
        needs_upgrade=True,
    )


def upgrade(conn: Connection, revision: str = "head") -> None:
    """Upgrade (or adopt and upgrade) the database on ``conn`` to ``revision``.

    Raises:
        SchemaError: the database is at a revision newer than this package knows, or
            holds tables that are not this package's.
    """
    with _schema_lock(conn):
        _refuse_what_is_not_ours(conn)
        command.upgrade(alembic_config(conn), revision)


@contextmanager
def command_line_guard(conn: Connection) -> Iterator[None]:
    """Around a run of Alembic's own command line: the lock and the refusals of ``upgrade``.

    So ``alembic upgrade`` does what ``upgrade`` does, adoption included, and says why
    it will not touch a database in the same words.

    Raises:
        SchemaError: as ``upgrade``.
    """
    with _schema_lock(conn):
        _refuse_what_is_not_ours(conn)
        yield


def downgrade(conn: Connection, revision: str) -> None:
    """Downgrade the database on ``conn`` to ``revision`` (``"base"`` drops every table)."""
    with _schema_lock(conn):
        command.downgrade(alembic_config(conn), revision)


def schema_drift(conn: Connection) -> list[Any]:
    """Differences between the models and the database, as Alembic's autogenerate sees them."""
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _is_at_head(conn: Connection) -> bool:
    # A cheap look before any locking: the common case is a database already at head.
    if not inspect(conn).has_table(VERSION_TABLE):
        return False
    found = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return found == [head_revision()]


def is_known_revision(revision: str) -> bool:
    """Whether this package ships ``revision`` (a database at another one is newer)."""
    try:
        return script_directory().get_revision(revision) is not None
    except CommandError:
        return False


def _refuse_what_is_not_ours(conn: Connection) -> None:
    """Raise ``SchemaError`` for a database at a revision newer than this package knows, or
    with tables named like its own that are not.

    The rest passes: an empty database, this package's, and the original package's. Each
    revision creates only what is missing, so the first one adopts the original's tables
    as they are, and completes a first build that a kill cut short on MariaDB (where each
    DDL statement commits on its own, after Alembic made its version table).
    """
    revision = current_revision(conn)
    if revision is not None:
        if not is_known_revision(revision):
            raise SchemaError(_newer_revision_message(revision))
        return
    inspector = inspect(conn)
    present = set(inspector.get_table_names()) & set(ORIGINAL_COLUMNS)
    if present and present != set(ORIGINAL_COLUMNS) and not inspector.has_table(VERSION_TABLE):
        missing = ", ".join(sorted(set(ORIGINAL_COLUMNS) - present))
        raise SchemaError(
            f"The database has some of this package's tables but not {missing}, and no "
            f"{VERSION_TABLE} table: it is not a checkpoint store. Use an empty database."
        )
    _check_original_columns(conn, present)


def _check_original_columns(conn: Connection, tables: set[str]) -> None:
    inspector = inspect(conn)
    problems: list[str] = []
    for table, expected in ORIGINAL_COLUMNS.items():
        if table not in tables:
            continue
        columns = {column["name"]: column for column in inspector.get_columns(table)}
        primary_key = set(inspector.get_pk_constraint(table)["constrained_columns"])
        for name, nullable in expected.items():
            if name not in columns:
                problems.append(f"{table}.{name} is missing")
            elif not nullable and name not in primary_key and columns[name]["nullable"]:
                problems.append(f"{table}.{name} allows NULL")
    if problems:
        raise SchemaError(
            "The database has tables named like this package's but a different schema "
            f"({'; '.join(problems)}). Use an empty database, or fix the schema by hand."
        )


def _newer_revision_message(revision: str) -> str:
    return (
        f"The database is at schema revision {revision!r}, newer than this package knows "
        f"(its newest is {head_revision()!r}): it was written by a newer version of "
        'obsku-checkpoint-sqlite. Upgrade the package (pip install -U "obsku-checkpoint-sqlite"), '
        "or restore a matching backup."
    )


@contextmanager
def _schema_lock(conn: Connection) -> Iterator[None]:
    """Serialize schema changes between processes.

    SQLite needs nothing here: the store runs this in a ``BEGIN IMMEDIATE`` transaction,
    which already excludes other writers. PostgreSQL takes a transaction-scoped advisory
    lock. MariaDB commits DDL implicitly, so it takes a named session lock.
    """
    name = conn.dialect.name
    if name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(7208041733)"))
        yield
    elif name in ("mysql", "mariadb"):
        if conn.execute(text("SELECT GET_LOCK('obsku_checkpoint_schema', 60)")).scalar() != 1:
            raise SchemaError("Timed out after 60 s waiting for another process to finish changing the schema")
        try:
            # DDL commits implicitly here, so a schema change is never one transaction
            # anyway; what matters is what the lock's holders see. Commit after taking it,
            # so the reads below leave any REPEATABLE READ snapshot taken before the
            # previous holder finished; and before releasing it, so the next holder sees
            # this one's alembic_version row (its last UPDATE follows the last DDL and
            # would otherwise wait for the runner's commit, after the release). Without
            # both, processes opening a new database at once re-ran migrations:
            # "Duplicate entry '0001'", "Duplicate column name 'forked_from_session_id'".
            conn.exec_driver_sql("COMMIT")
            yield
            conn.exec_driver_sql("COMMIT")
        finally:
            conn.execute(text("SELECT RELEASE_LOCK('obsku_checkpoint_schema')"))
    else:
        yield
