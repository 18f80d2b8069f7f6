"""The async face's runners: a plain URL through a blocking runner, an async driver through an ``AsyncEngine``.

``ThreadRunner`` serves a URL that names no async driver, on the blocking driver: on
SQLite bounded operations run on the event loop when they need not wait, the rest in a
worker thread, one hop per operation rather than aiosqlite's one per statement; on a
server every operation runs in a worker thread, one hop per operation rather than a
greenlet crossing per statement. ``AsyncEngineRunner`` serves an async driver's URL or an
``AsyncEngine`` through ``AsyncConnection.run_sync``. Export, import and copy read and
write files and a second database with blocking calls, so both runners give them a
worker thread (``offload``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import URL, Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from ..ops.jobs import Job, Step
from .engines import configure_engine, create_async_store_engine, create_sync_engine
from .failures import DEFAULT_LOCK_TIMEOUT, CommitInterrupted, driver_errors, retry_delay, translate, unwrap
from .sqlite import WRITE_OPTION
from .sync_runner import SyncRunner, WouldWait, in_transaction, open_sync_runner
from .urls import blocking_url, is_memory_sqlite, names_async_driver, normalize_url
from .workers import in_thread

T = TypeVar("T")
Operation = Callable[..., T]

# Inline writes between two WAL checkpoints in a worker thread: a few hundred pages.
WAL_CHECKPOINT_EVERY = 100


async def drive(run_step: Callable[[Step], Awaitable[Any]], job: Job[T]) -> T:
    """Run each step of ``job`` with ``run_step``, feeding it the results."""
    result: Any = None
    while True:
        try:
            step = job.send(result)
        except StopIteration as finished:
            return finished.value  # type: ignore[no-any-return]
        result = await run_step(step)


class ThreadRunner:
    """The async face of a ``SyncRunner`` on SQLite.

    SQLite answers a bounded operation (one row, or a page of at most
    ``sync_runner.INLINE_PAGE_ROWS``) in well under a millisecond, less than handing it to a worker
    thread costs: two cross-thread wake-ups, and the work then runs on a cold core. So a
    bounded operation runs on the event loop's own thread, on a connection of its own
    whose busy timeout is zero: it never waits for a lock there. If the database is busy
    the attempt rolls back and the operation goes to a worker thread, which waits as
    usual. Everything else (unbounded listings, forks, deleting a session with its
    history, maintenance) runs in a worker thread, one hop per operation.

    The inline connection does not checkpoint the WAL either: copying it back into the
    database ends in an fsync, which can stall the loop. Instead every
    ``WAL_CHECKPOINT_EVERY``-th inline write goes to a worker thread, which commits it
    and then checkpoints, as SQLite's automatic checkpoint would have on the loop. The
    caller awaits both, so its next write finds the WAL copied back and starts it over:
    the WAL stays small even for a caller that only writes.
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
        # Only SQLite answers on the loop: a server's answer takes a network round trip.
        self._inline = runner.dialect_name == "sqlite"

    async def run(
        self, operation: Operation[T], *args: Any, write: bool, bounded: bool = False, snapshot: bool = True
    ) -> T:
        if bounded and self._inline and self.sync_runner.schema_ready:
            if write and self._has_wal and self._inline_writes >= WAL_CHECKPOINT_EVERY:
                self._inline_writes = 0
                return await in_thread(self.sync_runner.run_and_checkpoint, operation, *args, write=write)
            # Let the loop's other tasks run first, as a call that went to a thread would.
            await asyncio.sleep(0)
            if self._inline_lock.acquire(blocking=False):
                try:
                    return self._run_inline(operation, args, write)
                except WouldWait:
                    pass
                finally:
                    self._inline_lock.release()
        return await in_thread(self.sync_runner.run, operation, *args, write=write, snapshot=snapshot)

    async def offload(self, operation: Operation[T], *args: Any, write: bool) -> T:
        return await in_thread(self.sync_runner.run, operation, *args, write=write)

    async def drive(self, job: Job[T]) -> T:
        return await drive(self._run_step, job)

    async def run_across(
        self, target_url: str | URL, prepare_target: Operation[Any], operation: Operation[T], *args: Any
    ) -> T:
        return await in_thread(self.sync_runner.run_across, target_url, prepare_target, operation, *args)

    async def close(self) -> None:
        with self._inline_lock:
            if self._inline_connection is not None:
                self._inline_connection.close()
                self._inline_connection = None
        await in_thread(self.sync_runner.close)

    async def _run_step(self, step: Step) -> Any:
        return await in_thread(self.sync_runner.run_step, step)

    def _run_inline(self, operation: Operation[T], args: tuple[Any, ...], write: bool) -> T:
        try:
            conn = self._connection()
        except self.sync_runner.errors as exc:
            raise WouldWait from exc  # the worker thread's attempt retries or reports it
        result = self.sync_runner.try_without_waiting(conn, operation, args, write)
        if write:
            self._inline_writes += 1
        return result

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
    """Runs operations on an ``AsyncEngine`` through ``AsyncConnection.run_sync``.

    Blocking jobs (export, import, copy) run in a worker thread on a blocking engine of
    the same database, made from the engine's URL with the backend's blocking driver;
    a private in-memory SQLite database, which no second engine can open, runs them on
    its own engine.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        owns_engine: bool,
        auto_migrate: bool = True,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.engine = engine
        self.lock_timeout = lock_timeout
        self.dialect_name = engine.dialect.name
        self._failures: tuple[type[Exception], ...] = (CommitInterrupted, *driver_errors(engine.dialect))
        self._owns_engine = owns_engine
        self._auto_migrate = auto_migrate
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()
        self._turns = asyncio.Lock() if isinstance(engine.sync_engine.pool, StaticPool) else None
        self._blocking: SyncRunner | None = None
        self._blocking_lock = threading.Lock()

    async def run(
        self, operation: Operation[T], *args: Any, write: bool, bounded: bool = False, snapshot: bool = True
    ) -> T:
        # ``bounded`` and ``snapshot`` are not needed here: the async driver never blocks
        # the event loop, and every operation runs in a transaction.
        if not self._schema_ready:
            await self._prepare_schema()
        return await self._run_with_retry(operation, args, write)

    async def offload(self, operation: Operation[T], *args: Any, write: bool) -> T:
        blocking = self._blocking_runner()
        if blocking is None:
            return await self.run(operation, *args, write=write)
        return await in_thread(blocking.run, operation, *args, write=write)

    async def drive(self, job: Job[T]) -> T:
        return await drive(self._run_step, job)

    async def run_across(
        self, target_url: str | URL, prepare_target: Operation[Any], operation: Operation[T], *args: Any
    ) -> T:
        blocking = self._blocking_runner()
        if blocking is None:
            raise ValueError("copy_to: a private in-memory database cannot be read by a second engine")
        return await in_thread(blocking.run_across, target_url, prepare_target, operation, *args)

    async def close(self) -> None:
        blocking, self._blocking = self._blocking, None
        if blocking is not None:
            await in_thread(blocking.close)
        if self._owns_engine:
            await self.engine.dispose()

    def _blocking_runner(self) -> SyncRunner | None:
        url = self.engine.url
        if is_memory_sqlite(url):
            return None
        with self._blocking_lock:
            if self._blocking is None:
                engine = create_sync_engine(
                    blocking_url(url), lock_timeout=self.lock_timeout, poolclass=_single_use_pool()
                )
                self._blocking = SyncRunner(
                    engine, owns_engine=True, auto_migrate=self._auto_migrate, lock_timeout=self.lock_timeout
                )
            return self._blocking

    async def _run_step(self, step: Step) -> Any:
        if step.transaction:
            return await self.run(step.operation, *step.args, write=step.write)
        async with self.engine.connect() as conn:
            return await conn.run_sync(lambda sync: step.operation(sync.connection.dbapi_connection, *step.args))

    async def _prepare_schema(self) -> None:
        from ..db import migrate

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
                async with self._turns if self._turns is not None else contextlib.nullcontext():
                    return await self._run_once(operation, args, write)
            except self._failures as caught:
                exc, committing = unwrap(caught, self.engine.dialect)
                unknown = write and committing
                attempt += 1
                delay = retry_delay(
                    exc, self.dialect_name, attempt, started, write=unknown, lock_timeout=self.lock_timeout
                )
                if delay is None:
                    waited = time.monotonic() - started
                    raise translate(
                        exc, self.dialect_name, waited=waited, lock_timeout=self.lock_timeout, outcome_unknown=unknown
                    ) from caught
                await asyncio.sleep(delay)

    async def _run_once(self, operation: Operation[T], args: tuple[Any, ...], write: bool) -> T:
        async with self.engine.connect() as conn:
            if write:
                await conn.execution_options(**{WRITE_OPTION: True})
            return await conn.run_sync(in_transaction, operation, args, write)


def _single_use_pool() -> Any:
    from sqlalchemy.pool import NullPool

    # Jobs are rare and long: no connection is kept open for them between jobs.
    return NullPool


AsyncRunner = ThreadRunner | AsyncEngineRunner


def open_async_runner(
    target: str | URL | AsyncEngine, *, auto_migrate: bool, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, **options: Any
) -> AsyncRunner:
    """The runner for the async store: ``target`` is a URL or a caller-owned ``AsyncEngine``.

    A URL that names no async driver runs on the blocking driver in worker threads, one
    thread hop per operation: on SQLite instead of aiosqlite's hop per statement, on
    servers instead of SQLAlchemy's greenlet bridge per statement, with the blocking
    path's short path, pipelined writes and autocommit reads. A URL naming an async
    driver (``sqlite+aiosqlite``, ``postgresql+asyncpg``, ``mysql+aiomysql``...) runs on
    an ``AsyncEngine``.
    """
    if isinstance(target, Engine):
        raise TypeError(
            "The async store needs an AsyncEngine; pass this Engine to "
            "obsku_checkpoint_sqlite.sync.SqlAlchemyCheckpointStore instead"
        )
    if isinstance(target, AsyncEngine):
        configure_engine(target.sync_engine, owned=False, lock_timeout=lock_timeout)
        return AsyncEngineRunner(target, owns_engine=False, auto_migrate=auto_migrate, lock_timeout=lock_timeout)
    if not names_async_driver(normalize_url(target, for_async=False)):
        return ThreadRunner(open_sync_runner(target, auto_migrate=auto_migrate, lock_timeout=lock_timeout, **options))
    engine = create_async_store_engine(target, lock_timeout=lock_timeout, **options)
    return AsyncEngineRunner(engine, owns_engine=True, auto_migrate=auto_migrate, lock_timeout=lock_timeout)
