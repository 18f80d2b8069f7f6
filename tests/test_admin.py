"""Summaries, continue_latest and prune, on every backend and both faces."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert

from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.db.queries import checkpoints, messages, sessions
from obsku_checkpoint_sqlite.db.values import now_ms
from obsku_checkpoint_sqlite.ops import retention as admin
from obsku_checkpoint_sqlite.runtime.async_runners import AsyncEngineRunner, ThreadRunner
from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine
from obsku_checkpoint_sqlite.runtime.sync_runner import SyncRunner
from tests.conftest import counting_statements


def runner_of(store: Any) -> Any:
    inner = getattr(store, "sync_store", store)
    return inner._runner


def event_engine(store: Any) -> Engine:
    """The synchronous engine under a store, where cursor events fire."""
    runner = runner_of(store)
    if isinstance(runner, ThreadRunner):
        return runner.sync_runner.engine
    if isinstance(runner, AsyncEngineRunner):
        return runner.engine.sync_engine
    assert isinstance(runner, SyncRunner)
    return runner.engine


@contextmanager
def seeding_engine(store: Any, url: str) -> Iterator[Engine]:
    """A blocking engine on the store's database, for bulk Core inserts."""
    runner = runner_of(store)
    if isinstance(runner, AsyncEngineRunner):
        engine = create_sync_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
    else:
        yield event_engine(store)


def seed_sessions(engine: Engine, workspace: str, count: int, *, messages_each: int, checkpoints_each: int) -> None:
    """``count`` sessions with rows, in a few bulk statements."""
    now = now_ms()
    session_rows, message_rows, checkpoint_rows = [], [], []
    for index in range(count):
        session_id = f"{workspace}-{index:05d}"
        session_rows.append(
            {"id": session_id, "workspace_id": workspace, "title": f"run {index}", "directory": "/w",
             "created_at": now, "updated_at": now + index}
        )  # fmt: skip
        message_rows += [
            {"session_id": session_id, "role": "user", "content": f"m{n}", "created_at": now + n}
            for n in range(messages_each)
        ]
        checkpoint_rows += [
            {"id": f"{session_id}-c{n}", "session_id": session_id, "namespace": "", "version": n + 1, "step": n,
             "node_results": "{}", "pending_nodes": "[]", "source": "loop", "created_at": now + n}
            for n in range(checkpoints_each)
        ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(sessions), session_rows)
        if message_rows:
            conn.execute(insert(messages), message_rows)
        if checkpoint_rows:
            conn.execute(insert(checkpoints), checkpoint_rows)


# --- summaries --------------------------------------------------------------------------


async def test_summaries_report_counts_and_latest_checkpoint(store: Any, workspace: str) -> None:
    busy = await store.create_session("/a", title="busy", workspace_id=workspace)
    idle = await store.create_session("/b", title="idle", workspace_id=workspace)
    await asyncio.sleep(0.002)  # the messages' bump must land in a later millisecond
    for text in ("one", "two"):
        await store.add_message(busy.id, role="user", content=text)
    await store.save_checkpoint(session_id=busy.id, namespace="a", step=3, node_results={}, source="loop")
    latest = await store.save_checkpoint(session_id=busy.id, namespace="b", step=7, node_results={}, source="input")
    await store.save_checkpoint(session_id=busy.id, namespace="a", step=5, node_results={}, source="loop")
    last_message = (await store.get_messages(busy.id))[-1]

    page = await store.session_summaries(workspace)

    by_id = {summary.session.id: summary for summary in page}
    assert [summary.session.id for summary in page] == [busy.id, idle.id]
    assert by_id[busy.id].message_count == 2
    assert by_id[busy.id].checkpoint_count == 3
    assert by_id[busy.id].last_message_at == last_message.created_at
    assert by_id[busy.id].latest_checkpoint is not None
    assert by_id[busy.id].latest_checkpoint.id == latest.id
    assert (by_id[busy.id].latest_checkpoint.namespace, by_id[busy.id].latest_checkpoint.step) == ("b", 7)
    assert by_id[busy.id].latest_checkpoint.source == "input"
    assert (by_id[idle.id].message_count, by_id[idle.id].checkpoint_count) == (0, 0)
    assert by_id[idle.id].last_message_at is None
    assert by_id[idle.id].latest_checkpoint is None


async def test_summaries_page_with_a_cursor_and_search(store: Any, workspace: str) -> None:
    created = [await store.create_session(f"/p{i}", title=f"Page {i}", workspace_id=workspace) for i in range(5)]
    first = await store.session_summaries(workspace, limit=2)
    second = await store.session_summaries(workspace, limit=2, cursor=first.next_cursor)
    third = await store.session_summaries(workspace, limit=2, cursor=second.next_cursor)
    seen = [summary.session.id for summary in [*first, *second, *third]]
    assert sorted(seen) == sorted(session.id for session in created)
    assert len(set(seen)) == 5
    assert third.next_cursor is None
    found = await store.session_summaries(workspace, search="page 3")
    assert [summary.session.title for summary in found] == ["Page 3"]


@pytest.mark.parametrize("backend", ["sqlite-file", "postgresql", "mariadb"], indirect=True)
async def test_summaries_take_the_same_statements_for_10_and_1000_sessions(
    store: Any, url: str, workspace: str
) -> None:
    small, large = f"{workspace}-small", f"{workspace}-large"
    await store.list_sessions(small)  # builds the schema before anything is counted
    with seeding_engine(store, url) as engine:
        seed_sessions(engine, small, 10, messages_each=3, checkpoints_each=2)
        seed_sessions(engine, large, 1000, messages_each=3, checkpoints_each=2)
    counted = event_engine(store)

    with counting_statements(counted) as for_small:
        small_page = await store.session_summaries(small, limit=None)
    with counting_statements(counted) as for_large:
        large_page = await store.session_summaries(large, limit=None)

    assert (len(small_page), len(large_page)) == (10, 1000)
    assert all(item.message_count == 3 and item.checkpoint_count == 2 for item in large_page)
    assert len(for_small) == len(for_large)
    assert len([sql for sql in for_large if sql.lstrip().upper().startswith(("SELECT", "WITH"))]) == 1

    # The shared server databases need not keep a thousand sessions per run; the
    # foreign keys cascade to the messages and checkpoints.
    with seeding_engine(store, url) as engine, engine.begin() as conn:
        conn.execute(delete(sessions).where(sessions.c.workspace_id.in_([small, large])))


async def test_continue_latest_returns_the_most_recent_session_with_its_state(store: Any, workspace: str) -> None:
    assert await store.continue_latest(workspace) is None
    older = await store.create_session("/old", workspace_id=workspace)
    newer = await store.create_session("/new", workspace_id=workspace)
    await store.add_message(newer.id, role="user", content="hi")
    saved = await store.save_checkpoint(session_id=newer.id, step=1, node_results={}, source="loop")
    await asyncio.sleep(0.005)
    await store.add_message(older.id, role="user", content="back to the old one")

    state = await store.continue_latest(workspace)

    assert state is not None
    assert state.session.id == older.id
    assert [message.content for message in state.messages] == ["back to the old one"]
    assert state.latest_checkpoint is None
    await asyncio.sleep(0.005)
    await store.add_message(newer.id, role="assistant", content="hello")
    state = await store.continue_latest(workspace)
    assert state is not None
    assert state.session.id == newer.id
    assert [message.content for message in state.messages] == ["hi", "hello"]
    assert state.latest_checkpoint == saved


# --- prune ------------------------------------------------------------------------------


async def snapshot(store: Any, workspace: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for session in await store.list_sessions(workspace):
        state[session.id] = (
            session,
            await store.get_messages(session.id),
            await store.list_checkpoints(session.id),
        )
    return state


async def save_chain(store: Any, session_id: str, steps: int, *, linked: bool, namespace: str = "") -> list[Any]:
    saved: list[Any] = []
    for step in range(steps):
        parent = saved[-1].id if linked and saved else None
        saved.append(
            await store.save_checkpoint(
                session_id=session_id, namespace=namespace, step=step, node_results={}, source="loop", parent_id=parent
            )
        )
    return saved


async def remaining_ids(store: Any, session_id: str) -> set[str]:
    return {checkpoint.id for checkpoint in await store.list_checkpoints(session_id)}


async def test_keep_last_keeps_the_newest_per_session_and_namespace(store: Any, workspace: str) -> None:
    session = await store.create_session("/k", workspace_id=workspace)
    main = await save_chain(store, session.id, 5, linked=False, namespace="main")
    side = await save_chain(store, session.id, 2, linked=False, namespace="side")

    report = await store.prune(keep_last=2, workspace_id=workspace)

    assert (report.dry_run, report.checkpoints, report.sessions) == (False, 3, 0)
    assert await remaining_ids(store, session.id) == {main[3].id, main[4].id, side[0].id, side[1].id}


async def test_a_dry_run_reports_and_changes_nothing(store: Any, workspace: str) -> None:
    session = await store.create_session("/d", workspace_id=workspace)
    await store.add_message(session.id, role="user", content="hello")
    await save_chain(store, session.id, 4, linked=False)
    idle = await store.create_session("/idle", workspace_id=workspace)
    await store.add_message(idle.id, role="user", content="old")
    await asyncio.sleep(0.005)
    cutoff = now_ms()
    await store.add_message(session.id, role="user", content="still active")
    before = await snapshot(store, workspace)

    report = await store.prune(keep_last=1, sessions_idle_before=cutoff, workspace_id=workspace, dry_run=True)

    assert report.dry_run is True
    assert (report.sessions, report.checkpoints, report.messages) == (1, 3, 1)
    assert report.session_ids == [idle.id]
    assert await snapshot(store, workspace) == before

    applied = await store.prune(keep_last=1, sessions_idle_before=cutoff, workspace_id=workspace)
    assert (applied.dry_run, applied.sessions, applied.checkpoints, applied.messages) == (False, 1, 3, 1)
    assert await store.get_session(idle.id) is None
    assert len(await remaining_ids(store, session.id)) == 1


async def test_parents_of_kept_checkpoints_survive_unless_lineage_is_broken(store: Any, workspace: str) -> None:
    session = await store.create_session("/chain", workspace_id=workspace)
    loose = await save_chain(store, session.id, 1, linked=False)
    chain = await save_chain(store, session.id, 3, linked=True)
    # The loose checkpoint is the oldest by step; the chain's steps are 0..2 too, so
    # make the ordering explicit: the chain's last checkpoint is the newest.
    everything = {loose[0].id, *(checkpoint.id for checkpoint in chain)}
    newest = (await store.list_checkpoints(session.id))[0]
    assert newest.id == chain[-1].id

    dry = await store.prune(keep_last=1, workspace_id=workspace, dry_run=True)
    assert (dry.checkpoints, dry.protected_checkpoints) == (1, 2)
    report = await store.prune(keep_last=1, workspace_id=workspace)
    assert (report.checkpoints, report.protected_checkpoints) == (1, 2)
    assert await remaining_ids(store, session.id) == everything - {loose[0].id}

    broken = await store.prune(keep_last=1, workspace_id=workspace, protect_lineage=False)
    assert broken.checkpoints == 2
    assert await remaining_ids(store, session.id) == {chain[-1].id}


async def test_fork_targets_survive_checkpoint_and_session_pruning(store: Any, workspace: str) -> None:
    origin = await store.create_session("/origin", title="origin", workspace_id=workspace)
    saved = await save_chain(store, origin.id, 3, linked=False)
    await asyncio.sleep(0.005)
    forked = await store.fork(saved[0].id, title="branch")
    cutoff = forked.created_at  # the origin is idle since before the fork

    report = await store.prune(keep_last=1, workspace_id=workspace)
    assert (report.checkpoints, report.protected_checkpoints) == (1, 1)
    assert await remaining_ids(store, origin.id) == {saved[0].id, saved[2].id}

    report = await store.prune(sessions_idle_before=cutoff, workspace_id=workspace)
    assert (report.sessions, report.checkpoints) == (0, 0)
    assert report.protected_checkpoints >= 1
    assert await store.get_session(origin.id) is not None

    report = await store.prune(sessions_idle_before=cutoff, workspace_id=workspace, protect_lineage=False)
    assert (report.sessions, report.checkpoints) == (1, 2)
    assert await store.get_session(origin.id) is None
    assert await store.get_session(forked.id) is not None


async def test_older_than_combines_with_keep_last(store: Any, workspace: str) -> None:
    session = await store.create_session("/t", workspace_id=workspace)
    old = await save_chain(store, session.id, 3, linked=False)
    await asyncio.sleep(0.005)
    cutoff = now_ms()
    await asyncio.sleep(0.005)
    new = await store.save_checkpoint(session_id=session.id, step=9, node_results={}, source="loop")

    # Older than the cutoff and beyond the newest two: only the two oldest qualify.
    report = await store.prune(keep_last=2, checkpoints_before=cutoff, workspace_id=workspace)
    assert report.checkpoints == 2
    assert await remaining_ids(store, session.id) == {old[2].id, new.id}

    report = await store.prune(checkpoints_before=cutoff, workspace_id=workspace)
    assert await remaining_ids(store, session.id) == {new.id}


async def test_prune_deletes_in_bounded_batches(store: Any, workspace: str) -> None:
    session = await store.create_session("/b", workspace_id=workspace)
    await save_chain(store, session.id, 7, linked=False)
    progress: list[tuple[int, int | None]] = []

    report = await store.prune(
        keep_last=1, workspace_id=workspace, batch_size=2, progress=lambda done, total: progress.append((done, total))
    )

    assert report.checkpoints == 6
    assert progress == [(2, 6), (4, 6), (6, 6)]


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
async def test_vacuum_reclaims_space_on_sqlite(store: Any, workspace: str) -> None:
    session = await store.create_session("/v", workspace_id=workspace)
    await save_chain(store, session.id, 3, linked=False)
    report = await store.prune(keep_last=1, workspace_id=workspace, vacuum=True)
    assert report.vacuumed is True
    assert len(await remaining_ids(store, session.id)) == 1
    await store.add_message(session.id, role="user", content="still writable after VACUUM")


async def test_prune_refuses_no_rule_and_bad_arguments(store: Any) -> None:
    with pytest.raises(ValueError, match="keep_last"):
        await store.prune()
    with pytest.raises(ValueError, match="negative"):
        await store.prune(keep_last=-1)
    with pytest.raises(ValueError, match="batch_size"):
        await store.prune(keep_last=1, batch_size=0)


@pytest.mark.parametrize("backend", ["sqlite-file", "postgresql", "mariadb"], indirect=True)
def test_rows_that_gain_a_dependant_during_a_prune_are_spared(url: str, workspace: str) -> None:
    with sync.SqlAlchemyCheckpointStore(url) as store:
        session = store.create_session("/race", workspace_id=workspace)
        old = [store.save_checkpoint(session_id=session.id, step=n, node_results={}, source="loop") for n in range(3)]
        idle = store.create_session("/idle", workspace_id=workspace)
        idle_forked = store.create_session("/idle-forked", workspace_id=workspace)
        idle_checkpoint = store.save_checkpoint(session_id=idle_forked.id, step=0, node_results={}, source="loop")
        time.sleep(0.005)
        cutoff = now_ms()
        store.add_message(session.id, role="user", content="still running")
        policy = admin.PrunePolicy(keep_last=1, sessions_idle_before=cutoff, workspace_id=workspace)
        engine = event_engine(store)
        with engine.begin() as conn:
            plan = admin.plan_prune(conn, policy)
        assert set(plan.checkpoint_ids) == {old[0].id, old[1].id}
        assert plan.session_ids == sorted([idle.id, idle_forked.id])

        # Between the plan and the deletes: a new child of a planned checkpoint, a fork of
        # another, a write to one idle session and a fork of the other.
        store.save_checkpoint(session_id=session.id, step=0, node_results={}, source="loop", parent_id=old[0].id)
        store.fork(old[1].id)
        store.add_message(idle.id, role="user", content="back")
        store.fork(idle_checkpoint.id)
        with engine.begin() as conn:
            assert admin.delete_checkpoints(conn, plan.checkpoint_ids, plan.planned_at) == 0
            assert admin.delete_idle_sessions(conn, plan.session_ids, cutoff, plan.planned_at) == (0, 0, 0)
        assert {old[0].id, old[1].id} <= {checkpoint.id for checkpoint in store.list_checkpoints(session.id)}
        assert store.get_session(idle.id) is not None
        assert store.get_checkpoint(idle_checkpoint.id) is not None
