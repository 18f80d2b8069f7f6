"""Hardening against hostile input and damaged data (issue 13, items 3 to 5).

Whatever the driver and whatever the data, the store raises a ``CheckpointStoreError``
or, for a bad argument, a ``ValueError``/``TypeError`` naming it: never ``RecursionError``,
``OverflowError``, a raw driver error or pydantic's error about a stored row.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, text

from obsku_checkpoint_sqlite import (
    CheckpointCorruptionError,
    CheckpointStoreError,
    ExportFormatError,
    PayloadTooLargeError,
    sync,
)
from obsku_checkpoint_sqlite.db import values
from obsku_checkpoint_sqlite.jsonplus import MAX_DEPTH
from tests.conftest import StoreFactory, before_each_statement
from tests.test_reliability import INSPECTABLE, purge_workspaces, raw_connection
from tests.test_transfer import fill

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


# --- a corrupt row in a listing is reported for itself ----------------------------------


@pytest.mark.parametrize("backend", INSPECTABLE, indirect=True)
async def test_a_corrupt_session_is_reported_for_itself_and_does_not_fail_a_listing(
    store: Any, url: str, workspace: str, request: pytest.FixtureRequest
) -> None:
    healthy = await store.create_session("/ok", workspace_id=workspace, metadata={"fine": True})
    bad_checkpoint = await store.create_session("/bad-checkpoint", workspace_id=workspace)
    checkpoint = await store.save_checkpoint(session_id=bad_checkpoint.id, step=3, node_results={}, source="loop")
    bad_metadata = await store.create_session("/bad-metadata", workspace_id=workspace, metadata={"fine": True})
    bad_shape = await store.create_session("/bad-shape", workspace_id=workspace, metadata={"fine": True})
    with raw_connection(url) as conn:
        update = "UPDATE {} SET {} = :v WHERE id = :id"
        conn.execute(text(update.format("sessions", "metadata")), {"v": "{not json", "id": bad_metadata.id})
        conn.execute(text(update.format("sessions", "metadata")), {"v": "[1, 2]", "id": bad_shape.id})
        conn.execute(text(update.format("checkpoints", "step")), {"v": -1, "id": checkpoint.id})
        # Most recently updated first: bad_metadata, healthy, bad_checkpoint, bad_shape.
        for offset, session in enumerate((bad_shape, bad_checkpoint, healthy, bad_metadata)):
            conn.execute(
                text(update.format("sessions", "updated_at")), {"v": 1_800_000_000_000 + offset, "id": session.id}
            )
    request.addfinalizer(lambda: purge_workspaces(url, [workspace]))

    page = await store.list_sessions(workspace)
    assert {s.id for s in page} == {healthy.id, bad_checkpoint.id}
    assert sorted(exc.location for exc in page.corrupt) == sorted(
        [f"sessions row {bad_metadata.id!r}, column metadata", f"sessions row {bad_shape.id!r}, column metadata"]
    )
    assert all(isinstance(exc, CheckpointCorruptionError) for exc in page.corrupt)
    # Page by page, every session is either listed or reported, once.
    seen: list[str] = []
    reported: list[str] = []
    cursor = None
    while True:
        small = await store.list_sessions(workspace, limit=1, cursor=cursor)
        seen += [s.id for s in small]
        reported += [str(exc.location) for exc in small.corrupt]
        if (cursor := small.next_cursor) is None:
            break
    assert sorted(seen) == sorted(s.id for s in page)
    assert sorted(reported) == sorted(str(exc.location) for exc in page.corrupt)

    summaries = await store.session_summaries(workspace)
    assert [summary.session.id for summary in summaries] == [healthy.id]
    assert sorted(exc.location for exc in summaries.corrupt) == sorted(
        [*(exc.location for exc in page.corrupt), f"checkpoints row {checkpoint.id!r}, column step"]
    )
    with pytest.raises(CheckpointCorruptionError, match=rf"checkpoints row {checkpoint.id!r}"):
        await store.list_checkpoints(bad_checkpoint.id)

    # The session to continue is the damaged one: that is an error, not "no session".
    with pytest.raises(CheckpointCorruptionError, match=rf"sessions row {bad_metadata.id!r}, column metadata"):
        await store.continue_latest(workspace)
    with pytest.raises(CheckpointCorruptionError, match=rf"sessions row {bad_shape.id!r}, column metadata"):
        await store.get_session(bad_shape.id)
    for damaged in (bad_metadata, bad_shape):
        await store.delete_session(damaged.id)
    assert (await store.list_sessions(workspace)).corrupt == []
    latest = await store.continue_latest(workspace)
    assert latest is not None
    assert latest.session.id == healthy.id


# --- bounds checked before the database -------------------------------------------------

INT64_MAX = 2**63 - 1
LONE_SURROGATE = "a\udc80b"


async def refuse_each(store: Any, workspace: str, cases: dict[str, tuple[Any, str]]) -> None:
    """Each call must raise ValueError or TypeError naming its argument and write nothing."""
    session = await store.create_session("/bounds", workspace_id=workspace)
    await store.add_message(session.id, role="user", content="kept")
    await store.save_checkpoint(session_id=session.id, step=0, node_results={"a": NODE}, source="input")
    before = await everything(store, session.id, workspace)
    problems = []
    for label, (call, field) in cases.items():
        try:
            await call(session.id)
        except (ValueError, TypeError) as exc:
            if field not in str(exc):
                problems.append(f"{label}: the error does not name {field!r}: {exc}")
        except Exception as exc:
            problems.append(f"{label}: raised {type(exc).__name__} (not ValueError/TypeError): {exc}")
        else:
            problems.append(f"{label}: accepted")
        if await everything(store, session.id, workspace) != before:
            problems.append(f"{label}: the database changed")
            before = await everything(store, session.id, workspace)
    assert not problems, "\n".join(problems)


def forged_cursor(updated_at: Any, session_id: Any) -> str:
    return forged_cursor_text(json.dumps([updated_at, session_id]))


def forged_cursor_text(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def test_integer_arguments_beyond_64_bits_are_refused_and_the_largest_work(store: Any, workspace: str) -> None:
    cases: dict[str, tuple[Any, str]] = {
        "get_messages limit": (lambda s: store.get_messages(s, limit=INT64_MAX + 1), "limit"),
        "get_messages before": (lambda s: store.get_messages(s, before=INT64_MAX + 1), "before"),
        "get_messages before, low": (lambda s: store.get_messages(s, before=-(2**63) - 1), "before"),
        "list_checkpoints limit": (lambda s: store.list_checkpoints(s, limit=2**64), "limit"),
        "list_sessions limit": (lambda _: store.list_sessions(workspace, limit=2**70), "limit"),
        "session_summaries limit": (lambda _: store.session_summaries(workspace, limit=INT64_MAX + 1), "limit"),
        "cursor past 64 bits": (lambda _: store.list_sessions(cursor=forged_cursor(2**64, "id")), "cursor"),
        "cursor id too long": (lambda _: store.list_sessions(cursor=forged_cursor(1, "i" * 129)), "cursor"),
        "cursor id not Unicode": (lambda _: store.session_summaries(cursor=forged_cursor(1, "\ud800")), "cursor"),
        "cursor as bytes": (lambda _: store.list_sessions(cursor=b"abc"), "cursor"),
        "cursor nested deep": (lambda _: store.list_sessions(cursor=forged_cursor_text("[" * 100_000)), "cursor"),
        "prune keep_last": (lambda _: store.prune(keep_last=INT64_MAX + 1, dry_run=True), "keep_last"),
        "prune checkpoints_before": (
            lambda _: store.prune(checkpoints_before=2**64, dry_run=True),
            "checkpoints_before",
        ),
        "prune sessions_idle_before": (
            lambda _: store.prune(sessions_idle_before=-(2**64), dry_run=True),
            "sessions_idle_before",
        ),
        "prune batch_size": (lambda _: store.prune(keep_last=1, batch_size=2**31), "batch_size"),
        "copy_to batch_size": (lambda _: store.copy_to("sqlite://", batch_size=2**31), "batch_size"),
    }
    await refuse_each(store, workspace, cases)

    # The largest values are accepted and mean what they say, on every dialect.
    (session,) = await store.list_sessions(workspace, limit=INT64_MAX)
    assert [m.content for m in await store.get_messages(session.id, limit=INT64_MAX)] == ["kept"]
    assert [m.content for m in await store.get_messages(session.id, limit=2**40, before=INT64_MAX)] == ["kept"]
    assert await store.get_messages(session.id, before=-(2**63)) == []
    assert len(await store.list_checkpoints(session.id, limit=INT64_MAX)) == 1
    assert len(await store.list_checkpoints(session.id, namespace="", limit=2**40)) == 1
    assert [s.session.id for s in await store.session_summaries(workspace, limit=INT64_MAX)] == [session.id]
    assert await store.list_sessions(workspace, cursor=forged_cursor(-(2**63), "")) == []
    report = await store.prune(keep_last=INT64_MAX, checkpoints_before=INT64_MAX, dry_run=True)
    assert report.checkpoints == 0


async def test_bytes_and_text_that_is_not_unicode_are_refused_where_text_is_required(
    store: Any, workspace: str
) -> None:
    checkpoint = {"step": 1, "node_results": {"a": NODE}, "source": "loop"}
    call = {"tool_use_id": "t1", "name": "n", "input": {}}
    result = {"tool_use_id": "t1", "content": "c"}
    cases: dict[str, tuple[Any, str]] = {
        "content": (lambda s: store.add_message(s, role="user", content=b"text"), "content"),
        "message session_id": (lambda s: store.add_message(s.encode(), role="user", content="x"), "session_id"),
        "tool_use_id": (
            lambda s: store.add_message(s, role="assistant", tool_calls=[{**call, "tool_use_id": b"t"}]),
            "tool_use_id",
        ),
        "tool name": (lambda s: store.add_message(s, role="assistant", tool_calls=[{**call, "name": b"n"}]), "name"),
        "tool input key": (
            lambda s: store.add_message(s, role="assistant", tool_calls=[{**call, "input": {b"k": 1}}]),
            "input",
        ),
        "tool result content": (
            lambda s: store.add_message(s, role="tool", tool_results=[{**result, "content": b"c"}]),
            "content",
        ),
        "directory": (lambda _: store.create_session(b"/dir", workspace_id=workspace), "directory"),
        "title": (lambda _: store.create_session("/dir", title=b"t", workspace_id=workspace), "title"),
        "workspace_id": (lambda _: store.create_session("/dir", workspace_id=workspace.encode()), "workspace_id"),
        "metadata key": (
            lambda _: store.create_session("/dir", workspace_id=workspace, metadata={b"k": 1}),
            "metadata",
        ),
        "update title": (lambda s: store.update_session(s, title=b"t"), "title"),
        "update directory": (lambda s: store.update_session(s, directory=b"/d"), "directory"),
        "checkpoint session_id": (lambda s: store.save_checkpoint(session_id=s.encode(), **checkpoint), "session_id"),
        "namespace": (lambda s: store.save_checkpoint(session_id=s, namespace=b"ns", **checkpoint), "namespace"),
        "parent_id": (lambda s: store.save_checkpoint(session_id=s, parent_id=b"p", **checkpoint), "parent_id"),
        "node_id": (lambda s: store.save_checkpoint(session_id=s, node_id=b"n", **checkpoint), "node_id"),
        "pending node": (
            lambda s: store.save_checkpoint(session_id=s, pending_nodes=[b"n"], **checkpoint),
            "pending_nodes",
        ),
        "node_results key": (
            lambda s: store.save_checkpoint(session_id=s, step=1, node_results={b"a": NODE}, source="loop"),
            "node_results",
        ),
        "get_session(bytes)": (lambda s: store.get_session(s.encode()), "session_id"),
        "list_sessions(bytes)": (lambda _: store.list_sessions(workspace.encode()), "workspace_id"),
        "list_checkpoints namespace": (lambda s: store.list_checkpoints(s, namespace=b""), "namespace"),
        "search": (lambda _: store.list_sessions(search=b"x"), "search"),
        "fork title": (lambda s: store.fork(s, title=b"t"), "title"),
        "get_session surrogate": (lambda _: store.get_session(LONE_SURROGATE), "session_id"),
        "get_checkpoint surrogate": (lambda _: store.get_checkpoint(LONE_SURROGATE), "checkpoint_id"),
        "list_sessions surrogate": (lambda _: store.list_sessions(LONE_SURROGATE), "workspace_id"),
        "search surrogate": (lambda _: store.session_summaries(search=LONE_SURROGATE), "search"),
        "namespace surrogate": (lambda s: store.get_latest_checkpoint(s, LONE_SURROGATE), "namespace"),
        "delete surrogate": (lambda _: store.delete_session(LONE_SURROGATE), "session_id"),
    }
    await refuse_each(store, workspace, cases)


async def test_ids_and_names_longer_than_their_columns_are_refused_on_every_dialect(
    store: Any, workspace: str, tmp_path: Path
) -> None:
    long_id, long_name = "i" * 129, "n" * 256
    checkpoint = {"step": 1, "node_results": {"a": NODE}, "source": "loop"}
    cases: dict[str, tuple[Any, str]] = {
        "get_session": (lambda _: store.get_session(long_id), "session_id"),
        "delete_session": (lambda _: store.delete_session(long_id), "session_id"),
        "update_session": (lambda _: store.update_session(long_id, title="t"), "session_id"),
        "get_messages": (lambda _: store.get_messages(long_id), "session_id"),
        "add_message": (lambda _: store.add_message(long_id, role="user", content="x"), "session_id"),
        "save_checkpoint": (lambda _: store.save_checkpoint(session_id=long_id, **checkpoint), "session_id"),
        "get_checkpoint": (lambda _: store.get_checkpoint(long_id), "checkpoint_id"),
        "get_latest_checkpoint": (lambda _: store.get_latest_checkpoint(long_id), "session_id"),
        "latest in a namespace": (lambda s: store.get_latest_checkpoint(s, long_name), "namespace"),
        "list_checkpoints": (lambda s: store.list_checkpoints(s, namespace=long_name), "namespace"),
        "list_sessions": (lambda _: store.list_sessions(long_name), "workspace_id"),
        "session_summaries": (lambda _: store.session_summaries(long_name), "workspace_id"),
        "continue_latest": (lambda _: store.continue_latest(long_name), "workspace_id"),
        "fork": (lambda _: store.fork(long_id), "checkpoint_id"),
        "prune": (lambda _: store.prune(keep_last=1, workspace_id=long_name, dry_run=True), "workspace_id"),
        "export": (lambda _: store.export_sessions(tmp_path / "x.jsonl", session_ids=[long_id]), "session_ids"),
    }
    await refuse_each(store, workspace, cases)
    # At the columns' lengths: no such rows, as on any other id.
    assert await store.get_session("i" * 128) is None
    assert await store.list_sessions("n" * 255) == []


# --- writes larger than the server accepts ----------------------------------------------


def server_packet_limit(url: str) -> int:
    with raw_connection(url) as conn:
        return int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one())


@pytest.mark.parametrize("backend", ["mariadb"], indirect=True)
async def test_a_write_over_max_allowed_packet_is_refused_before_it_is_sent(
    store: Any, url: str, workspace: str
) -> None:
    limit = server_packet_limit(url)
    if limit > 64 * 2**20:
        pytest.skip(f"max_allowed_packet is {limit} bytes: too large a payload to build for the test")
    # One byte a character in UTF-8, two once escaped: the escaped size is what is sent.
    big = "'" * (limit // 2 + 1000)
    session = await store.create_session("/big", workspace_id=workspace)
    checkpoint = await store.save_checkpoint(session_id=session.id, step=0, source="loop", node_results={})
    before = await everything(store, session.id, workspace)
    writes = {
        "add_message": lambda: store.add_message(session.id, role="tool", content=big),
        "save_checkpoint": lambda: store.save_checkpoint(
            session_id=session.id, step=0, source="loop", node_results={"a": {**NODE, "output": big}}
        ),
        "create_session": lambda: store.create_session("/big", workspace_id=workspace, metadata={"big": big}),
        "update_session": lambda: store.update_session(session.id, title=big),
        "fork": lambda: store.fork(checkpoint.id, title=big),
    }
    for name, write in writes.items():
        with pytest.raises(PayloadTooLargeError, match="max_allowed_packet") as caught:
            await write()
        assert isinstance(caught.value, CheckpointStoreError)
        assert isinstance(caught.value, ValueError)
        assert caught.value.limit == limit, name
        assert caught.value.size > limit, name
        assert f"{limit:,} bytes" in str(caught.value)
        # Nothing was written, and the connection was not lost: the store carries on.
        assert await everything(store, session.id, workspace) == before, name
    await store.add_message(session.id, role="user", content="x" * (limit // 8))
    await store.delete_session(session.id)


@pytest.mark.parametrize("backend", ["mariadb"], indirect=True)
async def test_max_allowed_packet_is_read_once_per_connection_not_per_write(store: Any, workspace: str) -> None:
    session = await store.create_session("/once", workspace_id=workspace)
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "max_allowed_packet" in statement:
            reads.append(statement)

    with before_each_statement(Engine, count):
        for index in range(20):
            await store.add_message(session.id, role="user", content=f"m{index}")
    assert len(reads) <= 1, reads  # none if the pooled connection read it before


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_write_over_postgresql_message_limit_is_refused_before_it_is_sent(
    store: Any, workspace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real limit is 1 GB; a test lowers it rather than building a gigabyte.
    monkeypatch.setattr(values, "POSTGRES_MESSAGE_LIMIT", 1_000_000)
    session = await store.create_session("/big", workspace_id=workspace)
    with pytest.raises(PayloadTooLargeError, match="1 GB") as caught:
        await store.add_message(session.id, role="tool", content="é" * 600_000)
    assert caught.value.size > 1_000_000
    assert await store.get_messages(session.id) == []
    await store.add_message(session.id, role="tool", content="é" * 400_000)


# --- imports checked as the API checks --------------------------------------------------


def rewrite(lines: list[bytes], kind: str, change: dict[str, Any], *, nth: int = 0) -> tuple[bytes, int]:
    """The file with the ``nth`` row of ``kind`` changed, and that row's line number."""
    found = 0
    out = list(lines)
    for number, line in enumerate(lines, start=1):
        record = orjson.loads(line)
        if record.get("type") != kind:
            continue
        if found == nth:
            record["row"] = {**record["row"], **change}
            out[number - 1] = orjson.dumps(record) + b"\n"
            return b"".join(out), number
        found += 1
    raise AssertionError(f"no {kind} number {nth}")


DEEP_JSON = "[" * 5000 + "]" * 5000
# (label, record type, changed columns, row of that type to change, text the error must hold)
IMPORT_CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("session id too long", "session", {"id": "s" * 129}, 1, "session column id"),
    ("workspace too long", "session", {"workspace_id": "w" * 256}, 0, "session column workspace_id"),
    ("created_at past 64 bits", "session", {"created_at": 2**63}, 0, "session column created_at"),
    ("metadata not JSON", "session", {"metadata": "{not json"}, 0, "session column metadata: invalid JSON"),
    ("metadata not a dict", "session", {"metadata": "[1, 2]"}, 0, "session column metadata: invalid shape"),
    ("metadata too deep", "session", {"metadata": DEEP_JSON}, 0, "session column metadata: nested deeper"),
    ("unknown role", "message", {"role": "robot"}, 0, "message column role"),
    ("message id 0", "message", {"id": 0}, 0, "message column id"),
    ("message id 2**63 - 1", "message", {"id": 2**63 - 1}, 0, "message column id"),
    ("message id past 2**53", "message", {"id": 2**53}, 0, "message column id"),
    ("tokens past 32 bits", "message", {"tokens_in": 2**31}, 0, "message column tokens_in"),
    ("negative tokens", "message", {"tokens_out": -1}, 0, "message column tokens_out"),
    ("tool_calls not JSON", "message", {"tool_calls": "[{"}, 1, "message column tool_calls: invalid JSON"),
    ("tool_calls of the wrong shape", "message", {"tool_calls": '[{"toolUseId": 1}]'}, 1, "column tool_calls"),
    ("tool_results not a list", "message", {"tool_results": '{"a": 1}'}, 2, "column tool_results"),
    ("negative step", "checkpoint", {"step": -1}, 0, "checkpoint column step"),
    ("version 0", "checkpoint", {"version": 0}, 0, "checkpoint column version"),
    ("version past 32 bits", "checkpoint", {"version": 2**31}, 0, "checkpoint column version"),
    ("unknown source", "checkpoint", {"source": "replay"}, 0, "checkpoint column source"),
    ("no source", "checkpoint", {"source": None}, 0, "checkpoint column source"),
    ("namespace too long", "checkpoint", {"namespace": "n" * 256}, 0, "checkpoint column namespace"),
    ("node_results not JSON", "checkpoint", {"node_results": "{"}, 0, "column node_results: invalid JSON"),
    (
        "node result of the wrong shape",
        "checkpoint",
        {"node_results": '{"a": {"status": "exploded"}}'},
        0,
        "checkpoint column node_results: invalid shape",
    ),
    ("node_results too deep", "checkpoint", {"node_results": DEEP_JSON}, 0, "column node_results: nested deeper"),
    ("pending_nodes not a list", "checkpoint", {"pending_nodes": '"abc"'}, 0, "column pending_nodes"),
    ("cycle_state without back_edge", "checkpoint", {"cycle_state": '{"iteration": 1}'}, 0, "column cycle_state"),
    ("watermark past 2**53", "checkpoint", {"last_message_id": 2**62}, 0, "checkpoint column last_message_id"),
    ("text as a number", "message", {"content": 5}, 0, "message column content"),
]


async def test_an_import_refuses_every_row_the_api_would_refuse_naming_line_and_column(
    store: Any, workspace: str, tmp_path: Path
) -> None:
    await fill(store, workspace)
    export = tmp_path / "export.jsonl"
    await store.export_sessions(export, workspace_id=workspace)
    for session in await store.list_sessions(workspace):
        await store.delete_session(session.id)
    lines = export.read_bytes().splitlines(keepends=True)

    problems = []
    for label, kind, change, nth, fragment in IMPORT_CASES:
        content, line = rewrite(lines, kind, change, nth=nth)
        broken = tmp_path / "broken.jsonl"
        broken.write_bytes(content)
        try:
            await store.import_sessions(broken)
        except ExportFormatError as exc:
            if exc.line != line or fragment not in str(exc):
                problems.append(f"{label}: expected line {line} and {fragment!r}, got: {exc}")
        except Exception as exc:
            problems.append(f"{label}: raised {type(exc).__name__}: {exc}")
        else:
            problems.append(f"{label}: imported")
            for session in await store.list_sessions(workspace):
                await store.delete_session(session.id)
        if await store.list_sessions(workspace) != []:
            problems.append(f"{label}: something was imported")
    assert not problems, "\n".join(problems)

    report = await store.import_sessions(export)
    assert (report.sessions, report.messages, report.checkpoints) == (3, 6, 3)
    # Ids far below the bound leave add_message its room on every dialect.
    (run,) = [s for s in await store.list_sessions(workspace) if s.title == "Run «one» 🚀"]
    await store.add_message(run.id, role="user", content="after the import")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_an_import_refuses_text_the_target_cannot_store_naming_line_and_column(
    store: Any, workspace: str, tmp_path: Path
) -> None:
    await fill(store, workspace)
    export = tmp_path / "export.jsonl"
    await store.export_sessions(export, workspace_id=workspace)
    for session in await store.list_sessions(workspace):
        await store.delete_session(session.id)
    # As the SQLite package would export a message holding NUL, which PostgreSQL cannot store.
    content, line = rewrite(export.read_bytes().splitlines(keepends=True), "message", {"content": "a\x00b"})
    export.write_bytes(content)
    with pytest.raises(ExportFormatError, match=r"message column content: PostgreSQL cannot store the NUL") as caught:
        await store.import_sessions(export)
    assert caught.value.line == line
    assert await store.list_sessions(workspace) == []


@pytest.mark.parametrize("scratch_url", ["postgresql", "mariadb"], indirect=True)
@pytest.mark.parametrize("new_ids", [False, True], ids=["kept-ids", "new-ids"])
def test_imports_and_copies_send_batches_no_larger_than_the_server_takes(
    scratch_url: str, tmp_path: Path, new_ids: bool
) -> None:
    # 300 messages of 100 kB: 30 MB, which one batch of rows in one statement would carry.
    source = f"sqlite:///{tmp_path / 'big.db'}"
    with sync.SqlAlchemyCheckpointStore(source) as store:
        session = store.create_session("/big")
        for index in range(300):
            store.add_message(session.id, role="tool", content=f"{index:04d}" + "x" * 100_000)
        store.export_sessions(tmp_path / "big.jsonl")
        if not new_ids:
            store.copy_to(scratch_url)
    with sync.SqlAlchemyCheckpointStore(scratch_url) as target:
        if not new_ids:
            copied = target.get_messages(session.id)
            assert [m.content[:4] for m in copied] == [f"{index:04d}" for index in range(300)]
            target.delete_session(session.id)
        report = target.import_sessions(tmp_path / "big.jsonl", new_ids=new_ids)
        assert report.messages == 300
        (imported,) = target.list_sessions()
        assert [m.content[:4] for m in target.get_messages(imported.id)] == [f"{index:04d}" for index in range(300)]
