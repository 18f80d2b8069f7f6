"""Database failures: which are retried, and the store error each becomes."""

from __future__ import annotations

import random
import time
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from ..errors import (
    NUL_REFUSED,
    CheckpointCorruptionError,
    CheckpointStoreError,
    DatabaseUnavailableError,
    LockTimeoutError,
)

DEFAULT_LOCK_TIMEOUT = 30.0
"""Seconds a store retries an operation that finds its rows locked (``lock_timeout``)."""
# MariaDB: deadlock, lock wait timeout. PostgreSQL: serialization failure, deadlock.
_MYSQL_RETRY_CODES = {1213, 1205}
_POSTGRES_RETRY_STATES = {"40001", "40P01"}


def driver_errors(dialect: Dialect) -> tuple[type[Exception], ...]:
    """The errors a runner catches around an operation, to retry or translate.

    SQLAlchemy wraps the driver's errors in ``DBAPIError`` where it runs the statement.
    The driver's own errors arrive unwrapped where it does not: rows fetched on SQLite's
    short path (``fastpath``), statements on a raw connection (``VACUUM``). And a driver
    that cannot decode a stored text raises ``UnicodeDecodeError``, which SQLAlchemy
    never wraps. ``as_dbapi_error`` then gives all of them one form.
    """
    return (DBAPIError, dialect.loaded_dbapi.Error, UnicodeDecodeError)


def as_dbapi_error(exc: Exception, dialect: Dialect) -> DBAPIError:
    """One of ``driver_errors`` as SQLAlchemy wraps a driver's error, for ``retry_delay`` and ``translate``."""
    if isinstance(exc, DBAPIError):
        return exc
    wrapped = DBAPIError.instance(None, None, exc, dialect.loaded_dbapi.Error, dialect=dialect)
    assert isinstance(wrapped, DBAPIError)
    return wrapped


class CommitInterrupted(Exception):
    """A driver error raised while committing: a write's outcome is then unknown."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def unwrap(failure: Exception, dialect: Dialect) -> tuple[DBAPIError, bool]:
    """A runner's caught failure as a ``DBAPIError``, and whether it interrupted a commit."""
    if isinstance(failure, CommitInterrupted):
        return as_dbapi_error(failure.error, dialect), True
    return as_dbapi_error(failure, dialect), False


def retry_delay(
    exc: DBAPIError,
    dialect_name: str,
    attempt: int,
    started: float,
    *,
    write: bool,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> float | None:
    """How long to wait before retrying after ``exc``, or None to give up.

    Lock contention is retried until ``lock_timeout`` seconds have passed since
    ``started``: the transaction was rolled back, so running it again is safe. A lost
    connection is retried once, unless ``write`` says it interrupted a write's commit:
    that commit may have happened, and running it twice would duplicate it. (A
    connection lost before the commit was sent takes its transaction with it.)
    """
    if time.monotonic() - started >= lock_timeout:
        return None
    if exc.connection_invalidated:
        return 0.0 if (not write and attempt <= 1) else None
    if not _is_contention(exc, dialect_name):
        return None
    # Full jitter keeps competing writers from retrying in lockstep.
    return random.uniform(0, min(0.5, 0.005 * 2**attempt))


def _is_contention(exc: DBAPIError, dialect_name: str) -> bool:
    original = exc.orig
    if dialect_name == "sqlite":
        message = str(original).lower()
        return "database is locked" in message or "database is busy" in message
    if dialect_name in ("mysql", "mariadb"):
        code = original.args[0] if original is not None and original.args else None
        return code in _MYSQL_RETRY_CODES
    if dialect_name == "postgresql":
        state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
        return state in _POSTGRES_RETRY_STATES
    return False


def translate(
    exc: DBAPIError,
    dialect_name: str | None = None,
    *,
    waited: float | None = None,
    lock_timeout: float | None = None,
    outcome_unknown: bool = False,
) -> CheckpointStoreError | ValueError:
    """The store's error for a SQLAlchemy/DBAPI error that was not retried.

    Given the dialect, how long the operation ``waited`` and the store's ``lock_timeout``,
    lock contention that outlasted it becomes ``LockTimeoutError`` saying so; with
    ``outcome_unknown``, a connection lost while committing a write says the write may
    have been applied.
    """
    damage = _stored_damage(exc)
    if damage is not None:
        return CheckpointCorruptionError(damage, str(exc.orig))
    if dialect_name is not None and waited is not None and _is_contention(exc, dialect_name):
        return LockTimeoutError(waited, lock_timeout or DEFAULT_LOCK_TIMEOUT, str(exc.orig))
    if exc.connection_invalidated and outcome_unknown:
        return DatabaseUnavailableError(
            f"Lost the connection to the database while committing, so the write may or may not "
            f"have been applied: read it back before writing it again ({exc.orig})"
        )
    if exc.connection_invalidated:
        return DatabaseUnavailableError(f"Lost the connection to the database: {exc.orig}")
    if isinstance(exc.orig, OSError) or _looks_unreachable(exc):
        return DatabaseUnavailableError(f"Cannot reach the database: {exc.orig}")
    refused = _text_with_nul(exc)
    if refused is not None:
        # An id or name argument: writes check their text fields by name before this.
        return ValueError(f"{refused!r:.80}: {NUL_REFUSED}, so no row there holds it")
    return CheckpointStoreError(f"Database error: {exc.orig}")


def _stored_damage(exc: DBAPIError) -> str | None:
    """What is wrong with the stored data, when the driver failed reading it."""
    original = exc.orig
    if isinstance(original, UnicodeDecodeError):
        return "stored text is not valid UTF-8"
    message = str(original)
    # sqlite3 raises OperationalError("Could not decode to UTF-8 column 'x' with text ...").
    if "could not decode to utf-8" in message.lower():
        return "stored text is not valid UTF-8"
    name = getattr(original, "sqlite_errorname", None)  # Python 3.11 and later
    if name == "SQLITE_CORRUPT" or "database disk image is malformed" in message:
        return "the SQLite database file is damaged (run PRAGMA integrity_check on it)"
    return None


def _text_with_nul(exc: DBAPIError) -> str | None:
    """The bound text holding a NUL, when that is what the database refused (PostgreSQL)."""
    if "0x00" not in str(exc.orig):  # psycopg and asyncpg both name the byte so
        return None
    pending: list[Any] = [exc.params]
    while pending:
        value = pending.pop()
        if isinstance(value, str) and "\x00" in value:
            return value
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
    return None


def _looks_unreachable(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return any(
        phrase in message
        for phrase in ("connection refused", "can't connect", "could not connect", "unable to open database")
    )


def is_foreign_key_violation(exc: DBAPIError) -> bool:
    """Whether the database refused a row whose foreign key names no row (a missing session)."""
    return _violation(exc) == "foreign key"


def is_unique_violation(exc: DBAPIError) -> bool:
    """Whether the database refused a row that repeats a unique key."""
    return _violation(exc) == "unique"


def _violation(exc: DBAPIError) -> str | None:
    original = exc.orig
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if state is not None:  # PostgreSQL
        return {"23503": "foreign key", "23505": "unique"}.get(state)
    code = original.args[0] if original is not None and original.args else None
    if isinstance(code, int):  # MariaDB and MySQL
        return {1452: "foreign key", 1062: "unique"}.get(code)
    message = str(original)  # SQLite
    if message.startswith("FOREIGN KEY constraint failed"):
        return "foreign key"
    return "unique" if message.startswith("UNIQUE constraint failed") else None
