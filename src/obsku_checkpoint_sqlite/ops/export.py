"""Export: the versioned JSON Lines format, written from one snapshot of the database.

The export format, version 1, one JSON object per line:

- line 1, the header: ``{"format": "obsku-checkpoint-export", "version": 1, ...}``;
- then, session by session in id order, ``{"type": "session", "row": {...}}``, that
  session's messages ``{"type": "message", "row": {...}}`` in id order and its
  checkpoints ``{"type": "checkpoint", "row": {...}}`` oldest first;
- last, ``{"type": "end", "counts": {"sessions": S, "messages": M, "checkpoints": C}}``.

Version 2 adds LangGraph threads' rows to their sessions (``ops.thread_transfer``);
version 3 adds the memory store's entities and facts after the sessions
(``ops.memory_transfer``). An export is written in the lowest version that holds its
content: 1 without either, 2 with threads only.

A row holds every column of its table with the stored value as is (payload columns
stay the JSON text the database holds), so an import writes back exactly what was
read, on any dialect. The end record makes a file cut at a line boundary detectable.

``export_sessions`` is an operation over a ``Connection``, run by the store's runner in
one read transaction; ``importing`` reads the format back.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from sqlalchemy import Connection, func, select, text

from ..db.queries import SESSION_ORDER, checkpoints, in_session, messages, sessions
from ..db.values import now_ms
from ..dto import TransferReport
from . import memory_transfer, thread_transfer
from .files import ExportFile
from .jobs import Progress

FORMAT = "obsku-checkpoint-export"
FORMAT_VERSION = memory_transfer.VERSION
"""The newest format version this package writes and reads."""
BATCH_SIZE = 1000

OnConflict = Literal["fail", "skip"]


def export_sessions(
    conn: Connection,
    target: ExportFile,
    workspace_id: str | None,
    session_ids: list[str] | None,
    progress: Progress | None,
) -> TransferReport:
    """Write the selected sessions with their messages and checkpoints to ``target``,
    then their entities and the facts that go with them (``memory_transfer.selections``).

    Sessions are read in keyset batches and each session's rows are streamed, so
    memory holds one batch of sessions, not the database. Each run starts the output
    afresh (see ``ExportFile``).
    """
    read_one_snapshot(conn)
    selection = select(sessions)
    if workspace_id is not None:
        selection = selection.where(sessions.c.workspace_id == workspace_id)
    if session_ids is not None:
        selection = selection.where(sessions.c.id.in_(session_ids))
    total = conn.execute(select(func.count()).select_from(selection.subquery())).scalar_one()
    counts = {"sessions": 0, "messages": 0, "checkpoints": 0}
    with_threads = thread_transfer.count_in(conn, selection) > 0
    if with_threads:
        counts.update(dict.fromkeys(thread_transfer.COUNT_KEYS.values(), 0))
    memory = memory_transfer.selections(selection, workspace_id, session_ids is not None, conn.dialect.name)
    with_memory = memory_transfer.any_in(conn, memory)
    if with_memory:
        counts.update(dict.fromkeys(memory_transfer.COUNT_KEYS.values(), 0))
    version = FORMAT_VERSION if with_memory else 2 if with_threads else 1
    from ..db import migrate  # Alembic loads only when a transfer runs, not on every import.

    with target.attempt() as out:
        header = {
            "format": FORMAT, "version": version,
            "schema_revision": migrate.head_revision(),
            "dialect": conn.dialect.name, "exported_at": now_ms(),
        }  # fmt: skip
        out.write(orjson.dumps(header) + b"\n")
        after: str | None = None
        while True:
            batch_query = selection.order_by(sessions.c.id).limit(BATCH_SIZE)
            if after is not None:
                batch_query = batch_query.where(sessions.c.id > after)
            batch = conn.execute(batch_query).all()
            if not batch:
                break
            for session in batch:
                out.write(_record("session", session._mapping))
                for row in conn.execute(
                    select(messages)
                    .where(in_session(session.id))
                    .order_by(SESSION_ORDER)
                    .execution_options(yield_per=BATCH_SIZE)
                ):
                    out.write(_record("message", row._mapping))
                    counts["messages"] += 1
                for row in conn.execute(
                    select(checkpoints)
                    .where(checkpoints.c.session_id == session.id)
                    .order_by(checkpoints.c.created_at, checkpoints.c.version, checkpoints.c.id)
                    .execution_options(yield_per=BATCH_SIZE)
                ):
                    out.write(_record("checkpoint", row._mapping))
                    counts["checkpoints"] += 1
                if with_threads:
                    for kind, record in thread_transfer.records(conn, session.id):
                        out.write(record)
                        counts[thread_transfer.COUNT_KEYS[kind]] += 1
                counts["sessions"] += 1
                if progress is not None:
                    progress(counts["sessions"], total)
            after = batch[-1].id
        if with_memory:
            for kind, record in memory_transfer.records(conn, memory):
                out.write(record)
                counts[memory_transfer.COUNT_KEYS[kind]] += 1
        out.write(orjson.dumps({"type": "end", "counts": counts}) + b"\n")
    return TransferReport(
        sessions=counts["sessions"], messages=counts["messages"], checkpoints=counts["checkpoints"],
        entities=counts.get("entities", 0), facts=counts.get("facts", 0),
    )  # fmt: skip


def read_one_snapshot(conn: Connection) -> None:
    """Make every statement of this transaction see the same data, as one export or copy needs.

    SQLite's read transaction and MariaDB's default isolation already do; PostgreSQL's
    default, READ COMMITTED, takes a new snapshot per statement.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))


def _record(kind: str, row: Any) -> bytes:
    # Column names can be str subclasses (quoted_name), which orjson refuses as keys.
    return orjson.dumps({"type": kind, "row": {str(key): value for key, value in row.items()}}) + b"\n"
