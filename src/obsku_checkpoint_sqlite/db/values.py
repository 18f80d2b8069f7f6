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
from ..errors import NUL_REFUSED


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
