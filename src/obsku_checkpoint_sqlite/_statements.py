"""Prebuilt statements, and a short way to run them on SQLite's stdlib driver.

SQLAlchemy's ``Connection.execute`` costs ten to fifteen times the ``sqlite3`` call it
wraps (cache-key lookup, execution context, event dispatch, result metadata; measured
with ``benchmarks/``), and a hot operation runs two or three statements: that
overhead, not SQLite, was most of the cost of an append or a read. A ``Prepared`` statement is
still the Core statement written once in ``_operations``; on the ``pysqlite``
dialect it is compiled once by SQLAlchemy and then handed straight to the driver's
cursor. Everywhere else, and whenever something needs SQLAlchemy's execution path
(cursor event listeners, echo, no open transaction), it runs through
``Connection.execute`` as before.

The short path is taken only for statements whose compiled form needs nothing from
SQLAlchemy at execution time: positional parameters, no bind or result processors,
no parameters rendered late. A driver error is wrapped into SQLAlchemy's
``DBAPIError`` exactly as ``Connection.execute`` would wrap it, so the runners retry
and translate it the same way.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError


class Prepared:
    """A Core statement built once, with its SQLite-compiled form cached per dialect."""

    __slots__ = ("_compiled", "column_keys", "statement")

    def __init__(self, statement: Any, column_keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        # An INSERT's columns, which SQLAlchemy otherwise takes from each call's keys.
        self.column_keys = list(column_keys) if column_keys is not None else None
        # Weak: tests and tools open many engines, each with a dialect of its own.
        self._compiled: weakref.WeakKeyDictionary[Dialect, _Compiled | None] = weakref.WeakKeyDictionary()

    def execute(self, conn: Connection, params: dict[str, Any]) -> Any:
        """Run with ``params``; the result has ``first``, ``one``, ``one_or_none``, ``all``,
        ``scalar_one``, ``rowcount`` and ``inserted_primary_key`` as SQLAlchemy's has.

        Rows from the short path are plain tuples: callers read them by position.
        """
        dialect = conn.dialect
        try:
            compiled = self._compiled[dialect]
        except KeyError:
            compiled = self._compiled[dialect] = _Compiled.of(self.statement, dialect, self.column_keys)
        if compiled is None or not _direct_allowed(conn):
            return conn.execute(self.statement, params)
        args = compiled.args(params)
        try:
            cursor = conn.connection.dbapi_connection.execute(compiled.sql, args)  # type: ignore[union-attr]
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(compiled.sql, args, exc, dialect.loaded_dbapi.Error, dialect=dialect) from exc
        return _DirectResult(cursor)


_PREPARED: dict[tuple[Any, tuple[str, ...] | None], Prepared] = {}


def execute(conn: Connection, statement: Any, params: dict[str, Any]) -> Any:
    """``conn.execute(statement, params)``, by the short path where it applies.

    ``statement`` must be built once (at import, or cached): its compiled forms are
    kept for the life of the process. An INSERT's columns are the keys of ``params``.
    """
    keys = tuple(params) if statement.is_insert and statement.select is None else None
    try:
        prepared = _PREPARED[statement, keys]
    except KeyError:
        prepared = _PREPARED[statement, keys] = Prepared(statement, keys)
    return prepared.execute(conn, params)


def _direct_allowed(conn: Connection) -> bool:
    # Listeners on cursor execution (statement counters, fault injection) and echo
    # must see every statement; outside a transaction SQLAlchemy must autobegin.
    dispatch = conn.engine.dispatch
    return (
        conn.in_transaction()
        # A SQLAlchemy without this private flag takes the ordinary path.
        and not getattr(conn, "_echo", True)
        and not dispatch.before_cursor_execute
        and not dispatch.after_cursor_execute
        and not conn.dialect.dispatch.handle_error
    )


class _Compiled:
    __slots__ = ("defaults", "names", "sql")

    def __init__(self, sql: str, names: tuple[str, ...], defaults: dict[str, Any]) -> None:
        self.sql = sql
        self.names = names
        self.defaults = defaults

    @classmethod
    def of(cls, statement: Any, dialect: Dialect, column_keys: list[str] | None) -> _Compiled | None:
        """The driver-ready form of ``statement``, or None if it needs SQLAlchemy to run."""
        if dialect.name != "sqlite" or dialect.driver != "pysqlite" or dialect.paramstyle != "qmark":
            return None
        compiled: Any = statement.compile(dialect=dialect, column_keys=column_keys)
        try:
            needs_sqlalchemy = (
                not compiled.positional
                or compiled._bind_processors
                or compiled.literal_execute_params
                or compiled.post_compile_params
                or any(
                    entry[3]._cached_result_processor(dialect, None) is not None for entry in compiled._result_columns
                )
            )
        except AttributeError:
            # These are SQLAlchemy internals (checked on 2.1): where they differ, the
            # statement takes the ordinary, slower path instead of failing.
            return None
        if needs_sqlalchemy:
            return None
        return cls(compiled.string, tuple(compiled.positiontup), dict(compiled.params))

    def args(self, params: dict[str, Any]) -> tuple[Any, ...]:
        defaults = self.defaults
        return tuple(params[name] if name in params else defaults[name] for name in self.names)


class _DirectResult:
    """The part of ``CursorResult`` the operations use, over a ``sqlite3`` cursor."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def __iter__(self) -> Any:
        return iter(self._cursor.fetchall())

    def first(self) -> Any:
        # Closing resets the statement now rather than when the cursor is collected.
        row = self._cursor.fetchone()
        self._cursor.close()
        return row

    def all(self) -> list[Any]:
        return self._cursor.fetchall()  # type: ignore[no-any-return]

    def one_or_none(self) -> Any:
        rows = self._cursor.fetchmany(2)
        self._cursor.close()
        if len(rows) > 1:
            raise _multiple_rows()
        return rows[0] if rows else None

    def one(self) -> Any:
        row = self.one_or_none()
        if row is None:
            from sqlalchemy.exc import NoResultFound

            raise NoResultFound("No row was found when one was required")
        return row

    def scalar_one(self) -> Any:
        return self.one()[0]

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount  # type: ignore[no-any-return]

    @property
    def inserted_primary_key(self) -> tuple[Any, ...]:
        return (self._cursor.lastrowid,)


def _multiple_rows() -> Exception:
    from sqlalchemy.exc import MultipleResultsFound

    return MultipleResultsFound("Multiple rows were found when one or none was required")
