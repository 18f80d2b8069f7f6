"""Messages: append one (bumping its session), and read a session's history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ..db import queries
from ..db.rows import messages_from_rows
from ..db.values import check_statement_size, encode_models, now_ms, reject_unstorable_text
from ..dto import NewMessage, StoredMessage
from ..errors import SessionNotFoundError
from ..runtime.failures import is_foreign_key_violation
from ..runtime.fastpath import execute, pipeline
from .sessions import require_session


def add_message(conn: Connection, new: NewMessage) -> StoredMessage:
    now = now_ms()
    row = {
        "session_id": new.session_id,
        "role": new.role,
        "content": new.content,
        "tool_calls": encode_models(new.tool_calls, "tool_calls"),
        "tool_results": encode_models(new.tool_results, "tool_results"),
        "tokens_in": new.tokens_in,
        "tokens_out": new.tokens_out,
        "created_at": now,
    }
    reject_unstorable_text(conn, {"content": new.content})
    check_statement_size(conn, row)
    returning = conn.dialect.name == "postgresql"
    try:
        # Sent together, with the commit, where the driver can: the results are read after.
        with pipeline(conn) as pipelined:
            # The UPDATE both bumps updated_at and proves (and on servers locks) the session.
            touched = execute(conn, queries.TOUCH_SESSION, {"session_id": new.session_id, "now": now})
            if not pipelined and touched.rowcount == 0:
                raise SessionNotFoundError(new.session_id)
            inserted = execute(conn, queries.INSERT_MESSAGE_RETURNING if returning else queries.INSERT_MESSAGE, row)
    except IntegrityError as exc:
        if is_foreign_key_violation(exc):  # the session went before the row could be written
            raise SessionNotFoundError(new.session_id) from None
        raise
    if touched.rowcount == 0:
        raise SessionNotFoundError(new.session_id)
    message_id = inserted.scalar_one() if returning else inserted.inserted_primary_key[0]
    # Validated though valid already: pydantic-core builds a model in a third of the time
    # model_construct takes in Python.
    return StoredMessage.model_validate({
        "id": message_id, "session_id": new.session_id, "role": new.role, "content": new.content,
        "tool_calls": new.tool_calls, "tool_results": new.tool_results, "tokens_in": new.tokens_in,
        "tokens_out": new.tokens_out, "created_at": now,
    })  # fmt: skip


def get_messages(conn: Connection, session_id: str, before: int | None, limit: int | None) -> list[StoredMessage]:
    if limit == 0:
        require_session(conn, session_id)
        return []
    params: dict[str, Any] = {"session_id": session_id, "before": before, "limit": limit}
    query = queries.messages_query(before=before is not None, last=limit is not None)
    rows = list(execute(conn, query, params))
    if not rows:
        require_session(conn, session_id)
    if limit is not None:
        rows.reverse()
    return messages_from_rows(rows)
