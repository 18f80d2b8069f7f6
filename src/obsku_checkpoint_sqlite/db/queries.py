"""The prebuilt queries: every statement a hot operation runs, built once at import.

Operations, tests and benchmarks import them from here by name. Each statement in
``PREPARED`` may take the short path of ``runtime.fastpath`` on SQLite; no other
statement is ever compiled and kept there, so that cache stays bounded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.sql.expression import Executable

from . import thread_queries
from .models import CheckpointRecord, MessageRecord, SessionRecord
from .types import order_within_key, postgresql_variant, unicode_lower

sessions: Table = SessionRecord.__table__  # type: ignore[assignment]
messages: Table = MessageRecord.__table__  # type: ignore[assignment]
checkpoints: Table = CheckpointRecord.__table__  # type: ignore[assignment]


def _param(name: str, table: Table, column: str) -> Any:
    # Typed, so PostgreSQL drivers can cast parameters that stand in a SELECT list.
    return bindparam(name, type_=table.c[column].type)


def _insert_all(table: Table, *, skip: tuple[str, ...] = ()) -> Any:
    """An INSERT that binds every column but ``skip``: callers pass each of them."""
    return insert(table).values(
        {name: _param(name, table, name) for name in [column.name for column in table.columns] if name not in skip}
    )


# --- sessions ---------------------------------------------------------------------------

SESSION_COLUMNS = (
    sessions.c.id, sessions.c.directory, sessions.c.created_at, sessions.c.updated_at,
    sessions.c.title, sessions.c.workspace_id, sessions.c.metadata,
    sessions.c.forked_from_session_id, sessions.c.forked_from_checkpoint_id,
)  # fmt: skip
GET_SESSION = select(*SESSION_COLUMNS).where(sessions.c.id == bindparam("session_id"))
SESSION_EXISTS = select(sessions.c.id).where(sessions.c.id == bindparam("session_id"))
# FOR UPDATE serializes a session's writers on PostgreSQL and MariaDB; SQLite omits it
# and relies on BEGIN IMMEDIATE, which already serializes every writer.
LOCK_SESSION = SESSION_EXISTS.with_for_update()
# A fork reads its source under a shared lock: forks of one session run side by side,
# and a deletion (FOR UPDATE) waits for them, or they for it.
SHARE_SESSION = GET_SESSION.with_for_update(read=True)
INSERT_SESSION = _insert_all(sessions)
TOUCH_SESSION = (
    update(sessions)
    .where(sessions.c.id == bindparam("session_id"))
    .values(updated_at=bindparam("now", type_=sessions.c.updated_at.type))
)


def session_page(workspace_id: str | None, after: tuple[int, str] | None, like_pattern: str | None) -> Select[Any]:
    """Sessions after the ``(updated_at, id)`` position ``after``, most recently updated
    first, whose title, directory or id matches ``like_pattern`` (escaped with ``\\``)
    in any case, Unicode included.

    The caller adds the limit (+1 to learn whether a next page exists).
    """
    query = select(*SESSION_COLUMNS)
    if workspace_id is not None:
        query = query.where(sessions.c.workspace_id == workspace_id)
    if like_pattern is not None:
        columns = (sessions.c.title, sessions.c.directory, sessions.c.id)
        pattern = unicode_lower(literal(like_pattern))
        query = query.where(or_(*(unicode_lower(column).like(pattern, escape="\\") for column in columns)))
    if after is not None:
        query = query.where(tuple_(sessions.c.updated_at, sessions.c.id) < tuple_(literal(after[0]), literal(after[1])))
    return query.order_by(sessions.c.updated_at.desc(), sessions.c.id.desc())


# --- messages ---------------------------------------------------------------------------

MESSAGE_COLUMNS = (
    messages.c.id, messages.c.session_id, messages.c.role, messages.c.content,
    messages.c.tool_calls, messages.c.tool_results, messages.c.tokens_in,
    messages.c.tokens_out, messages.c.created_at,
)  # fmt: skip
INSERT_MESSAGE = _insert_all(messages, skip=("id",))
# Where the driver has no lastrowid for it (PostgreSQL), the id comes back with the row.
INSERT_MESSAGE_RETURNING = INSERT_MESSAGE.returning(messages.c.id)


# A session's messages in id order take idx_messages_session_order (session_id, id). With
# ``session_id = :id`` PostgreSQL drops the constant from the order and may walk the
# primary key on id instead, filtering every row. psycopg prepares a statement after its
# fifth run, and PostgreSQL then plans it once for every session at the average session's
# size: from statistics gathered while a few sessions held every message, that walk looks
# as cheap as the index, and for a session with no messages it reads the whole table. So
# on PostgreSQL the condition is the closed range it equals (the same rows) and the order
# is (session_id, id), which only the index gives. MariaDB would sort rather than use
# the index for either; SQLite and MariaDB plan ``=`` with the order by id well.


def in_session(session_id: Any) -> Any:
    """The messages of ``session_id``, for a query ordered by ``SESSION_ORDER``."""
    column = messages.c.session_id
    return postgresql_variant(column == session_id, and_(column >= session_id, column <= session_id))


# A session's messages in insertion order, oldest first, and newest first.
SESSION_ORDER = order_within_key(messages.c.session_id, messages.c.id)
SESSION_ORDER_NEWEST_FIRST = order_within_key(messages.c.session_id.desc(), messages.c.id.desc())


def _messages(*, before: bool, last: bool) -> Select[Any]:
    query = select(*MESSAGE_COLUMNS).where(in_session(bindparam("session_id")))
    if before:
        query = query.where(messages.c.created_at < bindparam("before", type_=messages.c.created_at.type))
    if not last:
        return query.order_by(SESSION_ORDER)
    # Newest first to take the last `limit`; the caller restores insertion order. A limit
    # is 64-bit (bounds.check_count): typed so, PostgreSQL's drivers do not cast it to int4.
    return query.order_by(SESSION_ORDER_NEWEST_FIRST).limit(bindparam("limit", type_=BigInteger))


ALL_MESSAGES = _messages(before=False, last=False)
MESSAGES_BEFORE = _messages(before=True, last=False)
LAST_MESSAGES = _messages(before=False, last=True)
LAST_MESSAGES_BEFORE = _messages(before=True, last=True)


_MESSAGE_LISTINGS = {
    (False, False): ALL_MESSAGES,
    (True, False): MESSAGES_BEFORE,
    (False, True): LAST_MESSAGES,
    (True, True): LAST_MESSAGES_BEFORE,
}


def messages_query(*, before: bool, last: bool) -> Select[Any]:
    """The prebuilt message listing: with a ``before`` bound, and the ``last`` N (newest first)."""
    return _MESSAGE_LISTINGS[before, last]


# --- checkpoints ------------------------------------------------------------------------

CHECKPOINT_COLUMNS = (
    checkpoints.c.id, checkpoints.c.session_id, checkpoints.c.namespace, checkpoints.c.parent_id,
    checkpoints.c.version, checkpoints.c.step, checkpoints.c.node_id, checkpoints.c.node_results,
    checkpoints.c.pending_nodes, checkpoints.c.cycle_state, checkpoints.c.source,
    checkpoints.c.created_at,
)  # fmt: skip
GET_CHECKPOINT = select(*CHECKPOINT_COLUMNS).where(checkpoints.c.id == bindparam("checkpoint_id"))
VERSION_EXISTS = select(checkpoints.c.id).where(
    checkpoints.c.session_id == bindparam("session_id"),
    checkpoints.c.namespace == bindparam("namespace"),
    checkpoints.c.version == bindparam("version"),
)
VERSION_OF = select(checkpoints.c.version).where(checkpoints.c.id == bindparam("checkpoint_id"))


def _newest_message_id(session_id: Any) -> Any:
    # max(id) is read off the index on SQLite and MariaDB; on PostgreSQL it would walk the
    # primary key as the order by id does (see in_session). LIMIT 1 as SQL text: a
    # generic plan knows no bound limit's value.
    newest = postgresql_variant(
        select(func.max(messages.c.id)).where(messages.c.session_id == session_id).scalar_subquery(),
        select(messages.c.id)
        .where(in_session(session_id))
        .order_by(SESSION_ORDER_NEWEST_FIRST)
        .limit(literal_column("1"))
        .scalar_subquery(),
    )
    return func.coalesce(newest, 0)


def _insert_checkpoint() -> Any:
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
        **{
            name: _param(name, checkpoints, name)
            for name in ("step", "node_id", "node_results", "pending_nodes", "cycle_state", "source", "created_at")
        },
        "last_message_id": _newest_message_id(session_id),
    }
    source = select(*values.values()).where(existing.c.session_id == session_id, existing.c.namespace == namespace)
    return insert(checkpoints).from_select(list(values), source)


INSERT_CHECKPOINT = _insert_checkpoint()
INSERT_CHECKPOINT_RETURNING = INSERT_CHECKPOINT.returning(checkpoints.c.version)


def _checkpoints(*, in_namespace: bool, limited: bool) -> Select[Any]:
    query = select(*CHECKPOINT_COLUMNS).where(checkpoints.c.session_id == bindparam("session_id"))
    order = [checkpoints.c.step.desc(), checkpoints.c.created_at.desc(), checkpoints.c.version.desc()]
    if in_namespace:
        query = query.where(checkpoints.c.namespace == bindparam("namespace"))
    else:
        order.append(checkpoints.c.id.desc())
    query = query.order_by(*order)
    return query.limit(bindparam("limit", type_=BigInteger)) if limited else query


NAMESPACE_CHECKPOINTS = _checkpoints(in_namespace=True, limited=False)
NAMESPACE_CHECKPOINTS_PAGE = _checkpoints(in_namespace=True, limited=True)
SESSION_CHECKPOINTS = _checkpoints(in_namespace=False, limited=False)
SESSION_CHECKPOINTS_PAGE = _checkpoints(in_namespace=False, limited=True)


_CHECKPOINT_LISTINGS = {
    (True, False): NAMESPACE_CHECKPOINTS,
    (True, True): NAMESPACE_CHECKPOINTS_PAGE,
    (False, False): SESSION_CHECKPOINTS,
    (False, True): SESSION_CHECKPOINTS_PAGE,
}


def checkpoints_query(*, in_namespace: bool, limited: bool) -> Select[Any]:
    """The prebuilt checkpoint listing, latest first: in one namespace or all, with a limit or not."""
    return _CHECKPOINT_LISTINGS[in_namespace, limited]


# --- fork -------------------------------------------------------------------------------

FORK_SOURCE = select(checkpoints.c.session_id, checkpoints.c.created_at, checkpoints.c.last_message_id).where(
    checkpoints.c.id == bindparam("checkpoint_id")
)
_MESSAGE_COPY_COLUMNS = ("role", "content", "tool_calls", "tool_results", "tokens_in", "tokens_out", "created_at")


def _copy_messages(*, by_watermark: bool) -> Any:
    source_session = bindparam("source_session_id", type_=messages.c.session_id.type)
    cutoff = (
        messages.c.id <= bindparam("last_message_id", type_=messages.c.id.type)
        if by_watermark
        else messages.c.created_at <= bindparam("checkpoint_created_at", type_=messages.c.created_at.type)
    )
    copied = (
        select(_param("session_id", messages, "session_id"), *(messages.c[name] for name in _MESSAGE_COPY_COLUMNS))
        .where(in_session(source_session), cutoff)
        # Ids are assigned in this order, so the copy keeps the original's order.
        .order_by(SESSION_ORDER)
    )
    return insert(messages).from_select(["session_id", *_MESSAGE_COPY_COLUMNS], copied)


COPY_MESSAGES_BY_ID = _copy_messages(by_watermark=True)
COPY_MESSAGES_BY_TIME = _copy_messages(by_watermark=False)


def _copy_checkpoint() -> Any:
    new_session = _param("session_id", checkpoints, "session_id")
    copied = {
        "id": _param("id", checkpoints, "id"),
        "session_id": new_session,
        "namespace": checkpoints.c.namespace,
        "parent_id": checkpoints.c.id,
        **{name: checkpoints.c[name] for name in ("version", "step", "node_id", "node_results")},
        **{name: checkpoints.c[name] for name in ("pending_nodes", "cycle_state")},
        "source": literal("fork", type_=checkpoints.c.source.type),
        "created_at": _param("created_at", checkpoints, "created_at"),
        "last_message_id": _newest_message_id(new_session),
    }
    source = select(*copied.values()).where(checkpoints.c.id == bindparam("checkpoint_id"))
    # The fork reads the rowcount (1, or 0 if the checkpoint went): SQLAlchemy keeps it
    # for an INSERT only when asked.
    return insert(checkpoints).from_select(list(copied), source).execution_options(preserve_rowcount=True)


COPY_CHECKPOINT = _copy_checkpoint()

PREPARED: frozenset[Executable] = frozenset(
    {
        GET_SESSION, SESSION_EXISTS, LOCK_SESSION, SHARE_SESSION, INSERT_SESSION, TOUCH_SESSION,
        INSERT_MESSAGE, INSERT_MESSAGE_RETURNING, ALL_MESSAGES, MESSAGES_BEFORE, LAST_MESSAGES, LAST_MESSAGES_BEFORE,
        GET_CHECKPOINT, VERSION_EXISTS, VERSION_OF, INSERT_CHECKPOINT, INSERT_CHECKPOINT_RETURNING,
        NAMESPACE_CHECKPOINTS, NAMESPACE_CHECKPOINTS_PAGE, SESSION_CHECKPOINTS, SESSION_CHECKPOINTS_PAGE,
        FORK_SOURCE, COPY_MESSAGES_BY_ID, COPY_MESSAGES_BY_TIME, COPY_CHECKPOINT,
    }
) | thread_queries.PREPARED  # fmt: skip
"""The statements that may take the short path on SQLite."""
