"""Every database operation, written once over a synchronous SQLAlchemy ``Connection``.

Both faces run these: the sync store through ``SyncRunner``, the async store in a
worker thread or through ``AsyncConnection.run_sync``. Each call runs inside the
runner's transaction, so an operation is atomic however many statements it takes.

Hot statements are built once at import: SQLAlchemy then only looks up the compiled
form. Rows become DTOs here, so the store facade above stays a thin layer.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy import (
    Connection,
    Integer,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)

if sys.version_info >= (3, 14):
    from uuid import uuid7
else:
    from uuid6 import uuid7

from . import serializer
from ._statements import execute
from .errors import (
    NUL_REFUSED,
    CheckpointCorruptionError,
    CheckpointNotFoundError,
    CheckpointVersionConflictError,
    SessionNotFoundError,
)
from .models import CheckpointRecord, MessageRecord, SessionRecord
from .schemas import (
    Checkpoint,
    CheckpointNodeResult,
    NewCheckpoint,
    NewMessage,
    NewSession,
    NodeResults,
    Session,
    SessionPage,
    StoredMessage,
)

M = TypeVar("M", bound=BaseModel)
AnyRow = Any  # a sqlalchemy Row of the columns selected below

sessions: Table = SessionRecord.__table__  # type: ignore[assignment]
messages: Table = MessageRecord.__table__  # type: ignore[assignment]
checkpoints: Table = CheckpointRecord.__table__  # type: ignore[assignment]


def now_ms() -> int:
    """Milliseconds since the Unix epoch, the unit of every timestamp in the schema."""
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A new session or checkpoint id: a UUIDv7, which sorts by creation time.

    Random (v4) ids land anywhere in the primary-key index, so past the page cache each
    insert reads and rewrites a cold page: at 100,000 checkpoints a save cost 1.2-1.3x
    what it cost at 1,000. Time-ordered ids append at the index's end (1.06x).
    """
    return str(uuid7())


def _param(name: str, table: Table, column: str) -> Any:
    # Typed, so PostgreSQL drivers can cast parameters that stand in a SELECT list.
    return bindparam(name, type_=table.c[column].type)


# --- sessions ---------------------------------------------------------------------------

_SESSION_COLUMNS = (
    sessions.c.id, sessions.c.directory, sessions.c.created_at, sessions.c.updated_at,
    sessions.c.title, sessions.c.workspace_id, sessions.c.metadata,
    sessions.c.forked_from_session_id, sessions.c.forked_from_checkpoint_id,
)  # fmt: skip
_GET_SESSION = select(*_SESSION_COLUMNS).where(sessions.c.id == bindparam("session_id"))
_SESSION_EXISTS = select(sessions.c.id).where(sessions.c.id == bindparam("session_id"))
# FOR UPDATE serializes a session's writers on PostgreSQL and MariaDB; SQLite omits it
# and relies on BEGIN IMMEDIATE, which already serializes every writer.
_LOCK_SESSION = _SESSION_EXISTS.with_for_update()
_INSERT_SESSION = insert(sessions)
_TOUCH_SESSION = (
    update(sessions)
    .where(sessions.c.id == bindparam("session_id"))
    .values(updated_at=bindparam("now", type_=sessions.c.updated_at.type))
)


def create_session(conn: Connection, new: NewSession) -> Session:
    now = now_ms()
    row: dict[str, Any] = {
        "id": new_id(),
        "directory": new.directory,
        "title": new.title,
        "workspace_id": new.workspace_id,
        "metadata": _encode_optional(new.metadata, "metadata"),
        "created_at": now,
        "updated_at": now,
    }
    reject_unstorable_text(conn, {key: row[key] for key in ("directory", "title", "workspace_id")})
    execute(conn, _INSERT_SESSION, row)
    return Session(**{**row, "metadata": new.metadata})


def get_session(conn: Connection, session_id: str) -> Session | None:
    row = execute(conn, _GET_SESSION, {"session_id": session_id}).one_or_none()
    return None if row is None else _session_from_values(*row)


def require_session(conn: Connection, session_id: str, *, lock: bool = False) -> None:
    """Raise ``SessionNotFoundError`` unless the session exists; with ``lock``, lock its row."""
    statement = _LOCK_SESSION if lock else _SESSION_EXISTS
    if execute(conn, statement, {"session_id": session_id}).first() is None:
        raise SessionNotFoundError(session_id)


def update_session(conn: Connection, session_id: str, changes: Mapping[str, Any]) -> Session:
    values = dict(changes)
    reject_unstorable_text(conn, {k: v for k, v in values.items() if k != "metadata"})
    if "metadata" in values:
        values["metadata"] = _encode_optional(values["metadata"], "metadata")
    values["updated_at"] = now_ms()
    result = conn.execute(update(sessions).where(sessions.c.id == session_id).values(values))
    if result.rowcount == 0:
        raise SessionNotFoundError(session_id)
    session = get_session(conn, session_id)
    assert session is not None
    return session


def delete_session(conn: Connection, session_id: str) -> None:
    # Explicit deletes, not only the cascade: a database adopted from elsewhere may
    # have been built without enforced foreign keys.
    for table in (messages, checkpoints):
        conn.execute(delete(table).where(table.c.session_id == session_id))
    conn.execute(delete(sessions).where(sessions.c.id == session_id))


def list_sessions(
    conn: Connection,
    workspace_id: str | None,
    limit: int | None,
    cursor: str | None,
    search: str | None,
) -> SessionPage:
    query = session_page_query(workspace_id, cursor, search)
    if limit is not None:
        query = query.limit(limit + 1)
    rows = conn.execute(query).all()
    rows, next_cursor = split_page(rows, limit)
    return SessionPage([_session_from_row(row) for row in rows], next_cursor=next_cursor)


def session_page_query(workspace_id: str | None, cursor: str | None, search: str | None) -> Select[Any]:
    """The sessions after ``cursor``, most recently updated first; the caller adds the limit (+1)."""
    query = select(*_SESSION_COLUMNS)
    if workspace_id is not None:
        query = query.where(sessions.c.workspace_id == workspace_id)
    if search:
        pattern = "%" + _escape_like(search) + "%"
        query = query.where(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (sessions.c.title, sessions.c.directory, sessions.c.id)
                )
            )
        )
    if cursor is not None:
        updated_at, after_id = decode_cursor(cursor)
        query = query.where(
            tuple_(sessions.c.updated_at, sessions.c.id) < tuple_(literal(updated_at), literal(after_id))
        )
    return query.order_by(sessions.c.updated_at.desc(), sessions.c.id.desc())


def split_page(rows: Sequence[AnyRow], limit: int | None) -> tuple[Sequence[AnyRow], str | None]:
    """A page's rows (fetched with ``limit + 1``) without the extra one, and the next cursor."""
    if limit is None or len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].updated_at, rows[-1].id)


def encode_cursor(updated_at: int, session_id: str) -> str:
    """An opaque page cursor: the (updated_at, id) of the last session on the page."""
    raw = json.dumps([updated_at, session_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        updated_at, session_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError(f"cursor: not a cursor this store returned ({cursor!r})") from exc
    if type(updated_at) is not int or not isinstance(session_id, str):
        raise ValueError(f"cursor: not a cursor this store returned ({cursor!r})")
    return updated_at, session_id


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _session_from_row(row: AnyRow) -> Session:
    """A session from a row with the columns of ``_SESSION_COLUMNS`` (among others), by name."""
    return _session_from_values(
        row.id, row.directory, row.created_at, row.updated_at, row.title, row.workspace_id,
        row.metadata, row.forked_from_session_id, row.forked_from_checkpoint_id,
    )  # fmt: skip


def _session_from_values(
    session_id: str, directory: str, created_at: int, updated_at: int, title: str | None,
    workspace_id: str | None, raw_metadata: str | None, forked_from_session_id: str | None,
    forked_from_checkpoint_id: str | None,
) -> Session:  # fmt: skip
    metadata = None if raw_metadata is None else _decode(raw_metadata, "sessions", session_id, "metadata")
    return _validated(
        Session,
        {
            "id": session_id, "directory": directory, "created_at": created_at,
            "updated_at": updated_at, "title": title, "workspace_id": workspace_id,
            "metadata": metadata, "forked_from_session_id": forked_from_session_id,
            "forked_from_checkpoint_id": forked_from_checkpoint_id,
        },
        location=_location("sessions", session_id, "metadata"),
        raw=raw_metadata,
    )  # fmt: skip


# --- messages ---------------------------------------------------------------------------

_MESSAGE_COLUMNS = (
    messages.c.id, messages.c.session_id, messages.c.role, messages.c.content,
    messages.c.tool_calls, messages.c.tool_results, messages.c.tokens_in,
    messages.c.tokens_out, messages.c.created_at,
)  # fmt: skip
_INSERT_MESSAGE = insert(messages)


@functools.cache
def _messages_query(before: bool, limit: bool) -> Select[Any]:
    query = select(*_MESSAGE_COLUMNS).where(messages.c.session_id == bindparam("session_id"))
    if before:
        query = query.where(messages.c.created_at < bindparam("before", type_=messages.c.created_at.type))
    if not limit:
        return query.order_by(messages.c.id)
    # Newest first to take the last `limit`; the caller restores insertion order.
    return query.order_by(messages.c.id.desc()).limit(bindparam("limit", type_=Integer))


def add_message(conn: Connection, new: NewMessage) -> StoredMessage:
    now = now_ms()
    row = {
        "session_id": new.session_id,
        "role": new.role,
        "content": new.content,
        "tool_calls": _encode_models(new.tool_calls, "tool_calls"),
        "tool_results": _encode_models(new.tool_results, "tool_results"),
        "tokens_in": new.tokens_in,
        "tokens_out": new.tokens_out,
        "created_at": now,
    }
    reject_unstorable_text(conn, {"content": new.content})
    # The UPDATE both bumps updated_at and proves (and on servers locks) the session.
    if execute(conn, _TOUCH_SESSION, {"session_id": new.session_id, "now": now}).rowcount == 0:
        raise SessionNotFoundError(new.session_id)
    message_id = execute(conn, _INSERT_MESSAGE, row).inserted_primary_key[0]
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
    rows = list(execute(conn, _messages_query(before is not None, limit is not None), params))
    if not rows:
        require_session(conn, session_id)
    if limit is not None:
        rows.reverse()
    return _validated_rows(_MESSAGE_LIST, [_message_data(row) for row in rows], rows, _describe_message)


def _message_from_row(row: AnyRow) -> StoredMessage:
    return _validated_rows(_MESSAGE_LIST, [_message_data(row)], [row], _describe_message)[0]


def _message_data(row: AnyRow) -> dict[str, Any]:
    # Unpacked by position: a Row's attribute lookup costs more than the rest of this.
    message_id, session_id, role, content, tool_calls, tool_results, tokens_in, tokens_out, created_at = row
    if tool_calls is not None:
        tool_calls = _decode(tool_calls, "messages", message_id, "tool_calls")
    if tool_results is not None:
        tool_results = _decode(tool_results, "messages", message_id, "tool_results")
    return {
        "id": message_id, "session_id": session_id, "role": role, "content": content,
        "tool_calls": tool_calls, "tool_results": tool_results, "tokens_in": tokens_in,
        "tokens_out": tokens_out, "created_at": created_at,
    }  # fmt: skip


def _describe_message(row: AnyRow) -> tuple[str, str]:
    # By position: rows from the short path (_statements) are plain tuples.
    return f"messages row {row[0]}", f"tool_calls={row[4]} tool_results={row[5]}"


# --- checkpoints ------------------------------------------------------------------------

_CHECKPOINT_COLUMNS = (
    checkpoints.c.id, checkpoints.c.session_id, checkpoints.c.namespace, checkpoints.c.parent_id,
    checkpoints.c.version, checkpoints.c.step, checkpoints.c.node_id, checkpoints.c.node_results,
    checkpoints.c.pending_nodes, checkpoints.c.cycle_state, checkpoints.c.source,
    checkpoints.c.created_at,
)  # fmt: skip
_GET_CHECKPOINT = select(*_CHECKPOINT_COLUMNS).where(checkpoints.c.id == bindparam("checkpoint_id"))
_VERSION_EXISTS = select(checkpoints.c.id).where(
    checkpoints.c.session_id == bindparam("session_id"),
    checkpoints.c.namespace == bindparam("namespace"),
    checkpoints.c.version == bindparam("version"),
)


def _newest_message_id(session_id: Any) -> Any:
    return (
        select(func.coalesce(func.max(messages.c.id), 0)).where(messages.c.session_id == session_id).scalar_subquery()
    )


def _build_insert_checkpoint() -> Any:
    # One INSERT ... SELECT assigns the version: the next after the highest in the
    # (session, namespace), unless the caller gave one. It runs with the session
    # locked (servers) or the database write-locked (SQLite), so no two writers
    # read the same maximum.
    existing = checkpoints.alias("existing")
    session_id = _param("session_id", checkpoints, "session_id")
    namespace = _param("namespace", checkpoints, "namespace")
    version = func.coalesce(bindparam("version", type_=Integer), func.coalesce(func.max(existing.c.version), 0) + 1)
    values = {
        "id": _param("id", checkpoints, "id"),
        "session_id": session_id,
        "namespace": namespace,
        "parent_id": _param("parent_id", checkpoints, "parent_id"),
        "version": version,
        "step": _param("step", checkpoints, "step"),
        "node_id": _param("node_id", checkpoints, "node_id"),
        "node_results": _param("node_results", checkpoints, "node_results"),
        "pending_nodes": _param("pending_nodes", checkpoints, "pending_nodes"),
        "cycle_state": _param("cycle_state", checkpoints, "cycle_state"),
        "source": _param("source", checkpoints, "source"),
        "created_at": _param("created_at", checkpoints, "created_at"),
        "last_message_id": _newest_message_id(session_id),
    }
    source = select(*values.values()).where(existing.c.session_id == session_id, existing.c.namespace == namespace)
    return insert(checkpoints).from_select(list(values), source)


_INSERT_CHECKPOINT = _build_insert_checkpoint()
_INSERT_CHECKPOINT_RETURNING = _INSERT_CHECKPOINT.returning(checkpoints.c.version)
_VERSION_OF = select(checkpoints.c.version).where(checkpoints.c.id == bindparam("checkpoint_id"))


def save_checkpoint(conn: Connection, new: NewCheckpoint) -> Checkpoint:
    checkpoint_id = new_id()
    now = now_ms()
    params = {
        "id": checkpoint_id,
        "session_id": new.session_id,
        "namespace": new.namespace,
        "parent_id": new.parent_id,
        "version": new.version,
        "step": new.step,
        "node_id": new.node_id,
        # One model_dump of the node results, not one per node: pydantic-core walks them all at once.
        "node_results": serializer.dumps(
            new.model_dump(by_alias=True, exclude_none=True, include={"node_results"})["nodeResults"],
            field="node_results",
        ),
        "pending_nodes": serializer.dumps(new.pending_nodes, field="pending_nodes"),
        "cycle_state": _encode_models(new.cycle_state, "cycle_state"),
        "source": new.source,
        "created_at": now,
    }
    reject_unstorable_text(conn, {"namespace": new.namespace, "node_id": new.node_id, "parent_id": new.parent_id})
    require_session(conn, new.session_id, lock=True)
    if new.version is not None and execute(conn, _VERSION_EXISTS, params).first() is not None:
        raise CheckpointVersionConflictError(new.session_id, new.namespace, new.version)
    if conn.dialect.insert_returning:
        version = execute(conn, _INSERT_CHECKPOINT_RETURNING, params).scalar_one()
    else:
        execute(conn, _INSERT_CHECKPOINT, params)
        version = execute(conn, _VERSION_OF, {"checkpoint_id": checkpoint_id}).scalar_one()
    return Checkpoint.model_validate({  # not model_construct: see add_message
        "id": checkpoint_id, "session_id": new.session_id, "namespace": new.namespace,
        "version": version, "step": new.step, "node_results": NodeResults(new.node_results),
        "pending_nodes": new.pending_nodes, "source": new.source, "parent_id": new.parent_id,
        "node_id": new.node_id, "cycle_state": new.cycle_state, "created_at": now,
    })  # fmt: skip


def get_checkpoint(conn: Connection, checkpoint_id: str) -> Checkpoint | None:
    row = execute(conn, _GET_CHECKPOINT, {"checkpoint_id": checkpoint_id}).one_or_none()
    return None if row is None else _checkpoint_from_row(row)


@functools.cache
def _checkpoints_query(namespace: bool, limit: bool) -> Select[Any]:
    query = select(*_CHECKPOINT_COLUMNS).where(checkpoints.c.session_id == bindparam("session_id"))
    order = [checkpoints.c.step.desc(), checkpoints.c.created_at.desc(), checkpoints.c.version.desc()]
    if namespace:
        query = query.where(checkpoints.c.namespace == bindparam("namespace"))
    else:
        order.append(checkpoints.c.id.desc())
    query = query.order_by(*order)
    return query.limit(bindparam("limit", type_=Integer)) if limit else query


def get_latest_checkpoint(conn: Connection, session_id: str, namespace: str | None) -> Checkpoint | None:
    params = {"session_id": session_id, "namespace": namespace, "limit": 1}
    row = execute(conn, _checkpoints_query(namespace is not None, True), params).first()
    return None if row is None else _checkpoint_from_row(row)


def list_checkpoints(conn: Connection, session_id: str, namespace: str | None, limit: int | None) -> list[Checkpoint]:
    if limit == 0:
        require_session(conn, session_id)
        return []
    params = {"session_id": session_id, "namespace": namespace, "limit": limit}
    rows = execute(conn, _checkpoints_query(namespace is not None, limit is not None), params).all()
    if not rows:
        require_session(conn, session_id)
    return _validated_rows(_CHECKPOINT_LIST, [_checkpoint_data(row) for row in rows], rows, _describe_checkpoint)


def _checkpoint_from_row(row: AnyRow) -> Checkpoint:
    return _validated_rows(_CHECKPOINT_LIST, [_checkpoint_data(row)], [row], _describe_checkpoint)[0]


def _checkpoint_data(row: AnyRow) -> dict[str, Any]:
    (checkpoint_id, session_id, namespace, parent_id, version, step, node_id, node_results,
     pending_nodes, cycle_state, source, created_at) = row  # fmt: skip
    # NULL, null and [] all mean none pending; [] is the usual value, not worth a parse.
    if pending_nodes in (None, "null", "[]"):
        pending_nodes = []
    else:
        pending_nodes = _decode(pending_nodes, "checkpoints", checkpoint_id, "pending_nodes")
    if cycle_state is not None:
        cycle_state = _decode(cycle_state, "checkpoints", checkpoint_id, "cycle_state")
    return {
        "id": checkpoint_id, "session_id": session_id, "namespace": namespace,
        "version": version, "step": step,
        "node_results": _deferred_node_results(checkpoint_id, node_results),
        "pending_nodes": pending_nodes, "source": source, "parent_id": parent_id,
        "node_id": node_id, "cycle_state": cycle_state, "created_at": created_at,
    }  # fmt: skip


def _deferred_node_results(checkpoint_id: str, text: str) -> NodeResults:
    """Parsed now, so malformed JSON fails the read; revived and validated on first use."""
    parsed = _decode(text, "checkpoints", checkpoint_id, "node_results", serializer.parse)

    def load() -> dict[str, CheckpointNodeResult]:
        location = _location("checkpoints", checkpoint_id, "node_results")
        try:
            return _NODE_RESULTS.validate_python(serializer.revive(parsed, text, location=location))
        except ValidationError as exc:
            raise _invalid_shape(exc.errors(), text, location) from None

    return NodeResults.deferred(load)


def _describe_checkpoint(row: AnyRow) -> tuple[str, str]:
    return f"checkpoints row {row[0]!r}", row[7]


# --- fork -------------------------------------------------------------------------------

_FORK_SOURCE = select(checkpoints.c.session_id, checkpoints.c.created_at, checkpoints.c.last_message_id).where(
    checkpoints.c.id == bindparam("checkpoint_id")
)
_MESSAGE_COPY_COLUMNS = ("role", "content", "tool_calls", "tool_results", "tokens_in", "tokens_out", "created_at")


def _build_copy_messages(by_watermark: bool) -> Any:
    source_session = bindparam("source_session_id", type_=messages.c.session_id.type)
    cutoff = (
        messages.c.id <= bindparam("last_message_id", type_=messages.c.id.type)
        if by_watermark
        else messages.c.created_at <= bindparam("checkpoint_created_at", type_=messages.c.created_at.type)
    )
    copied = (
        select(_param("session_id", messages, "session_id"), *(messages.c[name] for name in _MESSAGE_COPY_COLUMNS))
        .where(messages.c.session_id == source_session, cutoff)
        # Ids are assigned in this order, so the copy keeps the original's order.
        .order_by(messages.c.id)
    )
    return insert(messages).from_select(["session_id", *_MESSAGE_COPY_COLUMNS], copied)


_COPY_MESSAGES_BY_ID = _build_copy_messages(by_watermark=True)
_COPY_MESSAGES_BY_TIME = _build_copy_messages(by_watermark=False)


def _build_copy_checkpoint() -> Any:
    new_session = _param("session_id", checkpoints, "session_id")
    copied = {
        "id": _param("id", checkpoints, "id"),
        "session_id": new_session,
        "namespace": checkpoints.c.namespace,
        "parent_id": checkpoints.c.id,
        "version": checkpoints.c.version,
        "step": checkpoints.c.step,
        "node_id": checkpoints.c.node_id,
        "node_results": checkpoints.c.node_results,
        "pending_nodes": checkpoints.c.pending_nodes,
        "cycle_state": checkpoints.c.cycle_state,
        "source": literal("fork", type_=checkpoints.c.source.type),
        "created_at": _param("created_at", checkpoints, "created_at"),
        "last_message_id": _newest_message_id(new_session),
    }
    source = select(*copied.values()).where(checkpoints.c.id == bindparam("checkpoint_id"))
    return insert(checkpoints).from_select(list(copied), source)


_COPY_CHECKPOINT = _build_copy_checkpoint()


def fork(conn: Connection, checkpoint_id: str, title: str | None) -> Session:
    """Copy a checkpoint and the history it saw into a new session.

    A constant number of statements whatever the history's length: the INSERT ... SELECT
    is the copy, and the runner's transaction makes the fork all or nothing.
    """
    reject_unstorable_text(conn, {"title": title})
    origin = execute(conn, _FORK_SOURCE, {"checkpoint_id": checkpoint_id}).one_or_none()
    if origin is None:
        raise CheckpointNotFoundError(checkpoint_id)
    source_session_id, checkpoint_created_at, last_message_id = origin
    (_, directory, _, _, source_title, workspace_id, metadata, _, _) = execute(
        conn, _GET_SESSION, {"session_id": source_session_id}
    ).one()
    now = now_ms()
    new_session_id = new_id()
    execute(
        conn,
        _INSERT_SESSION,
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
        _COPY_MESSAGES_BY_ID if by_watermark else _COPY_MESSAGES_BY_TIME,
        {
            "session_id": new_session_id, "source_session_id": source_session_id,
            "last_message_id": last_message_id, "checkpoint_created_at": checkpoint_created_at,
        },
    )  # fmt: skip
    execute(
        conn,
        _COPY_CHECKPOINT,
        {"id": new_id(), "session_id": new_session_id, "created_at": now, "checkpoint_id": checkpoint_id},
    )
    forked = get_session(conn, new_session_id)
    assert forked is not None
    return forked


# --- encoding and decoding --------------------------------------------------------------


def reject_unstorable_text(conn: Connection, fields: Mapping[str, str | None]) -> None:
    """Refuse text a column cannot hold, naming the field, before anything is written.

    NUL characters where the database cannot store them (PostgreSQL text), and on every
    dialect lone surrogates, which are not Unicode: left to the driver, they fail with a
    bare ``UnicodeEncodeError`` that names no field.
    """
    no_nul = conn.dialect.name == "postgresql"
    for name, value in fields.items():
        if value is None:
            continue
        if no_nul and "\x00" in value:
            raise ValueError(f"{name}: {NUL_REFUSED}")
        # isascii() is O(1) on CPython's compact strings: only non-ASCII text pays for the encode.
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"{name}: string is not valid Unicode (lone surrogate at index {exc.start})") from None


def _dump_model(model: BaseModel) -> Any:
    # The original's stored shape: camelCase keys, unset optional keys omitted.
    return model.model_dump(by_alias=True, exclude_none=True)


def _encode_models(value: BaseModel | Sequence[BaseModel] | None, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return serializer.dumps(_dump_model(value), field=field)
    return serializer.dumps([_dump_model(item) for item in value], field=field)


def _encode_optional(value: Any, field: str) -> str | None:
    return None if value is None else serializer.dumps(value, field=field)


# One validator call for a whole page of rows: pydantic-core then loops in Rust, not
# Python, which costs about a third less per row than a model_validate per row.
_MESSAGE_LIST: TypeAdapter[list[StoredMessage]] = TypeAdapter(list[StoredMessage])
_CHECKPOINT_LIST: TypeAdapter[list[Checkpoint]] = TypeAdapter(list[Checkpoint])
_NODE_RESULTS: TypeAdapter[dict[str, CheckpointNodeResult]] = TypeAdapter(dict[str, CheckpointNodeResult])


def _decode(text: str, table: str, row_id: object, column: str, decode: Callable[[str], Any] = serializer.loads) -> Any:
    """Decode a JSON column; a corrupt value raises naming its row and column.

    The location is spelled out only on failure: formatting it for every column read
    cost about 4 % of a checkpoint listing.
    """
    try:
        return decode(text)
    except CheckpointCorruptionError as exc:
        raise CheckpointCorruptionError(exc.reason, text, location=_location(table, row_id, column)) from None


def _location(table: str, row_id: object, column: str) -> str:
    return f"{table} row {row_id!r}, column {column}"


def _validated_rows(
    adapter: TypeAdapter[list[M]],
    data: list[dict[str, Any]],
    rows: Sequence[AnyRow],
    describe: Callable[[AnyRow], tuple[str, str]],
) -> list[M]:
    """Validate decoded rows; the first invalid one raises ``CheckpointCorruptionError``.

    ``describe`` gives a row's location and raw data, built only for the row that failed.
    """
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        errors = exc.errors()
        index = errors[0]["loc"][0]
        assert isinstance(index, int)
        location, raw = describe(rows[index])
        raise _invalid_shape(errors, str(raw), location, item=index) from None


def _validated(model: type[M], data: dict[str, Any], *, location: str, raw: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid_shape(exc.errors(), str(raw), location) from None


def _invalid_shape(
    errors: list[ErrorDetails], raw: str, location: str, *, item: int | None = None
) -> CheckpointCorruptionError:
    """Stored data that decoded but failed validation, its errors as "path: message";
    with ``item``, only those of that item of a validated list."""
    if item is not None:
        errors = [{**error, "loc": error["loc"][1:]} for error in errors if error["loc"][0] == item]
    problems = "; ".join(f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in errors)
    return CheckpointCorruptionError(f"invalid shape ({problems})", raw, location=location)
