"""LangGraph threads in the export format: their records, written and read back.

Version 2 of the format adds, after a session's checkpoints, its LangGraph checkpoints
``{"type": "langgraph_checkpoint", "row": {...}}`` and then its pending writes
``{"type": "langgraph_write", "row": {...}}``, each holding every column of its table,
with the serialized bytes (``checkpoint``, ``value``) in base64; the end record then
also counts ``langgraph_checkpoints`` and ``langgraph_writes``. An export with no
LangGraph thread is written as version 1 (or 3, for its memory rows: ``memory_transfer``),
which older versions of this package read.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import Connection, Select, func, insert, select

from ..db.models import ID_LENGTH, NAME_LENGTH
from ..db.thread_queries import lg_checkpoints, lg_writes, sessions
from ..db.values import check_statement_size, reject_unstorable_text
from ..errors import ExportFormatError

KINDS = {"langgraph_checkpoint": lg_checkpoints, "langgraph_write": lg_writes}
COUNT_KEYS = {"langgraph_checkpoint": "langgraph_checkpoints", "langgraph_write": "langgraph_writes"}
BYTES_COLUMNS = {"checkpoint", "value"}
# Rows per INSERT when importing.
BATCH_ROWS = 500

# column -> (type, longest, nullable): what a row of each kind must hold.
_SHAPES: dict[str, dict[str, tuple[type, int | None, bool]]] = {
    "langgraph_checkpoint": {
        "session_id": (str, ID_LENGTH, False), "checkpoint_ns": (str, NAME_LENGTH, False),
        "checkpoint_id": (str, ID_LENGTH, False), "parent_checkpoint_id": (str, ID_LENGTH, True),
        "type": (str, NAME_LENGTH, False), "checkpoint": (bytes, None, False), "metadata": (str, None, False),
        "run_id": (str, ID_LENGTH, True), "created_at": (int, None, False),
    },
    "langgraph_write": {
        "session_id": (str, ID_LENGTH, False), "checkpoint_ns": (str, NAME_LENGTH, False),
        "checkpoint_id": (str, ID_LENGTH, False), "task_id": (str, ID_LENGTH, False), "idx": (int, None, False),
        "channel": (str, NAME_LENGTH, False), "type": (str, NAME_LENGTH, False), "value": (bytes, None, False),
        "task_path": (str, None, False),
    },
}  # fmt: skip


def count_in(conn: Connection, selection: Select[Any]) -> int:
    """How many LangGraph checkpoints the sessions ``selection`` picks hold."""
    picked = selection.with_only_columns(sessions.c.id)
    counted = select(func.count()).select_from(lg_checkpoints).where(lg_checkpoints.c.session_id.in_(picked))
    return int(conn.execute(counted).scalar_one())


def records(conn: Connection, session_id: str) -> Iterator[tuple[str, bytes]]:
    """A session's LangGraph records as export lines: checkpoints, then writes, in key order."""
    for kind, table in KINDS.items():
        key = list(table.primary_key.columns)
        query = select(table).where(table.c.session_id == session_id).order_by(*key)
        for row in conn.execute(query.execution_options(yield_per=BATCH_ROWS)):
            values = {
                str(name): base64.b64encode(value).decode() if name in BYTES_COLUMNS else value
                for name, value in row._mapping.items()
            }
            yield kind, orjson.dumps({"type": kind, "row": values}) + b"\n"


def decoded(conn: Connection, line: int, kind: str, row: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A record's row as the table takes it (bytes decoded), checked; and its size bound.

    Raises:
        ExportFormatError: a column of the wrong type or too long, or bytes not in base64.
    """
    values = dict(row)
    for name, (expected, longest, nullable) in _SHAPES[kind].items():
        value = values[name]
        if value is None and nullable:
            continue
        if expected is bytes:
            try:
                value = values[name] = base64.b64decode(value, validate=True) if isinstance(value, str) else None
            except (binascii.Error, ValueError):
                value = None
        if type(value) is not expected:
            raise ExportFormatError(line, f"{kind} column {name}: expected {expected.__name__}; nothing was imported")
        if longest is not None and isinstance(value, str) and len(value) > longest:
            raise ExportFormatError(line, f"{kind} column {name}: longer than {longest}; nothing was imported")
    try:
        reject_unstorable_text(conn, {name: value for name, value in values.items() if type(value) is str})
    except ValueError as exc:
        raise ExportFormatError(line, f"{kind} column {exc}; nothing was imported") from None
    return values, check_statement_size(conn, values, where=f"Export file, line {line}")


class ThreadRows:
    """LangGraph rows read from an export, inserted in batches within the statement budget."""

    def __init__(self, conn: Connection, budget: int) -> None:
        self.conn = conn
        self.budget = budget
        self.pending: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        self.pending_bytes = dict.fromkeys(KINDS, 0)

    def add(self, kind: str, values: dict[str, Any], size: int, session_id: str | None) -> None:
        """Queue a row, under ``session_id`` (its session's id in the target)."""
        if self.pending_bytes[kind] + size > self.budget or len(self.pending[kind]) >= BATCH_ROWS:
            self.flush()
        self.pending[kind].append({**values, "session_id": session_id})
        self.pending_bytes[kind] += size

    def flush(self) -> None:
        # Checkpoints first: the order of the file, and of a reader of the target.
        for kind, table in KINDS.items():
            rows, self.pending[kind] = self.pending[kind], []
            self.pending_bytes[kind] = 0
            if rows:
                self.conn.execute(insert(table), rows)
