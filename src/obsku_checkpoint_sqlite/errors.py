"""The errors the store raises. Catch ``CheckpointStoreError`` to catch them all.

Invalid input is not in this tree: it raises pydantic's ``ValidationError`` or another
``ValueError``/``TypeError`` before anything is written (an id holding a NUL character,
which PostgreSQL refuses as the statement is bound, is caught from the driver's error).
``PayloadTooLargeError`` is both: a ``ValueError`` the store raises before sending a
write the database server would refuse for its size.
"""

from __future__ import annotations

# Why PostgreSQL refuses a text value, for the ValueError that says so.
NUL_REFUSED = "PostgreSQL cannot store the NUL character (\\x00) in text columns"


class CheckpointStoreError(Exception):
    """The root of every error the store raises about the database or its contents."""


class SessionNotFoundError(CheckpointStoreError, LookupError):
    """No session has the given id."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session not found: {session_id}")
        self.session_id = session_id


class CheckpointNotFoundError(CheckpointStoreError, LookupError):
    """No checkpoint has the given id."""

    def __init__(self, checkpoint_id: str) -> None:
        super().__init__(f"Checkpoint not found: {checkpoint_id}")
        self.checkpoint_id = checkpoint_id


class CheckpointVersionConflictError(CheckpointStoreError):
    """An explicit checkpoint version already exists for its session and namespace."""

    def __init__(self, session_id: str, namespace: str, version: int) -> None:
        super().__init__(
            f"Checkpoint version {version} already exists in session {session_id}, "
            f"namespace {namespace!r}; pass version=None to let the store assign the next one"
        )
        self.session_id = session_id
        self.namespace = namespace
        self.version = version


class CheckpointCorruptionError(CheckpointStoreError):
    """Stored data cannot be decoded: malformed JSON, a malformed tag or an invalid shape,
    JSON nested deeper than ``jsonplus.MAX_DEPTH``, text that is not UTF-8, or a damaged
    SQLite file. ``location`` names the row and column where they are known."""

    PREVIEW_LENGTH = 120

    def __init__(self, reason: str, data: str | bytes, *, location: str | None = None) -> None:
        if isinstance(data, bytes):
            data = data.decode("utf-8", errors="replace")
        preview = data if len(data) <= self.PREVIEW_LENGTH else data[: self.PREVIEW_LENGTH] + "..."
        where = f" in {location}" if location else ""
        super().__init__(f"Corrupt stored data{where}: {reason}; data: {preview!r}")
        self.reason = reason
        self.location = location
        self.preview = preview


class SchemaError(CheckpointStoreError):
    """The database's schema is not one this package can use or upgrade.

    ``needs_upgrade`` is True when upgrading the database (``obsku-checkpoint db upgrade``)
    resolves it: the store was opened without automatic migration on a database that has
    no schema yet or an older one.
    """

    def __init__(self, message: str, *, needs_upgrade: bool = False) -> None:
        super().__init__(message)
        self.needs_upgrade = needs_upgrade


class DatabaseUnavailableError(CheckpointStoreError):
    """The database could not be reached, or the connection was lost mid-operation."""


class LockTimeoutError(CheckpointStoreError):
    """Another writer held the rows an operation needed for longer than the store's ``lock_timeout``.

    Nothing was written: the operation rolled back after each attempt.
    """

    def __init__(self, waited: float, lock_timeout: float, cause: str) -> None:
        super().__init__(
            f"Gave up after waiting {waited:.1f} s for a lock another writer holds ({cause}); "
            f"the store's lock_timeout ({lock_timeout:g} s) sets how long it waits"
        )
        self.waited = waited
        self.lock_timeout = lock_timeout


class PayloadTooLargeError(CheckpointStoreError, ValueError):
    """A write larger than the database server accepts in one statement; nothing was sent.

    MariaDB and MySQL refuse a statement longer than their ``max_allowed_packet`` by
    dropping the connection, which would leave the caller unsure whether the write
    happened; PostgreSQL refuses a message over 1 GB. The store measures its writes
    before sending them.
    """

    def __init__(self, size: int, limit: int, setting: str, *, where: str | None = None) -> None:
        place = f"{where}: " if where else ""
        super().__init__(
            f"{place}the values of this write take {size:,} bytes, more than one statement may carry "
            f"on this server with its SQL: {limit:,} bytes ({setting}); nothing was written"
        )
        self.size = size
        self.limit = limit
        self.setting = setting


class DriverNotInstalledError(CheckpointStoreError, ImportError):
    """The database URL needs a driver that is not installed."""


class ExportFormatError(CheckpointStoreError):
    """An export file is corrupt, truncated or of an unknown format; ``line`` says where."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"Export file, line {line}: {reason}")
        self.line = line
        self.reason = reason


class ImportConflictError(CheckpointStoreError):
    """An imported row's id exists in the target already."""


class EntityNotFoundError(CheckpointStoreError, LookupError):
    """``update_entity`` was given the id of no entity."""

    def __init__(self, entity_id: str) -> None:
        super().__init__(f"Entity not found: {entity_id}")
        self.entity_id = entity_id


class VectorDimensionError(CheckpointStoreError, ValueError):
    """Two vectors of different lengths were compared: ``dimension_a`` is the query's.

    Raised for a stored embedding whose length differs from the query's (``row_id`` names
    the row) and, before anything is read, for a query vector that is empty.
    """

    def __init__(self, dimension_a: int, dimension_b: int, *, row_id: str | None = None) -> None:
        where = f" (row {row_id})" if row_id is not None else ""
        super().__init__(f"Vector dimensions must match: {dimension_a} vs {dimension_b}{where}")
        self.dimension_a = dimension_a
        self.dimension_b = dimension_b
        self.row_id = row_id


class EmbeddingDeserializationError(CheckpointStoreError):
    """A stored embedding is not the JSON text of an array of finite numbers.

    ``row_id`` names the row (entity or fact id), ``table`` its table.
    """

    def __init__(self, reason: str, *, table: str, row_id: str) -> None:
        super().__init__(f"Failed to deserialize embedding of {table} row {row_id}: {reason}")
        self.reason = reason
        self.table = table
        self.row_id = row_id
