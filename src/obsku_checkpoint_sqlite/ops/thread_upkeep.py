"""LangGraph threads' upkeep: delete a thread or a run's checkpoints, copy a thread, prune.

Each function is one operation over a ``Connection``, run in one transaction by a runner.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, delete, func, select, update

from ..db import thread_queries as q
from ..db.models import ID_LENGTH
from ..db.queries import checkpoints, messages
from ..db.thread_queries import lg_checkpoints, lg_writes, sessions
from ..db.values import now_ms
from ..errors import ImportConflictError, SessionNotFoundError
from ..runtime.fastpath import execute
from .threads import THREAD_METADATA, check_keys, create_thread, key, thread_row

# Ids per IN list in bulk deletes: far below every dialect's parameter limit.
BATCH = 500
PRUNE_STRATEGIES = ("keep_latest", "delete")


def prune_targets(thread_ids: Sequence[str], strategy: str) -> tuple[str, ...]:
    """The thread ids to prune, checked with the strategy before anything runs."""
    if isinstance(thread_ids, str):
        raise TypeError("thread_ids: a sequence of thread ids, not a str")
    if strategy not in PRUNE_STRATEGIES:
        raise ValueError(f"strategy: one of {', '.join(PRUNE_STRATEGIES)}, got {strategy!r}")
    return tuple(key("thread_id", thread_id, ID_LENGTH) for thread_id in thread_ids)


def delete_thread(conn: Connection, thread_id: str) -> None:
    """Delete a thread's checkpoints and writes, and its ``sessions`` row if the saver made
    it and nothing else of the store's hangs off it."""
    params = {"session_id": thread_id}
    execute(conn, q.DELETE_THREAD_WRITES, params)
    execute(conn, q.DELETE_THREAD_CHECKPOINTS, params)
    _delete_bare_threads(conn, [thread_id])


def _delete_bare_threads(conn: Connection, thread_ids: Sequence[str]) -> None:
    no_messages = ~select(messages.c.id).where(messages.c.session_id == sessions.c.id).exists()
    no_checkpoints = ~select(checkpoints.c.id).where(checkpoints.c.session_id == sessions.c.id).exists()
    conn.execute(
        delete(sessions).where(
            sessions.c.id.in_(thread_ids), sessions.c.metadata == THREAD_METADATA, no_messages, no_checkpoints
        )
    )


def delete_for_runs(conn: Connection, run_ids: Sequence[str]) -> int:
    """Delete the checkpoints saved by these runs, in every thread, with their writes.

    A checkpoint whose parent goes becomes the first of its history (no parent).
    Returns the number of checkpoints deleted.
    """
    doomed: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    for start in range(0, len(run_ids), BATCH):
        found = conn.execute(
            select(lg_checkpoints.c.session_id, lg_checkpoints.c.checkpoint_ns, lg_checkpoints.c.checkpoint_id).where(
                lg_checkpoints.c.run_id.in_(run_ids[start : start + BATCH])
            )
        )
        for thread_id, checkpoint_ns, checkpoint_id in found:
            doomed[thread_id, checkpoint_ns].append(checkpoint_id)
    for (thread_id, checkpoint_ns), checkpoint_ids in doomed.items():
        _delete_checkpoints(conn, thread_id, checkpoint_ns, checkpoint_ids)
    return sum(len(ids) for ids in doomed.values())


def _delete_checkpoints(conn: Connection, thread_id: str, checkpoint_ns: str, checkpoint_ids: Sequence[str]) -> None:
    """Delete these checkpoints of one namespace with their writes, and cut the parent
    link of any checkpoint left naming one of them."""
    for start in range(0, len(checkpoint_ids), BATCH):
        batch = checkpoint_ids[start : start + BATCH]
        for table in (lg_writes, lg_checkpoints):
            conn.execute(
                delete(table).where(
                    table.c.session_id == thread_id, table.c.checkpoint_ns == checkpoint_ns,
                    table.c.checkpoint_id.in_(batch),
                )
            )  # fmt: skip
        conn.execute(
            update(lg_checkpoints)
            .where(
                lg_checkpoints.c.session_id == thread_id, lg_checkpoints.c.checkpoint_ns == checkpoint_ns,
                lg_checkpoints.c.parent_checkpoint_id.in_(batch),
            )
            .values(parent_checkpoint_id=None)
        )  # fmt: skip


def copy_thread(conn: Connection, source: str, target: str, workspace_id: str | None) -> int:
    """Copy every checkpoint and write of ``source`` into ``target``, ids kept.

    The target thread is created (its lineage naming the source) unless it exists; it
    must hold no LangGraph checkpoint yet. Returns the number of checkpoints copied.

    Raises:
        SessionNotFoundError: no thread ``source``.
        ImportConflictError: ``target`` holds LangGraph checkpoints already.
    """
    check_keys(conn, {"thread_id": target})
    if execute(conn, q.LOCK_THREAD, {"session_id": source}).first() is None:
        raise SessionNotFoundError(source)
    taken = conn.execute(select(lg_checkpoints.c.checkpoint_id).where(lg_checkpoints.c.session_id == target).limit(1))
    if taken.first() is not None:
        raise ImportConflictError(
            f"copy_thread: thread {target!r} holds LangGraph checkpoints already; "
            "copy into a new thread id, or delete that thread first"
        )
    latest = conn.execute(
        select(lg_checkpoints.c.checkpoint_id)
        .where(lg_checkpoints.c.session_id == source, lg_checkpoints.c.checkpoint_ns == "")
        .order_by(lg_checkpoints.c.checkpoint_id.desc())
        .limit(1)
    ).scalar()
    row = thread_row(target, workspace_id, now_ms())
    row.update(forked_from_session_id=source, forked_from_checkpoint_id=latest)
    if execute(conn, q.THREAD_EXISTS, {"session_id": target}).first() is None:
        create_thread(conn, row)
    for table in (lg_checkpoints, lg_writes):
        names = [column.name for column in table.columns]
        target_id = bindparam("target", target, type_=table.c.session_id.type)
        copied = select(*(target_id if name == "session_id" else table.c[name] for name in names))
        conn.execute(table.insert().from_select(names, copied.where(table.c.session_id == source)))
    count = select(func.count()).select_from(lg_checkpoints).where(lg_checkpoints.c.session_id == target)
    return int(conn.execute(count).scalar_one())


def prune_thread(conn: Connection, thread_id: str, keep_latest: bool) -> int:
    """Prune one thread: keep each namespace's newest checkpoint (``keep_latest``) or nothing.

    Kept with a newest checkpoint, so that it loads as before: its pending writes, and,
    where its metadata says it uses a DeltaChannel, the ancestors back to each delta
    channel's snapshot, with their writes (LangGraph rebuilds such a channel from them).
    A kept checkpoint whose parent goes becomes the first of its history. The thread's
    row is locked first, so a checkpoint saved meanwhile waits and is never deleted.
    Returns the number of checkpoints deleted.
    """
    if execute(conn, q.LOCK_THREAD, {"session_id": thread_id}).first() is None:
        return 0
    rows = conn.execute(
        select(
            lg_checkpoints.c.checkpoint_ns, lg_checkpoints.c.checkpoint_id, lg_checkpoints.c.parent_checkpoint_id
        ).where(lg_checkpoints.c.session_id == thread_id)
    ).all()
    if not keep_latest:
        delete_thread(conn, thread_id)
        return len(rows)
    by_namespace: defaultdict[str, dict[str, str | None]] = defaultdict(dict)
    for checkpoint_ns, checkpoint_id, parent_id in rows:
        by_namespace[checkpoint_ns][checkpoint_id] = parent_id
    deleted = 0
    for checkpoint_ns, parents in by_namespace.items():
        kept = _needed_by_newest(conn, thread_id, checkpoint_ns, parents)
        doomed = sorted(set(parents) - kept)
        _delete_checkpoints(conn, thread_id, checkpoint_ns, doomed)
        deleted += len(doomed)
    return deleted


def _needed_by_newest(conn: Connection, thread_id: str, checkpoint_ns: str, parents: dict[str, str | None]) -> set[str]:
    """The namespace's newest checkpoint and the ancestors its delta channels are rebuilt from."""
    newest = max(parents)
    kept = {newest}
    remaining = set(_delta_counters(conn, thread_id, checkpoint_ns, newest))
    current = parents[newest]
    # Walk the parent chain, as LangGraph's rebuild does: each ancestor's writes replay
    # into the channels, and an ancestor that holds a channel's snapshot ends its walk.
    # A channel with no counters there was snapshotted (or never written) at that ancestor.
    while remaining and current is not None and current in parents and current not in kept:
        kept.add(current)
        remaining &= set(_delta_counters(conn, thread_id, checkpoint_ns, current))
        current = parents[current]
    return kept


def _delta_counters(conn: Connection, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> Iterable[str]:
    metadata = conn.execute(
        select(lg_checkpoints.c.metadata).where(
            lg_checkpoints.c.session_id == thread_id, lg_checkpoints.c.checkpoint_ns == checkpoint_ns,
            lg_checkpoints.c.checkpoint_id == checkpoint_id,
        )
    ).scalar()  # fmt: skip
    counters = orjson.loads(metadata).get("counters_since_delta_snapshot") if metadata else None
    return counters.keys() if isinstance(counters, dict) else ()


def thread_checkpoints(conn: Connection, thread_id: str, limit: int) -> list[dict[str, Any]]:
    """A thread's newest LangGraph checkpoints, for people: ids, namespace, parent, LangGraph's
    step and source from the metadata, when saved, and how many pending writes it has."""
    found = conn.execute(
        select(
            lg_checkpoints.c.checkpoint_ns, lg_checkpoints.c.checkpoint_id, lg_checkpoints.c.parent_checkpoint_id,
            lg_checkpoints.c.metadata, lg_checkpoints.c.created_at,
        )
        .where(lg_checkpoints.c.session_id == thread_id)
        .order_by(lg_checkpoints.c.checkpoint_id.desc(), lg_checkpoints.c.checkpoint_ns.desc())
        .limit(limit)
    ).all()  # fmt: skip
    writes: dict[tuple[str, str], int] = {}
    if found:
        counted = conn.execute(
            select(lg_writes.c.checkpoint_ns, lg_writes.c.checkpoint_id, func.count())
            .where(
                lg_writes.c.session_id == thread_id,
                lg_writes.c.checkpoint_ns.in_({row.checkpoint_ns for row in found}),
                lg_writes.c.checkpoint_id.in_([row.checkpoint_id for row in found]),
            )
            .group_by(lg_writes.c.checkpoint_ns, lg_writes.c.checkpoint_id)
        )
        writes = {(ns, checkpoint_id): number for ns, checkpoint_id, number in counted}
    listed = []
    for row in found:
        metadata = orjson.loads(row.metadata)
        listed.append({
            "checkpoint_id": row.checkpoint_id, "checkpoint_ns": row.checkpoint_ns,
            "parent_checkpoint_id": row.parent_checkpoint_id, "step": metadata.get("step"),
            "source": metadata.get("source"), "created_at": row.created_at,
            "pending_writes": writes.get((row.checkpoint_ns, row.checkpoint_id), 0),
        })  # fmt: skip
    return listed
