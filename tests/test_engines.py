"""URLs, drivers and engines: what the store accepts and what it builds from it."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from obsku_checkpoint_sqlite import (
    DriverNotInstalledError,
    SessionNotFoundError,
    SqlAlchemyCheckpointStore,
    SqliteCheckpointStore,
    sync,
)
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from tests.conftest import before_each_statement, require_server


@pytest.mark.parametrize(
    ("url", "sync_driver", "async_driver"),
    [
        ("sqlite:///a.db", "sqlite+pysqlite", "sqlite+aiosqlite"),
        ("postgresql://u@h/db", "postgresql+psycopg", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg", "postgresql+psycopg"),
        ("mariadb://u@h/db", "mariadb+pymysql", "mariadb+aiomysql"),
        ("mysql://u@h/db", "mysql+pymysql", "mysql+aiomysql"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg", "postgresql+asyncpg"),
    ],
)
def test_plain_urls_get_a_driver_for_each_face(url: str, sync_driver: str, async_driver: str) -> None:
    assert normalize_url(url, for_async=False).drivername == sync_driver
    assert normalize_url(url, for_async=True).drivername == async_driver


def test_mysql_urls_default_to_utf8mb4() -> None:
    assert normalize_url("mariadb://u@h/db", for_async=False).query["charset"] == "utf8mb4"
    assert normalize_url("mariadb://u@h/db?charset=latin1", for_async=False).query["charset"] == "latin1"


def test_a_missing_driver_names_the_extra_to_install() -> None:
    with pytest.raises(DriverNotInstalledError, match=r'pip install "obsku-checkpoint-sqlite\[postgresql\]"'):
        sync.SqlAlchemyCheckpointStore("postgresql+pg8000://u@localhost/db")


async def test_async_store_accepts_a_url_object_and_a_caller_owned_engine(tmp_path: Path) -> None:
    url = make_url(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    engine = create_async_engine(url)
    async with SqlAlchemyCheckpointStore(engine) as store:
        session = await store.create_session("/a")
        await store.add_message(session.id, role="user", content="over aiosqlite")
    # The store did not dispose the engine it was handed.
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT content FROM messages"))).scalar_one() == "over aiosqlite"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
    await engine.dispose()


def test_sync_store_accepts_a_caller_owned_engine(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'engine.db'}")
    with sync.SqlAlchemyCheckpointStore(engine) as store:
        store.create_session("/a")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sessions")).scalar_one() == 1
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
    engine.dispose()


def test_faces_refuse_the_other_kind_of_engine(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="AsyncEngine"):
        SqlAlchemyCheckpointStore(create_engine("sqlite://"))
    with pytest.raises(TypeError, match="synchronous Engine"):
        sync.SqlAlchemyCheckpointStore(create_async_engine("sqlite+aiosqlite://"))


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
async def test_async_store_accepts_an_explicit_driver_url(backend: str) -> None:
    url = make_url(require_server(backend))
    explicit = url.set(drivername="postgresql+asyncpg" if backend == "postgresql" else "mariadb+asyncmy")
    async with SqlAlchemyCheckpointStore(explicit) as store:
        session = await store.create_session("/explicit")
        saved = await store.save_checkpoint(session_id=session.id, step=1, node_results={}, source="input")
        assert (await store.get_latest_checkpoint(session.id)) == saved


# --- the async face on SQLite: bounded operations on the event loop -----------------------


@contextmanager
def statement_threads() -> Iterator[list[int]]:
    """The thread that ran each statement the store executed."""
    threads: list[int] = []

    def record(*_args: Any) -> None:
        threads.append(threading.get_ident())

    with before_each_statement(Engine, record):
        yield threads


@pytest.mark.parametrize("database", ["file", "memory"])
async def test_async_sqlite_runs_bounded_operations_on_the_loop_and_the_rest_in_threads(
    tmp_path: Path, database: str
) -> None:
    path = tmp_path / "inline.db" if database == "file" else ":memory:"
    async with SqliteCheckpointStore(path) as store:
        session = await store.create_session("/inline")
        checkpoint = await store.save_checkpoint(session_id=session.id, step=1, node_results={}, source="loop")
        loop_thread = threading.get_ident()
        with statement_threads() as bounded:
            await store.add_message(session.id, role="user", content="hi")
            await store.get_messages(session.id, limit=50)
            await store.get_latest_checkpoint(session.id)
        with statement_threads() as unbounded:
            await store.get_messages(session.id)
            await store.list_checkpoints(session.id, limit=10)  # checkpoints can be large
            await store.fork(checkpoint.id)
    assert set(bounded) == {loop_thread}
    assert unbounded
    assert loop_thread not in unbounded


async def test_async_sqlite_never_waits_for_a_lock_on_the_event_loop(tmp_path: Path) -> None:
    # Another connection holds the write lock for half a second. A write that waited for
    # it on the event loop would freeze the loop; it must wait in a worker thread while
    # the loop runs on (and reads, which WAL never blocks, still answer on the loop).
    path = tmp_path / "locked.db"
    async with SqliteCheckpointStore(path) as store:
        session = await store.create_session("/locked")
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        try:
            holder.execute("BEGIN IMMEDIATE")
            release = threading.Timer(0.5, holder.execute, ["COMMIT"])
            release.start()
            started = time.monotonic()
            writing = asyncio.create_task(store.add_message(session.id, role="user", content="after the lock"))
            assert await store.get_session(session.id) == session
            message = await writing
            waited = time.monotonic() - started
            release.join()
        finally:
            ticker.cancel()
            holder.close()
        assert waited >= 0.45, "the write did not wait for the lock: the test proved nothing"
        assert ticks >= 20, f"the event loop ran only {ticks} ticks in {waited:.2f} s: it was blocked"
        assert await store.get_messages(session.id) == [message]
        # Once the lock is free, writes run on the loop again.
        with statement_threads() as threads:
            await store.add_message(session.id, role="user", content="inline again")
        assert set(threads) == {threading.get_ident()}


def test_sync_sqlite_store_keeps_one_connection_for_sequential_calls_and_closes_it(tmp_path: Path) -> None:
    path = tmp_path / "kept.db"
    store = sync.SqliteCheckpointStore(path)
    session = store.create_session("/kept")
    connections: set[int] = set()

    def record(conn: Any, *_args: Any) -> None:
        connections.add(id(conn.connection.dbapi_connection))

    with before_each_statement(Engine, record):
        for index in range(20):
            store.add_message(session.id, role="user", content=str(index))
        with pytest.raises(SessionNotFoundError):
            store.add_message("missing", role="user", content="x")
        assert len(store.get_messages(session.id)) == 20
    assert len(connections) == 1
    store.close()
    # SQLite removes the WAL file when its last connection closes: none was left open.
    assert not Path(f"{path}-wal").exists()


async def test_async_sqlite_keeps_the_wal_small_though_the_loop_never_checkpoints(tmp_path: Path) -> None:
    # The event loop's connection does not checkpoint (an fsync there would stall the
    # loop); every hundredth write goes to a thread that does. Without it, 2,000 appends
    # grow the WAL to about 60 MB.
    path = tmp_path / "wal.db"
    async with SqliteCheckpointStore(path) as store:
        session = await store.create_session("/wal")
        for index in range(2_000):
            await store.add_message(session.id, role="user", content=f"{index:0200d}")
        wal_bytes = await asyncio.to_thread(os.path.getsize, f"{path}-wal")
        assert len(await store.get_messages(session.id)) == 2_000
    assert wal_bytes < 8_000_000, f"the WAL grew to {wal_bytes / 1e6:.1f} MB"


def test_a_caller_owned_sqlite_engine_is_not_patched_and_still_begins_writes_immediately(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'owned.db'}")

    def instance_methods() -> dict[str, Any]:
        return {name: value for name, value in vars(engine.dialect).items() if callable(value)}

    dialect_methods = instance_methods()
    begins: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("BEGIN"):
            begins.append(statement)

    with sync.SqlAlchemyCheckpointStore(engine) as store:
        session = store.create_session("/owned")
        store.get_session(session.id)
    assert instance_methods() == dialect_methods, "the store replaced methods on the caller's dialect"
    assert begins[-2:] == ["BEGIN IMMEDIATE", "BEGIN"]
    engine.dispose()
