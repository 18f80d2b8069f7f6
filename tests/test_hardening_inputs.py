"""Hardening against hostile input and damaged data (issue 13, items 3 to 5).

Whatever the driver and whatever the data, the store raises a ``CheckpointStoreError``
or, for a bad argument, a ``ValueError``/``TypeError`` naming it: never ``RecursionError``,
``OverflowError``, a raw driver error or pydantic's error about a stored row.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from obsku_checkpoint_sqlite import CheckpointCorruptionError, CheckpointStoreError
from obsku_checkpoint_sqlite.jsonplus import MAX_DEPTH
from tests.conftest import StoreFactory
from tests.test_reliability import INSPECTABLE, purge_workspaces, raw_connection

NODE = {"status": "completed"}
CYCLE = {"back_edge": "a->b", "iteration": 1}


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


async def everything(store: Any, session_id: str, workspace: str) -> Any:
    """Every row a refused call could have written, as comparable values."""
    return (
        [s.model_dump() for s in await store.list_sessions(workspace)],
        [m.model_dump() for m in await store.get_messages(session_id)],
        [c.model_dump() for c in await store.list_checkpoints(session_id)],
    )


# --- nesting: a documented limit on write and on read -----------------------------------


async def test_payloads_nested_too_deep_or_containing_themselves_are_refused_naming_the_field(
    store: Any, workspace: str
) -> None:
    session = await store.create_session("/deep", workspace_id=workspace)
    before = await everything(store, session.id, workspace)
    looped: dict[str, Any] = {}
    looped["self"] = looped
    # The stored documents wrap the caller's value: metadata {"x": v}, tool_calls
    # [{"input": {"x": v}}], node_results {"a": {"output": v}}, cycle_state {"extra": v}.
    writes = {
        "metadata": lambda v: store.create_session("/d", workspace_id=workspace, metadata={"x": v}),
        "tool_calls": lambda v: store.add_message(
            session.id, role="assistant", tool_calls=[{"tool_use_id": "t", "name": "n", "input": {"x": v}}]
        ),
        "tool_results": lambda v: store.add_message(
            session.id, role="tool", tool_results=[{"tool_use_id": "t", "content": "c", "extra": v}]
        ),
        "node_results": lambda v: store.save_checkpoint(
            session_id=session.id, step=0, source="loop", node_results={"a": {**NODE, "output": v}}
        ),
        "cycle_state": lambda v: store.save_checkpoint(
            session_id=session.id, step=0, source="loop", node_results={}, cycle_state={"extra": v, **CYCLE}
        ),
    }
    for field, write in writes.items():
        for value in (nested(MAX_DEPTH), nested(20_000)):
            with pytest.raises(ValueError, match=rf"^{field}: nested deeper than {MAX_DEPTH} levels"):
                await write(value)
        with pytest.raises(ValueError, match=rf"^{field}\[.*\]: the value contains itself"):
            await write(looped)
        assert await everything(store, session.id, workspace) == before, field

    deep = nested(MAX_DEPTH - 10)
    saved = await store.save_checkpoint(
        session_id=session.id, step=0, source="loop", node_results={"a": {**NODE, "output": deep}}
    )
    loaded = await store.get_checkpoint(saved.id)
    assert loaded is not None
    assert loaded.node_results["a"].output == deep
    created = await store.create_session("/d", workspace_id=workspace, metadata={"x": deep})
    assert [s.metadata for s in await store.list_sessions(workspace) if s.id == created.id] == [{"x": deep}]


@pytest.mark.parametrize("backend", INSPECTABLE, indirect=True)
async def test_stored_json_nested_too_deep_is_corrupt_naming_its_row_and_column(
    store: Any, url: str, workspace: str, request: pytest.FixtureRequest
) -> None:
    session = await store.create_session("/deep", workspace_id=workspace)
    message = await store.add_message(session.id, role="assistant", content="m")
    checkpoint = await store.save_checkpoint(session_id=session.id, step=0, node_results={}, source="loop")
    deep = "[" * 5000 + "]" * 5000
    with raw_connection(url) as conn:
        for table, column, row_id in (
            ("sessions", "metadata", session.id),
            ("messages", "tool_calls", message.id),
            ("checkpoints", "node_results", checkpoint.id),
        ):
            conn.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = :id"), {"v": deep, "id": row_id})
    request.addfinalizer(lambda: purge_workspaces(url, [workspace]))

    problem = f"nested deeper than {MAX_DEPTH} levels"
    with pytest.raises(CheckpointCorruptionError, match=rf"sessions row {session.id!r}, column metadata: {problem}"):
        await store.get_session(session.id)
    with pytest.raises(CheckpointCorruptionError, match=rf"messages row {message.id}, column tool_calls: {problem}"):
        await store.get_messages(session.id)
    with pytest.raises(
        CheckpointCorruptionError, match=rf"checkpoints row {checkpoint.id!r}, column node_results: {problem}"
    ):
        await store.get_checkpoint(checkpoint.id)


# --- driver errors raised while rows are fetched ----------------------------------------


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
async def test_stored_text_that_is_not_utf8_is_a_corruption_error_on_every_read(
    store: Any, url: str, workspace: str
) -> None:
    # Only SQLite stores such text (a writer's CAST(x'..' AS TEXT)); sqlite3 fails to
    # decode it as the row is fetched, inside the short path or SQLAlchemy's.
    session = await store.create_session("/utf8", workspace_id=workspace)
    await store.add_message(session.id, role="user", content="fine")
    damaged = await store.add_message(session.id, role="user", content="damaged")
    checkpoint = await store.save_checkpoint(session_id=session.id, step=0, node_results={}, source="loop")
    with raw_connection(url) as conn:
        conn.execute(text("UPDATE messages SET content = CAST(x'fffe' AS TEXT) WHERE id = :id"), {"id": damaged.id})
        conn.execute(text("UPDATE sessions SET title = CAST(x'c3' AS TEXT) WHERE id = :id"), {"id": session.id})
        conn.execute(
            text("UPDATE checkpoints SET namespace = CAST(x'80' AS TEXT) WHERE id = :id"), {"id": checkpoint.id}
        )

    reads = {
        "get_messages": lambda: store.get_messages(session.id),
        "get_messages(limit)": lambda: store.get_messages(session.id, limit=5),
        "get_session": lambda: store.get_session(session.id),
        "list_sessions": lambda: store.list_sessions(workspace),
        "list_sessions(limit)": lambda: store.list_sessions(workspace, limit=5),
        "session_summaries": lambda: store.session_summaries(workspace),
        "get_checkpoint": lambda: store.get_checkpoint(checkpoint.id),
        "list_checkpoints": lambda: store.list_checkpoints(session.id),
        "get_latest_checkpoint": lambda: store.get_latest_checkpoint(session.id),
        "continue_latest": lambda: store.continue_latest(workspace),
    }
    for name, read in reads.items():
        with pytest.raises(CheckpointCorruptionError, match="not valid UTF-8") as caught:
            await read()
        assert "Could not decode to UTF-8 column" in str(caught.value), name


@pytest.mark.parametrize("face", ["async", "sync"])
async def test_a_damaged_sqlite_file_is_a_corruption_error(open_store: StoreFactory, tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    store = open_store(f"sqlite:///{path}")
    session = await store.create_session("/damaged")
    for index in range(200):
        await store.add_message(session.id, role="user", content=f"MARKER-{index:04d}-" + "y" * 1500)
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    # A page in the middle of the messages: the read fails after its first rows came back.
    page = data.find(b"MARKER-0150-") // 4096
    data[page * 4096 : page * 4096 + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))

    store = open_store(f"sqlite:///{path}")
    assert len(await store.get_messages(session.id, limit=10)) == 10, "the pages before the damage read"
    with pytest.raises(CheckpointCorruptionError, match="database file is damaged") as caught:
        await store.get_messages(session.id)
    assert isinstance(caught.value, CheckpointStoreError)
