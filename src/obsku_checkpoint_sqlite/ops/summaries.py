"""Summaries for operators: sessions with their counts and latest checkpoint, and the session to continue."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, and_, func, literal, select, union_all

from ..db.memory_queries import entities, facts
from ..db.queries import checkpoints, messages
from ..db.rows import collect, column_of, invalid_shape, location, session_from_row
from ..dto import CheckpointRef, SessionState, SessionSummary, SummaryPage
from .checkpoints import get_latest_checkpoint
from .messages import get_messages
from .sessions import list_sessions, one_more, read_page, session_page_query


def session_summaries(
    conn: Connection, workspace_id: str | None, limit: int | None, cursor: str | None, search: str | None
) -> SummaryPage:
    """One statement for the whole page, however many sessions it holds.

    The page is a CTE; message, checkpoint, entity and fact aggregates are joined to
    it, and the latest checkpoint per session is picked by a window function, so
    nothing runs per session.
    """
    page_query = session_page_query(workspace_id, cursor, search)
    if limit is not None:
        page_query = page_query.limit(one_more(limit))
    page = page_query.cte("page")
    # Each aggregate picks its rows with IN: SQLite then searches the session's index for
    # each of the page's sessions, where a join with the page scans the whole index.
    in_page = select(page.c.id)
    message_stats = (
        select(
            messages.c.session_id,
            func.count().label("message_count"),
            func.max(messages.c.created_at).label("last_message_at"),
        )
        .where(messages.c.session_id.in_(in_page))
        .group_by(messages.c.session_id)
        .subquery("message_stats")
    )
    # Entities and facts (by the session they came from) in one aggregate over both, so
    # PostgreSQL estimates one join, not a product of two that sets off JIT compilation.
    memory_rows = union_all(
        select(entities.c.session_id.label("session_id"), literal(1).label("entity"), literal(0).label("fact"))
        .where(entities.c.session_id.in_(in_page)),
        select(facts.c.source_session_id, literal(0), literal(1)).where(facts.c.source_session_id.in_(in_page)),
    ).subquery("memory_rows")  # fmt: skip
    memory_stats = (
        select(
            memory_rows.c.session_id,
            func.sum(memory_rows.c.entity).label("entity_count"),
            func.sum(memory_rows.c.fact).label("fact_count"),
        )
        .group_by(memory_rows.c.session_id)
        .subquery("memory_stats")
    )
    ranked = (
        select(
            checkpoints.c.session_id,
            checkpoints.c.id,
            checkpoints.c.namespace,
            checkpoints.c.step,
            checkpoints.c.version,
            checkpoints.c.source,
            checkpoints.c.created_at,
            func.count().over(partition_by=checkpoints.c.session_id).label("checkpoint_count"),
            # The order of get_latest_checkpoint with no namespace.
            func.row_number()
            .over(
                partition_by=checkpoints.c.session_id,
                order_by=(
                    checkpoints.c.step.desc(),
                    checkpoints.c.created_at.desc(),
                    checkpoints.c.version.desc(),
                    checkpoints.c.id.desc(),
                ),
            )
            .label("rank"),
        )
        .join(page, page.c.id == checkpoints.c.session_id)
        .subquery("ranked")
    )
    query = (
        select(
            *page.c,
            message_stats.c.message_count,
            message_stats.c.last_message_at,
            ranked.c.checkpoint_count,
            ranked.c.id.label("checkpoint_id"),
            ranked.c.namespace.label("checkpoint_namespace"),
            ranked.c.step.label("checkpoint_step"),
            ranked.c.version.label("checkpoint_version"),
            ranked.c.source.label("checkpoint_source"),
            ranked.c.created_at.label("checkpoint_created_at"),
            memory_stats.c.entity_count,
            memory_stats.c.fact_count,
        )
        .outerjoin(message_stats, message_stats.c.session_id == page.c.id)
        .outerjoin(memory_stats, memory_stats.c.session_id == page.c.id)
        .outerjoin(ranked, and_(ranked.c.session_id == page.c.id, ranked.c.rank == 1))
        .order_by(page.c.updated_at.desc(), page.c.id.desc())
    )
    rows, next_cursor = read_page(conn, query, limit)
    found, corrupt = collect(_summary_from_row, rows)
    return SummaryPage(found, next_cursor=next_cursor, corrupt=corrupt)


def _summary_from_row(row: Any) -> SessionSummary:
    """A summary, validated as the rows it comes from are; a corrupt one raises naming its row."""
    session = session_from_row(row)
    latest = None
    if row.checkpoint_id is not None:
        fields = {
            "id": row.checkpoint_id, "namespace": row.checkpoint_namespace, "step": row.checkpoint_step,
            "version": row.checkpoint_version, "source": row.checkpoint_source,
            "created_at": row.checkpoint_created_at,
        }  # fmt: skip
        try:
            latest = CheckpointRef.model_validate(fields)
        except ValidationError as exc:
            column = column_of(CheckpointRef, exc.errors()[0]["loc"][0])
            where = location("checkpoints", row.checkpoint_id, column)
            raise invalid_shape(exc.errors(), repr(fields.get(column)), where) from None
    try:
        return SessionSummary.model_validate({
            "session": session, "message_count": row.message_count or 0,
            "checkpoint_count": row.checkpoint_count or 0, "last_message_at": row.last_message_at,
            "latest_checkpoint": latest, "entity_count": row.entity_count or 0,
            "fact_count": row.fact_count or 0,
        })  # fmt: skip
    except ValidationError as exc:  # the newest message's time, the one column left
        where = f"messages of session {session.id!r}, column created_at"
        raise invalid_shape(exc.errors(), repr(row.last_message_at), where) from None


def continue_latest(conn: Connection, workspace_id: str | None) -> SessionState | None:
    page = list_sessions(conn, workspace_id, 1, None, None)
    if page.corrupt:  # the latest session is the one to continue, readable or not
        raise page.corrupt[0]
    if not page:
        return None
    session = page[0]
    return SessionState(
        session=session,
        messages=get_messages(conn, session.id, None, None),
        latest_checkpoint=get_latest_checkpoint(conn, session.id, None),
    )
