"""Reliability guarantees of issue 4, in one process: exact and atomic forks, store-assigned
versions, one transaction per method, contained corruption, private SQLite files, and
surviving a killed server connection.

Failures are injected with a ``before_cursor_execute`` listener on the ``Engine`` class,
so they reach the store's own engines (and the sync engines inside its async ones)
without touching its internals. Multi-process tests are in test_concurrency.py and
test_crash.py.
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, create_engine, text
from sqlalchemy.exc import DBAPIError

from obsku_checkpoint_sqlite import (
    CheckpointCorruptionError,
    CheckpointVersionConflictError,
    DatabaseUnavailableError,
    SqlAlchemyCheckpointStore,
    SqliteCheckpointStore,
    sync,
)
from obsku_checkpoint_sqlite.ops import checkpoints, forks, messages, sessions
from obsku_checkpoint_sqlite.runtime import async_runners, sqlite, sync_runner
from obsku_checkpoint_sqlite.runtime import failures as failure_policy
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from tests.conftest import StoreFactory, before_each_statement

# Backends a second connection can inspect: a private in-memory database cannot be.
INSPECTABLE = ["sqlite-file", "postgresql", "mariadb"]
NODES: dict[str, Any] = {"plan": {"status": "completed", "output": {"steps": [1, 2]}}}


class InjectedFailure(Exception):
    """Raised by a test in the middle of a store operation."""


@contextmanager
def fail_on(matches: Callable[[str], bool]) -> Iterator[list[str]]:
    """Raise ``InjectedFailure`` before the first statement ``matches`` accepts, on any engine.

    Yields the statements that ran before it, so a test can show the failure came late.
    """
    executed: list[str] = []

    def before_cursor_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        normalized = " ".join(statement.split())
        if matches(normalized):
            raise InjectedFailure(normalized[:80])
        executed.append(normalized)

    with before_each_statement(Engine, before_cursor_execute):
        yield executed


@contextmanager
def raw_connection(url: str) -> Iterator[Any]:
    """A connection of the test's own, beside the store's, in one committed transaction."""
    engine = create_engine(normalize_url(url, for_async=False))
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def purge_workspaces(url: str, workspaces: list[str]) -> None:
    """Delete these workspaces' sessions, messages and checkpoints, without reading them."""
    with raw_connection(url) as conn:
        find = text("SELECT id FROM sessions WHERE workspace_id IN :workspaces")
        found = list(conn.execute(find.bindparams(bindparam("workspaces", expanding=True)), {"workspaces": workspaces}))
        ids = [row.id for row in found]
        for table, column in (("messages", "session_id"), ("checkpoints", "session_id"), ("sessions", "id")):
            delete = text(f"DELETE FROM {table} WHERE {column} IN :ids")
            conn.execute(delete.bindparams(bindparam("ids", expanding=True)), {"ids": ids})


def frozen_clock(monkeypatch: pytest.MonkeyPatch, millis: int) -> None:
    """Every timestamp the store takes is ``millis``: everything happens in one millisecond."""
    for module in (checkpoints, forks, messages, sessions):
        monkeypatch.setattr(module, "now_ms", lambda: millis)


def comparable(message: Any) -> dict[str, Any]:
    """A message without what a copy legitimately changes (its id and session)."""
    return dict(message.model_dump(exclude={"id", "session_id"}))


async def save(store: Any, session_id: str, **fields: Any) -> Any:
    """Save a checkpoint with the store-assigned version and whatever ``fields`` do not say."""
    return await store.save_checkpoint(
        session_id=session_id, **{"step": 0, "node_results": {}, "source": "loop", **fields}
    )


# --- 1. exact, atomic forks -------------------------------------------------------------


async def test_fork_copies_exactly_the_history_its_checkpoint_saw_within_one_millisecond(
    store: Any, workspace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The original picks messages by created_at <= checkpoint.created_at: with every
    # write in the same millisecond, it would copy the messages added after the checkpoint.
    frozen_clock(monkeypatch, 1_800_000_000_000)
    origin = await store.create_session("/repo", title="origin", workspace_id=workspace, metadata={"k": [1]})
    calls = [{"tool_use_id": "t1", "name": "grep", "input": {"q": "x"}}]
    seen = [
        await store.add_message(origin.id, role="user", content="first", tokens_in=3),
        await store.add_message(origin.id, role="assistant", tool_calls=calls, tokens_out=7),
        await store.add_message(origin.id, role="tool", tool_results=[{"tool_use_id": "t1", "content": "hit"}]),
    ]
    checkpoint = await store.save_checkpoint(
        session_id=origin.id, namespace="graph", step=2, node_results=NODES, source="loop",
        pending_nodes=["report"], cycle_state={"back_edge": "report->plan", "iteration": 1},
    )  # fmt: skip
    await store.add_message(origin.id, role="assistant", content="after the checkpoint, same millisecond")
    assert {m.created_at for m in await store.get_messages(origin.id)} == {checkpoint.created_at}

    forked = await store.fork(checkpoint.id, title="fork")

    copied = await store.get_messages(forked.id)
    assert [comparable(m) for m in copied] == [comparable(m) for m in seen]
    assert [m.id for m in copied] == sorted(m.id for m in copied)
    assert (forked.forked_from_session_id, forked.forked_from_checkpoint_id) == (origin.id, checkpoint.id)
    assert (forked.directory, forked.workspace_id, forked.metadata) == ("/repo", workspace, {"k": [1]})
    (fork_checkpoint,) = await store.list_checkpoints(forked.id)
    assert fork_checkpoint.parent_id == checkpoint.id
    assert fork_checkpoint.source == "fork"
    copied_fields = {"namespace", "version", "step", "node_results", "pending_nodes", "cycle_state", "node_id"}
    assert fork_checkpoint.model_dump(include=copied_fields) == checkpoint.model_dump(include=copied_fields)
    assert len(await store.get_messages(origin.id)) == 4, "the original is untouched"

    # The fork's own checkpoint records the fork's history: a message the fork gains
    # afterwards, in the same millisecond, stays out of a fork of the fork.
    await store.add_message(forked.id, role="user", content="the fork goes its own way")
    grandchild = await store.fork(fork_checkpoint.id)
    assert [comparable(m) for m in await store.get_messages(grandchild.id)] == [comparable(m) for m in seen]
    assert grandchild.forked_from_session_id == forked.id


async def test_fork_from_a_checkpoint_saved_before_any_message_copies_none(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen_clock(monkeypatch, 1_800_000_000_000)
    origin = await store.create_session("/repo")
    checkpoint = await store.save_checkpoint(session_id=origin.id, step=0, node_results={}, source="input")
    await store.add_message(origin.id, role="user", content="same millisecond, after")
    forked = await store.fork(checkpoint.id)
    assert await store.get_messages(forked.id) == []


@pytest.mark.parametrize("backend", INSPECTABLE, indirect=True)
async def test_fork_of_a_legacy_checkpoint_falls_back_to_the_timestamp_rule(store: Any, url: str) -> None:
    # Rows written by the original package (or before revision 0002) have no watermark.
    origin = await store.create_session("/legacy")
    kept = await store.add_message(origin.id, role="user", content="kept")
    checkpoint = await store.save_checkpoint(session_id=origin.id, step=0, node_results={}, source="input")
    later = await store.add_message(origin.id, role="user", content="later")
    with raw_connection(url) as conn:
        conn.execute(text("UPDATE checkpoints SET last_message_id = NULL WHERE id = :id"), {"id": checkpoint.id})
        conn.execute(
            text("UPDATE messages SET created_at = :t WHERE id = :id"), {"t": checkpoint.created_at - 1, "id": kept.id}
        )
        conn.execute(
            text("UPDATE messages SET created_at = :t WHERE id = :id"), {"t": checkpoint.created_at + 1, "id": later.id}
        )

    forked = await store.fork(checkpoint.id)

    assert [m.content for m in await store.get_messages(forked.id)] == ["kept"]


def is_checkpoint_copy(statement: str) -> bool:
    return statement.startswith("INSERT INTO checkpoints") and "FROM checkpoints WHERE checkpoints.id" in statement


def is_message_copy(statement: str) -> bool:
    return statement.startswith("INSERT INTO messages") and " SELECT " in statement


@pytest.mark.parametrize("failing_statement", [is_message_copy, is_checkpoint_copy], ids=["messages", "checkpoint"])
async def test_an_interrupted_fork_leaves_nothing_behind(
    store: Any, workspace: str, failing_statement: Callable[[str], bool]
) -> None:
    origin = await store.create_session("/repo", workspace_id=workspace)
    for index in range(5):
        await store.add_message(origin.id, role="user", content=f"m{index}")
    checkpoint = await store.save_checkpoint(session_id=origin.id, step=1, node_results=NODES, source="loop")
    history = await store.get_messages(origin.id)

    with fail_on(failing_statement) as executed, pytest.raises(InjectedFailure):
        await store.fork(checkpoint.id)

    # The failure came after the new session row was written: it was rolled back.
    assert any(statement.startswith("INSERT INTO sessions") for statement in executed)
    assert [s.id for s in await store.list_sessions(workspace)] == [origin.id]
    assert await store.get_messages(origin.id) == history
    assert await store.list_checkpoints(origin.id) == [checkpoint]
    # And the store carries on: the same fork now succeeds, whole.
    forked = await store.fork(checkpoint.id)
    assert [m.content for m in await store.get_messages(forked.id)] == [f"m{i}" for i in range(5)]
    assert len(await store.list_checkpoints(forked.id)) == 1


async def test_a_fork_takes_the_same_statements_whatever_the_history_length(store: Any) -> None:
    # Set-based: INSERT ... SELECT copies the history, no round trip per message.
    statements: dict[int, list[str]] = {}
    for length in (1, 40):
        origin = await store.create_session("/long")
        for index in range(length):
            await store.add_message(origin.id, role="user", content=f"m{index}")
        checkpoint = await store.save_checkpoint(session_id=origin.id, step=0, node_results={}, source="loop")
        with fail_on(lambda _statement: False) as executed:
            forked = await store.fork(checkpoint.id)
        statements[length] = executed
        assert len(await store.get_messages(forked.id)) == length
    assert len(statements[40]) == len(statements[1]) <= 8, statements[40]


# --- 2. store-assigned versions ---------------------------------------------------------


async def test_versions_are_assigned_one_after_another_per_session_and_namespace(store: Any) -> None:
    first, second = await store.create_session("/a"), await store.create_session("/b")
    saved = []
    for namespace in ("", "sub", "", "sub", ""):
        for session in (first, second):
            saved.append(await save(store, session.id, namespace=namespace))
    for session in (first, second):
        versions: dict[str, list[int]] = {}
        for checkpoint in saved:
            if checkpoint.session_id == session.id:
                versions.setdefault(checkpoint.namespace, []).append(checkpoint.version)
        assert versions == {"": [1, 2, 3], "sub": [1, 2]}
        stored = {(c.namespace, c.version) for c in await store.list_checkpoints(session.id)}
        assert stored == {("", 1), ("", 2), ("", 3), ("sub", 1), ("sub", 2)}


async def test_an_explicit_version_that_exists_conflicts_and_writes_nothing(store: Any) -> None:
    session = await store.create_session("/v")
    await store.save_checkpoint(session_id=session.id, step=0, node_results={}, source="input")
    explicit = await store.save_checkpoint(session_id=session.id, version=5, step=1, node_results={}, source="loop")
    before = await store.list_checkpoints(session.id)

    for version in (1, 5):
        with pytest.raises(CheckpointVersionConflictError, match=f"version {version} already exists") as info:
            await store.save_checkpoint(session_id=session.id, version=version, step=9, node_results={}, source="loop")
        assert (info.value.session_id, info.value.namespace, info.value.version) == (session.id, "", version)

    assert await store.list_checkpoints(session.id) == before
    # The same version in another namespace is no conflict; the next assigned one follows the highest.
    assert (await save(store, session.id, namespace="other", version=5)).version == 5
    auto = await save(store, session.id, step=2)
    assert (explicit.version, auto.version) == (5, 6)


async def test_concurrent_writers_in_one_process_never_share_a_version(
    open_store: StoreFactory, url: str, backend: str, face: str
) -> None:
    # Two store instances (two pools) where the database can be shared; a private
    # in-memory database exists only in its one store.
    stores = [open_store(url)] if backend == "sqlite-memory" else [open_store(url), open_store(url)]
    session = await stores[0].create_session("/race")
    per_namespace = 12

    async def save_one(index: int) -> Any:
        return await save(stores[index % len(stores)], session.id, namespace=("a", "b")[index % 2], step=index)

    if face == "async":
        saved = await asyncio.gather(*(save_one(index) for index in range(2 * per_namespace)))
    else:
        # The sync face races in threads: its calls block (each runs to completion in asyncio.run).
        with ThreadPoolExecutor(max_workers=8) as pool:
            saved = list(pool.map(lambda index: asyncio.run(save_one(index)), range(2 * per_namespace)))

    for namespace in ("a", "b"):
        returned = sorted(c.version for c in saved if c.namespace == namespace)
        stored = sorted(c.version for c in await stores[0].list_checkpoints(session.id, namespace=namespace))
        assert returned == stored == list(range(1, per_namespace + 1))


async def test_racing_writers_of_one_explicit_version_get_one_success_and_conflicts(
    open_store: StoreFactory, url: str, backend: str, face: str
) -> None:
    stores = [open_store(url)] if backend == "sqlite-memory" else [open_store(url), open_store(url)]
    session = await stores[0].create_session("/explicit")

    def save(index: int) -> Any:
        store = stores[index % len(stores)]
        return store.save_checkpoint(session_id=session.id, version=7, step=index, node_results={}, source="loop")

    async def attempt(index: int) -> Any:
        try:
            return await save(index)
        except CheckpointVersionConflictError as exc:
            return exc

    if face == "async":
        outcomes = await asyncio.gather(*(attempt(index) for index in range(6)))
    else:
        with ThreadPoolExecutor(max_workers=6) as pool:
            outcomes = list(pool.map(lambda index: asyncio.run(attempt(index)), range(6)))
    winners = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, CheckpointVersionConflictError) for o in outcomes if o is not winners[0])
    assert await stores[0].list_checkpoints(session.id) == winners


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_serialization_failures_are_retried_on_postgresql(open_store: StoreFactory, url: str, face: str) -> None:
    # Under SERIALIZABLE, a writer that waited for the session lock fails with 40001 when
    # the holder commits: the runner must roll back and run it again, not surface it.
    store = open_store(url, isolation_level="SERIALIZABLE")
    session = await store.create_session("/serializable")

    def save() -> Any:
        return store.save_checkpoint(session_id=session.id, step=0, node_results={}, source="loop")

    if face == "async":
        saved = await asyncio.gather(*(save() for _ in range(12)))
    else:
        with ThreadPoolExecutor(max_workers=6) as pool:
            saved = list(pool.map(lambda _: asyncio.run(save()), range(12)))
    assert sorted(c.version for c in saved) == list(range(1, 13))


@pytest.mark.parametrize("backend", ["sqlite-file", "mariadb"], indirect=True)
async def test_a_writer_outlasting_the_lock_timeout_is_retried_until_the_lock_frees(
    open_store: StoreFactory, url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another connection holds the write lock longer than the store's lock timeout, so
    # the store's write fails with "database is locked" (SQLite) or 1205 (MariaDB) at
    # least once: it must retry, with backoff, and succeed once the lock is released.
    if backend == "mariadb":
        store = open_store(url, connect_args={"init_command": "SET SESSION innodb_lock_wait_timeout = 1"})
        hold = 1.6
    else:
        monkeypatch.setattr(sqlite, "SQLITE_BUSY_TIMEOUT_MS", 50)
        store = open_store(url)
        hold = 0.6
    session = await store.create_session("/locked")
    failures: list[str] = []
    decide = failure_policy.retry_delay

    def recording_retry_delay(exc: Any, *args: Any, **kwargs: Any) -> float | None:
        failures.append(str(exc.orig))
        return decide(exc, *args, **kwargs)

    monkeypatch.setattr(sync_runner, "retry_delay", recording_retry_delay)
    monkeypatch.setattr(async_runners, "retry_delay", recording_retry_delay)
    engine = create_engine(normalize_url(url, for_async=False))
    try:
        with engine.connect() as holder:
            if backend == "mariadb":
                holder.begin()
                holder.execute(text("SELECT id FROM sessions WHERE id = :id FOR UPDATE"), {"id": session.id})
            else:
                holder.exec_driver_sql("BEGIN IMMEDIATE")
            # From a thread: the sync face blocks the event loop while it waits.
            release = threading.Timer(hold, holder.exec_driver_sql, ["COMMIT"])
            release.start()
            started = time.monotonic()
            message = await store.add_message(session.id, role="user", content="x")
            waited = time.monotonic() - started
            release.join()
    finally:
        engine.dispose()
    assert failures, "the lock never timed out: the test proved nothing"
    assert waited >= hold * 0.9
    assert [m.id for m in await store.get_messages(session.id)] == [message.id]


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"], indirect=True)
async def test_a_locked_session_does_not_hold_up_writers_of_other_sessions(
    open_store: StoreFactory, url: str, backend: str
) -> None:
    # The store locks the row of the session it writes, nothing wider: while another
    # transaction holds one session's row, writes to another session go through. Lock
    # waits are cut to 3 s, so a store-wide lock would fail this test, not hang it.
    if backend == "mariadb":
        store = open_store(url, connect_args={"init_command": "SET SESSION innodb_lock_wait_timeout = 3"})
    else:
        store = open_store(url, connect_args={"options": "-c lock_timeout=3000"})
    held = await store.create_session("/held")
    free = await store.create_session("/free")
    engine = create_engine(normalize_url(url, for_async=False))
    try:
        with engine.connect() as holder, engine.connect() as prober:
            holder.begin()
            holder.execute(text("SELECT id FROM sessions WHERE id = :id FOR UPDATE"), {"id": held.id})
            with pytest.raises(DBAPIError, match=r"(?i)lock"):  # the row lock is real
                prober.execute(text("SELECT id FROM sessions WHERE id = :id FOR UPDATE NOWAIT"), {"id": held.id})
            started = time.monotonic()
            message = await store.add_message(free.id, role="user", content="not held up")
            checkpoint = await save(store, free.id, step=1)
            elapsed = time.monotonic() - started
            holder.rollback()
    finally:
        engine.dispose()
    assert elapsed < 2.0, f"writes to another session waited {elapsed:.1f} s"
    assert await store.get_messages(free.id) == [message]
    assert await store.get_latest_checkpoint(free.id) == checkpoint


@pytest.mark.parametrize("scratch_url", ["postgresql"], indirect=True)
async def test_an_import_never_moves_the_message_id_sequence_backwards(
    open_store: StoreFactory, scratch_url: str, tmp_path: Path
) -> None:
    # Imported messages keep their ids, which PostgreSQL's sequence does not see. Moving
    # the sequence to MAX(id) + 1 afterwards can move it back below an id another writer
    # holds uncommitted: its next add_message then collides with that message (and ids
    # stop growing with time, which forks rely on).
    store = open_store(scratch_url)
    exported = await store.create_session("/exported")
    for index in range(3):
        await store.add_message(exported.id, role="user", content=f"m{index}")
    await store.export_sessions(tmp_path / "export.jsonl", session_ids=[exported.id])
    await store.delete_session(exported.id)
    busy = await store.create_session("/busy")

    engine = create_engine(normalize_url(scratch_url, for_async=False))
    try:
        with engine.connect() as writer, writer.begin():
            in_flight = writer.execute(
                text("INSERT INTO messages (session_id, role, created_at) VALUES (:s, 'user', 0) RETURNING id"),
                {"s": busy.id},
            ).scalar_one()
            await store.import_sessions(tmp_path / "export.jsonl")
    finally:
        engine.dispose()

    added = [await store.add_message(busy.id, role="user", content=f"n{index}") for index in range(3)]
    assert all(message.id > in_flight for message in added)
    assert [m.content for m in await store.get_messages(exported.id)] == ["m0", "m1", "m2"]


# --- 3. one transaction per method ------------------------------------------------------


async def test_add_message_rolls_back_the_session_bump_when_the_insert_fails(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await store.create_session("/tx")
    frozen_clock(monkeypatch, session.updated_at + 60_000)

    with fail_on(lambda statement: statement.startswith("INSERT INTO messages")) as executed:
        with pytest.raises(InjectedFailure):
            await store.add_message(session.id, role="user", content="lost")
        assert any(statement.startswith("UPDATE sessions SET updated_at") for statement in executed)

    assert await store.get_session(session.id) == session
    assert await store.get_messages(session.id) == []
    message = await store.add_message(session.id, role="user", content="kept")
    reloaded = await store.get_session(session.id)
    assert reloaded is not None
    assert reloaded.updated_at == message.created_at == session.updated_at + 60_000


async def test_save_checkpoint_rolls_back_whole_when_it_fails_after_locking(store: Any) -> None:
    session = await store.create_session("/tx")
    await store.save_checkpoint(session_id=session.id, step=0, node_results={}, source="input")
    before = await store.list_checkpoints(session.id)
    with fail_on(lambda statement: statement.startswith("INSERT INTO checkpoints")), pytest.raises(InjectedFailure):
        await store.save_checkpoint(session_id=session.id, step=1, node_results=NODES, source="loop")
    assert await store.list_checkpoints(session.id) == before
    # The lock taken (FOR UPDATE / BEGIN IMMEDIATE) was released with the rollback.
    assert (await store.save_checkpoint(session_id=session.id, step=1, node_results={}, source="loop")).version == 2


# --- 5. damaged data is contained -------------------------------------------------------


@pytest.mark.parametrize("backend", INSPECTABLE, indirect=True)
async def test_a_corrupt_row_raises_for_itself_only(
    store: Any, url: str, workspace: str, request: pytest.FixtureRequest
) -> None:
    healthy = await store.create_session("/ok", workspace_id=workspace, metadata={"fine": True})
    damaged = await store.create_session("/bad", workspace_id=workspace + "-damaged", metadata={"fine": True})
    checkpoints = [
        await store.save_checkpoint(session_id=healthy.id, step=step, node_results=NODES, source="loop")
        for step in range(3)
    ]
    messages = [await store.add_message(healthy.id, role="user", content=f"m{index}") for index in range(3)]
    broken_json = '{"plan": {"status": "completed", "output": ' + '"xyz' * 100  # cut off mid-write
    damage = [
        ("checkpoints", "node_results", checkpoints[1].id, broken_json),
        ("messages", "tool_calls", messages[1].id, '[{"toolUseId": 1}]'),  # valid JSON, wrong shape
        ("sessions", "metadata", damaged.id, "{not json"),
    ]
    with raw_connection(url) as conn:
        for table, column, row_id, value in damage:
            conn.execute(text(f"UPDATE {table} SET {column} = :value WHERE id = :id"), {"value": value, "id": row_id})
    # Corrupt rows must not outlive the test in a shared server database.
    request.addfinalizer(lambda: purge_workspaces(url, [workspace, workspace + "-damaged"]))

    with pytest.raises(CheckpointCorruptionError) as info:
        await store.get_checkpoint(checkpoints[1].id)
    message = str(info.value)
    assert f"checkpoints row {checkpoints[1].id!r}" in message
    assert '{"plan": {"status": "completed", "output": "xyz' in message
    assert info.value.preview == broken_json[:120] + "...", "the preview is truncated"
    assert await store.get_checkpoint(checkpoints[0].id) == checkpoints[0]
    assert await store.get_checkpoint(checkpoints[2].id) == checkpoints[2]
    assert await store.get_latest_checkpoint(healthy.id) == checkpoints[2]

    with pytest.raises(CheckpointCorruptionError, match=rf"messages row {messages[1].id}\b.*toolUseId"):
        await store.get_messages(healthy.id)
    assert [m.content for m in await store.get_messages(healthy.id, limit=1)] == ["m2"]

    with pytest.raises(CheckpointCorruptionError, match=rf"sessions row {damaged.id!r}.*\{{not json"):
        await store.get_session(damaged.id)
    reloaded = await store.get_session(healthy.id)
    assert reloaded is not None
    assert reloaded.metadata == {"fine": True}
    assert [s.id for s in await store.list_sessions(workspace)] == [healthy.id]
    # Fork copies stored text without decoding it, and the damage stays in its row.
    forked = await store.fork(checkpoints[2].id)
    assert len(await store.list_checkpoints(forked.id)) == 1


@pytest.mark.parametrize("backend", INSPECTABLE, indirect=True)
@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ('{"plan": {"status": "done"}}', r"invalid shape \(plan\.status: Input should be 'pending'"),
        ('{"plan": {"status": "completed", "startedAt": "noon"}}', r"invalid shape \(plan\.startedAt"),
        ('{"plan": {"status": "completed", "output": {"__type": "Date", "value": "noon"}}}', "malformed tagged value"),
    ],
    ids=["unknown-status", "time-not-a-number", "bad-date-tag"],
)
async def test_node_results_of_the_wrong_shape_raise_when_first_read(
    store: Any, url: str, workspace: str, request: pytest.FixtureRequest, stored: str, problem: str
) -> None:
    session = await store.create_session("/bad", workspace_id=workspace)
    first, damaged, last = [
        await store.save_checkpoint(session_id=session.id, step=step, node_results=NODES, source="loop")
        for step in range(3)
    ]
    with raw_connection(url) as conn:
        conn.execute(
            text("UPDATE checkpoints SET node_results = :value WHERE id = :id"), {"value": stored, "id": damaged.id}
        )
    request.addfinalizer(lambda: purge_workspaces(url, [workspace]))

    # Listing reads the row's JSON but defers validating its node results to their first use.
    listed = await store.list_checkpoints(session.id)
    assert [c.id for c in listed] == [last.id, damaged.id, first.id]
    assert listed[1].step == 1
    for read in (listed[1].node_results, (await store.get_checkpoint(damaged.id)).node_results):
        with pytest.raises(
            CheckpointCorruptionError, match=rf"checkpoints row {damaged.id!r}, column node_results: {problem}"
        ) as info:
            read["plan"]
        assert info.value.preview == stored, "the preview is the stored text"
        with pytest.raises(CheckpointCorruptionError):
            list(read.items())  # and again: a failed validation is not remembered as a success
        assert "CheckpointCorruptionError" in repr(read), "a repr does not raise"
    assert listed[0] == last
    assert listed[2].node_results == first.node_results


# --- 6. SQLite files are private and shared safely --------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    # The worst case: with umask 0 a file created with default permissions is 0666.
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
@pytest.mark.parametrize(
    "opener",
    [
        lambda path: SqliteCheckpointStore(path),
        lambda path: SqlAlchemyCheckpointStore(f"sqlite:///{path}"),
        lambda path: SqlAlchemyCheckpointStore(f"sqlite+aiosqlite:///{path}"),
        lambda path: sync.SqliteCheckpointStore(path),
        lambda path: sync.SqlAlchemyCheckpointStore(f"sqlite:///{path}"),
        lambda path: sync.SqlAlchemyCheckpointStore(f"sqlite:///file:{path}?uri=true&cache=private"),
    ],
    ids=["async-path", "async-url", "aiosqlite-url", "sync-path", "sync-url", "uri-filename"],
)
async def test_a_new_database_file_and_its_wal_are_private(tmp_path: Path, opener: Callable[[Path], Any]) -> None:
    path = tmp_path / "secrets.db"
    store = opener(path)
    try:
        session = store.create_session("/s")
        session = await session if asyncio.iscoroutine(session) else session
        for suffix in ("", "-wal", "-shm"):
            sibling = path.with_name(path.name + suffix)
            assert sibling.exists(), f"{sibling.name} missing: not in WAL mode?"
            assert file_mode(sibling) == 0o600, f"{sibling.name} has mode {oct(file_mode(sibling))}"
        with raw_connection(f"sqlite:///{path}") as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        closed = store.close()
        if asyncio.iscoroutine(closed):
            await closed


@pytest.mark.parametrize("face", ["async", "sync"])
def test_a_database_file_that_cannot_be_created_is_a_store_error(tmp_path: Path, face: str) -> None:
    missing = tmp_path / "no such directory" / "checkpoints.db"
    opener = SqliteCheckpointStore if face == "async" else sync.SqliteCheckpointStore
    # Raised as the store opens, where the file is created: before any call.
    with pytest.raises(DatabaseUnavailableError, match="no such directory"):
        opener(missing)


async def test_sqlite_connections_use_wal_normal_sync_and_a_busy_timeout(
    open_store: StoreFactory, tmp_path: Path
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    await store.create_session("/p")
    seen: list[tuple[Any, ...]] = []

    def capture(conn: Any, *_args: Any) -> None:
        if not seen:
            cursor = conn.connection.cursor()
            row = []
            for pragma in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys"):
                cursor.execute(f"PRAGMA {pragma}")
                row.append(cursor.fetchone()[0])
            seen.append(tuple(row))

    # Unbounded, so a pooled connection serves it on both faces (the async face runs
    # bounded operations on a connection of its own that never waits: test_engines).
    with before_each_statement(Engine, capture):
        await store.list_sessions()
    # synchronous=1 is NORMAL: in WAL mode a process crash loses no committed write.
    assert seen == [("wal", 1, 10_000, 1)]


# --- 8. server connections --------------------------------------------------------------


def kill_connections(url: str) -> int:
    """Kill every connection to the (scratch) database of ``url`` but this one; wait until they are gone."""
    engine = create_engine(normalize_url(url, for_async=False), isolation_level="AUTOCOMMIT")
    if engine.dialect.name == "postgresql":
        find = "SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
        kill = "SELECT pg_terminate_backend({})"
    else:
        find = "SELECT id FROM information_schema.processlist WHERE db = :db AND id <> CONNECTION_ID()"
        kill = "KILL {}"
    try:
        with engine.connect() as conn:
            victims = conn.execute(text(find), {"db": engine.url.database}).scalars().all()
            for victim in victims:
                conn.exec_driver_sql(kill.format(int(victim)))
            # Killing is asynchronous: a pre-ping racing it could still find the victim alive.
            deadline = time.monotonic() + 10
            while set(conn.execute(text(find), {"db": engine.url.database}).scalars()) & set(victims):
                assert time.monotonic() < deadline, "the killed connections did not go away"
                time.sleep(0.01)
            return len(victims)
    finally:
        engine.dispose()


@pytest.mark.parametrize("scratch_url", ["postgresql", "mariadb"], indirect=True)
async def test_a_killed_server_connection_is_replaced_on_the_next_call(
    open_store: StoreFactory, scratch_url: str
) -> None:
    store = open_store(scratch_url)
    session = await store.create_session("/k")
    for round_ in range(3):
        assert kill_connections(scratch_url) >= 1, "the store keeps a pooled connection to kill"
        # Reads and writes alike: the checkout finds the dead connection before the call uses it.
        await store.add_message(session.id, role="user", content=f"after kill {round_}")
        assert kill_connections(scratch_url) >= 1
        assert [m.content for m in await store.get_messages(session.id)] == [
            f"after kill {i}" for i in range(round_ + 1)
        ]


async def test_an_unreachable_server_is_a_clear_error(open_store: StoreFactory, face: str) -> None:
    # Nothing listens on port 1.
    store = open_store("postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    with pytest.raises(DatabaseUnavailableError):
        await store.get_session("s")
