"""The prebuilt statements of LangGraph threads, built once at import.

A LangGraph thread is a row of ``sessions``; its checkpoints and pending writes are rows
of ``langgraph_checkpoints`` and ``langgraph_writes``. LangGraph saves a checkpoint again
under the same id (a run's last one, at exit), and a task's special writes (errors,
interrupts) replace earlier ones while its ordinary writes never do. Upserts spell
that differently on each dialect; these statements are the same on all of them, so each
registered one takes the short path of ``runtime.fastpath``: an INSERT ... SELECT that
adds a row only where its key is free, and an UPDATE by key for the replacements.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, Table, bindparam, delete, insert, literal, null, select, union_all, update
from sqlalchemy.sql.expression import Executable

from .models import LangGraphCheckpointRecord, LangGraphWriteRecord, SessionRecord

sessions: Table = SessionRecord.__table__  # type: ignore[assignment]
lg_checkpoints: Table = LangGraphCheckpointRecord.__table__  # type: ignore[assignment]
lg_writes: Table = LangGraphWriteRecord.__table__  # type: ignore[assignment]


def _param(table: Table, name: str) -> Any:
    # Typed, so PostgreSQL drivers can cast parameters that stand in a SELECT list.
    return bindparam(name, type_=table.c[name].type)


def _by_key(table: Table, key: tuple[str, ...], prefix: str = "") -> Any:
    return [table.c[name] == bindparam(prefix + name, type_=table.c[name].type) for name in key]


def _insert_if_new(table: Table, names: tuple[str, ...], key: tuple[str, ...]) -> Any:
    """INSERT of ``names`` unless a row with the same ``key`` exists (rowcount 0 then)."""
    taken = select(table.c[key[0]]).where(*_by_key(table, key)).exists()
    row = select(*(_param(table, name) for name in names)).where(~taken)
    return insert(table).from_select(list(names), row).execution_options(preserve_rowcount=True)


def _update_by_key(table: Table, key: tuple[str, ...], changed: tuple[str, ...]) -> Any:
    """UPDATE of ``changed`` where the key is ``key_<column>`` (SQLAlchemy reserves the
    columns' own names for the SET clause)."""
    return update(table).where(*_by_key(table, key, "key_")).values({name: _param(table, name) for name in changed})


def key_params(row: dict[str, Any], key: tuple[str, ...]) -> dict[str, Any]:
    """``row`` with its key also under the names ``_update_by_key`` binds."""
    return {**row, **{"key_" + name: row[name] for name in key}}


# --- threads (sessions rows) ------------------------------------------------------------

THREAD_COLUMNS = (
    "id", "directory", "title", "workspace_id", "metadata", "created_at", "updated_at",
    "forked_from_session_id", "forked_from_checkpoint_id",
)  # fmt: skip
INSERT_THREAD = insert(sessions).values({name: _param(sessions, name) for name in THREAD_COLUMNS})
# A thread's updated_at moves at most once a second: each move rewrites the session's
# row and its three indexes on updated_at, more than the checkpoint itself writes.
TOUCH_THREAD = (
    update(sessions)
    .where(
        sessions.c.id == bindparam("thread_id", type_=sessions.c.id.type),
        sessions.c.updated_at < bindparam("touched_before", type_=sessions.c.updated_at.type),
    )
    .values(updated_at=_param(sessions, "updated_at"))
)
TOUCH_EVERY_MS = 1000
THREAD_EXISTS = select(sessions.c.id).where(sessions.c.id == bindparam("session_id"))
LOCK_THREAD = THREAD_EXISTS.with_for_update()

# --- checkpoints ------------------------------------------------------------------------

CHECKPOINT_KEY = ("session_id", "checkpoint_ns", "checkpoint_id")
CHECKPOINT_INSERT_COLUMNS = (
    *CHECKPOINT_KEY, "parent_checkpoint_id", "type", "checkpoint", "metadata", "run_id", "created_at",
)  # fmt: skip
PUT_NEW_CHECKPOINT = _insert_if_new(lg_checkpoints, CHECKPOINT_INSERT_COLUMNS, CHECKPOINT_KEY)
# Saved again under its id, a checkpoint keeps the time it was first saved.
RESAVE_CHECKPOINT = _update_by_key(
    lg_checkpoints, CHECKPOINT_KEY, ("parent_checkpoint_id", "type", "checkpoint", "metadata", "run_id")
)

CHECKPOINT_COLUMNS = (
    lg_checkpoints.c.session_id, lg_checkpoints.c.checkpoint_ns, lg_checkpoints.c.checkpoint_id,
    lg_checkpoints.c.parent_checkpoint_id, lg_checkpoints.c.type, lg_checkpoints.c.checkpoint,
    lg_checkpoints.c.metadata,
)  # fmt: skip
_in_thread = lg_checkpoints.c.session_id == bindparam("session_id")
_in_namespace = lg_checkpoints.c.checkpoint_ns == bindparam("checkpoint_ns")
_newest_first = (lg_checkpoints.c.checkpoint_id.desc(),)
_newest_first_any = (lg_checkpoints.c.checkpoint_id.desc(), lg_checkpoints.c.checkpoint_ns.desc())
_limit = bindparam("limit", type_=Integer)
_before = lg_checkpoints.c.checkpoint_id < bindparam("before", type_=lg_checkpoints.c.checkpoint_id.type)

GET_CHECKPOINT = select(*CHECKPOINT_COLUMNS).where(
    _in_thread, _in_namespace, lg_checkpoints.c.checkpoint_id == bindparam("checkpoint_id")
)
LATEST_CHECKPOINT = select(*CHECKPOINT_COLUMNS).where(_in_thread, _in_namespace).order_by(*_newest_first).limit(1)


def _page(*, in_namespace: bool, bound: str | None, lean: bool) -> Any:
    """A page of checkpoints, newest id first (then namespace, across namespaces).

    ``bound`` is None (from the newest), ``"before"`` (ids below ``:before``, LangGraph's
    ``before``) or ``"after"`` (rows past the last one of the previous page, the
    keyset ``(:before, :before_ns)``).
    """
    columns = (
        (lg_checkpoints.c.checkpoint_ns, lg_checkpoints.c.checkpoint_id, lg_checkpoints.c.metadata)
        if lean
        else CHECKPOINT_COLUMNS
    )
    query = select(*columns).where(_in_thread)
    if in_namespace:
        query = query.where(_in_namespace)
        if bound is not None:
            query = query.where(_before)
        return query.order_by(*_newest_first).limit(_limit)
    if bound == "before":
        query = query.where(_before)
    elif bound == "after":
        # (id, ns) < (:before, :before_ns), spelt out so that every dialect reads it as a
        # range of the thread index.
        before_ns = bindparam("before_ns", type_=lg_checkpoints.c.checkpoint_ns.type)
        at_most = lg_checkpoints.c.checkpoint_id <= bindparam("before", type_=lg_checkpoints.c.checkpoint_id.type)
        query = query.where(at_most & (_before | (lg_checkpoints.c.checkpoint_ns < before_ns)))
    return query.order_by(*_newest_first_any).limit(_limit)


# (in_namespace, bound, lean) -> statement
PAGES = {
    (in_namespace, bound, lean): _page(in_namespace=in_namespace, bound=bound, lean=lean)
    for in_namespace in (True, False)
    for bound in (None, "before", "after")
    for lean in (True, False)
}


WRITE_COLUMNS = (
    lg_writes.c.checkpoint_ns, lg_writes.c.checkpoint_id, lg_writes.c.task_id, lg_writes.c.channel,
    lg_writes.c.type, lg_writes.c.value, lg_writes.c.task_path, lg_writes.c.idx,
)  # fmt: skip
WRITES_OF_CHECKPOINT = select(*WRITE_COLUMNS).where(
    lg_writes.c.session_id == bindparam("session_id"),
    lg_writes.c.checkpoint_ns == bindparam("checkpoint_ns"),
    lg_writes.c.checkpoint_id == bindparam("checkpoint_id"),
)


def _checkpoint_with_writes(*, latest: bool) -> Any:
    """One statement for a checkpoint and its writes, read from one snapshot: a row
    ``(0, checkpoint_id, parent_checkpoint_id, type, checkpoint, NULL, metadata, NULL)``
    for the checkpoint, then ``(1, checkpoint_id, task_id, type, value, channel, task_path,
    idx)`` for each write. The checkpoint is ``:checkpoint_id``, or the namespace's newest."""
    if latest:
        newest = select(lg_checkpoints.c.checkpoint_id).where(_in_thread, _in_namespace)
        wanted: Any = newest.order_by(*_newest_first).limit(1).scalar_subquery()
    else:
        wanted = bindparam("checkpoint_id", type_=lg_checkpoints.c.checkpoint_id.type)
    c, w = lg_checkpoints.c, lg_writes.c
    # Columns of the same type and collation in each position (MariaDB refuses a mix).
    checkpoint = select(
        literal(0, Integer), c.checkpoint_id, c.parent_checkpoint_id, c.type, c.checkpoint,
        null().label("channel"), c.metadata, null().label("idx"),
    ).where(_in_thread, _in_namespace, c.checkpoint_id == wanted)  # fmt: skip
    writes = select(literal(1, Integer), w.checkpoint_id, w.task_id, w.type, w.value, w.channel, w.task_path, w.idx)
    writes = writes.where(
        w.session_id == bindparam("session_id"),
        w.checkpoint_ns == bindparam("checkpoint_ns"),
        w.checkpoint_id == wanted,
    )
    return union_all(checkpoint, writes)


LATEST_WITH_WRITES = _checkpoint_with_writes(latest=True)
CHECKPOINT_WITH_WRITES = _checkpoint_with_writes(latest=False)

# A page's writes: its namespaces and ids as two IN lists, a few ranges of the primary key.
WRITES_OF_PAGE = select(*WRITE_COLUMNS).where(
    lg_writes.c.session_id == bindparam("session_id"),
    lg_writes.c.checkpoint_ns.in_(bindparam("namespaces", expanding=True)),
    lg_writes.c.checkpoint_id.in_(bindparam("checkpoint_ids", expanding=True)),
)

# --- writes -----------------------------------------------------------------------------

WRITE_KEY = ("session_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx")
WRITE_INSERT_COLUMNS = (*WRITE_KEY, "channel", "type", "value", "task_path")
ADD_WRITE = _insert_if_new(lg_writes, WRITE_INSERT_COLUMNS, WRITE_KEY)
REPLACE_WRITE = _update_by_key(lg_writes, WRITE_KEY, ("channel", "type", "value", "task_path"))

# --- deletes ----------------------------------------------------------------------------

DELETE_THREAD_WRITES = delete(lg_writes).where(lg_writes.c.session_id == bindparam("session_id"))
DELETE_THREAD_CHECKPOINTS = delete(lg_checkpoints).where(lg_checkpoints.c.session_id == bindparam("session_id"))

PREPARED: frozenset[Executable] = frozenset(
    {
        INSERT_THREAD, TOUCH_THREAD, THREAD_EXISTS, PUT_NEW_CHECKPOINT, RESAVE_CHECKPOINT,
        GET_CHECKPOINT, LATEST_CHECKPOINT, LATEST_WITH_WRITES, CHECKPOINT_WITH_WRITES, *PAGES.values(),
        WRITES_OF_CHECKPOINT,
        ADD_WRITE, REPLACE_WRITE, DELETE_THREAD_WRITES, DELETE_THREAD_CHECKPOINTS,
    }
)  # fmt: skip
"""The statements here that may take the short path."""
