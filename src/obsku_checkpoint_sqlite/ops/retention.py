"""Retention: plan what a prune deletes, delete it in bounded batches, and give the space back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from ..db.memory_queries import entities, facts
from ..db.queries import checkpoints, messages, sessions
from ..db.thread_queries import lg_checkpoints, lg_writes
from ..db.values import now_ms
from ..dto import PruneReport
from .jobs import Job, Progress, Step


def prune(
    policy: PrunePolicy,
    *,
    dry_run: bool,
    batch_size: int,
    vacuum: bool,
    dialect_name: str,
    progress: Progress | None,
) -> Job[PruneReport]:
    """Plan in one read transaction, then delete in transactions of ``batch_size`` rows.

    A checkpoint that gains a child, or a session written to, after the plan is spared.
    """
    plan: PrunePlan = yield Step(plan_prune, (policy,))
    report = PruneReport(
        dry_run=True, sessions=len(plan.session_ids),
        checkpoints=len(plan.checkpoint_ids) + plan.session_checkpoints, messages=plan.messages,
        protected_checkpoints=plan.protected, session_ids=plan.session_ids,
    )  # fmt: skip
    if dry_run:
        return report
    total = len(plan.checkpoint_ids) + len(plan.session_ids)
    deleted = [0, 0, 0]  # sessions, checkpoints, messages
    for start in range(0, len(plan.checkpoint_ids), batch_size):
        batch = plan.checkpoint_ids[start : start + batch_size]
        deleted[1] += yield Step(delete_checkpoints, (batch, plan.planned_at), write=True)
        if progress is not None:
            progress(start + len(batch), total)
    for start in range(0, len(plan.session_ids), batch_size):
        batch = plan.session_ids[start : start + batch_size]
        counts = yield Step(delete_idle_sessions, (batch, policy.sessions_idle_before, plan.planned_at), write=True)
        deleted = [done + more for done, more in zip(deleted, counts, strict=True)]
        if progress is not None:
            progress(len(plan.checkpoint_ids) + start + len(batch), total)
    vacuumed = vacuum and dialect_name == "sqlite"
    if vacuumed:
        yield Step(vacuum_file, transaction=False)
    return report.model_copy(
        update={
            "dry_run": False, "sessions": deleted[0], "checkpoints": deleted[1], "messages": deleted[2],
            "vacuumed": vacuumed,
        }
    )  # fmt: skip


@dataclass(frozen=True)
class PrunePolicy:
    """What ``prune`` deletes. Checkpoint rules combine: a checkpoint goes only if every
    rule given selects it (beyond the newest ``keep_last`` of its session and namespace,
    and created before ``checkpoints_before``)."""

    keep_last: int | None = None
    checkpoints_before: int | None = None
    sessions_idle_before: int | None = None
    workspace_id: str | None = None
    protect_lineage: bool = True


@dataclass
class PrunePlan:
    """The rows a prune deletes, decided in one read transaction."""

    session_ids: list[str] = field(default_factory=list)
    checkpoint_ids: list[str] = field(default_factory=list)
    """Checkpoints deleted on their own; those of deleted sessions go with their session."""
    session_checkpoints: int = 0
    messages: int = 0
    protected: int = 0
    """Checkpoints the rules selected but that were kept for a kept checkpoint or fork."""
    planned_at: int = 0


def plan_prune(conn: Connection, policy: PrunePolicy) -> PrunePlan:
    """Decide what ``policy`` deletes, without deleting anything.

    Lineage protection is a fixpoint: keeping a checkpoint keeps its parent (and so
    its whole ancestry), and keeping a checkpoint of an idle session keeps the
    session, whose fork origin and other checkpoints are then kept too. Memory holds
    the ids of the selected rows and of forked sessions, never payloads.
    """
    planned_at = now_ms()
    idle: set[str] = set()
    if policy.sessions_idle_before is not None:
        query = select(sessions.c.id).where(sessions.c.updated_at < policy.sessions_idle_before)
        if policy.workspace_id is not None:
            query = query.where(sessions.c.workspace_id == policy.workspace_id)
        idle = set(conn.execute(query).scalars())

    checkpoint_rules = policy.keep_last is not None or policy.checkpoints_before is not None
    # Selected checkpoints: id -> (session id, parent id, selected by a checkpoint rule).
    selected: dict[str, tuple[str, str | None, bool]] = {}
    by_session: defaultdict[str, list[str]] = defaultdict(list)
    query = select(
        checkpoints.c.id, checkpoints.c.session_id, checkpoints.c.namespace, checkpoints.c.parent_id,
        checkpoints.c.created_at,
    ).order_by(
        checkpoints.c.session_id, checkpoints.c.namespace, checkpoints.c.step.desc(),
        checkpoints.c.created_at.desc(), checkpoints.c.version.desc(), checkpoints.c.id.desc(),
    )  # fmt: skip
    if policy.workspace_id is not None:
        query = query.join(sessions, sessions.c.id == checkpoints.c.session_id).where(
            sessions.c.workspace_id == policy.workspace_id
        )
    group: tuple[str, str] | None = None
    rank = 0
    for row in conn.execute(query.execution_options(yield_per=5000)):
        if (row.session_id, row.namespace) != group:
            group, rank = (row.session_id, row.namespace), 0
        rank += 1
        by_rule = (
            checkpoint_rules
            and (policy.keep_last is None or rank > policy.keep_last)
            and (policy.checkpoints_before is None or row.created_at < policy.checkpoints_before)
        )
        if by_rule or row.session_id in idle:
            selected[row.id] = (row.session_id, row.parent_id, by_rule)
            by_session[row.session_id].append(row.id)

    protected = 0
    if policy.protect_lineage:
        forks = conn.execute(
            select(sessions.c.id, sessions.c.forked_from_checkpoint_id).where(
                sessions.c.forked_from_checkpoint_id.is_not(None)
            )
        ).all()
        fork_origin = {row.id: row.forked_from_checkpoint_id for row in forks}
        # A second pass over the parent links, so memory holds the selected rows only.
        # Links from anywhere protect, but only links into the workspace can matter.
        links_query = select(checkpoints.c.id, checkpoints.c.parent_id).where(checkpoints.c.parent_id.is_not(None))
        if policy.workspace_id is not None:
            parent = checkpoints.alias("parent")
            parent_session = sessions.alias("parent_session")
            links_query = (
                links_query.join(parent, parent.c.id == checkpoints.c.parent_id)
                .join(parent_session, parent_session.c.id == parent.c.session_id)
                .where(parent_session.c.workspace_id == policy.workspace_id)
            )
        links = conn.execute(links_query.execution_options(yield_per=5000))
        pending = [row.parent_id for row in links if row.parent_id in selected and row.id not in selected]
        pending += [origin for session_id, origin in fork_origin.items() if session_id not in idle]
        while pending:
            checkpoint_id = pending.pop()
            entry = selected.pop(checkpoint_id, None)
            if entry is None:
                continue
            protected += 1
            session_id, parent_id, _ = entry
            if parent_id is not None:
                pending.append(parent_id)
            if session_id in idle:
                # The session stays for this checkpoint: so do the fork origin it names
                # and its checkpoints that were going only because the session was.
                idle.discard(session_id)
                if session_id in fork_origin:
                    pending.append(fork_origin[session_id])
                for other in by_session[session_id]:
                    kept = selected.get(other)
                    if kept is not None and not kept[2]:
                        del selected[other]
                        if kept[1] is not None:
                            pending.append(kept[1])

    plan = PrunePlan(planned_at=planned_at, protected=protected)
    plan.session_ids = sorted(idle)
    plan.checkpoint_ids = [key for key, (session_id, _, _) in selected.items() if session_id not in idle]
    plan.session_checkpoints = len(selected) - len(plan.checkpoint_ids)
    if idle:
        # The idle sessions' query again, joined: one statement, however many sessions.
        counts = (
            select(messages.c.session_id, func.count())
            .join(sessions, sessions.c.id == messages.c.session_id)
            .where(sessions.c.updated_at < policy.sessions_idle_before)
            .group_by(messages.c.session_id)
        )
        if policy.workspace_id is not None:
            counts = counts.where(sessions.c.workspace_id == policy.workspace_id)
        plan.messages = sum(count for session_id, count in conn.execute(counts) if session_id in idle)
    return plan


def delete_checkpoints(conn: Connection, checkpoint_ids: Sequence[str], planned_at: int) -> int:
    """Delete a batch of planned checkpoints, sparing any that became a parent since the plan.

    Both look-ups are index ranges (the parent index; recently updated sessions), not
    a correlated scan per deleted row.
    """
    new_parents = select(checkpoints.c.parent_id).where(
        checkpoints.c.parent_id.in_(checkpoint_ids), checkpoints.c.created_at >= planned_at
    )
    new_fork_origins = select(sessions.c.forked_from_checkpoint_id).where(
        sessions.c.updated_at >= planned_at, sessions.c.forked_from_checkpoint_id.in_(checkpoint_ids)
    )
    spared = set(conn.execute(new_parents).scalars()) | set(conn.execute(new_fork_origins).scalars())
    doomed = [checkpoint_id for checkpoint_id in checkpoint_ids if checkpoint_id not in spared]
    if not doomed:
        return 0
    return int(conn.execute(delete(checkpoints).where(checkpoints.c.id.in_(doomed))).rowcount)


def delete_idle_sessions(
    conn: Connection, session_ids: Sequence[str], idle_before: int, planned_at: int
) -> tuple[int, int, int]:
    """Delete a batch of planned sessions, sparing any written to or forked since the plan.

    Returns the numbers of sessions, checkpoints and messages deleted.
    """
    # The sessions still idle, locked before anything else is read, as delete_session
    # locks its one: a message or fork that holds a row finishes first, and then the row
    # is read again (PostgreSQL re-checks a row it waited for; a locking read on MariaDB
    # reads the latest row, and opens no snapshot, so the SELECT below sees the fork).
    locked = conn.execute(
        select(sessions.c.id)
        .where(sessions.c.id.in_(session_ids), sessions.c.updated_at < idle_before)
        .with_for_update()
    ).scalars()
    idle = list(locked)
    if not idle:
        return 0, 0, 0
    # A fork made since the plan is a recently updated session: an index range, as in
    # delete_checkpoints, not a scan for every session forked from these.
    new_forks = select(sessions.c.forked_from_session_id).where(
        sessions.c.updated_at >= planned_at, sessions.c.forked_from_session_id.in_(idle)
    )
    forked = set(conn.execute(new_forks).scalars())
    still_idle = [session_id for session_id in idle if session_id not in forked]
    if not still_idle:
        return 0, 0, 0
    # Explicit deletes, not only the cascade, as in delete_session.
    deleted_messages = conn.execute(delete(messages).where(messages.c.session_id.in_(still_idle))).rowcount
    deleted_checkpoints = conn.execute(delete(checkpoints).where(checkpoints.c.session_id.in_(still_idle))).rowcount
    for table in (lg_writes, lg_checkpoints, entities):  # a LangGraph thread's rows, the memory's entities
        conn.execute(delete(table).where(table.c.session_id.in_(still_idle)))
    # Facts stay, no longer attributed to a pruned session (ON DELETE SET NULL).
    source = facts.c.source_session_id
    conn.execute(update(facts).where(source.in_(still_idle)).values(source_session_id=None))
    deleted_sessions = conn.execute(delete(sessions).where(sessions.c.id.in_(still_idle))).rowcount
    return int(deleted_sessions), int(deleted_checkpoints), int(deleted_messages)


def vacuum_file(dbapi_connection: Any) -> None:
    """Give the space of deleted rows back to the file system (SQLite, outside a transaction)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("VACUUM")
    finally:
        cursor.close()
