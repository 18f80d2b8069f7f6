"""The raw floor on a server: psycopg 3 (PostgreSQL) or PyMySQL (MariaDB) running the store's SQL.

Each statement is the store's prebuilt SQLAlchemy statement compiled once by the dialect
the store itself uses (``postgresql+psycopg``, ``mariadb+pymysql``), so the floor sends
exactly the SQL the store sends. What it leaves out is everything the store adds on top:
input validation, the JsonPlus format, DTOs, the connection pool and SQLAlchemy itself.

One transaction per operation, in as few round trips as each driver's ordinary API allows
for the store's steps:

- a read is one statement on a connection in autocommit, which is its own transaction:
  one round trip on both servers;
- a write locks (or touches) the session, inserts, and checks that the session existed.
  psycopg sends ``BEGIN``, both statements and ``COMMIT`` in one pipeline and reads the
  results after: one round trip (a missing session fails the insert's foreign key, so
  nothing is written). PyMySQL cannot pipeline, so it runs on a second connection with
  autocommit off, where the first statement opens the transaction, and checks before
  inserting: three round trips.

psycopg statements are prepared on the server (``prepare=True``); PyMySQL has no
server-side preparation (it interpolates on the client), and neither has the store.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pymysql  # type: ignore[import-untyped]
from pymysql.constants import CLIENT  # type: ignore[import-untyped]
from sqlalchemy import URL, make_url

from obsku_checkpoint_sqlite.db import queries
from obsku_checkpoint_sqlite.db.values import new_id, now_ms

from ._floor import checkpoint_record, message_record
from ._workload import MESSAGE_CHARS, node_results, text_of, tool_calls


@dataclass(frozen=True)
class Statement:
    """A store statement compiled for one server dialect."""

    sql: str
    positions: tuple[str, ...] | None  # None: named parameters (psycopg's ``%(name)s``)
    defaults: dict[str, Any]

    @classmethod
    def of(cls, statement: Any, dialect: Any) -> Statement:
        compiled = statement.compile(dialect=dialect)
        positions = tuple(compiled.positiontup) if compiled.positiontup is not None else None
        return cls(compiled.string, positions, dict(compiled.params))

    def params(self, values: dict[str, Any]) -> Any:
        merged = {**self.defaults, **values}
        if self.positions is None:
            return merged
        return tuple(merged[name] for name in self.positions)


class Statements:
    """Every statement the floor runs, compiled for the store's dialect of a backend."""

    def __init__(self, drivername: str) -> None:
        dialect = make_url(f"{drivername}://").get_dialect()()
        self.lock_session = Statement.of(queries.LOCK_SESSION, dialect)
        self.touch_session = Statement.of(queries.TOUCH_SESSION, dialect)
        self.insert_checkpoint = Statement.of(queries.INSERT_CHECKPOINT_RETURNING, dialect)
        self.insert_checkpoint_plain = Statement.of(queries.INSERT_CHECKPOINT, dialect)
        self.insert_message = Statement.of(queries.INSERT_MESSAGE, dialect)
        self.latest = Statement.of(queries.checkpoints_query(in_namespace=True, limited=True), dialect)
        self.last_messages = Statement.of(queries.LAST_MESSAGES, dialect)


def checkpoint_values(session_id: str, step: int, payload: dict[str, Any], namespace: str = "") -> dict[str, Any]:
    return {
        "id": new_id(), "session_id": session_id, "namespace": namespace, "parent_id": None, "version": None,
        "step": step, "node_id": "node_19", "node_results": json.dumps(payload, separators=(",", ":")),
        "pending_nodes": json.dumps(["node_00"]), "cycle_state": None, "source": "loop", "created_at": now_ms(),
    }  # fmt: skip


def message_values(
    session_id: str, content: str, now: int, calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "session_id": session_id, "role": "user", "content": content,
        "tool_calls": None if calls is None else json.dumps(calls, separators=(",", ":")),
        "tool_results": None, "tokens_in": 12, "tokens_out": None, "created_at": now,
    }  # fmt: skip


class ServerFloor:
    """The operations both floors share; each subclass runs one write and one read."""

    statements: Statements

    def close(self) -> None:
        raise NotImplementedError

    def _write(self, check: Statement, check_values: dict[str, Any], insert: Statement, values: dict[str, Any]) -> Any:
        """Runs ``check`` (it must find the session), then ``insert``; returns the insert's first column."""
        raise NotImplementedError

    def _read(self, statement: Statement, values: dict[str, Any]) -> list[Any]:
        raise NotImplementedError

    def save_checkpoint(self, session_id: str, step: int, payload: dict[str, Any]) -> dict[str, Any]:
        values = checkpoint_values(session_id, step, payload)
        s = self.statements
        version = self._write(s.lock_session, {"session_id": session_id}, s.insert_checkpoint, values)
        return {**values, "version": version, "node_results": payload}

    def add_message(self, session_id: str, content: str) -> dict[str, Any]:
        now = now_ms()
        values = message_values(session_id, content, now)
        s = self.statements
        message_id = self._write(s.touch_session, {"session_id": session_id, "now": now}, s.insert_message, values)
        return {**values, "id": message_id}

    def list_checkpoints(self, session_id: str, namespace: str, limit: int) -> list[dict[str, Any]]:
        rows = self._read(self.statements.latest, {"session_id": session_id, "namespace": namespace, "limit": limit})
        return [checkpoint_record(row) for row in rows]

    def get_latest_checkpoint(self, session_id: str, namespace: str) -> dict[str, Any] | None:
        rows = self.list_checkpoints(session_id, namespace, 1)
        return rows[0] if rows else None

    def get_messages(self, session_id: str, limit: int) -> list[dict[str, Any]]:
        rows = self._read(self.statements.last_messages, {"session_id": session_id, "limit": limit})
        rows.reverse()
        return [message_record(row) for row in rows]

    def seed(self, session_id: str, count: int, rng: random.Random) -> None:
        """``count`` messages then ``count`` checkpoints (one in ten in the namespace "tools")
        in the session, in one transaction, through the store's own INSERT statements."""
        raise NotImplementedError

    def _seed_rows(
        self, session_id: str, count: int, rng: random.Random
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        started = now_ms() - 10_000_000
        messages = [
            {**message_values(session_id, text_of(MESSAGE_CHARS, rng), started + index,
                              tool_calls(rng) if index % 4 == 3 else None),
             "role": "assistant" if index % 2 else "user", "tokens_out": 34}
            for index in range(count)
        ]  # fmt: skip
        payload = node_results(rng)
        checkpoints = [
            {**checkpoint_values(session_id, index, payload, "tools" if index % 10 == 7 else ""),
             "created_at": started + index}
            for index in range(count)
        ]  # fmt: skip
        return messages, checkpoints


class PostgresFloor(ServerFloor):
    def __init__(self, url: URL) -> None:
        self.statements = Statements("postgresql+psycopg")
        self.conn = psycopg.connect(libpq_url(url), autocommit=True)
        # A cursor per statement: each keeps its own result until the pipeline has run.
        self._transaction = self.conn.cursor()
        self._check = self.conn.cursor()
        self._insert = self.conn.cursor()

    def close(self) -> None:
        self.conn.close()

    def _write(self, check: Statement, check_values: dict[str, Any], insert: Statement, values: dict[str, Any]) -> Any:
        try:
            with self.conn.pipeline():
                self._transaction.execute("BEGIN")
                self._check.execute(check.sql, check.params(check_values), prepare=True)
                self._insert.execute(insert.sql, insert.params(values), prepare=True)
                self._transaction.execute("COMMIT")
        except psycopg.errors.ForeignKeyViolation:
            self.conn.rollback()
            raise LookupError(check_values["session_id"]) from None
        if self._check.rowcount == 0:
            raise LookupError(check_values["session_id"])
        row = self._insert.fetchone()
        assert row is not None
        return row[0]

    def _read(self, statement: Statement, values: dict[str, Any]) -> list[Any]:
        return self.conn.execute(statement.sql, statement.params(values), prepare=True).fetchall()

    def seed(self, session_id: str, count: int, rng: random.Random) -> None:
        messages, checkpoints = self._seed_rows(session_id, count, rng)
        s = self.statements
        with self.conn.transaction(), self.conn.cursor() as cursor:
            cursor.executemany(s.insert_message.sql, [s.insert_message.params(row) for row in messages])
            plain = s.insert_checkpoint_plain
            cursor.executemany(plain.sql, [plain.params(row) for row in checkpoints])


class AsyncPostgresFloor:
    """``PostgresFloor`` on psycopg's ``AsyncConnection``: the floor of the async face.

    The same statements, prepared, and the same round trips: the async driver's own cost
    over the blocking one's, with no store, pool or thread around it.
    """

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.statements = Statements("postgresql+psycopg")
        self.conn = conn

    @classmethod
    async def connect(cls, url: URL) -> AsyncPostgresFloor:
        return cls(await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True))

    async def close(self) -> None:
        await self.conn.close()

    async def save_checkpoint(self, session_id: str, step: int, payload: dict[str, Any]) -> dict[str, Any]:
        values = checkpoint_values(session_id, step, payload)
        s = self.statements
        version = await self._write(s.lock_session, {"session_id": session_id}, s.insert_checkpoint, values)
        return {**values, "version": version, "node_results": payload}

    async def add_message(self, session_id: str, content: str) -> dict[str, Any]:
        now = now_ms()
        values = message_values(session_id, content, now)
        s = self.statements
        touch = {"session_id": session_id, "now": now}
        return {**values, "id": await self._write(s.touch_session, touch, s.insert_message, values)}

    async def list_checkpoints(self, session_id: str, namespace: str, limit: int) -> list[dict[str, Any]]:
        latest = self.statements.latest
        values = latest.params({"session_id": session_id, "namespace": namespace, "limit": limit})
        cursor = await self.conn.execute(latest.sql, values, prepare=True)
        return [checkpoint_record(row) for row in await cursor.fetchall()]

    async def get_latest_checkpoint(self, session_id: str, namespace: str) -> dict[str, Any] | None:
        rows = await self.list_checkpoints(session_id, namespace, 1)
        return rows[0] if rows else None

    async def get_messages(self, session_id: str, limit: int) -> list[dict[str, Any]]:
        last = self.statements.last_messages
        cursor = await self.conn.execute(
            last.sql, last.params({"session_id": session_id, "limit": limit}), prepare=True
        )
        rows = await cursor.fetchall()
        rows.reverse()
        return [message_record(row) for row in rows]

    async def _write(
        self, check: Statement, check_values: dict[str, Any], insert: Statement, values: dict[str, Any]
    ) -> Any:
        checked, inserted = self.conn.cursor(), self.conn.cursor()
        async with self.conn.pipeline():
            await self.conn.execute("BEGIN")
            await checked.execute(check.sql, check.params(check_values), prepare=True)
            await inserted.execute(insert.sql, insert.params(values), prepare=True)
            await self.conn.execute("COMMIT")
        if checked.rowcount == 0:
            raise LookupError(check_values["session_id"])
        row = await inserted.fetchone()
        assert row is not None
        return row[0]


class MariaDBFloor(ServerFloor):
    def __init__(self, url: URL) -> None:
        self.statements = Statements("mariadb+pymysql")
        self.reader = pymysql_connect(url, autocommit=True)
        self.writer = pymysql_connect(url, autocommit=False)

    def close(self) -> None:
        self.reader.close()
        self.writer.close()

    def _write(self, check: Statement, check_values: dict[str, Any], insert: Statement, values: dict[str, Any]) -> Any:
        with self.writer.cursor() as cursor:
            try:
                if cursor.execute(check.sql, check.params(check_values)) == 0:
                    raise LookupError(check_values["session_id"])
                cursor.execute(insert.sql, insert.params(values))
                row = cursor.fetchone()
                result = cursor.lastrowid if row is None else row[0]
            except BaseException:
                self.writer.rollback()
                raise
        self.writer.commit()
        return result

    def _read(self, statement: Statement, values: dict[str, Any]) -> list[Any]:
        with self.reader.cursor() as cursor:
            cursor.execute(statement.sql, statement.params(values))
            return list(cursor.fetchall())

    def seed(self, session_id: str, count: int, rng: random.Random) -> None:
        messages, checkpoints = self._seed_rows(session_id, count, rng)
        s = self.statements
        with self.writer.cursor() as cursor:
            cursor.executemany(s.insert_message.sql, [s.insert_message.params(row) for row in messages])
            plain = s.insert_checkpoint_plain
            cursor.executemany(plain.sql, [plain.params(row) for row in checkpoints])
        self.writer.commit()


# --- scratch databases ------------------------------------------------------------------


def admin(backend: str, server: URL, sql: str) -> Any:
    """Runs one statement on the server's own database, in autocommit; returns the first value."""
    if backend == "postgresql":
        with psycopg.connect(libpq_url(server), autocommit=True) as conn:
            cursor = conn.execute(sql.encode())
            row = cursor.fetchone() if cursor.description is not None else None
            return None if row is None else row[0]
    conn = pymysql_connect(server, autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            fetched = cursor.fetchone()
            return None if fetched is None else fetched[0]
    finally:
        conn.close()


@contextmanager
def scratch(backend: str, server: URL, name: str) -> Iterator[URL]:
    """A new database on the server, dropped on exit."""
    admin(backend, server, f"CREATE DATABASE {name}")
    try:
        yield server.set(database=name)
    finally:
        admin(backend, server, f"DROP DATABASE {name}" + (" WITH (FORCE)" if backend == "postgresql" else ""))


def analyze(backend: str, url: URL) -> None:
    """Statistics for the planner, as a server that has run a while has them."""
    if backend == "postgresql":
        admin(backend, url, "VACUUM ANALYZE")
    else:
        admin(backend, url, "ANALYZE TABLE sessions, messages, checkpoints")


def libpq_url(url: URL) -> str:
    """The URL as libpq takes it: no SQLAlchemy driver name."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def pymysql_connect(url: URL, *, autocommit: bool) -> Any:
    # FOUND_ROWS: an UPDATE reports the rows it matched, not only those it changed (as
    # SQLAlchemy's dialect asks), so touching a session in the same millisecond counts.
    return pymysql.connect(
        host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username or "root",
        password=url.password or "", database=url.database, charset="utf8mb4",
        autocommit=autocommit, client_flag=CLIENT.FOUND_ROWS,
    )  # fmt: skip
