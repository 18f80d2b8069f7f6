"""The store's behaviour, run on every backend through both faces (see conftest.py)."""

from __future__ import annotations

import asyncio
import pickle
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from obsku_checkpoint_sqlite import (
    Checkpoint,
    CheckpointNodeResult,
    CheckpointNotFoundError,
    CycleState,
    NodeResults,
    SessionNotFoundError,
    SqliteCheckpointStore,
    StoredToolResult,
    ToolCall,
    sync,
)
from tests.conftest import StoreFactory

NODE_RESULTS: dict[str, Any] = {
    "plan": {"status": "completed", "output": {"steps": ["scan", "report"]}, "startedAt": 1, "completedAt": 2},
    "scan": {"status": "running", "started_at": 3},
}


async def checkpoint(store: Any, session_id: str, step: int, **fields: Any) -> Checkpoint:
    fields.setdefault("node_results", NODE_RESULTS)
    fields.setdefault("source", "loop")
    result: Checkpoint = await store.save_checkpoint(session_id=session_id, step=step, **fields)
    return result


# --- sessions -------------------------------------------------------------------------


async def test_create_and_get_session(store: Any, workspace: str) -> None:
    created = await store.create_session(
        "./project", title="Security Scan", workspace_id=workspace, metadata={"tags": ["a"], "depth": 2}
    )

    assert uuid.UUID(created.id).version == 7
    assert created.updated_at == created.created_at
    assert await store.get_session(created.id) == created
    assert created.model_dump(by_alias=True)["workspaceId"] == workspace


async def test_ids_sort_in_creation_order(store: Any) -> None:
    # UUIDv7: the primary-key indexes grow at their end (and a listing by id is by age).
    sessions = [await store.create_session(f"/{index}") for index in range(5)]
    checkpoints = [await checkpoint(store, sessions[0].id, step) for step in range(5)]
    for rows in (sessions, checkpoints):
        ids = [row.id for row in rows]
        assert ids == sorted(ids)
        assert {uuid.UUID(row_id).version for row_id in ids} == {7}


async def test_get_unknown_session_is_none(store: Any) -> None:
    assert await store.get_session(str(uuid.uuid4())) is None


async def test_list_sessions_most_recently_updated_first(store: Any, workspace: str) -> None:
    first = await store.create_session("/a", workspace_id=workspace)
    second = await store.create_session("/b", workspace_id=workspace)
    await store.create_session("/elsewhere", workspace_id=f"{workspace}-other")
    await asyncio.sleep(0.002)
    await store.add_message(first.id, role="user", content="bump")

    listed = await store.list_sessions(workspace)

    assert [session.id for session in listed] == [first.id, second.id]
    assert listed.next_cursor is None


async def test_list_sessions_pages_with_cursor_and_search(store: Any, workspace: str) -> None:
    created = [
        await store.create_session(f"/dir/{index}", title=f"Run {index}", workspace_id=workspace) for index in range(5)
    ]
    expected = [session.id for session in sorted(created, key=lambda s: (s.updated_at, s.id), reverse=True)]

    first_page = await store.list_sessions(workspace, limit=2)
    second_page = await store.list_sessions(workspace, limit=2, cursor=first_page.next_cursor)
    last_page = await store.list_sessions(workspace, limit=2, cursor=second_page.next_cursor)

    assert [s.id for s in [*first_page, *second_page, *last_page]] == expected
    assert last_page.next_cursor is None
    assert [s.title for s in await store.list_sessions(workspace, search="RUN 3")] == ["Run 3"]
    assert [s.directory for s in await store.list_sessions(workspace, search="dir/1")] == ["/dir/1"]
    assert await store.list_sessions(workspace, search="100%") == []


async def test_list_sessions_rejects_bad_arguments(store: Any) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.list_sessions(limit=-1)
    with pytest.raises(ValueError, match="cursor"):
        await store.list_sessions(cursor="not-a-cursor")


async def test_update_session_changes_only_given_fields(store: Any, workspace: str) -> None:
    created = await store.create_session("/a", title="T", workspace_id=workspace, metadata={"k": 1})
    await asyncio.sleep(0.002)

    renamed = await store.update_session(created.id, title="New")
    cleared = await store.update_session(created.id, metadata=None, directory="/b")

    assert (renamed.title, renamed.directory, renamed.metadata) == ("New", "/a", {"k": 1})
    assert renamed.updated_at > created.updated_at
    assert (cleared.title, cleared.directory, cleared.metadata, cleared.workspace_id) == ("New", "/b", None, workspace)
    assert await store.get_session(created.id) == cleared


async def test_update_session_refuses_none_directory_and_unknown_session(store: Any) -> None:
    created = await store.create_session("/a")
    with pytest.raises(ValidationError, match="directory"):
        await store.update_session(created.id, directory=None)
    assert (await store.get_session(created.id)).directory == "/a"
    with pytest.raises(SessionNotFoundError, match="Session not found: nope"):
        await store.update_session("nope", title="x")


async def test_delete_session_cascades(store: Any) -> None:
    session = await store.create_session("/a")
    await store.add_message(session.id, role="user", content="hi")
    saved = await checkpoint(store, session.id, 1)

    await store.delete_session(session.id)
    await store.delete_session(session.id)  # absent: no error

    assert await store.get_session(session.id) is None
    assert await store.get_checkpoint(saved.id) is None
    with pytest.raises(SessionNotFoundError):
        await store.get_messages(session.id)


# --- messages -------------------------------------------------------------------------


async def test_add_message_round_trips_tool_data_and_bumps_session(store: Any) -> None:
    session = await store.create_session("/a")
    await asyncio.sleep(0.002)
    message = await store.add_message(
        session.id,
        role="assistant",
        content="Running the scan",
        tool_calls=[{"toolUseId": "t1", "name": "scan", "input": {"target": "example.com"}}],
        tool_results=[StoredToolResult(tool_use_id="t1", content="ok", status="success")],
        tokens_in=12,
        tokens_out=34,
    )

    [stored] = await store.get_messages(session.id)
    assert stored == message
    assert stored.tool_calls == [ToolCall(tool_use_id="t1", name="scan", input={"target": "example.com"})]
    assert stored.tool_results[0].full_output_ref is None
    assert (await store.get_session(session.id)).updated_at == message.created_at > session.updated_at


async def test_messages_keep_insertion_order_with_before_and_limit(store: Any) -> None:
    session = await store.create_session("/a")
    added = []
    for index in range(6):
        added.append(await store.add_message(session.id, role="user", content=str(index)))
        if index == 2:
            await asyncio.sleep(0.003)
    cutoff = added[3].created_at

    everything = await store.get_messages(session.id)
    last_two = await store.get_messages(session.id, limit=2)
    before_cutoff = await store.get_messages(session.id, before=cutoff)
    last_before_cutoff = await store.get_messages(session.id, before=cutoff, limit=1)

    assert [m.content for m in everything] == ["0", "1", "2", "3", "4", "5"]
    assert [m.content for m in last_two] == ["4", "5"]
    assert [m.content for m in before_cutoff] == [m.content for m in added if m.created_at < cutoff]
    assert [m.content for m in last_before_cutoff] == ["2"]
    assert await store.get_messages(session.id, limit=0) == []


async def test_message_errors(store: Any) -> None:
    with pytest.raises(SessionNotFoundError):
        await store.add_message("missing", role="user", content="x")
    with pytest.raises(SessionNotFoundError):
        await store.get_messages("missing")
    session = await store.create_session("/a")
    with pytest.raises(ValidationError, match="role"):
        await store.add_message(session.id, role="robot", content="x")
    with pytest.raises(ValueError, match="limit"):
        await store.get_messages(session.id, limit=-1)
    assert await store.get_messages(session.id) == []


# --- checkpoints ----------------------------------------------------------------------


async def test_save_and_get_checkpoint_round_trips_every_field(store: Any) -> None:
    session = await store.create_session("/a")
    parent = await checkpoint(store, session.id, 1, namespace="main")
    saved = await checkpoint(
        store,
        session.id,
        2,
        namespace="main",
        version=7,
        pending_nodes=("report",),
        source="interrupt",
        parent_id=parent.id,
        node_id="scan",
        cycle_state={"backEdge": "scan->plan", "iteration": 3},
    )

    loaded = await store.get_checkpoint(saved.id)

    assert loaded == saved
    assert loaded.version == 7
    assert loaded.pending_nodes == ["report"]
    assert loaded.cycle_state == CycleState(back_edge="scan->plan", iteration=3)
    assert loaded.node_results["plan"] == CheckpointNodeResult(
        status="completed", output={"steps": ["scan", "report"]}, started_at=1, completed_at=2
    )
    assert loaded.model_dump(by_alias=True)["nodeResults"]["scan"] == {
        "status": "running", "output": None, "error": None, "startedAt": 3, "completedAt": None,
    }  # fmt: skip


async def test_node_results_are_a_read_only_mapping_validated_once(store: Any) -> None:
    session = await store.create_session("/a")
    saved = await checkpoint(store, session.id, 1)
    loaded = await store.get_checkpoint(saved.id)

    results = loaded.node_results
    assert isinstance(results, NodeResults)
    assert results["plan"] is results["plan"], "validated on first use, then kept"
    assert list(results) == ["plan", "scan"]
    assert len(results) == 2
    assert results == saved.node_results == dict(results.items())
    with pytest.raises(TypeError):
        results["plan"] = results["scan"]  # type: ignore[index]
    assert pickle.loads(pickle.dumps(loaded)) == loaded
    assert Checkpoint.model_validate_json(loaded.model_dump_json(by_alias=True)) == loaded
    assert Checkpoint.model_validate(loaded.model_dump()) == loaded
    schema = Checkpoint.model_json_schema()["properties"]["nodeResults"]
    assert schema["additionalProperties"] == {"$ref": "#/$defs/CheckpointNodeResult"}
    with pytest.raises(ValidationError, match=r"node_results\.plan\.status"):
        Checkpoint.model_validate(loaded.model_dump() | {"node_results": {"plan": {"status": "done"}}})


async def test_versions_are_assigned_per_session_and_namespace(store: Any) -> None:
    session = await store.create_session("/a")
    other = await store.create_session("/b")

    main = [await checkpoint(store, session.id, step, namespace="main") for step in range(3)]
    side = await checkpoint(store, session.id, 0, namespace="side")
    elsewhere = await checkpoint(store, other.id, 0, namespace="main")

    assert [c.version for c in main] == [1, 2, 3]
    assert (side.version, elsewhere.version) == (1, 1)


async def test_latest_checkpoint_orders_by_step_then_time_then_version(store: Any) -> None:
    session = await store.create_session("/a")
    low = await checkpoint(store, session.id, 1, namespace="main")
    high = await checkpoint(store, session.id, 5, namespace="main")
    await asyncio.sleep(0.002)
    newer_tie = await checkpoint(store, session.id, 5, namespace="side")
    older = await checkpoint(store, session.id, 2, namespace="side")

    assert (await store.get_latest_checkpoint(session.id)).id == newer_tie.id
    assert (await store.get_latest_checkpoint(session.id, "main")).id == high.id
    assert (await store.get_latest_checkpoint(session.id, "side")).id == newer_tie.id
    assert await store.get_latest_checkpoint(session.id, "none") is None
    assert await store.get_latest_checkpoint("missing") is None

    listed = await store.list_checkpoints(session.id)
    assert [c.id for c in listed] == [newer_tie.id, high.id, older.id, low.id]
    assert [c.id for c in await store.list_checkpoints(session.id, namespace="main")] == [high.id, low.id]
    assert [c.id for c in await store.list_checkpoints(session.id, limit=2)] == [newer_tie.id, high.id]


async def test_same_step_same_time_ties_break_on_version(store: Any) -> None:
    session = await store.create_session("/a")
    saved = [await checkpoint(store, session.id, 4, namespace="n") for _ in range(3)]
    by_time = sorted(saved, key=lambda c: (c.created_at, c.version), reverse=True)

    assert [c.id for c in await store.list_checkpoints(session.id, namespace="n")] == [c.id for c in by_time]


async def test_checkpoint_errors(store: Any) -> None:
    with pytest.raises(SessionNotFoundError, match="Session not found: missing"):
        await checkpoint(store, "missing", 1)
    with pytest.raises(SessionNotFoundError):
        await store.list_checkpoints("missing")
    assert await store.get_checkpoint("missing") is None
    session = await store.create_session("/a")
    with pytest.raises(ValidationError, match="source"):
        await checkpoint(store, session.id, 1, source="elsewhere")
    with pytest.raises(ValidationError, match="step"):
        await checkpoint(store, session.id, -1)
    with pytest.raises(ValidationError, match="status"):
        await checkpoint(store, session.id, 1, node_results={"a": {"status": "exploded"}})
    assert await store.list_checkpoints(session.id) == []


# --- fork -----------------------------------------------------------------------------


async def test_fork_copies_history_up_to_the_checkpoint(store: Any, workspace: str) -> None:
    original = await store.create_session("/proj", title="Scan", workspace_id=workspace, metadata={"k": [1, 2]})
    before = [
        await store.add_message(original.id, role="user", content="scan it", tokens_in=3),
        await store.add_message(
            original.id,
            role="assistant",
            tool_calls=[{"tool_use_id": "t", "name": "scan", "input": {}}],
            tokens_out=5,
        ),
    ]
    saved = await checkpoint(
        store, original.id, 5, namespace="main", version=4, pending_nodes=["b"], node_id="a",
        cycle_state={"back_edge": "b->a", "iteration": 1},
    )  # fmt: skip
    await store.add_message(original.id, role="user", content="after the checkpoint")

    forked = await store.fork(saved.id)

    assert forked.id != original.id
    assert (forked.directory, forked.workspace_id, forked.metadata) == ("/proj", workspace, {"k": [1, 2]})
    assert forked.title == "Fork of Scan"
    assert (forked.forked_from_session_id, forked.forked_from_checkpoint_id) == (original.id, saved.id)
    copied = await store.get_messages(forked.id)
    assert [m.model_dump(exclude={"id", "session_id"}) for m in copied] == [
        m.model_dump(exclude={"id", "session_id"}) for m in before
    ]
    [fork_checkpoint] = await store.list_checkpoints(forked.id)
    assert fork_checkpoint.source == "fork"
    assert fork_checkpoint.parent_id == saved.id
    copied_fields = {"namespace", "version", "step", "node_results", "pending_nodes", "node_id", "cycle_state"}
    assert fork_checkpoint.model_dump(include=copied_fields) == saved.model_dump(include=copied_fields)
    assert len(await store.get_messages(original.id)) == 3
    assert [c.id for c in await store.list_checkpoints(original.id)] == [saved.id]


async def test_fork_title_rules_and_unknown_checkpoint(store: Any) -> None:
    untitled = await store.create_session("/a")
    saved = await checkpoint(store, untitled.id, 1)

    assert (await store.fork(saved.id)).title == f"Fork of {saved.id}"
    assert (await store.fork(saved.id, title="Experiment")).title == "Experiment"
    with pytest.raises(CheckpointNotFoundError, match="Checkpoint not found: nope"):
        await store.fork("nope")


async def test_a_fork_can_be_forked_and_continues_its_own_history(store: Any) -> None:
    session = await store.create_session("/a")
    await store.add_message(session.id, role="user", content="one")
    first = await store.fork((await checkpoint(store, session.id, 1)).id)
    await store.add_message(first.id, role="user", content="two")
    second = await store.fork((await checkpoint(store, first.id, 2)).id)

    assert [m.content for m in await store.get_messages(second.id)] == ["one", "two"]
    assert (await store.get_latest_checkpoint(first.id)).version == 2  # the fork's own, then this one


# --- persistence ----------------------------------------------------------------------


async def test_data_survives_close_and_reopen(open_store: StoreFactory, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reopen.db'}"
    first = open_store(url)
    session = await first.create_session("/a", metadata={"at": datetime(2024, 5, 1, tzinfo=timezone.utc)})
    await first.add_message(session.id, role="user", content="hi")
    saved = await checkpoint(first, session.id, 3)
    await first.close()

    reopened = open_store(url)
    assert (await reopened.get_session(session.id)).metadata == {"at": datetime(2024, 5, 1, tzinfo=timezone.utc)}
    assert (await reopened.get_latest_checkpoint(session.id)) == saved
    assert [m.content for m in await reopened.get_messages(session.id)] == ["hi"]


async def test_two_stores_share_one_file(open_store: StoreFactory, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    writer, reader = open_store(url), open_store(url)

    session = await writer.create_session("/a")
    await reader.add_message(session.id, role="user", content="from the reader")
    await checkpoint(writer, session.id, 1)
    second = await checkpoint(reader, session.id, 2)

    assert second.version == 2
    assert [m.content for m in await writer.get_messages(session.id)] == ["from the reader"]


async def test_sqlite_store_path_forms(tmp_path: Path) -> None:
    async with SqliteCheckpointStore(tmp_path / "pathlike.db") as store:
        await store.create_session("/a")
    assert (tmp_path / "pathlike.db").exists()
    with sync.SqliteCheckpointStore() as memory:
        session = memory.create_session("/m")
        assert memory.get_session(session.id) == session
    with sync.SqliteCheckpointStore() as other_memory:
        assert other_memory.get_session(session.id) is None
