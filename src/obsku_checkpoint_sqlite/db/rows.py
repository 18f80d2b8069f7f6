"""Rows to DTOs: stored JSON decoded and validated, a corrupt value reported with its row and column.

Rows are unpacked by position: rows from the short path are plain tuples, and a
``Row``'s attribute lookup costs more than the rest of the mapping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from .. import jsonplus
from ..dto import Checkpoint, CheckpointNodeResult, NodeResults, Session, StoredMessage
from ..errors import CheckpointCorruptionError

M = TypeVar("M", bound=BaseModel)
AnyRow = Any  # a Row or tuple of the columns in queries.*_COLUMNS

logger = logging.getLogger("obsku_checkpoint_sqlite")

# One validator call for a whole page of rows: pydantic-core then loops in Rust, not
# Python, which costs about a third less per row than a model_validate per row.
_MESSAGE_LIST: TypeAdapter[list[StoredMessage]] = TypeAdapter(list[StoredMessage])
_CHECKPOINT_LIST: TypeAdapter[list[Checkpoint]] = TypeAdapter(list[Checkpoint])
_NODE_RESULTS: TypeAdapter[dict[str, CheckpointNodeResult]] = TypeAdapter(dict[str, CheckpointNodeResult])


# --- sessions ---------------------------------------------------------------------------


def session_from_row(row: AnyRow) -> Session:
    """A session from a row that starts with the columns of ``queries.SESSION_COLUMNS``."""
    (session_id, directory, created_at, updated_at, title, workspace_id, raw_metadata,
     forked_from_session_id, forked_from_checkpoint_id) = tuple(row)[:9]  # fmt: skip
    metadata = None if raw_metadata is None else decode(raw_metadata, "sessions", session_id, "metadata")
    data = {
        "id": session_id, "directory": directory, "created_at": created_at,
        "updated_at": updated_at, "title": title, "workspace_id": workspace_id,
        "metadata": metadata, "forked_from_session_id": forked_from_session_id,
        "forked_from_checkpoint_id": forked_from_checkpoint_id,
    }  # fmt: skip
    try:
        return Session.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        column = column_of(Session, errors[0]["loc"][0]) if errors[0]["loc"] else "metadata"
        raw = raw_metadata if column == "metadata" else repr(data.get(column))
        raise invalid_shape(errors, str(raw), location("sessions", session_id, column)) from None


def sessions_from_rows(rows: Sequence[AnyRow]) -> tuple[list[Session], list[CheckpointCorruptionError]]:
    """The sessions of rows that start with ``queries.SESSION_COLUMNS``, and the errors of
    those that cannot be read: one damaged session does not hide the others."""
    return collect(session_from_row, rows)


def collect(read: Callable[[AnyRow], M], rows: Sequence[AnyRow]) -> tuple[list[M], list[CheckpointCorruptionError]]:
    """``read`` applied to each row, split into what it returned and what it found corrupt
    (logged as a warning too, for a caller that does not look)."""
    found: list[M] = []
    corrupt: list[CheckpointCorruptionError] = []
    for row in rows:
        try:
            found.append(read(row))
        except CheckpointCorruptionError as exc:
            logger.warning("A listing left out a row it cannot read: %s", exc)
            corrupt.append(exc)
    return found, corrupt


# --- messages ---------------------------------------------------------------------------


def messages_from_rows(rows: Sequence[AnyRow]) -> list[StoredMessage]:
    """Messages from rows of ``queries.MESSAGE_COLUMNS``, validated in one call."""
    data = [_message_data(row) for row in rows]
    return _validated_rows(_MESSAGE_LIST, data, rows, StoredMessage, "messages", _MESSAGE_COLUMNS)


def _message_data(row: AnyRow) -> dict[str, Any]:
    message_id, session_id, role, content, tool_calls, tool_results, tokens_in, tokens_out, created_at = row
    if tool_calls is not None:
        tool_calls = decode(tool_calls, "messages", message_id, "tool_calls")
    if tool_results is not None:
        tool_results = decode(tool_results, "messages", message_id, "tool_results")
    return {
        "id": message_id, "session_id": session_id, "role": role, "content": content,
        "tool_calls": tool_calls, "tool_results": tool_results, "tokens_in": tokens_in,
        "tokens_out": tokens_out, "created_at": created_at,
    }  # fmt: skip


_MESSAGE_COLUMNS = (
    "id", "session_id", "role", "content", "tool_calls", "tool_results", "tokens_in", "tokens_out", "created_at",
)  # fmt: skip


# --- checkpoints ------------------------------------------------------------------------


def checkpoints_from_rows(rows: Sequence[AnyRow]) -> list[Checkpoint]:
    """Checkpoints from rows of ``queries.CHECKPOINT_COLUMNS``, validated in one call."""
    data = [_checkpoint_data(row) for row in rows]
    return _validated_rows(_CHECKPOINT_LIST, data, rows, Checkpoint, "checkpoints", _CHECKPOINT_COLUMNS)


def checkpoint_from_row(row: AnyRow) -> Checkpoint:
    """``checkpoints_from_rows`` for one row."""
    return _validated_rows(
        _CHECKPOINT_LIST, [_checkpoint_data(row)], (row,), Checkpoint, "checkpoints", _CHECKPOINT_COLUMNS
    )[0]


def _checkpoint_data(row: AnyRow) -> dict[str, Any]:
    (checkpoint_id, session_id, namespace, parent_id, version, step, node_id, node_results,
     pending_nodes, cycle_state, source, created_at) = row  # fmt: skip
    # NULL, null and [] all mean none pending; [] is the usual value, not worth a parse.
    if pending_nodes in (None, "null", "[]"):
        pending_nodes = []
    else:
        pending_nodes = decode(pending_nodes, "checkpoints", checkpoint_id, "pending_nodes")
    if cycle_state is not None:
        cycle_state = decode(cycle_state, "checkpoints", checkpoint_id, "cycle_state")
    return {
        "id": checkpoint_id, "session_id": session_id, "namespace": namespace,
        "version": version, "step": step,
        "node_results": _deferred_node_results(checkpoint_id, node_results),
        "pending_nodes": pending_nodes, "source": source, "parent_id": parent_id,
        "node_id": node_id, "cycle_state": cycle_state, "created_at": created_at,
    }  # fmt: skip


def _deferred_node_results(checkpoint_id: str, text: str) -> NodeResults:
    """Parsed now, so malformed JSON fails the read; revived and validated on first use."""
    parsed = decode(text, "checkpoints", checkpoint_id, "node_results", jsonplus.parse)

    def load() -> dict[str, CheckpointNodeResult]:
        where = location("checkpoints", checkpoint_id, "node_results")
        try:
            return _NODE_RESULTS.validate_python(jsonplus.revive(parsed, text, location=where))
        except ValidationError as exc:
            raise invalid_shape(exc.errors(), text, where) from None

    return NodeResults.deferred(load)


_CHECKPOINT_COLUMNS = (
    "id", "session_id", "namespace", "parent_id", "version", "step", "node_id", "node_results",
    "pending_nodes", "cycle_state", "source", "created_at",
)  # fmt: skip


# --- decoding and validation ------------------------------------------------------------


def decode(text: str, table: str, row_id: object, column: str, parse: Callable[[str], Any] = jsonplus.loads) -> Any:
    """Decode a JSON column; a corrupt value raises naming its row and column.

    The location is spelled out only on failure, not for every column read.
    """
    try:
        return parse(text)
    except CheckpointCorruptionError as exc:
        raise CheckpointCorruptionError(exc.reason, text, location=location(table, row_id, column)) from None


def location(table: str, row_id: object, column: str) -> str:
    """How errors name a stored value: its table, row and column."""
    return f"{table} row {row_id!r}, column {column}"


# Columns that hold JSON: an error shows their stored text, other columns their value.
_JSON_COLUMNS = frozenset({"metadata", "tool_calls", "tool_results", "node_results", "pending_nodes", "cycle_state"})


def _validated_rows(
    adapter: TypeAdapter[list[M]],
    data: list[dict[str, Any]],
    rows: Sequence[AnyRow],
    model: type[BaseModel],
    table: str,
    columns: tuple[str, ...],
) -> list[M]:
    """Validate decoded rows; the first invalid one raises ``CheckpointCorruptionError``
    naming its row and the column of its first error (``columns``: the rows' columns)."""
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        errors = exc.errors()
        index, *path = errors[0]["loc"]
        assert isinstance(index, int)
        row = tuple(rows[index])
        column = column_of(model, path[0]) if path else columns[0]
        raw = row[columns.index(column)] if column in columns else None
        preview = raw if column in _JSON_COLUMNS and isinstance(raw, str) else repr(raw)
        raise invalid_shape(errors, preview, location(table, row[0], column), item=index) from None


def column_of(model: type[BaseModel], field: object) -> str:
    """The column of a DTO field named in a validation error, which names fields by alias."""
    for name, info in model.model_fields.items():
        if field in (name, info.alias):
            return name
    return str(field)


def invalid_shape(
    errors: list[ErrorDetails], raw: str, where: str, *, item: int | None = None
) -> CheckpointCorruptionError:
    """Stored data that decoded but failed validation, its errors as "path: message";
    with ``item``, only those of that item of a validated list."""
    if item is not None:
        errors = [{**error, "loc": error["loc"][1:]} for error in errors if error["loc"][0] == item]
    problems = "; ".join(f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in errors)
    return CheckpointCorruptionError(f"invalid shape ({problems})", raw, location=where)
