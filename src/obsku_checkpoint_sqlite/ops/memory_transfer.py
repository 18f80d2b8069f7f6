"""The memory store in the export format: entities and facts, written and read back.

Version 3 of the format adds, after the last session's records and before the end
record, the entities of the exported sessions ``{"type": "entity", "row": {...}}`` and
then the facts ``{"type": "fact", "row": {...}}``, each holding every column of its
table as stored. The end record then also counts ``entities`` and ``facts``. An export
with neither is written as version 2 or 1, which older versions of this package read.

Which rows go: an entity goes with its session; a fact with its source session. A fact
without one (never attributed, or its session deleted) goes with an export that names
no sessions: all of them, or a workspace's (a fact of that workspace). Rows come in the
order the database keeps them (SQLite: insertion order, the order in which a semantic
search meets equal scores there; elsewhere by id), so a SQLite round trip keeps it.

Values as stored: ``embedding`` is the stored value, text as a JSON string and bytes as
``{"base64": "..."}``, so text stays text and a blob a blob; a ``confidence`` that is no
finite number (JSON has none) is the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, Select, Table, and_, insert, literal_column, or_, select

from ..db.memory_queries import entities, facts
from ..db.queries import sessions
from ..errors import ExportFormatError, ImportConflictError
from .import_rows import check_row

KINDS = {"entity": entities, "fact": facts}
COUNT_KEYS = {"entity": "entities", "fact": "facts"}
VERSION = 3
"""The format version that brings entity and fact records."""
SESSION_COLUMN = {"entity": "session_id", "fact": "source_session_id"}
BATCH_ROWS = 500

_NOT_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def selections(
    selection: Select[Any], workspace_id: str | None, session_filtered: bool, dialect: str
) -> dict[str, Select[Any]]:
    """The entities and facts an export of the sessions ``selection`` picks carries, in file order.

    ``workspace_id`` and ``session_filtered`` are the export's filters: facts without a
    source session go only when no sessions were named, and then only those of the
    workspace, if one was given.
    """
    picked = selection.with_only_columns(sessions.c.id)
    where_fact: ColumnElement[bool] = facts.c.source_session_id.in_(picked)
    if not session_filtered:
        unattributed: ColumnElement[bool] = facts.c.source_session_id.is_(None)
        if workspace_id is not None:
            unattributed = and_(unattributed, facts.c.workspace_id == workspace_id)
        where_fact = or_(where_fact, unattributed)
    chosen = {
        "entity": select(entities).where(entities.c.session_id.in_(picked)),
        "fact": select(facts).where(where_fact),
    }
    return {kind: query.order_by(_storage_order(KINDS[kind], dialect)) for kind, query in chosen.items()}


def _storage_order(table: Table, dialect: str) -> ColumnElement[Any]:
    # SQLite's rowid is the insertion order, in which its scans (a search's candidates) run.
    return literal_column(f"{table.name}.rowid") if dialect == "sqlite" else table.c.id


def any_in(conn: Connection, chosen: dict[str, Select[Any]]) -> bool:
    """Whether the selections hold a row at all."""
    return any(
        conn.execute(query.with_only_columns(KINDS[kind].c.id).order_by(None).limit(1)).first() is not None
        for kind, query in chosen.items()
    )


def records(conn: Connection, chosen: dict[str, Select[Any]]) -> Iterator[tuple[str, bytes]]:
    """The selected rows as export lines: entities, then facts."""
    for kind, query in chosen.items():
        for row in conn.execute(query.execution_options(yield_per=BATCH_ROWS)):
            values = {str(name): value for name, value in row._mapping.items()}
            embedding = values["embedding"]
            if isinstance(embedding, (bytes, bytearray, memoryview)):
                values["embedding"] = {"base64": base64.b64encode(embedding).decode()}
            confidence = values.get("confidence")
            if isinstance(confidence, float) and not math.isfinite(confidence):
                values["confidence"] = _not_finite_name(confidence)
            yield kind, orjson.dumps({"type": kind, "row": values}) + b"\n"


def _not_finite_name(number: float) -> str:
    return "NaN" if math.isnan(number) else "Infinity" if number > 0 else "-Infinity"


def decoded(conn: Connection, line: int, kind: str, row: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A record's row as the table takes it (an embedding's bytes decoded), checked; and its size bound.

    Raises:
        ExportFormatError: a column the store would not have written, or that the target
            cannot hold as it is, naming the line and the column.
    """
    values = dict(row)
    embedding = values["embedding"]
    if isinstance(embedding, dict):
        encoded = embedding.get("base64") if embedding.keys() == {"base64"} else None
        try:
            values["embedding"] = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else None
        except (binascii.Error, ValueError):
            values["embedding"] = None
        if values["embedding"] is None:
            raise ExportFormatError(
                line, f'{kind} column embedding: not {{"base64": "<bytes in base64>"}}; nothing was imported'
            )
    elif embedding is not None and type(embedding) is not str:
        raise ExportFormatError(
            line, f"{kind} column embedding: expected text, bytes in base64 or null; nothing was imported"
        )
    if kind == "fact":
        confidence = values["confidence"]
        if isinstance(confidence, str) and confidence in _NOT_FINITE:
            values["confidence"] = confidence = _NOT_FINITE[confidence]
        if isinstance(confidence, float) and not math.isfinite(confidence):
            _check_not_finite(conn, line, confidence)
    size = check_row(conn, line, kind, values)
    return values, size


def _check_not_finite(conn: Connection, line: int, confidence: float) -> None:
    # SQLite stores NaN as NULL and MariaDB's DOUBLE holds neither NaN nor infinities:
    # refused rather than changed.
    dialect = conn.dialect.name
    if dialect in ("mysql", "mariadb") or (dialect == "sqlite" and math.isnan(confidence)):
        raise ExportFormatError(
            line, f"fact column confidence: {confidence} cannot be stored on {dialect}; nothing was imported"
        )


class MemoryRows:
    """Entities and facts read from an export, inserted in batches within the statement budget.

    With ``rekey`` each row gets the id ``new_id`` derives from its own, and its session
    the id its session was imported under. Otherwise a row whose id exists (in the target,
    or earlier in the file) is left alone under ``on_conflict="skip"`` and fails the
    import under ``"fail"``.
    """

    def __init__(
        self, conn: Connection, budget: int, rekey: bool, on_conflict: str, new_id: Callable[[str | None], str | None]
    ) -> None:
        self.conn = conn
        self.budget = budget
        self.rekey = rekey
        self.on_conflict = on_conflict
        self.new_id = new_id
        self.pending: dict[str, list[tuple[int, dict[str, Any]]]] = {kind: [] for kind in KINDS}
        self.pending_bytes = dict.fromkeys(KINDS, 0)
        self.report = {"entities": 0, "facts": 0, "skipped_entities": 0, "skipped_facts": 0}

    def add(self, line: int, kind: str, values: dict[str, Any], size: int) -> None:
        """Queue a checked row read at ``line``."""
        if self.pending_bytes[kind] + size > self.budget or len(self.pending[kind]) >= BATCH_ROWS:
            self.flush()
        self.pending[kind].append((line, values))
        self.pending_bytes[kind] += size

    def flush(self) -> None:
        # Entities first: the order of the file.
        for kind, table in KINDS.items():
            batch, self.pending[kind] = self.pending[kind], []
            self.pending_bytes[kind] = 0
            if not batch:
                continue
            if self.rekey:
                rows = [self._rekeyed(kind, values) for _, values in batch]
            else:
                rows = self._without_conflicts(kind, batch)
            if rows:
                self.conn.execute(insert(table), rows)
            self.report[COUNT_KEYS[kind]] += len(rows)

    def _rekeyed(self, kind: str, values: dict[str, Any]) -> dict[str, Any]:
        column = SESSION_COLUMN[kind]
        return {**values, "id": self.new_id(values["id"]), column: self.new_id(values[column])}

    def _without_conflicts(self, kind: str, batch: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
        table = KINDS[kind]
        ids = [values["id"] for _, values in batch]
        taken = set(self.conn.execute(select(table.c.id).where(table.c.id.in_(ids))).scalars())
        rows: list[dict[str, Any]] = []
        for line, values in batch:
            if values["id"] not in taken:
                taken.add(values["id"])
                rows.append(values)
            elif self.on_conflict == "skip":
                self.report[f"skipped_{COUNT_KEYS[kind]}"] += 1
            else:
                raise ImportConflictError(
                    f"Export file, line {line}: {kind} id {values['id']!r} exists in the target already "
                    "(or earlier in the file). Nothing was imported. Skip existing rows (on_conflict='skip', "
                    "--skip-existing) or import a copy under new ids (new_ids=True, --new-ids)."
                )
        return rows
