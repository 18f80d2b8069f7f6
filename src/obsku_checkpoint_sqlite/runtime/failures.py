"""Database failures: which are retried, and the store error each becomes."""

from __future__ import annotations

import random
import time
from typing import Any

from sqlalchemy.exc import DBAPIError

from ..errors import NUL_REFUSED, CheckpointStoreError, DatabaseUnavailableError

RETRY_DEADLINE_S = 30.0
# MariaDB: deadlock, lock wait timeout. PostgreSQL: serialization failure, deadlock.
_MYSQL_RETRY_CODES = {1213, 1205}
_POSTGRES_RETRY_STATES = {"40001", "40P01"}


def retry_delay(exc: DBAPIError, dialect_name: str, attempt: int, started: float, *, write: bool) -> float | None:
    """How long to wait before retrying after ``exc``, or None to give up.

    Lock contention is retried: the transaction was rolled back, so running it again
    is safe. A lost connection is retried for reads only: a write whose commit was
    lost in transit may have happened, and running it twice would duplicate it.
    """
    if time.monotonic() - started > RETRY_DEADLINE_S:
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


def translate(exc: DBAPIError) -> CheckpointStoreError | ValueError:
    """The store's error for a SQLAlchemy/DBAPI error that was not retried."""
    if exc.connection_invalidated:
        return DatabaseUnavailableError(f"Lost the connection to the database: {exc.orig}")
    if isinstance(exc.orig, OSError) or _looks_unreachable(exc):
        return DatabaseUnavailableError(f"Cannot reach the database: {exc.orig}")
    refused = _text_with_nul(exc)
    if refused is not None:
        # An id or name argument: writes check their text fields by name before this.
        return ValueError(f"{refused!r:.80}: {NUL_REFUSED}, so no row there holds it")
    return CheckpointStoreError(f"Database error: {exc.orig}")


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
