"""LangGraph threads: checkpoints and pending writes of ``obsku_checkpoint_sqlite.langgraph``.

Each function is one operation over a ``Connection``, run in one transaction by a
runner. They see bytes and JSON text only: serializing LangGraph's values is the
saver's job, so this module needs no LangGraph.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from .. import jsonplus
from ..db import thread_queries as q
from ..db.models import ID_LENGTH, NAME_LENGTH
from ..db.thread_queries import lg_checkpoints
from ..db.values import check_statement_size, now_ms, reject_unstorable_text
from ..runtime.failures import is_foreign_key_violation
from ..runtime.fastpath import execute, pipeline

THREAD_DIRECTORY = "langgraph"
THREAD_TITLE = "LangGraph thread"
THREAD_METADATA = jsonplus.dumps({"langgraph": True}, field="metadata")
"""The ``sessions.metadata`` of a thread the saver created: how a LangGraph thread is told apart."""

# Rows per round trip when a listing has no limit, and metadata rows scanned per round
# trip when it filters.
PAGE_ROWS = 100
FILTER_SCAN_ROWS = 1000

CheckpointRow = tuple[str, str, str, str | None, str, bytes, str]
"""(thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, bytes, metadata JSON)."""
WriteRow = tuple[str, str, str, str, str, bytes, str, int]
"""(checkpoint_ns, checkpoint_id, task_id, channel, type, bytes, task_path, idx)."""


@dataclass(frozen=True)
class Found:
    """A checkpoint row and its pending writes."""

    row: CheckpointRow
    writes: list[WriteRow]


@dataclass(frozen=True)
class ListQuery:
    """What ``list_page`` reads: one page of a thread (or of every thread), newest first."""

    thread_id: str | None
    checkpoint_ns: str | None
    checkpoint_id: str | None
    before: str | None
    after: tuple[str, str] | None
    """The (checkpoint_id, checkpoint_ns) of the previous page's last row."""
    filter: Mapping[str, Any] | None
    limit: int


def key(name: str, value: Any, limit: int) -> str:
    """``value`` as the str a key column holds; ``ValueError`` past ``limit`` characters."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise ValueError(f"{name}: at most {limit} characters, got {len(text)} ({text[:40]!r}...)")
    return text


def config_thread(config: Mapping[str, Any]) -> str:
    """The ``thread_id`` of a LangGraph config; ``ValueError`` if it has none or a long one."""
    thread_id = config.get("configurable", {}).get("thread_id")
    if thread_id is None:
        raise ValueError('config: a checkpointer needs {"configurable": {"thread_id": ...}}')
    return key("thread_id", thread_id, ID_LENGTH)


def config_namespace(config: Mapping[str, Any]) -> str:
    """The ``checkpoint_ns`` of a LangGraph config ("" if it has none)."""
    return key("checkpoint_ns", config["configurable"].get("checkpoint_ns") or "", NAME_LENGTH)


def list_query(config: Mapping[str, Any] | None, filter: Mapping[str, Any] | None, before: str | None) -> ListQuery:
    """What a LangGraph ``list`` asks for: its config's thread (every thread if it names
    none), namespace and checkpoint, a metadata filter, ids below ``before``."""
    configurable = (config or {}).get("configurable", {})
    namespace = configurable.get("checkpoint_ns")
    return ListQuery(
        thread_id=None if configurable.get("thread_id") is None else config_thread({"configurable": configurable}),
        checkpoint_ns=None if namespace is None else key("checkpoint_ns", namespace, NAME_LENGTH),
        checkpoint_id=configurable.get("checkpoint_id"),
        before=before,
        after=None,
        filter=filter or None,
        limit=0,
    )


def next_version(current: str | int | None) -> str:
    """The channel version after ``current``: a zero-padded counter and a random tail, the
    form LangGraph's own savers write (so threads move between them)."""
    number = 0 if current is None else current if isinstance(current, int) else int(current.split(".")[0])
    return f"{number + 1:032}.{random.random():016}"


def thread_row(thread_id: str, workspace_id: str | None, now: int) -> dict[str, Any]:
    """The ``sessions`` row of a new thread."""
    return {
        "id": thread_id, "directory": THREAD_DIRECTORY, "title": THREAD_TITLE, "workspace_id": workspace_id,
        "metadata": THREAD_METADATA, "created_at": now, "updated_at": now,
        "forked_from_session_id": None, "forked_from_checkpoint_id": None,
    }  # fmt: skip


def check_keys(conn: Connection, keys: Mapping[str, str | None]) -> None:
    """Refuse keys the database cannot store (NUL on PostgreSQL, lone surrogates)."""
    reject_unstorable_text(conn, keys)


def schema_ready(conn: Connection) -> None:
    """Nothing: running it makes the runner bring the schema to head first."""


def put_checkpoint(conn: Connection, row: dict[str, Any], workspace_id: str | None) -> None:
    """Save a checkpoint (again, if its id exists) and mark its thread as updated."""
    check_keys(conn, {"thread_id": row["session_id"], "checkpoint_ns": row["checkpoint_ns"]})
    check_statement_size(conn, row, where=f"checkpoint {row['checkpoint_id']!r}")
    now = row["created_at"]
    touch = {"thread_id": row["session_id"], "updated_at": now, "touched_before": now - q.TOUCH_EVERY_MS}
    if (
        execute(conn, q.TOUCH_THREAD, touch).rowcount == 0
        and execute(conn, q.THREAD_EXISTS, {"session_id": row["session_id"]}).first() is None
    ):
        create_thread(conn, thread_row(row["session_id"], workspace_id, now))
    if execute(conn, q.PUT_NEW_CHECKPOINT, row).rowcount == 0:
        execute(conn, q.RESAVE_CHECKPOINT, q.key_params(row, q.CHECKPOINT_KEY))


def put_writes(conn: Connection, rows: list[dict[str, Any]], replace: bool, workspace_id: str | None) -> None:
    """Save a task's writes: ``replace`` overwrites earlier ones under the same keys, else they stay."""
    first = rows[0]
    check_keys(conn, {"thread_id": first["session_id"], "checkpoint_ns": first["checkpoint_ns"]})
    for row in rows:
        check_statement_size(conn, row, where=f"write {row['channel']!r} of task {row['task_id']!r}")
    if not replace:
        try:
            # Sent together, with the commit, where the driver can: a thread that does not
            # exist yet fails its writes' foreign key, and they go the long way below.
            with pipeline(conn) as pipelined:
                if pipelined:
                    for row in rows:
                        execute(conn, q.ADD_WRITE, row)
            if pipelined:
                return
        except IntegrityError as exc:
            if not is_foreign_key_violation(exc):
                raise
    if execute(conn, q.THREAD_EXISTS, {"session_id": first["session_id"]}).first() is None:
        create_thread(conn, thread_row(first["session_id"], workspace_id, now_ms()))
    if replace:
        for row in rows:
            if execute(conn, q.REPLACE_WRITE, q.key_params(row, q.WRITE_KEY)).rowcount == 0:
                execute(conn, q.ADD_WRITE, row)
    elif len(rows) > 1 and conn.dialect.name == "postgresql":
        conn.execute(q.ADD_WRITE, rows)  # psycopg sends an executemany in one pipeline
    else:
        for row in rows:
            execute(conn, q.ADD_WRITE, row)


def create_thread(conn: Connection, row: dict[str, Any]) -> None:
    """Insert a thread's ``sessions`` row, unless a concurrent save inserted it first."""
    if conn.dialect.name == "sqlite":
        # BEGIN IMMEDIATE serializes writers: no one else can be creating it.
        execute(conn, q.INSERT_THREAD, row)
        return
    # The first checkpoint and the first writes of a thread may be saved at once: whichever
    # commits second finds the row taken, and carries on with it, under a savepoint.
    try:
        with conn.begin_nested():
            conn.execute(q.INSERT_THREAD, row)
    except IntegrityError:
        if execute(conn, q.THREAD_EXISTS, {"session_id": row["id"]}).first() is None:
            raise


def get_checkpoint(conn: Connection, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> Found | None:
    """The checkpoint with this id, or the namespace's newest; with its pending writes."""
    params = {"session_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint_id}
    statement = q.LATEST_WITH_WRITES if checkpoint_id is None else q.CHECKPOINT_WITH_WRITES
    row: CheckpointRow | None = None
    writes: list[WriteRow] = []
    for kind, found_id, second, type_, blob, channel, text, idx in execute(conn, statement, params).all():
        if kind == 0:
            row = (thread_id, checkpoint_ns, found_id, second, type_, blob, text)
        else:
            writes.append((checkpoint_ns, found_id, second, channel, type_, blob, text, idx))
    return None if row is None else Found(row, writes)


def next_page(query: ListQuery, after: tuple[str, str] | None, remaining: int | None) -> ListQuery:
    """``query``'s next page: past ``after``, sized for the ``remaining`` rows wanted."""
    size = FILTER_SCAN_ROWS if query.filter else PAGE_ROWS if remaining is None else min(remaining, PAGE_ROWS)
    return dataclasses.replace(query, after=after, limit=size)


def list_page(conn: Connection, query: ListQuery) -> tuple[list[Found], tuple[str, str] | None]:
    """One page of ``query``, and where the next starts (None: this was the last).

    With a metadata filter the page is read lean (ids and metadata), filtered here, and
    only the matching rows are read whole.
    """
    if query.thread_id is None:
        return _list_all_threads(conn, query)
    if query.checkpoint_id is not None:
        statement = select(*q.CHECKPOINT_COLUMNS).where(
            lg_checkpoints.c.session_id == query.thread_id, lg_checkpoints.c.checkpoint_id == query.checkpoint_id
        )
        if query.checkpoint_ns is not None:
            statement = statement.where(lg_checkpoints.c.checkpoint_ns == query.checkpoint_ns)
        statement = statement.order_by(lg_checkpoints.c.checkpoint_ns.desc())
        hits = [tuple(row) for row in conn.execute(statement) if matches(orjson.loads(row[6]), query.filter)]
        return _with_writes(conn, query.thread_id, hits), None
    in_namespace = query.checkpoint_ns is not None
    bound = "after" if query.after is not None else ("before" if query.before is not None else None)
    params: dict[str, Any] = {
        "session_id": query.thread_id,
        "checkpoint_ns": query.checkpoint_ns,
        "limit": query.limit,
        "before": query.after[0] if query.after is not None else query.before,
        "before_ns": query.after[1] if query.after is not None else None,
    }
    lean = query.filter is not None
    rows = execute(conn, q.PAGES[in_namespace, bound, lean], params).all()
    next_after = (rows[-1][1], rows[-1][0]) if lean and rows else None
    if not lean and rows:
        next_after = (rows[-1][2], rows[-1][1])
    if len(rows) < query.limit:
        next_after = None
    if lean:
        keys = [(row[0], row[1]) for row in rows if matches(orjson.loads(row[2]), query.filter)]
        full = _read_rows(conn, query.thread_id, keys)
    else:
        full = [tuple(row) for row in rows]
    return _with_writes(conn, query.thread_id, full), next_after


def _list_all_threads(conn: Connection, query: ListQuery) -> tuple[list[Found], tuple[str, str] | None]:
    # Rare (a search of every thread by metadata): keyset pages over (checkpoint_id, thread, ns).
    statement = select(
        lg_checkpoints.c.session_id, lg_checkpoints.c.checkpoint_ns, lg_checkpoints.c.checkpoint_id,
        lg_checkpoints.c.metadata,
    )  # fmt: skip
    if query.before is not None:
        statement = statement.where(lg_checkpoints.c.checkpoint_id < query.before)
    if query.after is not None:
        statement = statement.where(lg_checkpoints.c.checkpoint_id < query.after[0])
    statement = statement.order_by(
        lg_checkpoints.c.checkpoint_id.desc(), lg_checkpoints.c.session_id.desc(), lg_checkpoints.c.checkpoint_ns.desc()
    )
    rows = conn.execute(statement).all()
    found: list[Found] = []
    for thread_id, checkpoint_ns, checkpoint_id, metadata in rows:
        if query.checkpoint_ns is not None and checkpoint_ns != query.checkpoint_ns:
            continue
        if matches(orjson.loads(metadata), query.filter):
            hit = get_checkpoint(conn, thread_id, checkpoint_ns, checkpoint_id)
            if hit is not None:
                found.append(hit)
    return found, None


def _read_rows(conn: Connection, thread_id: str, keys: list[tuple[str, str]]) -> list[CheckpointRow]:
    if not keys:
        return []
    statement = select(*q.CHECKPOINT_COLUMNS).where(
        lg_checkpoints.c.session_id == thread_id,
        lg_checkpoints.c.checkpoint_ns.in_({ns for ns, _ in keys}),
        lg_checkpoints.c.checkpoint_id.in_([checkpoint_id for _, checkpoint_id in keys]),
    )
    by_key = {(row[1], row[2]): tuple(row) for row in conn.execute(statement)}
    return [by_key[key] for key in keys if key in by_key]


def _with_writes(conn: Connection, thread_id: str, rows: list[CheckpointRow]) -> list[Found]:
    if not rows:
        return []
    params = {
        "session_id": thread_id,
        "namespaces": sorted({row[1] for row in rows}),
        "checkpoint_ids": [row[2] for row in rows],
    }
    by_checkpoint: defaultdict[tuple[str, str], list[WriteRow]] = defaultdict(list)
    for write in conn.execute(q.WRITES_OF_PAGE, params):
        by_checkpoint[write[0], write[1]].append(tuple(write))
    return [Found(row, by_checkpoint.get((row[1], row[2]), [])) for row in rows]


def matches(metadata: Any, wanted: Mapping[str, Any] | None) -> bool:
    """Whether every key of ``wanted`` is in ``metadata`` with an equal JSON value.

    Equal as JSON: ``True`` is not ``1``, and ``1`` equals ``1.0``.
    """
    if not wanted:
        return True
    if not isinstance(metadata, dict):
        return False
    return all(key in metadata and _json_equal(metadata[key], value) for key, value in wanted.items())


def _json_equal(stored: Any, wanted: Any) -> bool:
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return type(stored) is type(wanted) and stored == wanted
    if isinstance(stored, dict) and isinstance(wanted, dict):
        return stored.keys() == wanted.keys() and all(_json_equal(stored[k], wanted[k]) for k in stored)
    if isinstance(stored, list) and isinstance(wanted, (list, tuple)):
        return len(stored) == len(wanted) and all(map(_json_equal, stored, wanted))
    return bool(stored == wanted)


def thread_exists(conn: Connection, thread_id: str) -> bool:
    """Whether a ``sessions`` row with this id exists."""
    return execute(conn, q.THREAD_EXISTS, {"session_id": thread_id}).first() is not None
