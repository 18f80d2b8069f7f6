"""The short path: every registered statement has a driver-ready form on sqlite3, psycopg and PyMySQL,
built from public SQLAlchemy interfaces, and nothing unregistered is ever kept."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import mysql, postgresql, sqlite

from obsku_checkpoint_sqlite.db import queries
from obsku_checkpoint_sqlite.runtime import fastpath

SHORT_PATH_DIALECTS = {
    "pysqlite": sqlite.dialect(),
    "psycopg": postgresql.psycopg.dialect(),
    "pymysql": mysql.pymysql.dialect(),
}


@pytest.mark.parametrize("driver", sorted(SHORT_PATH_DIALECTS))
@pytest.mark.parametrize("statement", sorted(queries.PREPARED, key=str), ids=lambda statement: str(statement)[:40])
def test_every_registered_statement_has_a_short_form(statement: Any, driver: str) -> None:
    dialect = SHORT_PATH_DIALECTS[driver]
    form = fastpath.ShortForm.of(statement, dialect)
    assert form is not None, f"needs SQLAlchemy at execution time on {driver}: {statement}"
    marker = "?" if driver == "pysqlite" else "%s"
    if driver == "psycopg":
        assert all(f"%({name})s" in form.sql for name in form.names)
    else:
        assert form.sql.count(marker) == len(form.names)


def test_the_hot_statements_are_registered() -> None:
    # What add_message, save_checkpoint, the latest/list/messages reads and fork run.
    hot = {
        queries.TOUCH_SESSION, queries.INSERT_MESSAGE, queries.LOCK_SESSION, queries.VERSION_EXISTS,
        queries.INSERT_CHECKPOINT_RETURNING, queries.NAMESPACE_CHECKPOINTS_PAGE, queries.SESSION_CHECKPOINTS_PAGE,
        queries.LAST_MESSAGES, queries.GET_CHECKPOINT, queries.GET_SESSION, queries.FORK_SOURCE,
        queries.INSERT_SESSION, queries.COPY_MESSAGES_BY_ID, queries.COPY_CHECKPOINT,
    }  # fmt: skip
    assert hot <= queries.PREPARED


def test_an_unregistered_statement_is_never_prepared() -> None:
    dialect = sqlite.dialect()
    adhoc = select(queries.sessions.c.id).where(queries.sessions.c.title == "x")
    assert fastpath.short_form(adhoc, dialect) is None
    assert fastpath.short_form(queries.GET_SESSION, dialect) is not None


@pytest.mark.parametrize(
    "dialect",
    [postgresql.asyncpg.dialect(), postgresql.psycopg.dialect_async(), mysql.aiomysql.dialect()],
    ids=["asyncpg", "psycopg_async", "aiomysql"],
)
def test_other_drivers_take_sqlalchemys_path(dialect: Any) -> None:
    assert fastpath.ShortForm.of(queries.GET_SESSION, dialect) is None


def test_a_type_with_a_bind_processor_keeps_a_statement_off_the_short_path() -> None:
    from sqlalchemy import Boolean, DateTime, bindparam

    with_processor = select(queries.sessions.c.id).where(
        queries.sessions.c.created_at > bindparam("when", type_=DateTime())
    )
    assert fastpath.ShortForm.of(with_processor, sqlite.dialect()) is None
    returns_processed = select(bindparam("flag", type_=Boolean()))
    assert fastpath.ShortForm.of(returns_processed, sqlite.dialect()) is None
