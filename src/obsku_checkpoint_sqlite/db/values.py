"""What the store writes besides the caller's data: ids, timestamps, and text and JSON fit for a column."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection

if sys.version_info >= (3, 14):
    from uuid import uuid7
else:
    from uuid6 import uuid7

from .. import jsonplus
from ..errors import NUL_REFUSED, PayloadTooLargeError


def now_ms() -> int:
    """Milliseconds since the Unix epoch, the unit of every timestamp in the schema."""
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A new session or checkpoint id: a UUIDv7, which sorts by creation time.

    Random (v4) ids land anywhere in the primary-key index, so past the page cache each
    insert reads and rewrites a cold page; time-ordered ids append at the index's end.
    """
    return str(uuid7())


def reject_unstorable_text(conn: Connection, fields: Mapping[str, str | None]) -> None:
    """Refuse text a column cannot hold, naming the field, before anything is written.

    NUL characters where the database cannot store them (PostgreSQL text), and on every
    dialect lone surrogates, which are not Unicode: left to the driver, they fail with a
    bare ``UnicodeEncodeError`` that names no field.
    """
    no_nul = conn.dialect.name == "postgresql"
    for name, value in fields.items():
        if value is None:
            continue
        if no_nul and "\x00" in value:
            raise ValueError(f"{name}: {NUL_REFUSED}")
        # isascii() is O(1) on CPython's compact strings: only non-ASCII text pays for the encode.
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"{name}: string is not valid Unicode (lone surrogate at index {exc.start})") from None


# The most one statement may carry. MariaDB and MySQL refuse a longer one by dropping the
# connection; their setting is read once per connection (it is fixed for a connection's
# life, and SQLAlchemy clears ``Connection.info`` when the connection is replaced).
_PACKET_KEY = "obsku_max_allowed_packet"
_PACKET_SETTING = "max_allowed_packet"
# PostgreSQL refuses a protocol message over 1 GB (MaxAllocSize), whatever its settings.
POSTGRES_MESSAGE_LIMIT = 2**30 - 1
_POSTGRES_SETTING = "PostgreSQL's fixed 1 GB limit on a message"
# The SQL text and the small columns of a statement, generously.
STATEMENT_ALLOWANCE = 64 * 1024
# MySQL drivers send a value quoted, with these bytes escaped to two.
_ESCAPED = [bytes([byte]) for byte in b"\x00\n\r\x1a'\"\\"]


def statement_limit(conn: Connection) -> tuple[int, str] | None:
    """The most bytes one statement may carry on ``conn``'s server and the setting that says
    so, or None where no limit applies before the values' own (SQLite)."""
    name = conn.dialect.name
    if name in ("mysql", "mariadb"):
        info = conn.info
        limit = info.get(_PACKET_KEY)
        if limit is None:
            limit = info[_PACKET_KEY] = int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one())
        return limit, _PACKET_SETTING
    if name == "postgresql":
        return POSTGRES_MESSAGE_LIMIT, _POSTGRES_SETTING
    return None


def check_statement_size(conn: Connection, row: Mapping[str, Any], *, where: str | None = None) -> int:
    """Refuse a write whose text and bytes values (``row``: column -> value) make a statement
    longer than the server accepts, with ``PayloadTooLargeError`` before anything is sent.

    Returns an upper bound of the bytes the values take in a statement (0 where no limit
    applies), for callers that batch rows. Costs a sum of lengths: values are encoded and
    counted exactly only when four bytes a character could exceed the limit. On SQLite,
    which has no statement limit, it costs a name comparison.
    """
    if conn.dialect.name == "sqlite":
        return 0
    limit = statement_limit(conn)
    if limit is None:
        return 0
    payloads = [value for value in row.values() if type(value) is str or type(value) is bytes]
    # A character takes at most four bytes in UTF-8, escaped or not; a byte at most two.
    bound = sum(4 * len(value) + 2 for value in payloads)
    if bound + STATEMENT_ALLOWANCE <= limit[0]:
        return bound
    encoded: list[bytes] = [
        value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value for value in payloads
    ]
    size = sum(len(value) + 2 for value in encoded)
    if limit[1] == _PACKET_SETTING:
        size += sum(value.count(character) for value in encoded for character in _ESCAPED)
    if size + STATEMENT_ALLOWANCE > limit[0]:
        raise PayloadTooLargeError(size, limit[0], limit[1], where=where)
    return size


def encode_models(value: BaseModel | Sequence[BaseModel] | None, field: str) -> str | None:
    """A model, or a list of them, as the original's stored JSON (camelCase, unset keys omitted)."""
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return jsonplus.dumps(_dump_model(value), field=field)
    return jsonplus.dumps([_dump_model(item) for item in value], field=field)


def encode_optional(value: Any, field: str) -> str | None:
    """A JSON column's text for ``value``, or NULL for None."""
    return None if value is None else jsonplus.dumps(value, field=field)


def _dump_model(model: BaseModel) -> Any:
    return model.model_dump(by_alias=True, exclude_none=True)
