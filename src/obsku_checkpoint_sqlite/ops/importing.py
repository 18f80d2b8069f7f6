"""Import: an export file read back into a database, in one transaction, all of it or nothing."""

from __future__ import annotations

import bisect
import contextlib
import gzip
import uuid
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import orjson
from sqlalchemy import Connection, Table, insert, select, text

from ..bounds import INT64_MAX
from ..db.queries import checkpoints, messages, sessions
from ..db.values import STATEMENT_ALLOWANCE, statement_limit
from ..dto import TransferReport
from ..errors import ExportFormatError, ImportConflictError
from . import memory_transfer, thread_transfer
from .export import BATCH_SIZE, FORMAT, FORMAT_VERSION, OnConflict
from .files import ImportFile, is_gzip
from .import_rows import check_row
from .jobs import Progress

_TABLES: dict[str, Table] = {"session": sessions, "message": messages, "checkpoint": checkpoints}
_COUNT_KEYS = {"session": "sessions", "message": "messages", "checkpoint": "checkpoints"}
_BASE_COUNTS = set(_COUNT_KEYS.values())


# For each record type, its table's columns: what a row must hold (import_rows checks them;
# thread_transfer those of LangGraph threads).
_COLUMNS: dict[str, set[str]] = {
    kind: {column.name for column in table.columns}
    for kind, table in {**_TABLES, **thread_transfer.KINDS, **memory_transfer.KINDS}.items()
}
_COUNT_KEYS.update(thread_transfer.COUNT_KEYS)
_COUNT_KEYS.update(memory_transfer.COUNT_KEYS)
# The format version each record type came with: a file of an older version holds none.
_SINCE = dict.fromkeys(thread_transfer.KINDS, 2) | dict.fromkeys(memory_transfer.KINDS, memory_transfer.VERSION)


class _Importer:
    """Reads an export line by line and writes it in batches, in the caller's transaction."""

    def __init__(self, conn: Connection, rekey: bool, on_conflict: OnConflict) -> None:
        self.conn = conn
        self.rekey = rekey
        self.on_conflict = on_conflict
        # Re-keyed ids are derived from the old ones, so a reference to a row later in
        # the file (a fork's origin, a parent in another session) maps without a table.
        self.namespace = uuid.uuid4()
        self.session: str | None = None
        self.skipping = False
        # Every session of the file, and those skipped: memory rows follow the sessions
        # and go with theirs.
        self.sessions_read: set[str] = set()
        self.sessions_skipped: set[str] = set()
        self.message_ids: tuple[list[int], list[int]] = ([], [])  # old ids, new ids, ascending
        self.pending_messages: list[tuple[int, dict[str, Any]]] = []
        self.pending_checkpoints: list[tuple[int, dict[str, Any]]] = []
        # A batch is one statement: it stays within what the server takes in one, by an
        # upper bound of its rows' bytes (import_rows.check_row; 0 where no limit applies).
        limit = statement_limit(conn)
        self.budget = INT64_MAX if limit is None else limit[0] - STATEMENT_ALLOWANCE
        self.pending_bytes = [0, 0]  # messages, checkpoints
        self.read = {"sessions": 0, "messages": 0, "checkpoints": 0}
        self.read.update(dict.fromkeys(thread_transfer.COUNT_KEYS.values(), 0))
        self.read.update(dict.fromkeys(memory_transfer.COUNT_KEYS.values(), 0))
        self.threads = thread_transfer.ThreadRows(conn, self.budget)
        self.memory = memory_transfer.MemoryRows(conn, self.budget, rekey, on_conflict, self.new_id)
        self.report = {"sessions": 0, "messages": 0, "checkpoints": 0, "skipped_sessions": 0}

    def new_id(self, old: str | None) -> str | None:
        if old is None or not self.rekey:
            return old
        return str(uuid.uuid5(self.namespace, old))

    def add(self, line: int, kind: str, row: dict[str, Any]) -> None:
        self.read[_COUNT_KEYS[kind]] += 1
        if kind in thread_transfer.KINDS:
            self.add_thread_row(line, kind, row)
            return
        if kind in memory_transfer.KINDS:
            self.add_memory_row(line, kind, row)
            return
        size = check_row(self.conn, line, kind, row)
        if kind == "session":
            self.flush()
            self.start_session(line, row)
            return
        if row["session_id"] != self.session:
            raise ExportFormatError(line, f"a {kind} of session {row['session_id']!r} outside that session's records")
        if self.skipping:
            return
        if kind == "message":
            if self.pending_bytes[0] + size > self.budget:
                self.flush_messages()
            self.pending_messages.append((line, row))
            self.pending_bytes[0] += size
            if len(self.pending_messages) >= BATCH_SIZE:
                self.flush_messages()
        else:
            self.flush_messages()
            if self.pending_bytes[1] + size > self.budget:
                self.flush_checkpoints()
            self.pending_checkpoints.append((line, row))
            self.pending_bytes[1] += size
            if len(self.pending_checkpoints) >= BATCH_SIZE:
                self.flush_checkpoints()

    def add_thread_row(self, line: int, kind: str, row: dict[str, Any]) -> None:
        # A LangGraph thread's row: in its session's records, under the session's new id.
        values, size = thread_transfer.decoded(self.conn, line, kind, row)
        if row["session_id"] != self.session:
            raise ExportFormatError(line, f"a {kind} of session {row['session_id']!r} outside that session's records")
        if not self.skipping:
            self.threads.add(kind, values, size, self.new_id(row["session_id"]))

    def add_memory_row(self, line: int, kind: str, row: dict[str, Any]) -> None:
        # An entity or fact: after the sessions, with its session (skipped with it).
        values, size = memory_transfer.decoded(self.conn, line, kind, row)
        if self.session is not None:
            self.flush()
            self.session = None  # the sessions' records end here
        session_id = values[memory_transfer.SESSION_COLUMN[kind]]
        if session_id is not None:
            if session_id not in self.sessions_read:
                raise ExportFormatError(
                    line, f"a {kind} of session {session_id!r}, which is not among the sessions before it"
                )
            if session_id in self.sessions_skipped:
                return
        self.memory.add(line, kind, values, size)

    def start_session(self, line: int, row: dict[str, Any]) -> None:
        self.session = row["id"]
        self.message_ids = ([], [])
        self.skipping = False
        self.sessions_read.add(row["id"])
        if not self.rekey:
            exists = self.conn.execute(select(sessions.c.id).where(sessions.c.id == row["id"])).first()
            if exists is not None:
                if self.on_conflict == "skip":
                    self.skipping = True
                    self.sessions_skipped.add(row["id"])
                    self.report["skipped_sessions"] += 1
                    return
                raise ImportConflictError(
                    f"Export file, line {line}: session {row['id']!r} exists in the target already. "
                    "Nothing was imported. Skip existing sessions (on_conflict='skip', --skip-existing) "
                    "or import a copy under new ids (new_ids=True, --new-ids)."
                )
        values = dict(row)
        for column in ("id", "forked_from_session_id", "forked_from_checkpoint_id"):
            values[column] = self.new_id(values[column])
        self.conn.execute(insert(sessions), values)
        self.report["sessions"] += 1

    def flush(self) -> None:
        self.flush_messages()
        self.flush_checkpoints()
        self.threads.flush()
        self.memory.flush()

    def flush_messages(self) -> None:
        if not self.pending_messages:
            return
        batch, self.pending_messages = self.pending_messages, []
        self.pending_bytes[0] = 0
        session_id = self.new_id(batch[0][1]["session_id"])
        if self.rekey:
            rows = [{**row, "session_id": session_id} for _, row in batch]
            for row in rows:
                del row["id"]
            statement = insert(messages).returning(messages.c.id, sort_by_parameter_order=True)
            new_ids = list(self.conn.execute(statement, rows).scalars())
            self.message_ids[0].extend(row["id"] for _, row in batch)
            self.message_ids[1].extend(new_ids)
        else:
            self.refuse_existing(messages, batch)
            self.conn.execute(insert(messages), [row for _, row in batch])
        self.report["messages"] += len(batch)

    def flush_checkpoints(self) -> None:
        if not self.pending_checkpoints:
            return
        batch, self.pending_checkpoints = self.pending_checkpoints, []
        self.pending_bytes[1] = 0
        if self.rekey:
            rows = [self.rekey_checkpoint(row) for _, row in batch]
        else:
            self.refuse_existing(checkpoints, batch)
            rows = [row for _, row in batch]
        self.conn.execute(insert(checkpoints), rows)
        self.report["checkpoints"] += len(batch)

    def rekey_checkpoint(self, row: dict[str, Any]) -> dict[str, Any]:
        values = dict(row)
        for column in ("id", "session_id", "parent_id"):
            values[column] = self.new_id(values[column])
        watermark = values["last_message_id"]
        if watermark is not None:
            # The fork watermark names the newest message the checkpoint saw: the new id
            # of the newest imported message at or before it keeps the same cut.
            old_ids, new_ids = self.message_ids
            position = bisect.bisect_right(old_ids, watermark)
            values["last_message_id"] = new_ids[position - 1] if position else 0
        return values

    def refuse_existing(self, table: Table, batch: list[tuple[int, dict[str, Any]]]) -> None:
        ids = [row["id"] for _, row in batch]
        taken = set(self.conn.execute(select(table.c.id).where(table.c.id.in_(ids))).scalars())
        if not taken:
            return
        line, row = next((line, row) for line, row in batch if row["id"] in taken)
        raise ImportConflictError(
            f"Export file, line {line}: {table.name[:-1]} id {row['id']!r} exists in the target already, "
            f"in another session. Nothing was imported. Import a copy under new ids (new_ids=True, --new-ids)."
        )

    def finish(self) -> None:
        self.flush()
        if not self.rekey:
            advance_message_ids(self.conn)


def advance_message_ids(conn: Connection) -> None:
    """Move PostgreSQL's message id sequence past ids written explicitly.

    Explicit ids do not advance the sequence: the next add_message would collide with
    an imported message. Only ever forward: MAX(id) does not see ids other writers hold
    uncommitted, and moving the sequence back below one of them makes a later
    add_message collide with it. SQLite and MariaDB advance their counters themselves.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('messages', 'id'), GREATEST("
                "(SELECT COALESCE(MAX(id), 0) + 1 FROM messages), "
                "nextval(pg_get_serial_sequence('messages', 'id'))), false)"
            )
        )


def import_sessions(
    conn: Connection,
    source: ImportFile,
    rekey: bool,
    on_conflict: OnConflict,
    progress: Progress | None,
) -> TransferReport:
    """Read the export ``source`` into the database, all of it or (on any error) nothing."""
    importer = _Importer(conn, rekey, on_conflict)
    ended = False
    line_number = 0
    with source.attempt() as (raw, total), _decompressed(raw) as stream:
        start = raw.tell()
        version = 0
        for line_number, line in _lines(stream):
            record = _parse(line_number, line)
            if line_number == 1:
                version = _check_header(record)
                continue
            if ended:
                raise ExportFormatError(line_number, "data after the end record")
            kind = record.get("type")
            if kind == "end":
                _check_counts(line_number, record, importer.read)
                ended = True
            else:
                importer.add(line_number, *_check_row(line_number, record, version))
            if progress is not None and line_number % BATCH_SIZE == 0:
                progress(raw.tell() - start, total)
    if line_number == 0:
        raise ExportFormatError(1, "the file is empty")
    if not ended:
        raise ExportFormatError(
            line_number + 1, "the file ends before its end record: it is truncated; nothing was imported"
        )
    importer.finish()
    if progress is not None and total is not None:
        progress(total, total)
    return TransferReport(**importer.report, **importer.memory.report)


def _decompressed(raw: BinaryIO) -> contextlib.AbstractContextManager[Iterable[bytes]]:
    if is_gzip(raw):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    return contextlib.nullcontext(raw)


def _lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """The numbered lines of ``stream``, a broken gzip stream reported at the line it stops."""
    line_number = 0
    lines = iter(stream)
    while True:
        try:
            line = next(lines)
        except StopIteration:
            return
        except EOFError:
            raise ExportFormatError(
                line_number + 1, "the gzip stream is truncated: the file is cut short; nothing was imported"
            ) from None
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise ExportFormatError(
                line_number + 1, f"the gzip stream is corrupt ({exc}); nothing was imported"
            ) from None
        line_number += 1
        yield line_number, line


def _parse(line_number: int, line: bytes) -> dict[str, Any]:
    if not line.endswith(b"\n"):
        raise ExportFormatError(line_number, "the line is cut short: the file is truncated; nothing was imported")
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ExportFormatError(line_number, f"not valid JSON ({exc}); nothing was imported") from None
    if not isinstance(record, dict):
        raise ExportFormatError(line_number, "expected a JSON object; nothing was imported")
    return record


def _check_header(record: dict[str, Any]) -> int:
    """The file's format version, if this package reads it."""
    if record.get("format") != FORMAT:
        raise ExportFormatError(1, f"not an obsku-checkpoint export (no {FORMAT!r} header)")
    version = record.get("version")
    if type(version) is not int or version < 1:
        raise ExportFormatError(1, f"invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise ExportFormatError(
            1,
            f"format version {version} is newer than this package reads ({FORMAT_VERSION}): "
            'upgrade it (pip install -U "obsku-checkpoint-sqlite")',
        )
    return version


def _check_row(line_number: int, record: dict[str, Any], version: int) -> tuple[str, dict[str, Any]]:
    kind = record.get("type")
    columns = _COLUMNS.get(kind) if isinstance(kind, str) else None
    row = record.get("row")
    if columns is None or not isinstance(row, dict):
        raise ExportFormatError(line_number, f"unknown record {str(record)[:80]!r}; nothing was imported")
    if row.keys() != columns:
        difference = sorted(set(row) ^ columns)
        raise ExportFormatError(line_number, f"a {kind} with wrong columns ({', '.join(difference)})")
    assert isinstance(kind, str)
    if _SINCE.get(kind, 1) > version:
        raise ExportFormatError(
            line_number, f"a {kind} record in a version {version} file: they come with version {_SINCE[kind]}"
        )
    return kind, row


def _check_counts(line_number: int, record: dict[str, Any], read: dict[str, int]) -> None:
    counts = record.get("counts")
    # A version 1 file counts no LangGraph rows: then it must hold none.
    declared = counts if isinstance(counts, dict) else {}
    read = {key: number for key, number in read.items() if number or key in declared or key in _BASE_COUNTS}
    if counts != read:
        raise ExportFormatError(line_number, f"the end record counts {record.get('counts')} but the file holds {read}")
