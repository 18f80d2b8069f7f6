"""Fork: a new session from a checkpoint, with exactly the history that checkpoint saw."""

from __future__ import annotations

from sqlalchemy import Connection

from ..db import queries
from ..db.values import new_id, now_ms, reject_unstorable_text
from ..dto import Session
from ..errors import CheckpointNotFoundError
from ..runtime.fastpath import execute
from .sessions import get_session


def fork(conn: Connection, checkpoint_id: str, title: str | None) -> Session:
    """Copy a checkpoint and the history it saw into a new session.

    A constant number of statements whatever the history's length: the INSERT ... SELECT
    is the copy, and the runner's transaction makes the fork all or nothing.
    """
    reject_unstorable_text(conn, {"title": title})
    origin = execute(conn, queries.FORK_SOURCE, {"checkpoint_id": checkpoint_id}).one_or_none()
    if origin is None:
        raise CheckpointNotFoundError(checkpoint_id)
    source_session_id, checkpoint_created_at, last_message_id = origin
    (_, directory, _, _, source_title, workspace_id, metadata, _, _) = execute(
        conn, queries.GET_SESSION, {"session_id": source_session_id}
    ).one()
    now = now_ms()
    new_session_id = new_id()
    execute(
        conn,
        queries.INSERT_SESSION,
        {
            "id": new_session_id, "directory": directory, "workspace_id": workspace_id,
            "title": title if title is not None else f"Fork of {source_title or checkpoint_id}",
            # The stored JSON is copied as text: nothing is decoded and re-encoded.
            "metadata": metadata, "created_at": now, "updated_at": now,
            "forked_from_session_id": source_session_id, "forked_from_checkpoint_id": checkpoint_id,
        },
    )  # fmt: skip
    by_watermark = last_message_id is not None
    execute(
        conn,
        queries.COPY_MESSAGES_BY_ID if by_watermark else queries.COPY_MESSAGES_BY_TIME,
        {
            "session_id": new_session_id, "source_session_id": source_session_id,
            "last_message_id": last_message_id, "checkpoint_created_at": checkpoint_created_at,
        },
    )  # fmt: skip
    execute(
        conn,
        queries.COPY_CHECKPOINT,
        {"id": new_id(), "session_id": new_session_id, "created_at": now, "checkpoint_id": checkpoint_id},
    )
    forked = get_session(conn, new_session_id)
    assert forked is not None
    return forked
