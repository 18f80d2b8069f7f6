"""Engines and runners: where a database operation meets a connection and a transaction.

An operation is a plain function ``op(conn, *args)`` over a synchronous SQLAlchemy
``Connection``. A runner opens a connection, begins a transaction, calls the operation,
commits, and on failure rolls back, retries what is safe to retry and translates
SQLAlchemy's errors into the store's. The sync store uses ``SyncRunner``; the async
store uses ``ThreadRunner`` on SQLite (bounded operations on the event loop when they
need not wait, the rest in a worker thread: one hop per operation, not one per
statement as aiosqlite would take) and ``AsyncEngineRunner`` on an ``AsyncEngine``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool, StaticPool

from .errors import NUL_REFUSED, CheckpointStoreError, DatabaseUnavailableError, DriverNotInstalledError

T = TypeVar("T")
Operation = Callable[..., T]

DEFAULT_URL = "sqlite:///./checkpoints.db"
URL_ENVIRONMENT_VARIABLE = "OBSKU_CHECKPOINT_URL"

# Plain URLs name a backend; these are the drivers used for each face.
_SYNC_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}
_ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "psycopg", "mysql": "aiomysql", "mariadb": "aiomysql"}
_EXTRAS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}

SQLITE_BUSY_TIMEOUT_MS = 10_000
# The largest page an async SQLite operation may read on the event loop (see ThreadRunner).
INLINE_PAGE_ROWS = 100
# Inline writes between two WAL checkpoints in a worker thread: a few hundred pages.
WAL_CHECKPOINT_EVERY = 100

logger = logging.getLogger("obsku_checkpoint_sqlite")
_WRITE_OPTION = "obsku_write"
_RETRY_DEADLINE_S = 30.0


def normalize_url(url: str | URL, *, for_async: bool) -> URL:
    """Give a plain URL (``postgresql://``, ``mariadb://``...) the driver for the face using it.

    A URL that names a driver explicitly is returned as given.
    """
    parsed = make_url(url)
    backend = "postgresql" if parsed.drivername == "postgres" else parsed.drivername
    drivers = _ASYNC_DRIVERS if for_async else _SYNC_DRIVERS
    if "+" not in backend and backend in drivers:
        parsed = parsed.set(drivername=f"{backend}+{drivers[backend]}")
    if parsed.get_backend_name() in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def sqlite_url(path: str | os.PathLike[str]) -> URL:
    """The URL of a SQLite database file, or of a private in-memory one for ``":memory:"``."""
    text = os.fspath(path)
    return make_url("sqlite://" if text in ("", ":memory:") else f"sqlite:///{text}")


def is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_sync_engine(url: str | URL, **options: Any) -> Engine:
    """A synchronous engine configured for the store (SQLite pragmas, pre-ping on servers)."""
    parsed = normalize_url(url, for_async=False)
    if parsed.get_backend_name() == "sqlite":
        # Worker threads of the async face share the pool.
        options.setdefault("connect_args", {}).setdefault("check_same_thread", False)
    engine = _build(create_engine, parsed, _store_options(parsed, options))
    configure_engine(engine)
    return engine


def create_async_store_engine(url: str | URL, **options: Any) -> AsyncEngine:
    """An asyncio engine for a server database (or an explicit ``sqlite+aiosqlite`` URL)."""
    parsed = normalize_url(url, for_async=True)
    engine = _build(create_async_engine, parsed, _store_options(parsed, options))
    configure_engine(engine.sync_engine)
    return engine


def _store_options(url: URL, options: dict[str, Any]) -> dict[str, Any]:
    """The engine options the store needs on ``url``'s backend, under the caller's own."""
    if url.get_backend_name() != "sqlite":
        options.setdefault("pool_pre_ping", True)
    elif is_memory_sqlite(url):
        # One connection, shared: a second one would see a different, empty database.
        options.setdefault("poolclass", StaticPool)
    else:
        _create_private_file(url)
    return options


def configure_engine(engine: Engine) -> None:
    """Install the SQLite connection set-up and transaction control on ``engine``, once.

    Applied to engines the caller built too: foreign keys are off in SQLite unless
    every connection turns them on, and the cascades depend on them.
    """
    if engine.dialect.name != "sqlite" or event.contains(engine, "connect", _on_sqlite_connect):
        return
    event.listen(engine, "connect", _on_sqlite_connect)
    _install_transaction_control(engine)
    # Connections made before the listener was installed missed the pragmas.
    engine.pool.dispose()


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver must not issue its own BEGIN: the dialect's do_begin chooses the kind.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode")
        journal_mode = cursor.fetchone()[0]
        if journal_mode != "memory":
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL loses no committed write when a process dies;
            # only a power failure can take back the last transactions.
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _install_transaction_control(engine: Engine) -> None:
    """Make ``BEGIN`` on ``engine`` a ``BEGIN IMMEDIATE`` on connections marked for writing.

    A writer takes the write lock up front, so the busy timeout applies to it; a
    deferred transaction that later upgrades can fail at once with SQLITE_BUSY. A
    connection is marked by the execution option ``obsku_write=True``.

    This is done in the dialect, not with SQLAlchemy's "begin" event: any Connection
    event listener makes every statement and every connection dispatch events, which
    cost more than the BEGIN itself on a short read. The dialect's own hooks get the
    option as it is set (kept on the pooled connection until it goes back to the pool)
    and the BEGIN, whose errors SQLAlchemy then wraps and translates as usual.
    """
    dialect = engine.dialect
    set_options = dialect.set_connection_execution_options

    def set_connection_execution_options(connection: Connection, opts: Any) -> None:
        if _WRITE_OPTION in opts:
            connection.connection.info[_WRITE_OPTION] = bool(opts[_WRITE_OPTION])
        set_options(connection, opts)

    def do_begin(dbapi_connection: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE" if dbapi_connection.info.get(_WRITE_OPTION) else "BEGIN")
        finally:
            cursor.close()

    dialect.set_connection_execution_options = set_connection_execution_options  # type: ignore[method-assign]
    dialect.do_begin = do_begin  # type: ignore[method-assign]
    event.listen(engine, "checkin", _forget_write_option)


def _forget_write_option(_dbapi_connection: Any, record: Any) -> None:
    record.info.pop(_WRITE_OPTION, None)


def _build(factory: Callable[..., T], url: URL, options: dict[str, Any]) -> T:
    try:
        return factory(url, **options)
    except (ModuleNotFoundError, NoSuchModuleError) as exc:
        extra = _EXTRAS.get(url.get_backend_name())
        hint = f'pip install "obsku-checkpoint-sqlite[{extra}]"' if extra else "install its driver"
        raise DriverNotInstalledError(
            f"The database URL needs the driver {url.drivername!r}, which is not installed: {hint}"
        ) from exc


def _create_private_file(url: URL) -> None:
    # Checkpoints hold tool outputs and secrets: a new file is readable by its owner only.
    # SQLite gives its -wal and -shm files the mode of the database file.
    path = _database_file(url)
    if path is None:
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        # As SQLite's own "unable to open database file" would be: a store error.
        raise DatabaseUnavailableError(f"Cannot create the SQLite database file {path!r}: {exc.strerror}") from exc


def _database_file(url: URL) -> str | None:
    """The file a SQLite URL opens and may create, or None (memory, read-only, none)."""
    database = url.database or ""
    if url.query.get("uri") not in ("true", "1") or not database.startswith("file:"):
        return database or None
    # A URI filename: the file is its path, unless it names memory or may not create.
    parts = urllib.parse.urlsplit(database)
    # SQLAlchemy appends the URL's other parameters to the URI, so mode may be in either.
    mode = url.query.get("mode") or urllib.parse.parse_qs(parts.query).get("mode", ["rwc"])[-1]
    if parts.path in ("", ":memory:") or mode != "rwc":
        return None
    return urllib.parse.unquote(parts.path)


class SyncRunner:
    """Runs operations on a synchronous engine, one transaction each.

    Before the first operation it brings the schema to head (or, with
    ``auto_migrate=False``, checks that it is there).
    """

    def __init__(self, engine: Engine, *, owns_engine: bool, auto_migrate: bool = True) -> None:
        self.engine = engine
        self.dialect_name = engine.dialect.name
        self._owns_engine = owns_engine
        self._auto_migrate = auto_migrate
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        # A StaticPool hands the same connection to every thread: take turns.
        self._turns = threading.Lock() if isinstance(engine.pool, StaticPool) else None
        # On a SQLite engine of its own the runner keeps connections between operations:
        # a pool checkout and checkin cost a third of a short operation. Not on servers,
        # where the pool's pre-ping is what finds a connection the server dropped, nor
        # on a caller's engine, whose pool the caller sized for its own use.
        self._idle: list[Connection] | None = None
        if owns_engine and self.dialect_name == "sqlite":
            self._idle = []
            self._idle_limit = engine.pool.size() if isinstance(engine.pool, QueuePool) else 1

    @property
    def schema_ready(self) -> bool:
        return self._schema_ready

    @property
    def single_connection(self) -> bool:
        """True when every operation shares one connection (an in-memory database)."""
        return self._turns is not None

    def run(self, operation: Operation[T], *args: Any, write: bool, bounded: bool = False) -> T:
        """Run ``operation`` in a transaction of its own, retrying it on lock contention.

        ``bounded`` says the operation touches a bounded number of rows; only the async
        face on SQLite uses it (see ``ThreadRunner``).
        """
        if not self._schema_ready:
            self._prepare_schema()
        return self._run_with_retry(operation, args, write)

    def try_without_waiting(self, conn: Connection, operation: Operation[T], args: tuple[Any, ...], write: bool) -> T:
        """Run ``operation`` once on ``conn``, a connection that never waits for a lock.

        Raises ``WouldWait`` where the database was busy (or a read lost its connection):
        the transaction was rolled back and the caller runs the operation with ``run``.
        """
        turns = self._turns
        if turns is not None and not turns.acquire(blocking=False):
            raise WouldWait
        started = time.monotonic()
        try:
            return _in_transaction(conn, operation, args, write)
        except DBAPIError as exc:
            if retry_delay(exc, self.dialect_name, 1, started, write=write) is not None:
                raise WouldWait from exc
            raise translate(exc) from exc
        finally:
            if turns is not None:
                turns.release()

    def run_and_checkpoint(self, operation: Operation[T], *args: Any, write: bool) -> T:
        """``run``, then a passive checkpoint of the WAL (SQLite), which waits for no one.

        A failed checkpoint is logged, not raised: the write is committed, and the pages
        stay in the WAL until a later checkpoint copies them.
        """
        result = self.run(operation, *args, write=write)
        raw = self.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
        except Exception as exc:
            logger.warning("WAL checkpoint failed: %s", exc)
        finally:
            raw.close()
        return result

    def close(self) -> None:
        idle, self._idle = self._idle, None
        for conn in idle or ():
            conn.close()
        if self._owns_engine:
            self.engine.dispose()

    def _prepare_schema(self) -> None:
        from . import migrate  # Alembic loads only when a store first touches its database.

        with self._schema_lock:
            if not self._schema_ready:
                step = migrate.ensure_schema if self._auto_migrate else migrate.require_head
                self._run_with_retry(step, (), True)
                self._schema_ready = True

    def _run_with_retry(self, operation: Operation[T], args: tuple[Any, ...], write: bool) -> T:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                if self._turns is None:
                    return self._run_once(operation, args, write)
                with self._turns:
                    return self._run_once(operation, args, write)
            except DBAPIError as exc:
                attempt += 1
                delay = retry_delay(exc, self.dialect_name, attempt, started, write=write)
                if delay is None:
                    raise translate(exc) from exc
                time.sleep(delay)

    def _run_once(self, operation: Operation[T], args: tuple[Any, ...], write: bool) -> T:
        idle = self._idle
        try:
            conn = idle.pop() if idle is not None else self.engine.connect()
        except IndexError:  # none kept, or another thread took the last one
            conn = self.engine.connect()
        try:
            return _in_transaction(conn, operation, args, write)
        finally:
            # After a rollback the connection is as good as new; an invalidated one is not.
            # A store closed meanwhile has no list to take it back.
            reusable = not conn.invalidated and not conn.in_transaction()
            if idle is not None and reusable and self._idle is idle and len(idle) < self._idle_limit:
                idle.append(conn)
            else:
                conn.close()


def _in_transaction(conn: Connection, operation: Operation[T], args: tuple[Any, ...], write: bool) -> T:
    """``operation(conn, *args)`` in a transaction of its own, begun for writing if ``write``."""
    conn.execution_options(**{_WRITE_OPTION: write})
    with conn.begin():
        return operation(conn, *args)


class WouldWait(Exception):
    """An operation tried on the event loop found the database busy."""


def is_short_page(limit: int | None) -> bool:
    """Whether a listing with this ``limit`` is small enough to count as bounded."""
    return limit is not None and limit <= INLINE_PAGE_ROWS


class ThreadRunner:
    """The async face of a ``SyncRunner`` on SQLite.

    SQLite answers a bounded operation (one row, or a page of at most
    ``INLINE_PAGE_ROWS``) in well under a millisecond, less than handing it to a worker
    thread costs: two cross-thread wake-ups, 75-300 µs on a small VM, and the work
    then runs on a cold core. So a bounded operation runs on the event loop's own
    thread, as the original package's do on Bun, on a connection of its own whose busy
    timeout is zero: it never waits for a lock there. If the database is busy the
    attempt rolls back and the operation goes to a worker thread, which waits as
    usual. Everything else (unbounded listings, forks, deleting a session with its
    history, maintenance) runs in a worker thread, one hop per operation.

    The inline connection does not checkpoint the WAL either: copying it back into the
    database ends in an fsync, which stalled the loop for up to 150 ms on these VMs.
    Instead every ``WAL_CHECKPOINT_EVERY``-th inline write goes to a worker thread,
    which commits it and then checkpoints, as SQLite's automatic checkpoint would have
    on the loop. The caller awaits both, so its next write finds the WAL copied back
    and starts it over: the WAL stays small even for a caller that only writes.
    """

    def __init__(self, runner: SyncRunner) -> None:
        self.sync_runner = runner
        self.dialect_name = runner.dialect_name
        self._inline_connection: Connection | None = None
        # Taken without waiting: a store shared by event loops in several threads runs
        # on the loop in one of them at a time, and in worker threads for the others.
        self._inline_lock = threading.Lock()
        self._inline_writes = 0
        self._has_wal = not runner.single_connection  # an in-memory database has none

    async def run(self, operation: Operation[T], *args: Any, write: bool, bounded: bool = False) -> T:
        if bounded and self.sync_runner.schema_ready:
            if write and self._has_wal and self._inline_writes >= WAL_CHECKPOINT_EVERY:
                self._inline_writes = 0
                return await asyncio.to_thread(self.sync_runner.run_and_checkpoint, operation, *args, write=write)
            # Let the loop's other tasks run first, as a call that went to a thread would.
            await asyncio.sleep(0)
            if self._inline_lock.acquire(blocking=False):
                try:
                    return self._run_inline(operation, args, write)
                except WouldWait:
                    pass
                finally:
                    self._inline_lock.release()
        return await asyncio.to_thread(self.sync_runner.run, operation, *args, write=write)

    def _run_inline(self, operation: Operation[T], args: tuple[Any, ...], write: bool) -> T:
        try:
            conn = self._connection()
        except DBAPIError as exc:
            raise WouldWait from exc  # the worker thread's attempt retries or reports it
        result = self.sync_runner.try_without_waiting(conn, operation, args, write)
        if write:
            self._inline_writes += 1
        return result

    async def close(self) -> None:
        with self._inline_lock:
            if self._inline_connection is not None:
                self._inline_connection.close()
                self._inline_connection = None
        await asyncio.to_thread(self.sync_runner.close)

    def _connection(self) -> Connection:
        conn = self._inline_connection
        if conn is None or conn.invalidated or conn.closed:
            conn = self._inline_connection = self.sync_runner.engine.connect()
            if not self.sync_runner.single_connection:
                # Its own connection: no other store operation runs with these settings.
                driver_connection: Any = conn.connection.driver_connection
                driver_connection.execute("PRAGMA busy_timeout=0")
                driver_connection.execute("PRAGMA wal_autocheckpoint=0")
        return conn


class AsyncEngineRunner:
    """Runs operations on an ``AsyncEngine`` through ``AsyncConnection.run_sync``."""

    def __init__(self, engine: AsyncEngine, *, owns_engine: bool, auto_migrate: bool = True) -> None:
        self.engine = engine
        self.dialect_name = engine.dialect.name
        self._owns_engine = owns_engine
        self._auto_migrate = auto_migrate
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()
        self._turns = asyncio.Lock() if isinstance(engine.sync_engine.pool, StaticPool) else None

    async def run(self, operation: Operation[T], *args: Any, write: bool, bounded: bool = False) -> T:
        # ``bounded`` is not needed here: the async driver never blocks the event loop.
        if not self._schema_ready:
            await self._prepare_schema()
        return await self._run_with_retry(operation, args, write)

    async def close(self) -> None:
        if self._owns_engine:
            await self.engine.dispose()

    async def _prepare_schema(self) -> None:
        from . import migrate

        async with self._schema_lock:
            if not self._schema_ready:
                step = migrate.ensure_schema if self._auto_migrate else migrate.require_head
                await self._run_with_retry(step, (), True)
                self._schema_ready = True

    async def _run_with_retry(self, operation: Operation[T], args: tuple[Any, ...], write: bool) -> T:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                if self._turns is None:
                    return await self._run_once(operation, args, write)
                async with self._turns:
                    return await self._run_once(operation, args, write)
            except DBAPIError as exc:
                attempt += 1
                delay = retry_delay(exc, self.dialect_name, attempt, started, write=write)
                if delay is None:
                    raise translate(exc) from exc
                await asyncio.sleep(delay)

    async def _run_once(self, operation: Operation[T], args: tuple[Any, ...], write: bool) -> T:
        async with self.engine.connect() as conn:
            if write:
                await conn.execution_options(**{_WRITE_OPTION: True})
            async with conn.begin():
                return await conn.run_sync(operation, *args)


AsyncRunner = ThreadRunner | AsyncEngineRunner


def open_sync_runner(target: str | URL | Engine, *, auto_migrate: bool, **options: Any) -> SyncRunner:
    """The runner for the sync store: ``target`` is a URL or a caller-owned ``Engine``."""
    if isinstance(target, AsyncEngine):
        raise TypeError(
            "The sync store needs a synchronous Engine; pass this AsyncEngine to "
            "obsku_checkpoint_sqlite.SqlAlchemyCheckpointStore instead"
        )
    if isinstance(target, Engine):
        configure_engine(target)
        return SyncRunner(target, owns_engine=False, auto_migrate=auto_migrate)
    return SyncRunner(create_sync_engine(target, **options), owns_engine=True, auto_migrate=auto_migrate)


def open_async_runner(target: str | URL | AsyncEngine, *, auto_migrate: bool, **options: Any) -> AsyncRunner:
    """The runner for the async store: ``target`` is a URL or a caller-owned ``AsyncEngine``.

    A SQLite URL without an explicit async driver runs on the sync driver in worker
    threads: one thread hop per operation instead of aiosqlite's one per statement.
    """
    if isinstance(target, Engine):
        raise TypeError(
            "The async store needs an AsyncEngine; pass this Engine to "
            "obsku_checkpoint_sqlite.sync.SqlAlchemyCheckpointStore instead"
        )
    if isinstance(target, AsyncEngine):
        configure_engine(target.sync_engine)
        return AsyncEngineRunner(target, owns_engine=False, auto_migrate=auto_migrate)
    if make_url(target).drivername in ("sqlite", "sqlite+pysqlite"):
        return ThreadRunner(open_sync_runner(target, auto_migrate=auto_migrate, **options))
    engine = create_async_store_engine(target, **options)
    return AsyncEngineRunner(engine, owns_engine=True, auto_migrate=auto_migrate)


# MariaDB: deadlock, lock wait timeout. PostgreSQL: serialization failure, deadlock.
_MYSQL_RETRY_CODES = {1213, 1205}
_POSTGRES_RETRY_STATES = {"40001", "40P01"}


def retry_delay(exc: DBAPIError, dialect_name: str, attempt: int, started: float, *, write: bool) -> float | None:
    """How long to wait before retrying after ``exc``, or None to give up.

    Lock contention is retried: the transaction was rolled back, so running it again
    is safe. A lost connection is retried for reads only: a write whose commit was
    lost in transit may have happened, and running it twice would duplicate it.
    """
    if time.monotonic() - started > _RETRY_DEADLINE_S:
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
