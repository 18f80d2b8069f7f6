"""The raw floor: stdlib ``sqlite3`` + ``json`` running the store's own statements.

Each statement is the store's prebuilt SQLAlchemy statement compiled once for SQLite,
so the floor executes exactly the SQL the store executes, with the same pragmas and
one explicit transaction per operation (``BEGIN IMMEDIATE`` for writes, as the store's
runner does). What it leaves out is everything the store adds on top: input
validation, the JsonPlus format, DTOs, the connection pool and SQLAlchemy itself.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from obsku_checkpoint_sqlite.db import queries
from obsku_checkpoint_sqlite.db.values import new_id, now_ms

from ._workload import Compiled, sqlite_connect

LOCK_SESSION = Compiled.of(queries.LOCK_SESSION)
INSERT_CHECKPOINT = Compiled.of(queries.INSERT_CHECKPOINT_RETURNING)
TOUCH_SESSION = Compiled.of(queries.TOUCH_SESSION)
INSERT_MESSAGE = Compiled.of(queries.INSERT_MESSAGE)
LATEST = {ns: Compiled.of(queries.checkpoints_query(in_namespace=ns, limited=True)) for ns in (True, False)}
LAST_MESSAGES = Compiled.of(queries.LAST_MESSAGES)
FORK_SOURCE = Compiled.of(queries.FORK_SOURCE)
GET_SESSION = Compiled.of(queries.GET_SESSION)
INSERT_SESSION = Compiled.of(queries.INSERT_SESSION)
COPY_MESSAGES = Compiled.of(queries.COPY_MESSAGES_BY_ID)
COPY_CHECKPOINT = Compiled.of(queries.COPY_CHECKPOINT)

_CHECKPOINT_FIELDS = (
    "id", "session_id", "namespace", "parent_id", "version", "step", "node_id", "node_results",
    "pending_nodes", "cycle_state", "source", "created_at",
)  # fmt: skip
_MESSAGE_FIELDS = (
    "id", "session_id", "role", "content", "tool_calls", "tool_results", "tokens_in", "tokens_out", "created_at",
)  # fmt: skip


class Floor:
    def __init__(self, path: str) -> None:
        self.conn: sqlite3.Connection = sqlite_connect(path)

    def close(self) -> None:
        self.conn.close()

    def _write(self, body: Any, *args: Any) -> Any:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(self.conn, *args)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return result

    def _read(self, body: Any, *args: Any) -> Any:
        self.conn.execute("BEGIN")
        try:
            return body(self.conn, *args)
        finally:
            self.conn.execute("COMMIT")

    def save_checkpoint(self, session_id: str, step: int, node_results: dict[str, Any]) -> dict[str, Any]:
        values = {
            "id": new_id(), "session_id": session_id, "namespace": "", "parent_id": None,
            "version": None, "step": step, "node_id": "node_19",
            "node_results": json.dumps(node_results, separators=(",", ":")),
            "pending_nodes": json.dumps(["node_00"]), "cycle_state": None, "source": "loop",
            "created_at": now_ms(),
        }  # fmt: skip

        def body(conn: sqlite3.Connection) -> dict[str, Any]:
            if conn.execute(LOCK_SESSION.sql, LOCK_SESSION.args({"session_id": session_id})).fetchone() is None:
                raise LookupError(session_id)
            version = conn.execute(INSERT_CHECKPOINT.sql, INSERT_CHECKPOINT.args(values)).fetchone()[0]
            return {**values, "version": version, "node_results": node_results}

        return self._write(body)  # type: ignore[no-any-return]

    def add_message(self, session_id: str, content: str) -> dict[str, Any]:
        now = now_ms()
        values = {
            "session_id": session_id, "role": "user", "content": content, "tool_calls": None,
            "tool_results": None, "tokens_in": 12, "tokens_out": None, "created_at": now,
        }  # fmt: skip

        def body(conn: sqlite3.Connection) -> dict[str, Any]:
            touched = conn.execute(TOUCH_SESSION.sql, TOUCH_SESSION.args({"session_id": session_id, "now": now}))
            if touched.rowcount == 0:
                raise LookupError(session_id)
            cursor = conn.execute(INSERT_MESSAGE.sql, INSERT_MESSAGE.args(values))
            return {**values, "id": cursor.lastrowid}

        return self._write(body)  # type: ignore[no-any-return]

    def list_checkpoints(self, session_id: str, namespace: str | None, limit: int) -> list[dict[str, Any]]:
        statement = LATEST[namespace is not None]
        args = statement.args({"session_id": session_id, "namespace": namespace, "limit": limit})

        def body(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return [checkpoint_record(row) for row in conn.execute(statement.sql, args)]

        return self._read(body)  # type: ignore[no-any-return]

    def get_latest_checkpoint(self, session_id: str, namespace: str | None) -> dict[str, Any] | None:
        rows = self.list_checkpoints(session_id, namespace, 1)
        return rows[0] if rows else None

    def get_messages(self, session_id: str, limit: int) -> list[dict[str, Any]]:
        args = LAST_MESSAGES.args({"session_id": session_id, "limit": limit})

        def body(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(LAST_MESSAGES.sql, args).fetchall()
            rows.reverse()
            return [message_record(row) for row in rows]

        return self._read(body)  # type: ignore[no-any-return]

    def fork(self, checkpoint_id: str) -> dict[str, Any]:
        def body(conn: sqlite3.Connection) -> dict[str, Any]:
            origin = conn.execute(FORK_SOURCE.sql, FORK_SOURCE.args({"checkpoint_id": checkpoint_id})).fetchone()
            source_session, _created_at, last_message_id = origin
            source = conn.execute(GET_SESSION.sql, GET_SESSION.args({"session_id": source_session})).fetchone()
            now = now_ms()
            forked_id = new_id()
            session = {
                "id": forked_id, "directory": source[1], "workspace_id": source[5], "title": f"Fork of {source[4]}",
                "metadata": source[6], "created_at": now, "updated_at": now,
                "forked_from_session_id": source_session, "forked_from_checkpoint_id": checkpoint_id,
            }  # fmt: skip
            conn.execute(INSERT_SESSION.sql, INSERT_SESSION.args(session))
            copy = {"session_id": forked_id, "source_session_id": source_session, "last_message_id": last_message_id}
            conn.execute(COPY_MESSAGES.sql, COPY_MESSAGES.args(copy))
            checkpoint = {"id": new_id(), "session_id": forked_id, "created_at": now}
            conn.execute(COPY_CHECKPOINT.sql, COPY_CHECKPOINT.args({**checkpoint, "checkpoint_id": checkpoint_id}))
            row = conn.execute(GET_SESSION.sql, GET_SESSION.args({"session_id": forked_id})).fetchone()
            metadata = None if row[6] is None else json.loads(row[6])
            return {"id": row[0], "title": row[4], "metadata": metadata}

        return self._write(body)  # type: ignore[no-any-return]


def checkpoint_record(row: Sequence[Any]) -> dict[str, Any]:
    """A checkpoint row (the columns of ``CHECKPOINT_COLUMNS``) as a dict, its JSON parsed."""
    record = dict(zip(_CHECKPOINT_FIELDS, row, strict=True))
    for column in ("node_results", "pending_nodes", "cycle_state"):
        if record[column] is not None:
            record[column] = json.loads(record[column])
    return record


def message_record(row: Sequence[Any]) -> dict[str, Any]:
    """A message row (the columns of ``MESSAGE_COLUMNS``) as a dict, its JSON parsed."""
    record = dict(zip(_MESSAGE_FIELDS, row, strict=True))
    for column in ("tool_calls", "tool_results"):
        if record[column] is not None:
            record[column] = json.loads(record[column])
    return record
