"""The short path: the prebuilt queries run straight on the driver (sqlite3, psycopg, PyMySQL).

SQLAlchemy's ``Connection.execute`` costs several times the driver call it wraps
(cache-key lookup, execution context, event dispatch, result metadata), and a hot
operation runs two or three statements. A statement registered in
``db.queries.PREPARED`` is compiled once per dialect by SQLAlchemy and then handed to
the driver's cursor. Everywhere else, and whenever something needs SQLAlchemy's
execution path (cursor event listeners, echo or engine logging, no open transaction),
it runs through ``Connection.execute``.

Only public SQLAlchemy interfaces decide whether a compiled statement can take the
short path: it must bind no parameter late and have no bind or result processor on
any of its types (``TypeEngine.dialect_impl`` and its ``bind_processor`` and
``result_processor``). A driver error, raised when the statement is sent or when its
rows are fetched, is wrapped by ``DBAPIError.instance`` as ``Connection.execute`` wraps
it, with the connection invalidated where the dialect says it was lost, so the runners
retry and translate it the same way.

On psycopg, ``pipeline`` sends the statements of a write together: the operation reads
their results once, at the end, and the commit follows, two round trips in all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.expression import ClauseElement, Executable

from ..db.queries import PREPARED
from .failures import CommitInterrupted

# psycopg's TransactionStatus.IDLE: no transaction open on the connection.
IDLE = 0

# Set OBSKU_SHORT_PATH=0 to run every statement through SQLAlchemy (the parity tests do).
ENABLED = os.environ.get("OBSKU_SHORT_PATH", "1") != "0"
# The drivers whose connections and cursors the short path drives (all blocking).
DRIVERS = frozenset({"pysqlite", "psycopg", "pymysql"})

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
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(form.sql, args)
    except Exception as exc:
        raise _wrapped(conn, form.sql, args, exc) from exc
    return _DirectResult(cursor, conn, form.sql, args)


def pipeline(conn: Connection) -> contextlib.AbstractContextManager[bool]:
    """Send the statements run inside the block, with the transaction around them, at once.

    On psycopg the block's statements go to the server between ``BEGIN`` and ``COMMIT``
    in one pipeline: one round trip for the whole write. Yields whether it does so: then
    no result may be read inside the block, only registered statements may run there
    (SQLAlchemy reads each result as soon as its statement is sent), and the results
    are there when the block ends, committed. A connection lost on the way raises
    ``CommitInterrupted``: the COMMIT may have reached the server. Elsewhere the block
    runs as it is, in the runner's transaction.
    """
    dialect = conn.dialect
    if dialect.driver != "psycopg" or dialect.is_async or not ENABLED or not _direct_allowed(conn):
        return _NO_PIPELINE
    return _psycopg_pipeline(conn)


class _NoPipeline:
    """The block runs as it is: a context manager that costs nothing on every write."""

    __slots__ = ()

    def __enter__(self) -> bool:
        return False

    def __exit__(self, *exc: object) -> None:
        return None


_NO_PIPELINE = _NoPipeline()


@contextlib.contextmanager
def _psycopg_pipeline(conn: Connection) -> Iterator[bool]:
    dbapi_connection: Any = conn.connection.dbapi_connection
    # psycopg opens a transaction of its own with a round trip; in autocommit mode the
    # BEGIN is one more statement of the pipeline.
    dbapi_connection.autocommit = True
    try:
        with _wrapping_errors(conn, "(pipeline)"), dbapi_connection.pipeline():
            dbapi_connection.cursor().execute("BEGIN")
            yield True
            dbapi_connection.cursor().execute("COMMIT")
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise CommitInterrupted(exc) from exc
        raise
    finally:
        if not conn.invalidated:
            if dbapi_connection.info.transaction_status != IDLE:
                dbapi_connection.rollback()  # a statement failed, or the block raised: no COMMIT ran
            dbapi_connection.autocommit = False


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
    engine = conn.engine
    dispatch = engine.dispatch
    return (
        conn.in_transaction()
        # The engine's logger answers for echo=True and for logging configured to INFO alike.
        and not engine.logger.isEnabledFor(logging.INFO)
        and not dispatch.before_cursor_execute
        and not dispatch.after_cursor_execute
        and not conn.dialect.dispatch.handle_error
    )


class ShortForm:
    """A statement's SQL for the driver, with its parameters' names and defaults."""

    __slots__ = ("args", "defaults", "names", "sql")

    def __init__(self, sql: str, names: tuple[str, ...], defaults: dict[str, Any], *, positional: bool) -> None:
        self.sql = sql
        self.names = names
        self.defaults = defaults
        self.args: Callable[[dict[str, Any]], Any] = self._positional if positional else self._named

    @classmethod
    def of(cls, statement: Executable, dialect: Dialect) -> ShortForm | None:
        """The short form of ``statement``, or None if it needs SQLAlchemy to run."""
        if (
            dialect.is_async
            or dialect.driver not in DRIVERS
            or dialect.paramstyle not in ("qmark", "format", "pyformat")
        ):
            return None
        compiled: Any = cast(ClauseElement, statement).compile(dialect=dialect)
        if compiled.literal_execute_params or compiled.post_compile_params:
            return None
        bind_types = (bind.type for bind in compiled.binds.values())
        if any(_dialect_type(type_, dialect).bind_processor(dialect) is not None for type_ in bind_types):
            return None
        if any(
            _dialect_type(column.type, dialect).result_processor(dialect, None) is not None
            for column in _result_columns(statement)
        ):
            return None
        defaults = dict(compiled.params)
        if compiled.positional:
            return cls(compiled.string, tuple(compiled.positiontup), defaults, positional=True)
        return cls(compiled.string, tuple(defaults), defaults, positional=False)

    def _positional(self, params: dict[str, Any]) -> tuple[Any, ...]:
        defaults = self.defaults
        return tuple(params[name] if name in params else defaults[name] for name in self.names)

    def _named(self, params: dict[str, Any]) -> dict[str, Any]:
        defaults = self.defaults
        return {name: params[name] if name in params else defaults[name] for name in self.names}


def _dialect_type(type_: Any, dialect: Dialect) -> Any:
    return type_.dialect_impl(dialect)


def _result_columns(statement: Executable) -> Iterable[Any]:
    # SELECTs and DML with RETURNING expose their result columns as exported_columns.
    return getattr(statement, "exported_columns", ())


def _wrapped(conn: Connection, sql: str, args: Any, exc: Exception) -> Exception:
    """The driver's error ``exc`` as ``Connection.execute`` would raise it, the connection
    invalidated if the dialect says it was lost; any other exception as it is."""
    dialect = conn.dialect
    error_class = dialect.loaded_dbapi.Error
    if not isinstance(exc, error_class):
        return exc
    lost = bool(dialect.is_disconnect(exc, conn.connection.dbapi_connection, None))
    if lost:
        conn.invalidate(exc)
    return DBAPIError.instance(sql, args, exc, error_class, connection_invalidated=lost, dialect=dialect)


@contextlib.contextmanager
def _wrapping_errors(conn: Connection, sql: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        raise _wrapped(conn, sql, None, exc) from exc


class _DirectResult:
    """The part of ``CursorResult`` the operations use, over a driver's cursor."""

    __slots__ = ("_args", "_conn", "_cursor", "_sql")

    def __init__(self, cursor: Any, conn: Connection, sql: str, args: Any) -> None:
        self._cursor = cursor
        self._conn = conn
        self._sql = sql
        self._args = args

    def __iter__(self) -> Any:
        return iter(self.all())

    def first(self) -> Any:
        # Closing resets the statement now rather than when the cursor is collected.
        cursor = self._cursor
        try:
            row = cursor.fetchone()
        except Exception as exc:
            raise _wrapped(self._conn, self._sql, self._args, exc) from exc
        cursor.close()
        return row

    def all(self) -> list[Any]:
        try:
            return self._cursor.fetchall()  # type: ignore[no-any-return]
        except Exception as exc:
            raise _wrapped(self._conn, self._sql, self._args, exc) from exc

    def one_or_none(self) -> Any:
        cursor = self._cursor
        try:
            rows = cursor.fetchmany(2)
        except Exception as exc:
            raise _wrapped(self._conn, self._sql, self._args, exc) from exc
        cursor.close()
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
