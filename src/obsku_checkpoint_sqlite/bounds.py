"""What the stored columns can hold, checked before the database the same way on every dialect.

Ids and names are bounded ``VARCHAR`` keys (``db.models``), counts are 32-bit and times
64-bit integers, text is text. SQLite stores a longer id, a larger number or bytes where
PostgreSQL and MariaDB refuse them, each with an error of its own (a database error, an
``OverflowError`` from the driver, a syntax error for a LIMIT), and pydantic's lax mode
would turn ``b"abc"`` into ``"abc"``. So inputs are checked here, before any connection
is taken: pydantic types for the DTOs and for imported rows, and checks for a method's
plain arguments (``TypeError`` for the wrong type, ``ValueError`` out of range).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# The lengths of db.models' keys (ID_LENGTH, NAME_LENGTH), in characters on every dialect;
# tests/unit/test_bounds.py holds the two in step.
ID_LENGTH = 128
NAME_LENGTH = 255
INT32_MAX = 2**31 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MESSAGE_ID_MAX = 2**53 - 1
"""The largest message id an import may bring (JavaScript's ``Number.MAX_SAFE_INTEGER``).

Message ids are 64-bit and assigned upwards from the highest one stored, on every
dialect; an imported id near 2**63 - 1 would leave ``add_message`` no room (SQLite's
AUTOINCREMENT then fails every insert). Ids the store assigns count up from 1, so an
id past 2**53 comes from elsewhere; below it the TypeScript package, which reads ids
as JavaScript numbers, reads them exactly, and 2**63 - 2**53 ids remain.
"""

Text = Annotated[str, Field(strict=True)]
"""A str, and only a str: not bytes, which lax validation would decode."""
Id = Annotated[str, Field(strict=True, max_length=ID_LENGTH)]
Name = Annotated[str, Field(strict=True, max_length=NAME_LENGTH)]
StoredCount = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX)]
"""A step or token count: a 32-bit ``INTEGER`` column."""
StoredVersion = Annotated[int, Field(strict=True, ge=1, le=INT32_MAX)]
StoredMillis = Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX)]
"""A time in milliseconds: a 64-bit ``BIGINT`` column."""
MessageId = Annotated[int, Field(strict=True, ge=1, le=MESSAGE_ID_MAX)]


def check_count(name: str, value: int | None, *, minimum: int = 0, maximum: int = INT64_MAX) -> None:
    """Refuse a count argument (``limit``, ``keep_last``...) that is not None or an int from
    ``minimum`` to ``maximum`` (by default 2**63 - 1, the most every dialect binds)."""
    if value is None:
        return
    if type(value) is not int:
        raise TypeError(f"{name}: expected an int or None, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(
            f"{name}: must not be negative, got {value}"
            if minimum == 0
            else f"{name}: must be at least {minimum}, got {value}"
        )
    if value > maximum:
        raise ValueError(f"{name}: must be at most {maximum}, got {value}")


def check_millis(name: str, value: int | None) -> None:
    """Refuse a timestamp argument (``before``...) that is not None or an int of 64 bits."""
    if value is None:
        return
    if type(value) is not int:
        raise TypeError(f"{name}: expected milliseconds since the epoch as an int or None, got {type(value).__name__}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{name}: must be a 64-bit number of milliseconds, got {value}")


def check_text(name: str, value: str | None, *, optional: bool = False, max_length: int | None = None) -> None:
    """Refuse an id or name argument that is not a str (or None, where ``optional``), that
    is longer than ``max_length`` (the length of the column it is compared with), or that
    is not valid Unicode.

    Not only tidiness: MariaDB compares a number with a string column numerically, so
    ``delete_session(5)`` would match every id that starts with "5" and a non-digit.
    """
    if isinstance(value, str):
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"{name}: at most {max_length} characters, got {len(value)}")
        # isascii() is O(1) on CPython's compact strings: only non-ASCII text pays for the
        # encode, which finds a lone surrogate a driver would fail to encode, naming nothing.
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"{name}: not valid Unicode (lone surrogate at index {exc.start})") from None
        return
    if optional and value is None:
        return
    expected = "a str or None" if optional else "a str"
    raise TypeError(f"{name}: expected {expected}, got {type(value).__name__}")
