"""Sessions: create, read, update, delete, and pages of them behind an opaque cursor."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Select, delete, update

from ..bounds import ID_LENGTH, INT64_MAX, INT64_MIN, check_text
from ..db import queries
from ..db.memory_queries import entities, facts
from ..db.queries import checkpoints, messages, sessions
from ..db.rows import AnyRow, session_from_row, sessions_from_rows
from ..db.thread_queries import lg_checkpoints, lg_writes
from ..db.values import check_statement_size, encode_optional, new_id, now_ms, reject_unstorable_text
from ..dto import NewSession, Session, SessionPage
from ..errors import SessionNotFoundError
from ..runtime.fastpath import execute


def create_session(conn: Connection, new: NewSession) -> Session:
    now = now_ms()
    row: dict[str, Any] = {
        "id": new_id(),
        "directory": new.directory,
        "title": new.title,
        "workspace_id": new.workspace_id,
        "metadata": encode_optional(new.metadata, "metadata"),
        "created_at": now,
        "updated_at": now,
        "forked_from_session_id": None,
        "forked_from_checkpoint_id": None,
    }
    reject_unstorable_text(conn, {key: row[key] for key in ("directory", "title", "workspace_id")})
    check_statement_size(conn, row)
    execute(conn, queries.INSERT_SESSION, row)
    return Session(**{**row, "metadata": new.metadata})


def get_session(conn: Connection, session_id: str) -> Session | None:
    row = execute(conn, queries.GET_SESSION, {"session_id": session_id}).one_or_none()
    return None if row is None else session_from_row(row)


def require_session(conn: Connection, session_id: str, *, lock: bool = False) -> None:
    """Raise ``SessionNotFoundError`` unless the session exists; with ``lock``, lock its row."""
    statement = queries.LOCK_SESSION if lock else queries.SESSION_EXISTS
    if execute(conn, statement, {"session_id": session_id}).first() is None:
        raise SessionNotFoundError(session_id)


def update_session(conn: Connection, session_id: str, changes: Mapping[str, Any]) -> Session:
    values = dict(changes)
    reject_unstorable_text(conn, {k: v for k, v in values.items() if k != "metadata"})
    if "metadata" in values:
        values["metadata"] = encode_optional(values["metadata"], "metadata")
    check_statement_size(conn, values)
    values["updated_at"] = now_ms()
    result = conn.execute(update(sessions).where(sessions.c.id == session_id).values(values))
    if result.rowcount == 0:
        raise SessionNotFoundError(session_id)
    session = get_session(conn, session_id)
    assert session is not None
    return session


def delete_session(conn: Connection, session_id: str) -> None:
    # The session's row is locked first, as its writers and forks lock it: one that began
    # before waits for this commit and then finds no session; this waits for one that
    # holds it, and then deletes what it wrote.
    execute(conn, queries.LOCK_SESSION, {"session_id": session_id})
    # Explicit deletes, not only the cascade: a database adopted from elsewhere may
    # have been built without enforced foreign keys. A LangGraph thread's rows go too.
    for table in (messages, checkpoints, lg_writes, lg_checkpoints, entities):
        conn.execute(delete(table).where(table.c.session_id == session_id))
    # Its facts stay, no longer attributed to it (the foreign key's ON DELETE SET NULL).
    conn.execute(update(facts).where(facts.c.source_session_id == session_id).values(source_session_id=None))
    conn.execute(delete(sessions).where(sessions.c.id == session_id))


def list_sessions(
    conn: Connection,
    workspace_id: str | None,
    limit: int | None,
    cursor: str | None,
    search: str | None,
) -> SessionPage:
    rows, next_cursor = read_page(conn, session_page_query(workspace_id, cursor, search), limit)
    found, corrupt = sessions_from_rows(rows)
    return SessionPage(found, next_cursor=next_cursor, corrupt=corrupt)


def session_page_query(workspace_id: str | None, cursor: str | None, search: str | None) -> Select[Any]:
    """The sessions after ``cursor``, most recently updated first; ``read_page`` adds the limit."""
    after = None if cursor is None else decode_cursor(cursor)
    pattern = "%" + _escape_like(search) + "%" if search else None
    return queries.session_page(workspace_id, after, pattern)


def read_page(conn: Connection, query: Select[Any], limit: int | None) -> tuple[Sequence[AnyRow], str | None]:
    """A page of ``query``'s rows (which start with the session columns) and the next cursor."""
    if limit is not None:
        query = query.limit(one_more(limit))
    rows = conn.execute(query).all()
    if limit is None or len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].updated_at, rows[-1].id)


def one_more(limit: int) -> int:
    """``limit + 1``, the rows a page reads to learn whether another follows, within 64 bits
    (no table holds 2**63 - 1 rows, so a page of that many is the last)."""
    return min(limit + 1, INT64_MAX)


def encode_cursor(updated_at: int, session_id: str) -> str:
    """An opaque page cursor: the (updated_at, id) of the last session on the page."""
    raw = json.dumps([updated_at, session_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The position an ``encode_cursor`` cursor names; ``ValueError`` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        # orjson, not the stdlib: a forged cursor nested thousands deep is a ValueError
        # (orjson stops at 1024 levels) rather than a RecursionError.
        updated_at, session_id = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError(f"cursor: not a cursor this store returned ({cursor!r:.80})") from exc
    if type(updated_at) is not int or not INT64_MIN <= updated_at <= INT64_MAX:
        raise ValueError(f"cursor: not a cursor this store returned ({cursor!r:.80})")
    try:
        check_text("cursor", session_id, max_length=ID_LENGTH)
    except (TypeError, ValueError):
        raise ValueError(f"cursor: not a cursor this store returned ({cursor!r:.80})") from None
    return updated_at, session_id


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
