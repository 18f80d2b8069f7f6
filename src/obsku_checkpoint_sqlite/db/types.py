"""Portable column types and SQL functions: the same behaviour on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from typing import Any

from sqlalchemy import REAL, BigInteger, Integer, LargeBinary, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine

UNICODE_LOWER = "obsku_lower"
"""The SQL function the store registers on every SQLite connection: Python's ``str.lower``."""


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


class Blob(TypeDecorator[bytes]):
    """Unbounded bytes for serialized payloads (LangGraph's checkpoints and writes).

    MariaDB's ``BLOB`` stops at 64 KiB; ``LONGBLOB`` holds 4 GiB. sqlite3 and psycopg
    take ``bytes`` (``bytearray``, ``memoryview``) and return ``bytes`` as they are, so no
    conversion runs on them (and the statements that bind them can take the short path of
    ``runtime.fastpath``); ``LargeBinary``'s would wrap each value in the driver's
    ``Binary`` and copy each one read.
    """

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.LONGBLOB())
        return dialect.type_descriptor(LargeBinary())

    def bind_processor(self, dialect: Dialect) -> Any:
        if _takes_bytes_as_they_are(dialect):
            return None
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if _takes_bytes_as_they_are(dialect):
            return None
        return super().result_processor(dialect, coltype)


def _takes_bytes_as_they_are(dialect: Dialect) -> bool:
    return dialect.name == "sqlite" or dialect.driver == "psycopg"


def millis() -> TypeEngine[int]:
    """A millisecond timestamp: 64 bits where a dialect distinguishes, ``INTEGER`` on SQLite."""
    return BigInteger().with_variant(Integer(), "sqlite")


class unicode_lower(FunctionElement[str]):
    """``lower()`` over all of Unicode on every dialect.

    SQLite's own ``lower()`` folds ASCII only, so "ÉCOLE" would not match "école" there
    while it does on PostgreSQL and MariaDB; on SQLite this calls ``UNICODE_LOWER``.
    """

    type = Text()
    inherit_cache = True
    name = "unicode_lower"


@compiles(unicode_lower)
def _lower(element: unicode_lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(unicode_lower, "sqlite")
def _lower_on_sqlite(element: unicode_lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{UNICODE_LOWER}({compiler.process(element.clauses, **kw)})"


class postgresql_variant(FunctionElement[Any]):
    """``postgresql_variant(default, postgresql)``: two forms of one expression, the SQL of
    ``postgresql`` on PostgreSQL and of ``default`` elsewhere."""

    # Untyped: a Boolean would make SQLite and MariaDB compare it with 1 in a WHERE clause.
    type = NullType()
    inherit_cache = True
    name = "postgresql_variant"


@compiles(postgresql_variant)
def _default_variant(element: postgresql_variant, compiler: SQLCompiler, **kw: Any) -> str:
    default, _ = element.clauses
    return compiler.process(default, **kw)


@compiles(postgresql_variant, "postgresql")
def _postgresql_variant(element: postgresql_variant, compiler: SQLCompiler, **kw: Any) -> str:
    _, postgresql = element.clauses
    return compiler.process(postgresql, **kw)


class order_within_key(FunctionElement[Any]):
    """``order_within_key(key, id)``: ORDER BY ``id`` for rows of one ``key``, and on
    PostgreSQL ORDER BY ``key, id``, which only an index ``(key, id)`` gives there (the
    terms may carry ``.desc()``). MariaDB would sort rather than use that index for it."""

    type = NullType()
    inherit_cache = True
    name = "order_within_key"


@compiles(order_within_key)
def _by_id(element: order_within_key, compiler: SQLCompiler, **kw: Any) -> str:
    _, id_ = element.clauses
    return compiler.process(id_, **kw)


@compiles(order_within_key, "postgresql")
def _by_key_then_id(element: order_within_key, compiler: SQLCompiler, **kw: Any) -> str:
    key, id_ = element.clauses
    return f"{compiler.process(key, **kw)}, {compiler.process(id_, **kw)}"


def _is_mariadb(dialect: Dialect) -> bool:
    # Before the first connection the dialect only knows what the URL said.
    return bool(getattr(dialect, "is_mariadb", False)) or dialect.name == "mariadb"


class Embedding(TypeDecorator[Any]):
    """An embedding column: the JSON text of a number array, as the TypeScript package writes it.

    Declared ``BLOB`` on SQLite and ``BYTEA`` on PostgreSQL, as there. The TypeScript package
    binds a string, so SQLite keeps its values with storage class TEXT: on SQLite the value
    passes through as it is (``str`` or ``bytes``), so a row is read and copied byte for byte.
    Elsewhere the column holds the text's UTF-8 bytes (``LONGBLOB`` on MariaDB).
    """

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.LONGBLOB())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, str) and dialect.name != "sqlite":
            return value.encode()
        return value

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return None
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name == "sqlite":
            return None
        return super().result_processor(dialect, coltype)


def confidence() -> TypeEngine[float]:
    """A fact's confidence: ``REAL`` as the TypeScript package declares it.

    That is an 8-byte double on SQLite and a 4-byte ``real`` on PostgreSQL (the TypeScript
    PostgreSQL schema's type, kept so both packages see the same values); MariaDB's
    closest equivalent of SQLite's ``REAL`` is ``DOUBLE``.
    """
    return REAL().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")
