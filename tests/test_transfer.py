"""Export, import and copy: exact round trips between dialects, safe re-imports, corrupt files."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, func, insert, make_url, select, text

from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.db.queries import checkpoints, messages, sessions
from obsku_checkpoint_sqlite.db.values import now_ms
from obsku_checkpoint_sqlite.errors import ExportFormatError, ImportConflictError
from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from obsku_checkpoint_sqlite.transfer import copy_database

from .conftest import DATABASE_BACKENDS, SyncAsAsync, require_server

TABLES = (sessions, messages, checkpoints)


@pytest.fixture
def new_database(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Makes empty databases of a given backend on demand; drops them afterwards."""
    dropped: list[tuple[str, str]] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}"
        server = make_url(require_server(backend))
        name = f"obsku_transfer_{uuid.uuid4().hex[:12]}"
        admin = create_engine(normalize_url(server, for_async=False), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        admin.dispose()
        dropped.append((backend, name))
        return server.set(database=name).render_as_string(hide_password=False)

    yield make
    for backend, name in dropped:
        admin = create_engine(normalize_url(require_server(backend), for_async=False), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name}" + (" WITH (FORCE)" if backend == "postgresql" else "")))
        admin.dispose()


async def fill(store: Any, workspace: str | None = None) -> None:
    """Sessions exercising every column: NULLs, unicode, big payloads, namespaces, forks."""
    run = await store.create_session(
        "/srv/ünïcode ☃",
        title="Run «one» 🚀",
        workspace_id=workspace,
        metadata={"tags": ["a", "b"], "limits": {"tokens": 2**40}, "quote": 'say "hi"\n'},
    )
    await store.create_session("/plain", workspace_id=workspace)  # no title, no metadata, nothing else
    await store.add_message(run.id, role="system", content="x" * 100_000)
    await store.add_message(
        run.id,
        role="assistant",
        tool_calls=[{"tool_use_id": "t1", "name": "search", "input": {"q": "ü", "n": 3}}],
        tokens_in=2_000_000_000,
        tokens_out=0,
    )
    first = await store.save_checkpoint(
        session_id=run.id,
        namespace="main",
        step=1,
        node_results={"plan": {"status": "completed", "output": {"steps": [1, 2.5, None, True]}}},
        pending_nodes=["act"],
        source="loop",
        node_id="plan",
        cycle_state={"back_edge": "act->plan", "iteration": 2},
    )
    await store.add_message(
        run.id, role="tool", tool_results=[{"tool_use_id": "t1", "content": "found", "status": "ok"}]
    )
    await store.save_checkpoint(
        session_id=run.id,
        namespace="sub/graph",
        step=2,
        node_results={"act": {"status": "failed", "error": "boom", "started_at": 1, "completed_at": 2}},
        source="interrupt",
        parent_id=first.id,
    )
    forked = await store.fork(first.id, title="branch")
    await store.add_message(forked.id, role="user", content="a different turn")


def dump(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in primary-key order, as the database returns it."""
    engine = create_sync_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table.name: [
                    dict(row._mapping) for row in conn.execute(select(table).order_by(*table.primary_key.columns))
                ]
                for table in TABLES
            }
    finally:
        engine.dispose()


@pytest.mark.parametrize("source_backend", DATABASE_BACKENDS)
async def test_export_import_round_trips_every_column_between_dialects(
    source_backend: str, new_database: Callable[[str], str], tmp_path: Path
) -> None:
    source = new_database(source_backend)
    with sync.SqlAlchemyCheckpointStore(source) as store:
        await fill(SyncAsAsync(store))
        exported = store.export_sessions(tmp_path / "export.jsonl")
    original = dump(source)
    assert (exported.sessions, exported.messages, exported.checkpoints) == (3, 6, 3)
    assert original["checkpoints"][-1]["last_message_id"] is not None  # the fork's watermark travels

    for target_backend in DATABASE_BACKENDS:
        target = new_database(target_backend)
        with sync.SqlAlchemyCheckpointStore(target) as store:
            imported = store.import_sessions(tmp_path / "export.jsonl")
            assert imported == exported
            assert dump(target) == original, f"{source_backend} -> {target_backend}"
            # Imported message ids must not collide with the next ones the target assigns.
            session_id = original["sessions"][0]["id"]
            added = store.add_message(session_id, role="user", content="after the import")
            assert added.id > max(row["id"] for row in original["messages"])


async def test_gzip_export_round_trips(tmp_path: Path) -> None:
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{tmp_path / 'a.db'}") as store:
        await fill(SyncAsAsync(store))
        store.export_sessions(tmp_path / "export.jsonl.gz")
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{tmp_path / 'b.db'}") as store:
        store.import_sessions(tmp_path / "export.jsonl.gz")
    assert dump(f"sqlite:///{tmp_path / 'b.db'}") == dump(f"sqlite:///{tmp_path / 'a.db'}")


async def test_the_file_is_a_header_then_sessions_with_their_rows_then_an_end_record(tmp_path: Path) -> None:
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{tmp_path / 'a.db'}") as store:
        await fill(SyncAsAsync(store))
        store.export_sessions(tmp_path / "export.jsonl")
    records = [orjson.loads(line) for line in (tmp_path / "export.jsonl").read_bytes().splitlines()]
    assert records[0]["format"] == "obsku-checkpoint-export"
    assert records[0]["version"] == 1
    assert records[-1] == {"type": "end", "counts": {"sessions": 3, "messages": 6, "checkpoints": 3}}
    current = None
    for record in records[1:-1]:
        if record["type"] == "session":
            current = record["row"]["id"]
        else:
            assert record["row"]["session_id"] == current


async def test_importing_twice_fails_cleanly_skips_or_copies(store: Any, workspace: str, tmp_path: Path) -> None:
    await fill(store, workspace)
    exported = await store.export_sessions(tmp_path / "export.jsonl", workspace_id=workspace)
    assert exported.sessions == 3
    before = await _state(store, workspace)

    with pytest.raises(ImportConflictError, match=r"line 2: session .* exists"):
        await store.import_sessions(tmp_path / "export.jsonl")
    assert await _state(store, workspace) == before

    skipped = await store.import_sessions(tmp_path / "export.jsonl", on_conflict="skip")
    assert (skipped.sessions, skipped.messages, skipped.checkpoints, skipped.skipped_sessions) == (0, 0, 0, 3)
    assert await _state(store, workspace) == before

    copied = await store.import_sessions(tmp_path / "export.jsonl", new_ids=True)
    assert (copied.sessions, copied.messages, copied.checkpoints) == (3, 6, 3)
    copies = await store.list_sessions(workspace)
    assert len(copies) == 6
    new = [session for session in copies if session.id not in before]
    fork_copy = next(session for session in new if session.title == "branch")
    origin = await store.get_checkpoint(fork_copy.forked_from_checkpoint_id)
    assert origin is not None
    assert origin.session_id == fork_copy.forked_from_session_id
    assert origin.session_id in {session.id for session in new}
    # The re-keyed watermark still cuts the history where the original did.
    refork = await store.fork(origin.id)
    assert len(await store.get_messages(refork.id)) == 2


async def _state(store: Any, workspace: str) -> dict[str, Any]:
    state = {}
    for session in await store.list_sessions(workspace):
        state[session.id] = (session, await store.get_messages(session.id), await store.list_checkpoints(session.id))
    return state


def _corruptions(lines: list[bytes]) -> list[tuple[str, bytes, int, str]]:
    """(name, file content, line the error names, message fragment) for broken exports."""
    message_line = next(n for n, line in enumerate(lines, 1) if b'"type":"message"' in line)
    checkpoint_line = next(n for n, line in enumerate(lines, 1) if b'"type":"checkpoint"' in line)
    upto = b"".join(lines[: message_line - 1])
    wrong_type = lines[checkpoint_line - 1].replace(b'"step":', b'"step":"x","_":')
    newer = orjson.loads(lines[0]) | {"version": 99}
    return [
        ("cut mid-line", upto + lines[message_line - 1][:25], message_line, "cut short"),
        ("cut at a line end", b"".join(lines[:-1]), len(lines), "truncated"),
        (
            "garbage line",
            b"".join(lines[: message_line - 1]) + b'{"type": "message", "row": {\n' + b"".join(lines[message_line:]),
            message_line,
            "not valid JSON",
        ),
        (
            "wrong column",
            b"".join(lines[: checkpoint_line - 1]) + wrong_type + b"".join(lines[checkpoint_line:]),
            checkpoint_line,
            "wrong columns",
        ),
        ("newer format", orjson.dumps(newer) + b"\n" + b"".join(lines[1:]), 1, "newer"),
        ("not an export", b'{"hello": 1}\n', 1, "not an obsku-checkpoint export"),
        ("empty", b"", 1, "empty"),
    ]


async def test_a_corrupt_or_truncated_file_names_its_line_and_imports_nothing(
    store: Any, workspace: str, tmp_path: Path
) -> None:
    await fill(store, workspace)
    original = await _state(store, workspace)
    export = tmp_path / "export.jsonl"
    await store.export_sessions(export, workspace_id=workspace)
    for session_id in original:
        await store.delete_session(session_id)
    lines = export.read_bytes().splitlines(keepends=True)

    for name, content, line, fragment in _corruptions(lines):
        broken = tmp_path / f"{name.replace(' ', '-')}.jsonl"
        broken.write_bytes(content)
        with pytest.raises(ExportFormatError, match=fragment) as caught:
            await store.import_sessions(broken)
        assert caught.value.line == line, name
        assert f"line {line}:" in str(caught.value)
        assert await store.list_sessions(workspace) == [], f"{name}: something was imported"

    await store.import_sessions(export)
    assert await _state(store, workspace) == original


def seed_bulk(url: str, *, sessions_count: int, messages_each: int) -> None:
    """A database with many rows, written with a few Core statements."""
    with sync.SqlAlchemyCheckpointStore(url) as store:
        store.list_sessions()  # the schema
    engine = create_sync_engine(url)
    now = now_ms()
    session_rows, message_rows, checkpoint_rows = [], [], []
    for index in range(sessions_count):
        session_id = f"bulk-{index:04d}"
        session_rows.append(
            {"id": session_id, "workspace_id": "bulk", "title": f"bulk {index}", "directory": "/bulk",
             "created_at": now, "updated_at": now + index, "metadata": f'{{"i":{index}}}'}
        )  # fmt: skip
        for n in range(messages_each):
            message_rows.append(
                {"id": index * messages_each + n + 1, "session_id": session_id, "role": "user",
                 "content": f"message {n} of {index} ✓", "tokens_in": n, "created_at": now + n}
            )  # fmt: skip
        checkpoint_rows.append(
            {"id": f"{session_id}-c", "session_id": session_id, "namespace": "", "version": 1, "step": 1,
             "node_results": '{"n":{"status":"completed"}}', "pending_nodes": "[]", "source": "loop",
             "created_at": now, "last_message_id": (index + 1) * messages_each}
        )  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(sessions), session_rows)
        conn.execute(insert(messages), message_rows)
        conn.execute(insert(checkpoints), checkpoint_rows)
    engine.dispose()


def test_copy_moves_10000_messages_with_counts_and_spot_checks(scratch_url: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'big.db'}"
    seed_bulk(source, sessions_count=50, messages_each=205)
    progress: list[int] = []

    report = copy_database(source, scratch_url, batch_size=2000, progress=lambda done, total: progress.append(done))

    assert (report.sessions, report.messages, report.checkpoints) == (50, 10_250, 50)
    assert progress[-1] == 50 + 10_250 + 50
    engine = create_sync_engine(scratch_url)
    try:
        with engine.connect() as conn:
            counts = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES}
            assert counts == {"sessions": 50, "messages": 10_250, "checkpoints": 50}
            sample = random.Random(6).sample(range(1, 10_251), 25)
            copied = {
                row.id: dict(row._mapping) for row in conn.execute(select(messages).where(messages.c.id.in_(sample)))
            }
        original = dump(source)
    finally:
        engine.dispose()
    by_id = {row["id"]: row for row in original["messages"]}
    assert copied == {message_id: by_id[message_id] for message_id in sample}
    assert dump(scratch_url)["checkpoints"] == original["checkpoints"]
    assert dump(scratch_url)["sessions"] == original["sessions"]

    with sync.SqlAlchemyCheckpointStore(scratch_url) as target:
        assert target.add_message("bulk-0007", role="user", content="next").id > 10_250
        forked = target.fork("bulk-0007-c")
        assert len(target.get_messages(forked.id)) == 205

    # 51: the fork above added one.
    with pytest.raises(ImportConflictError, match="holds 51 sessions already"):
        copy_database(source, scratch_url)


async def test_copy_to_from_either_face_and_any_backend(
    scratch_url: str, open_store: Any, face: str, tmp_path: Path
) -> None:
    store = open_store(scratch_url)
    await fill(store)
    target = f"sqlite:///{tmp_path / 'copy.db'}"

    report = await store.copy_to(target)

    assert (report.sessions, report.messages, report.checkpoints) == (3, 6, 3)
    assert dump(target) == dump(scratch_url)


async def test_kept_message_ids_that_collide_fail_and_new_ids_import_anyway(tmp_path: Path) -> None:
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{tmp_path / 'a.db'}") as store:
        await fill(SyncAsAsync(store))
        store.export_sessions(tmp_path / "export.jsonl")
    target = f"sqlite:///{tmp_path / 'b.db'}"
    with sync.SqlAlchemyCheckpointStore(target) as store:
        local = store.create_session("/local")
        store.add_message(local.id, role="user", content="message 1 of this database")
        before = dump(target)

        with pytest.raises(ImportConflictError, match=r"line \d+: message id 1 exists in the target already"):
            store.import_sessions(tmp_path / "export.jsonl")
        assert dump(target) == before

        report = store.import_sessions(tmp_path / "export.jsonl", new_ids=True)
        assert (report.sessions, report.messages, report.checkpoints) == (3, 6, 3)
