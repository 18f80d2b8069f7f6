"""SQLite connections: the pragmas every connection needs, and ``BEGIN IMMEDIATE`` for writers."""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import Connection, Engine, event

from ..db.types import UNICODE_LOWER

# The longest one attempt waits for a lock; the runner retries attempts until the
# store's lock_timeout has passed.
SQLITE_BUSY_TIMEOUT_MS = 10_000
# The engines already set up, with their connect listeners. A caller's engine shared by
# several stores keeps the first store's lock timeout.
_CONFIGURED: weakref.WeakKeyDictionary[Engine, Any] = weakref.WeakKeyDictionary()
# The execution option that marks a connection's next transaction as a write.
WRITE_OPTION = "obsku_write"


def configure_sqlite_engine(engine: Engine, *, owned: bool, lock_timeout: float) -> None:
    """Install the connection set-up and transaction control on a SQLite ``engine``, once.

    Applied to engines the caller built too: foreign keys are off in SQLite unless every
    connection turns them on, and the cascades depend on them. A caller's engine gets
    SQLAlchemy's documented ``begin`` event recipe; an engine the store created gets the
    cheaper dialect hooks of ``_install_dialect_begin`` instead.
    """
    if engine in _CONFIGURED:
        return
    busy_timeout_ms = min(SQLITE_BUSY_TIMEOUT_MS, round(lock_timeout * 1000))

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        _set_up_connection(dbapi_connection, busy_timeout_ms)

    _CONFIGURED[engine] = on_connect
    event.listen(engine, "connect", on_connect)
    if owned:
        _install_dialect_begin(engine)
    else:
        event.listen(engine, "begin", _begin_by_event)
    # Connections made before the listener was installed missed the pragmas.
    engine.pool.dispose()


def _set_up_connection(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    # The driver must not issue its own BEGIN: the store chooses the kind.
    dbapi_connection.isolation_level = None
    # SQLite's lower() folds ASCII only; searches fold all of Unicode, as the servers do.
    dbapi_connection.create_function(UNICODE_LOWER, 1, _unicode_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA journal_mode")
        journal_mode = cursor.fetchone()[0]
        if journal_mode != "memory":
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL loses no committed write when a process dies;
            # only a power failure can take back the last transactions.
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _unicode_lower(text: object) -> object:
    return text.lower() if isinstance(text, str) else text


def _begin_statement(write: object) -> str:
    # A writer takes the write lock up front, so the busy timeout applies to it; a
    # deferred transaction that later upgrades can fail at once with SQLITE_BUSY.
    return "BEGIN IMMEDIATE" if write else "BEGIN"


def _begin_by_event(conn: Connection) -> None:
    conn.exec_driver_sql(_begin_statement(conn.get_execution_options().get(WRITE_OPTION)))


def _install_dialect_begin(engine: Engine) -> None:
    """``BEGIN IMMEDIATE`` through the dialect of an engine the store created.

    Any Connection event listener makes every statement dispatch events, which cost more
    than the BEGIN itself on a short read. The dialect's hooks see the write option as it
    is set (kept on the pooled connection until it returns to the pool) and issue the
    BEGIN, whose errors SQLAlchemy wraps and translates as usual. The engine, and so its
    dialect, belongs to the store: nothing else sees these hooks.
    """
    dialect = engine.dialect
    set_options = dialect.set_connection_execution_options

    def set_connection_execution_options(connection: Connection, opts: Any) -> None:
        if WRITE_OPTION in opts:
            connection.connection.info[WRITE_OPTION] = bool(opts[WRITE_OPTION])
        set_options(connection, opts)

    def do_begin(dbapi_connection: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(_begin_statement(dbapi_connection.info.get(WRITE_OPTION)))
        finally:
            cursor.close()

    dialect.set_connection_execution_options = set_connection_execution_options  # type: ignore[method-assign]
    dialect.do_begin = do_begin  # type: ignore[method-assign]
    event.listen(engine, "checkin", _forget_write_option)


def _forget_write_option(_dbapi_connection: Any, record: Any) -> None:
    record.info.pop(WRITE_OPTION, None)
