"""Portable column types: one model, the same behaviour on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class Key(TypeDecorator[str]):
    """A bounded string for ids and indexed columns, compared byte for byte everywhere.

    MariaDB and MySQL compare strings case-insensitively and ignore trailing spaces
    under their default collations, so ``"main"`` and ``"Main "`` would be the same
    namespace there and nowhere else. A binary, no-pad collation makes them compare
    as SQLite and PostgreSQL do.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            collation = "utf8mb4_nopad_bin" if _is_mariadb(dialect) else "utf8mb4_0900_bin"
            return dialect.type_descriptor(mysql.VARCHAR(self.length, charset="utf8mb4", collation=collation))
        return dialect.type_descriptor(String(self.length))


class Payload(TypeDecorator[str]):
    """Unbounded text for JSON payloads and message content.

    MariaDB's ``TEXT`` stops at 64 KiB; ``LONGTEXT`` holds 4 GiB.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.LONGTEXT(charset="utf8mb4", collation="utf8mb4_bin"))
        return dialect.type_descriptor(Text())


def millis() -> TypeEngine[int]:
    """A millisecond timestamp: 64 bits where a dialect distinguishes, ``INTEGER`` on SQLite."""
    return BigInteger().with_variant(Integer(), "sqlite")


def _is_mariadb(dialect: Dialect) -> bool:
    # Before the first connection the dialect only knows what the URL said.
    return bool(getattr(dialect, "is_mariadb", False)) or dialect.name == "mariadb"
