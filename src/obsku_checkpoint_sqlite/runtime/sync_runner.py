"""The blocking runner: each operation in a transaction of its own on a synchronous engine.

An operation is a plain function ``op(conn, *args)`` over a synchronous SQLAlchemy
``Connection``. The runner opens a connection, begins a transaction, calls the
operation, commits, and on failure rolls back, retries what is safe to retry and
translates SQLAlchemy's errors into the store's.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import URL, Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool, StaticPool

from ..ops.jobs import Job, Step
from .engines import configure_engine, create_sync_engine
from .failures import (
    DEFAULT_LOCK_TIMEOUT,
    CommitInterrupted,
    as_dbapi_error,
    driver_errors,
    retry_delay,
    translate,
    unwrap,
)
from .liveness import CHECKED_DRIVERS, is_alive
from .sqlite import WRITE_OPTION

T = TypeVar("T")
Operation = Callable[..., T]

logger = logging.getLogger("obsku_checkpoint_sqlite")

# The largest page an operation counts as bounded: the async face on SQLite may read it
# on the event loop (see async_runners.ThreadRunner).
INLINE_PAGE_ROWS = 100


def is_short_page(limit: int | None) -> bool:
    """Whether a listing with this ``limit`` is small enough to count as bounded."""
    return limit is not None and limit <= INLINE_PAGE_ROWS


class SyncRunner:
    """Runs operations on a synchronous engine, one transaction each.

    Before the first operation it brings the schema to head (or, with
    ``auto_migrate=False``, checks that it is there).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        owns_engine: bool,
        auto_migrate: bool = True,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.engine = engine
        self.lock_timeout = lock_timeout
        self.dialect_name = engine.dialect.name
        self.errors = driver_errors(engine.dialect)
        # What an attempt can fail with: a driver error, or one that interrupted the commit.
        self.failures: tuple[type[Exception], ...] = (CommitInterrupted, *self.errors)
        # Reads that need no snapshot run outside a transaction: on psycopg by switching the
        # connection's client-side mode for the call; on PyMySQL, where switching is a round
        # trip, on connections kept in autocommit mode for reads alone (see runtime.mysql).
        driver = engine.dialect.driver if not engine.dialect.is_async else None
        self._autocommit_reads = driver == "psycopg" or (driver == "pymysql" and owns_engine)
        self._reader_connections = driver == "pymysql"
        self._owns_engine = owns_engine
        self._auto_migrate = auto_migrate
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        # A StaticPool hands the same connection to every thread: take turns.
        self._turns = threading.Lock() if isinstance(engine.pool, StaticPool) else None
        # On an engine of its own the runner keeps connections between operations: a pool
        # checkout and checkin cost a third of a short operation. A kept server connection
        # is checked as the pool checks it (runtime.liveness) before each use. Not on a
        # caller's engine, whose pool the caller sized for its own use, nor where the pool
        # must pre-ping (a driver whose socket cannot be checked).
        self._idle: list[Connection] | None = None
        self._readers: list[Connection] = []
        self._check_idle = self.dialect_name != "sqlite"
        if owns_engine and (not self._check_idle or engine.dialect.driver in CHECKED_DRIVERS):
            self._idle = []
            self._idle_limit = engine.pool.size() if isinstance(engine.pool, QueuePool) else 1

    @property
    def schema_ready(self) -> bool:
        return self._schema_ready

    @property
    def single_connection(self) -> bool:
        """True when every operation shares one connection (an in-memory database)."""
        return self._turns is not None

    def run(self, operation: Operation[T], *args: Any, write: bool, bounded: bool = False, snapshot: bool = True) -> T:
        """Run ``operation`` in a transaction of its own, retrying it on lock contention.

        ``bounded`` says the operation touches a bounded number of rows; only the async
        face on SQLite uses it (see ``ThreadRunner``). A read with ``snapshot=False`` does
        not need its statements to see one snapshot: on PostgreSQL it runs without a
        transaction, so a one-statement read is one round trip.
        """
        if not self._schema_ready:
            self._prepare_schema()
        autocommit = self._autocommit_reads and not write and not snapshot
        return self._run_with_retry(operation, args, write, autocommit)

    def run_on_any_schema(self, operation: Operation[T], *args: Any, write: bool) -> T:
        """``run`` without bringing the schema to head or checking it first: for the schema
        commands themselves, and for reading where a database stands."""
        return self._run_with_retry(operation, args, write)

    def offload(self, operation: Operation[T], *args: Any, write: bool) -> T:
        """``run``: a blocking runner has no event loop to keep free."""
        return self.run(operation, *args, write=write)

    def drive(self, job: Job[T]) -> T:
        """Run each step of ``job`` in a transaction of its own, feeding it the results."""
        result: Any = None
        while True:
            try:
                step = job.send(result)
            except StopIteration as finished:
                return finished.value  # type: ignore[no-any-return]
            result = self.run_step(step)

    def run_step(self, step: Step) -> Any:
        """One step of a job: in a transaction, or on the driver's connection outside one."""
        if step.transaction:
            return self.run(step.operation, *step.args, write=step.write)
        raw = self.engine.raw_connection()
        try:
            return step.operation(raw, *step.args)
        except self.errors as exc:
            raise translate(as_dbapi_error(exc, self.engine.dialect)) from exc
        finally:
            raw.close()

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
            return in_transaction(conn, operation, args, write)
        except self.failures as caught:
            exc, committing = unwrap(caught, self.engine.dialect)
            unknown = write and committing
            if (
                retry_delay(exc, self.dialect_name, 1, started, write=unknown, lock_timeout=self.lock_timeout)
                is not None
            ):
                raise WouldWait from caught
            raise translate(exc, outcome_unknown=unknown) from caught
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

    def run_across(
        self,
        target_url: str | URL,
        prepare_target: Operation[Any],
        operation: Operation[T],
        *args: Any,
    ) -> T:
        """``operation(source, target, *args)`` over this database and the one at ``target_url``.

        ``prepare_target(target)`` runs first, in a transaction of its own (MariaDB commits
        DDL, so what follows starts after it). Then one read transaction on this database
        and one write transaction on the target hold for the whole operation, which the
        target commits only if it returns. The target is reached through an engine of its
        own, disposed of afterwards.
        """
        if not self._schema_ready:
            self._prepare_schema()
        target_engine = create_sync_engine(target_url, lock_timeout=self.lock_timeout)
        try:
            with target_engine.connect() as target:
                in_transaction(target, prepare_target, (), True)
            with self._turn(), self.engine.connect() as source, target_engine.connect() as target:
                target.execution_options(**{WRITE_OPTION: True})
                with source.begin(), target.begin():
                    return operation(source, target, *args)
        except (*self.errors, *driver_errors(target_engine.dialect)) as exc:
            raise translate(as_dbapi_error(exc, target_engine.dialect)) from exc
        finally:
            target_engine.dispose()

    def _run_on_reader(self, operation: Operation[T], args: tuple[Any, ...]) -> T:
        """``operation`` on a connection kept in autocommit mode, for reads that need no snapshot."""
        readers = self._readers
        try:
            conn = readers.pop()
            if not is_alive(conn.connection.dbapi_connection):
                conn.invalidate()
                conn.close()
                raise IndexError
        except IndexError:
            conn = self.engine.connect()
            conn.execution_options(isolation_level="AUTOCOMMIT")  # once per connection
        try:
            return in_transaction(conn, operation, args, False)
        finally:
            if not conn.invalidated and not conn.in_transaction() and self._readers is readers and len(readers) < 2:
                readers.append(conn)
            else:
                _discard_reader(conn)

    def close(self) -> None:
        idle, self._idle = self._idle, None
        for conn in idle or ():
            conn.close()
        readers, self._readers = self._readers, []
        for conn in readers:
            _discard_reader(conn)
        if self._owns_engine:
            self.engine.dispose()

    def _prepare_schema(self) -> None:
        from ..db import migrate  # Alembic loads only when a store first touches its database.

        with self._schema_lock:
            if not self._schema_ready:
                step = migrate.ensure_schema if self._auto_migrate else migrate.require_head
                self._run_with_retry(step, (), True)
                self._schema_ready = True

    def _turn(self) -> contextlib.AbstractContextManager[Any]:
        return self._turns if self._turns is not None else contextlib.nullcontext()

    def _run_with_retry(
        self, operation: Operation[T], args: tuple[Any, ...], write: bool, autocommit: bool = False
    ) -> T:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                if self._turns is None:
                    return self._run_once(operation, args, write, autocommit)
                with self._turns:
                    return self._run_once(operation, args, write, autocommit)
            except self.failures as caught:
                delay = self._retry_delay(caught, write, attempt := attempt + 1, started)
                time.sleep(delay)

    def _retry_delay(self, caught: Exception, write: bool, attempt: int, started: float) -> float:
        """How long to wait before the next attempt after ``caught``; raises the store's error
        where there is none."""
        exc, committing = unwrap(caught, self.engine.dialect)
        unknown = write and committing
        delay = retry_delay(exc, self.dialect_name, attempt, started, write=unknown, lock_timeout=self.lock_timeout)
        if delay is None:
            waited = time.monotonic() - started
            raise translate(
                exc, self.dialect_name, waited=waited, lock_timeout=self.lock_timeout, outcome_unknown=unknown
            ) from caught
        return delay

    def _run_once(self, operation: Operation[T], args: tuple[Any, ...], write: bool, autocommit: bool) -> T:
        if autocommit and self._reader_connections:
            return self._run_on_reader(operation, args)
        idle = self._idle
        try:
            conn = idle.pop() if idle is not None else self.engine.connect()
        except IndexError:  # none kept, or another thread took the last one
            conn = self.engine.connect()
        else:
            if self._check_idle and idle is not None and not is_alive(conn.connection.dbapi_connection):
                conn.invalidate()  # the server closed it while it was kept: connect anew
                conn.close()
                conn = self.engine.connect()
        try:
            if autocommit:
                return _without_transaction(conn, operation, args)
            return in_transaction(conn, operation, args, write)
        finally:
            # After a rollback the connection is as good as new; an invalidated one is not.
            # A store closed meanwhile has no list to take it back.
            reusable = not conn.invalidated and not conn.in_transaction()
            if idle is not None and reusable and self._idle is idle and len(idle) < self._idle_limit:
                idle.append(conn)
            else:
                conn.close()


def _discard_reader(conn: Connection) -> None:
    # Invalidated, not returned: the pool would switch it out of autocommit mode first, a
    # round trip (and an error on a connection the server has closed) for nothing.
    if not conn.invalidated:
        conn.invalidate()
    conn.close()


def in_transaction(conn: Connection, operation: Operation[T], args: tuple[Any, ...], write: bool) -> T:
    """``operation(conn, *args)`` in a transaction of its own, begun for writing if ``write``.

    A driver error while committing comes out as ``CommitInterrupted``: the runners must
    not run a write again whose commit may have reached the database.
    """
    if conn.get_execution_options().get(WRITE_OPTION) is not write:
        conn.execution_options(**{WRITE_OPTION: write})
    transaction = conn.begin()
    try:
        result = operation(conn, *args)
    except BaseException:
        transaction.rollback()
        raise
    try:
        transaction.commit()
    except driver_errors(conn.dialect) as exc:
        raise CommitInterrupted(exc) from exc
    return result


def _without_transaction(conn: Connection, operation: Operation[T], args: tuple[Any, ...]) -> T:
    """``operation(conn, *args)`` with psycopg in autocommit mode: no BEGIN, no COMMIT.

    SQLAlchemy's transaction still frames the call; psycopg sends neither statement for
    it, as it has no transaction open. The mode is psycopg's own, set on the client
    only, and restored before the connection goes back to the pool.
    """
    dbapi_connection: Any = conn.connection.dbapi_connection
    dbapi_connection.autocommit = True
    try:
        return in_transaction(conn, operation, args, False)
    finally:
        if not conn.invalidated:
            dbapi_connection.autocommit = False


class WouldWait(Exception):
    """An operation tried on the event loop found the database busy."""


def open_sync_runner(
    target: str | URL | Engine, *, auto_migrate: bool, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, **options: Any
) -> SyncRunner:
    """The runner for the sync store: ``target`` is a URL or a caller-owned ``Engine``."""
    if isinstance(target, AsyncEngine):
        raise TypeError(
            "The sync store needs a synchronous Engine; pass this AsyncEngine to "
            "obsku_checkpoint_sqlite.SqlAlchemyCheckpointStore instead"
        )
    if isinstance(target, Engine):
        configure_engine(target, owned=False, lock_timeout=lock_timeout)
        return SyncRunner(target, owns_engine=False, auto_migrate=auto_migrate, lock_timeout=lock_timeout)
    engine = create_sync_engine(target, lock_timeout=lock_timeout, **options)
    return SyncRunner(engine, owns_engine=True, auto_migrate=auto_migrate, lock_timeout=lock_timeout)
