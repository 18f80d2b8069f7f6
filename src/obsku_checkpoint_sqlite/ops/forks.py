"""Fork: a new session from a checkpoint, with exactly the history that checkpoint saw."""

from __future__ import annotations

from sqlalchemy import Connection

from ..db import queries
from ..db.values import check_statement_size, new_id, now_ms, reject_unstorable_text
from ..dto import Session
from ..errors import CheckpointNotFoundError
from ..runtime.fastpath import execute
from .sessions import get_session


def fork(conn: Connection, checkpoint_id: str, title: str | None) -> Session:
    """Copy a checkpoint and the history it saw into a new session.

    A constant number of statements whatever the history's length: the INSERT ... SELECT
    is the copy, and the runner's transaction makes the fork all or nothing.

    Raises:
        CheckpointNotFoundError: no such checkpoint, or it went (with its session, or
            pruned) before the copy; nothing is written.
    """
    reject_unstorable_text(conn, {"title": title})
    origin = execute(conn, queries.FORK_SOURCE, {"checkpoint_id": checkpoint_id}).one_or_none()
    if origin is None:
        raise CheckpointNotFoundError(checkpoint_id)
    source_session_id, checkpoint_created_at, last_message_id = origin
    # The source session is locked before anything is copied from it: a deletion either
    # finished before (no row now) or waits for this fork's commit. Once locked, every
    # statement below sees the source as it stands, on PostgreSQL (READ COMMITTED) and on
    # MariaDB, whose INSERT ... SELECT copies read the latest rows, not the snapshot the
    # first SELECT took.
    source = execute(conn, queries.SHARE_SESSION, {"session_id": source_session_id}).one_or_none()
    if source is None:
        raise CheckpointNotFoundError(checkpoint_id)
    (_, directory, _, _, source_title, workspace_id, metadata, _, _) = source
    now = now_ms()
    new_session_id = new_id()
    session_row = {
        "id": new_session_id, "directory": directory, "workspace_id": workspace_id,
        "title": title if title is not None else f"Fork of {source_title or checkpoint_id}",
        # The stored JSON is copied as text: nothing is decoded and re-encoded.
        "metadata": metadata, "created_at": now, "updated_at": now,
        "forked_from_session_id": source_session_id, "forked_from_checkpoint_id": checkpoint_id,
    }  # fmt: skip
    check_statement_size(conn, session_row)  # the title is the caller's, of any length
    execute(conn, queries.INSERT_SESSION, session_row)
    by_watermark = last_message_id is not None
    execute(
        conn,
        queries.COPY_MESSAGES_BY_ID if by_watermark else queries.COPY_MESSAGES_BY_TIME,
        {
            "session_id": new_session_id, "source_session_id": source_session_id,
            "last_message_id": last_message_id, "checkpoint_created_at": checkpoint_created_at,
        },
    )  # fmt: skip
    copied = execute(
        conn,
        queries.COPY_CHECKPOINT,
        {"id": new_id(), "session_id": new_session_id, "created_at": now, "checkpoint_id": checkpoint_id},
    ).rowcount
    if copied != 1:
        # A prune deletes single checkpoints without the session's lock; raising rolls
        # back the session and messages already copied.
        raise CheckpointNotFoundError(checkpoint_id)
    forked = get_session(conn, new_session_id)
    assert forked is not None
    return forked
