"""The short path: the prebuilt queries run straight on SQLite's stdlib driver.

SQLAlchemy's ``Connection.execute`` costs ten to fifteen times the ``sqlite3`` call it
wraps (cache-key lookup, execution context, event dispatch, result metadata), and a
hot operation runs two or three statements. A statement registered in
``db.queries.PREPARED`` is compiled once per dialect by SQLAlchemy and then handed to
the driver's cursor. Everywhere else, and whenever something needs SQLAlchemy's
execution path (cursor event listeners, echo or engine logging, no open transaction),
it runs through ``Connection.execute``.

Only public SQLAlchemy interfaces decide whether a compiled statement can take the
short path: it must be positional, bind no parameter late, and have no bind or result
processor on any of its types (``TypeEngine.dialect_impl`` and its ``bind_processor``
and ``result_processor``). A driver error is wrapped by ``DBAPIError.instance``, as
``Connection.execute`` wraps it, so the runners retry and translate it the same way.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.expression import ClauseElement, Executable

from ..db.queries import PREPARED

# Set OBSKU_SHORT_PATH=0 to run every statement through SQLAlchemy (the parity tests do).
ENABLED = os.environ.get("OBSKU_SHORT_PATH", "1") != "0"

_ENGINE_LOGGER = logging.getLogger("sqlalchemy.engine")
# Per dialect, weakly: tests and tools open many engines, each with a dialect of its own.
_FORMS: weakref.WeakKeyDictionary[Dialect, dict[Executable, ShortForm | None]] = weakref.WeakKeyDictionary()


def execute(conn: Connection, statement: Executable, params: dict[str, Any]) -> Any:
    """``conn.execute(statement, params)``, by the short path where it applies.

    The result has ``first``, ``one``, ``one_or_none``, ``all``, ``scalar_one``,
    ``rowcount`` and ``inserted_primary_key`` as SQLAlchemy's has; rows from the short
    path are plain tuples, so callers read them by position.
    """
    form = short_form(statement, conn.dialect)
    if form is None or not _direct_allowed(conn):
        return conn.execute(statement, params)
    args = form.args(params)
    dialect = conn.dialect
    try:
        cursor = conn.connection.dbapi_connection.execute(form.sql, args)  # type: ignore[union-attr]
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(form.sql, args, exc, dialect.loaded_dbapi.Error, dialect=dialect) from exc
    return _DirectResult(cursor)


def short_form(statement: Executable, dialect: Dialect) -> ShortForm | None:
    """The driver-ready form of a registered ``statement`` on ``dialect``, or None."""
    forms = _FORMS.get(dialect)
    if forms is None:
        forms = _FORMS[dialect] = {}
    try:
        return forms[statement]
    except KeyError:
        form = forms[statement] = ShortForm.of(statement, dialect) if ENABLED and statement in PREPARED else None
        return form


def _direct_allowed(conn: Connection) -> bool:
    # Listeners on cursor execution (statement counters, fault injection) and logging
    # must see every statement; outside a transaction SQLAlchemy must autobegin.
    dispatch = conn.engine.dispatch
    return (
        conn.in_transaction()
        and not conn.engine.echo
        and not _ENGINE_LOGGER.isEnabledFor(logging.INFO)
        and not dispatch.before_cursor_execute
        and not dispatch.after_cursor_execute
        and not conn.dialect.dispatch.handle_error
    )


class ShortForm:
    """A statement's SQL for the driver, with its parameter names in position order."""

    __slots__ = ("defaults", "names", "sql")

    def __init__(self, sql: str, names: tuple[str, ...], defaults: dict[str, Any]) -> None:
        self.sql = sql
        self.names = names
        self.defaults = defaults

    @classmethod
    def of(cls, statement: Executable, dialect: Dialect) -> ShortForm | None:
        """The short form of ``statement``, or None if it needs SQLAlchemy to run."""
        if dialect.name != "sqlite" or dialect.driver != "pysqlite" or dialect.paramstyle != "qmark":
            return None
        compiled: Any = cast(ClauseElement, statement).compile(dialect=dialect)
        if not compiled.positional or compiled.literal_execute_params or compiled.post_compile_params:
            return None
        bind_types = (bind.type for bind in compiled.binds.values())
        if any(_dialect_type(type_, dialect).bind_processor(dialect) is not None for type_ in bind_types):
            return None
        if any(
            _dialect_type(column.type, dialect).result_processor(dialect, None) is not None
            for column in _result_columns(statement)
        ):
            return None
        return cls(compiled.string, tuple(compiled.positiontup), dict(compiled.params))

    def args(self, params: dict[str, Any]) -> tuple[Any, ...]:
        defaults = self.defaults
        return tuple(params[name] if name in params else defaults[name] for name in self.names)


def _dialect_type(type_: Any, dialect: Dialect) -> Any:
    return type_.dialect_impl(dialect)


def _result_columns(statement: Executable) -> Iterable[Any]:
    # SELECTs and DML with RETURNING expose their result columns as exported_columns.
    return getattr(statement, "exported_columns", ())


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
            raise MultipleResultsFound("Multiple rows were found when one or none was required")
        return rows[0] if rows else None

    def one(self) -> Any:
        row = self.one_or_none()
        if row is None:
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
