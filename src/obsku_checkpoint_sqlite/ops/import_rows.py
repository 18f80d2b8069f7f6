"""Rows of an export file, checked as the API checks what it writes, before the import writes them.

Each row must hold what the call that writes such a row would accept (the bounds of
``bounds``: ids and names within their columns, 32-bit counts and versions, 64-bit
times, text that is text, roles and sources the DTOs know, steps from 0 and versions
from 1) and JSON columns that decode and validate as reads decode and validate them
(``db.rows``). A row that does not raises ``ExportFormatError`` naming its line and
column: otherwise it would import, and then fail every read of its session, or every
``add_message`` after it, or only on the dialects that enforce what SQLite does not.

Memory rows are checked the same way, with two things kept as stored because the
TypeScript store writes them and keeps working: an embedding that is not readable as
numbers, and a confidence outside 0..1.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy import Connection
from typing_extensions import TypedDict

from ..bounds import MESSAGE_ID_MAX, Id, MessageId, Name, StoredCount, StoredMillis, StoredVersion, Text
from ..db.memory_rows import entity_from_row
from ..db.rows import checkpoints_from_rows, messages_from_rows, session_from_row
from ..db.values import check_statement_size, reject_unstorable_text
from ..dto import CheckpointSource, Role
from ..errors import CheckpointCorruptionError, ExportFormatError


class SessionRow(TypedDict):
    id: Id
    workspace_id: Name | None
    title: Text | None
    directory: Text
    created_at: StoredMillis
    updated_at: StoredMillis
    metadata: Text | None
    forked_from_session_id: Id | None
    forked_from_checkpoint_id: Id | None


class MessageRow(TypedDict):
    id: MessageId
    session_id: Id
    role: Role
    content: Text | None
    tool_calls: Text | None
    tool_results: Text | None
    tokens_in: StoredCount | None
    tokens_out: StoredCount | None
    created_at: StoredMillis


class CheckpointRow(TypedDict):
    id: Id
    session_id: Id
    namespace: Name
    parent_id: Id | None
    version: StoredVersion
    step: StoredCount
    node_id: Name | None
    node_results: Text
    pending_nodes: Text | None
    cycle_state: Text | None
    source: CheckpointSource
    created_at: StoredMillis
    # The id of the newest message the checkpoint saw, 0 for none: a message id or 0.
    last_message_id: Annotated[int, Field(strict=True, ge=0, le=MESSAGE_ID_MAX)] | None


# A stored embedding as the export brings it back (``ops.memory_transfer``): text or bytes,
# readable as numbers or not (the TypeScript store keeps what it cannot read, and so does a
# move); its reads show no embedding for a value that is not.
StoredEmbedding = Text | Annotated[bytes, Field(strict=True)]


class EntityRow(TypedDict):
    id: Id
    session_id: Id
    workspace_id: Name | None
    name: Text
    type: Name
    attributes: Text | None
    relationships: Text | None
    created_at: StoredMillis
    updated_at: StoredMillis
    embedding: StoredEmbedding | None


class FactRow(TypedDict):
    id: Id
    workspace_id: Name | None
    content: Text
    # Stored as given, never range-checked (as the TypeScript store); an int is a number too.
    confidence: Annotated[float, Field(strict=True, allow_inf_nan=True)] | None
    source_session_id: Id | None
    created_at: StoredMillis
    embedding: StoredEmbedding | None


# Built once: validating a row is then one call into pydantic-core.
_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "session": TypeAdapter(SessionRow),
    "message": TypeAdapter(MessageRow),
    "checkpoint": TypeAdapter(CheckpointRow),
    "entity": TypeAdapter(EntityRow),
    "fact": TypeAdapter(FactRow),
}


def check_row(conn: Connection, line: int, kind: str, row: dict[str, Any]) -> int:
    """Check a row of ``kind`` read at ``line``, whose columns are those of its table.

    Returns an upper bound of the bytes its values take in a statement, for batching.

    Raises:
        ExportFormatError: a column the API would have refused, or that a read would
            report as corrupt, naming the line and the column.
        PayloadTooLargeError: a row larger than the target server takes in a statement.
    """
    try:
        _ADAPTERS[kind].validate_python(row)
    except ValidationError as exc:
        error = exc.errors()[0]
        column = ".".join(str(part) for part in error["loc"])
        raise ExportFormatError(line, f"{kind} column {column}: {error['msg']}; nothing was imported") from None
    try:
        _read_back(kind, row)
    except CheckpointCorruptionError as exc:
        column = (exc.location or "").rpartition(", column ")[2] or "?"
        raise ExportFormatError(line, f"{kind} column {column}: {exc.reason}; nothing was imported") from None
    texts = {name: value for name, value in row.items() if type(value) is str}
    if conn.dialect.name != "sqlite":
        texts.pop("embedding", None)  # held as its UTF-8 bytes there, NUL included
    try:
        reject_unstorable_text(conn, texts)
    except ValueError as exc:
        raise ExportFormatError(line, f"{kind} column {exc}; nothing was imported") from None
    return check_statement_size(conn, row, where=f"Export file, line {line}")


def _read_back(kind: str, row: dict[str, Any]) -> None:
    """Decode and validate the row as a read of it would, JSON columns included."""
    if kind == "session":
        session_from_row((
            row["id"], row["directory"], row["created_at"], row["updated_at"], row["title"],
            row["workspace_id"], row["metadata"], row["forked_from_session_id"], row["forked_from_checkpoint_id"],
        ))  # fmt: skip
    elif kind == "entity":
        entity_from_row(_Mapped(row))
    elif kind == "message":
        messages_from_rows([(
            row["id"], row["session_id"], row["role"], row["content"], row["tool_calls"], row["tool_results"],
            row["tokens_in"], row["tokens_out"], row["created_at"],
        )])  # fmt: skip
    elif kind == "checkpoint":
        (checkpoint,) = checkpoints_from_rows([(
            row["id"], row["session_id"], row["namespace"], row["parent_id"], row["version"], row["step"],
            row["node_id"], row["node_results"], row["pending_nodes"], row["cycle_state"], row["source"],
            row["created_at"],
        )])  # fmt: skip
        len(checkpoint.node_results)  # node results are validated on first use: use them now


class _Mapped:
    """A row dict in the shape the row mappers read (``row._mapping``)."""

    def __init__(self, row: dict[str, Any]) -> None:
        self._mapping = row
