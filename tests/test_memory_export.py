"""Export and import of the memory store, on every backend and both faces: which entities and
facts an export carries, the format version it writes, what an import does with ids that
exist and with bad rows; and the entity and fact counts of ``session_summaries``."""

from __future__ import annotations

import base64
import io
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console
from sqlalchemy import Engine, create_engine, insert
from typer.testing import CliRunner

from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.cli import app, reading
from obsku_checkpoint_sqlite.db.memory_queries import entities, facts
from obsku_checkpoint_sqlite.db.queries import messages, sessions
from obsku_checkpoint_sqlite.db.thread_queries import lg_checkpoints
from obsku_checkpoint_sqlite.db.values import now_ms
from obsku_checkpoint_sqlite.errors import ExportFormatError, ImportConflictError
from obsku_checkpoint_sqlite.ops import summaries
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from tests._memory_fixtures import copy_sqlite_fixture, scratch_database
from tests.conftest import before_each_statement, counting_statements, require_server
from tests.test_admin import seeding_engine

runner = CliRunner()


async def _memory(store: Any, workspace: str) -> dict[str, Any]:
    """Two sessions of ``workspace`` and one elsewhere, with entities, facts from each and
    facts from none (in the workspace and elsewhere)."""
    ids: dict[str, Any] = {}
    one = await store.create_session("/a", title="one", workspace_id=workspace)
    two = await store.create_session("/b", title="two", workspace_id=workspace)
    other = await store.create_session("/c", title="other", workspace_id=workspace + "-other")
    ids["sessions"] = {"one": one.id, "two": two.id, "other": other.id}
    ids["entities"] = {
        "one": [
            (await store.save_entity(one.id, name="alice", type="person", embedding=[0.5, -1, 1e-7])).id,
            (await store.save_entity(one.id, name="bob", type="person", attributes={"age": 3})).id,
        ],
        "two": [(await store.save_entity(two.id, name="example.org", type="domain", embedding=[1, 0, 0])).id],
        "other": [(await store.save_entity(other.id, name="x", type="tool", embedding=[0, 1, 0])).id],
    }
    ids["facts"] = {}
    for name, session in ids["sessions"].items():
        ids["facts"][name] = [
            (
                await store.save_fact(
                    f"from {name} {n}", confidence=0.95, source_session_id=session, embedding=[n, 1, 0],
                    workspace_id=workspace if name != "other" else workspace + "-other",
                )
            ).id
            for n in range({"one": 3, "two": 1, "other": 1}[name])
        ]  # fmt: skip
    ids["facts"]["none"] = [
        (await store.save_fact("from no session", workspace_id=workspace, embedding=[0, 0, 1])).id,
        (await store.save_fact("no session, no confidence", workspace_id=workspace)).id,
    ]
    ids["facts"]["none elsewhere"] = [(await store.save_fact("elsewhere", workspace_id=workspace + "-other")).id]
    return ids


def _records(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _memory_ids(path: Path) -> dict[str, set[str]]:
    records = _records(path)
    return {
        kind: {record["row"]["id"] for record in records if record.get("type") == kind} for kind in ("entity", "fact")
    }


async def _state(store: Any, workspace: str) -> dict[str, Any]:
    """The workspace's sessions, and every entity and fact of the database, as the API reads them."""
    sessions = await store.list_sessions(workspace)
    return {
        "sessions": sorted(session.id for session in sessions),
        "entities": sorted(item.model_dump_json() for item in await store.list_entities()),
        "facts": sorted(item.model_dump_json() for item in await store.list_facts()),
    }


async def _empty(store: Any) -> None:
    for session in await store.list_sessions(limit=None):
        await store.delete_session(session.id)
    for fact in await store.list_facts():
        await store.delete_fact(fact.id)


# --- what an export carries -------------------------------------------------------------------


async def test_an_export_carries_a_sessions_entities_and_the_facts_from_it_facts_from_none_when_no_session_is_named(
    store: Any, workspace: str, tmp_path: Path
) -> None:
    ids = await _memory(store, workspace)
    facts, entities = ids["facts"], ids["entities"]

    named = tmp_path / "one.jsonl"
    report = await store.export_sessions(named, session_ids=[ids["sessions"]["one"]])
    assert _memory_ids(named) == {"entity": set(entities["one"]), "fact": set(facts["one"])}
    assert (report.entities, report.facts) == (2, 3)

    in_workspace = tmp_path / "workspace.jsonl"
    report = await store.export_sessions(in_workspace, workspace_id=workspace)
    assert _memory_ids(in_workspace) == {
        "entity": {*entities["one"], *entities["two"]},
        "fact": {*facts["one"], *facts["two"], *facts["none"]},
    }
    assert (report.entities, report.facts) == (3, 6)

    # Both filters: sessions are named, so only the facts from them.
    both = tmp_path / "both.jsonl"
    await store.export_sessions(both, workspace_id=workspace, session_ids=[ids["sessions"]["two"]])
    assert _memory_ids(both) == {"entity": set(entities["two"]), "fact": set(facts["two"])}

    everything = tmp_path / "all.jsonl"
    await store.export_sessions(everything)
    carried = _memory_ids(everything)
    assert carried["entity"] >= {item for group in entities.values() for item in group}
    assert carried["fact"] >= {item for group in facts.values() for item in group}

    # A session deleted leaves its facts without a source: they go with no session any more.
    await store.delete_session(ids["sessions"]["one"])
    await store.export_sessions(named, session_ids=[ids["sessions"]["one"]], overwrite=True)
    assert _memory_ids(named) == {"entity": set(), "fact": set()}
    await store.export_sessions(in_workspace, workspace_id=workspace, overwrite=True)
    assert _memory_ids(in_workspace)["fact"] == {*facts["one"], *facts["two"], *facts["none"]}


async def test_memory_rows_follow_the_sessions_and_the_end_record_counts_them(
    store: Any, workspace: str, tmp_path: Path
) -> None:
    ids = await _memory(store, workspace)
    path = tmp_path / "export.jsonl"
    await store.export_sessions(path, workspace_id=workspace)
    records = _records(path)
    kinds = [record["type"] for record in records[1:-1]]
    first_memory = kinds.index("entity")
    assert set(kinds[:first_memory]) <= {"session", "message", "checkpoint"}
    assert kinds[first_memory:] == ["entity"] * 3 + ["fact"] * 6
    assert records[-1] == {
        "type": "end",
        "counts": {"sessions": 2, "messages": 0, "checkpoints": 0, "entities": 3, "facts": 6},
    }
    rows = {record["row"]["id"]: record["row"] for record in records if record.get("type") in ("entity", "fact")}
    alice = rows[ids["entities"]["one"][0]]
    # The stored text, as it is: a str in the file; a server's bytes in base64.
    stored = alice["embedding"]
    text = stored if isinstance(stored, str) else base64.b64decode(stored["base64"]).decode()
    assert text == "[0.5,-1,1e-7]"
    assert alice["attributes"] is None
    assert alice["session_id"] == ids["sessions"]["one"]
    assert rows[ids["facts"]["none"][1]]["confidence"] is None
    assert rows[ids["facts"]["none"][1]]["embedding"] is None


async def test_the_format_version_is_the_lowest_that_holds_the_export(
    store: Any, url: str, workspace: str, tmp_path: Path
) -> None:
    def version(path: Path) -> int:
        return int(_records(path)[0]["version"])

    plain = await store.create_session("/plain", workspace_id=workspace)
    await store.export_sessions(tmp_path / "plain.jsonl", workspace_id=workspace)
    assert version(tmp_path / "plain.jsonl") == 1

    # A fact from no session is enough, in an export that takes such facts.
    await store.save_fact("loose", workspace_id=workspace)
    await store.export_sessions(tmp_path / "loose.jsonl", workspace_id=workspace)
    assert version(tmp_path / "loose.jsonl") == 3
    await store.export_sessions(tmp_path / "named.jsonl", session_ids=[plain.id])
    assert version(tmp_path / "named.jsonl") == 1

    with_entity = await store.create_session("/entity", workspace_id=workspace)
    await store.save_entity(with_entity.id, name="n", type="t")
    await store.export_sessions(tmp_path / "entity.jsonl", session_ids=[with_entity.id])
    assert version(tmp_path / "entity.jsonl") == 3
    assert _records(tmp_path / "entity.jsonl")[-1]["counts"] == {
        "sessions": 1, "messages": 0, "checkpoints": 0, "entities": 1, "facts": 0,
    }  # fmt: skip

    # A LangGraph thread alone is version 2; with memory rows too, 3.
    thread = await store.create_session("/thread", workspace_id=workspace)
    row = {"session_id": thread.id, "checkpoint_ns": "", "checkpoint_id": "c1", "type": "msgpack",
           "checkpoint": b"\x00", "metadata": "{}", "created_at": 1}  # fmt: skip
    with seeding_engine(store, url) as engine, engine.begin() as conn:
        conn.execute(insert(lg_checkpoints), row)
    await store.export_sessions(tmp_path / "thread.jsonl", session_ids=[thread.id])
    assert version(tmp_path / "thread.jsonl") == 2
    await store.export_sessions(tmp_path / "thread-and-entity.jsonl", session_ids=[thread.id, with_entity.id])
    assert version(tmp_path / "thread-and-entity.jsonl") == 3


# --- import: ids that exist -------------------------------------------------------------------


async def test_importing_memory_twice_fails_cleanly_skips_or_copies(store: Any, workspace: str, tmp_path: Path) -> None:
    ids = await _memory(store, workspace)
    path = tmp_path / "export.jsonl"
    exported = await store.export_sessions(path, workspace_id=workspace)
    before = await _state(store, workspace)

    with pytest.raises(ImportConflictError, match=r"line 2: session .* exists"):
        await store.import_sessions(path)
    assert await _state(store, workspace) == before

    # Skipped sessions are skipped with their entities and the facts from them; a fact from
    # no session is left alone on its own id.
    skipped = await store.import_sessions(path, on_conflict="skip")
    assert (skipped.skipped_sessions, skipped.entities, skipped.facts) == (2, 0, 0)
    assert (skipped.skipped_entities, skipped.skipped_facts) == (0, 2)
    assert await _state(store, workspace) == before

    copied = await store.import_sessions(path, new_ids=True)
    assert (copied.sessions, copied.entities, copied.facts) == (2, 3, 6)
    assert (exported.entities, exported.facts) == (3, 6)
    new_sessions = {session.id for session in await store.list_sessions(workspace)} - set(before["sessions"])
    assert len(new_sessions) == 2
    copies = [entity for session in new_sessions for entity in await store.list_entities(session_id=session)]
    assert sorted(entity.name for entity in copies) == ["alice", "bob", "example.org"]
    assert not {entity.id for entity in copies} & {*ids["entities"]["one"], *ids["entities"]["two"]}
    facts = [fact for fact in await store.list_facts(workspace_id=None) if fact.id not in before_ids(before)]
    assert len(facts) == 6
    assert {fact.source_session_id for fact in facts} == new_sessions | {None}
    alice = next(entity for entity in copies if entity.name == "alice")
    assert alice.embedding == [0.5, -1.0, 1e-7]


def before_ids(state: dict[str, Any]) -> set[str]:
    return {orjson.loads(item)["id"] for item in state["facts"]}


async def test_a_fact_that_outlived_its_session_in_the_target_is_a_conflict_or_left_alone(
    store: Any, workspace: str, tmp_path: Path
) -> None:
    ids = await _memory(store, workspace)
    one = ids["sessions"]["one"]
    path = tmp_path / "one.jsonl"
    await store.export_sessions(path, session_ids=[one])
    # Deleting the session deletes its entities and leaves its facts without a source.
    await store.delete_session(one)
    before = await _state(store, workspace)
    first_fact_line = next(n for n, record in enumerate(_records(path), 1) if record.get("type") == "fact")

    with pytest.raises(ImportConflictError, match=rf"line {first_fact_line}: fact id .* exists") as caught:
        await store.import_sessions(path)
    assert "Nothing was imported" in str(caught.value)
    assert await _state(store, workspace) == before

    report = await store.import_sessions(path, on_conflict="skip")
    assert (report.sessions, report.entities, report.facts, report.skipped_facts) == (1, 2, 0, 3)
    assert len(await store.list_entities(session_id=one)) == 2
    for fact_id in ids["facts"]["one"]:
        fact = await store.get_fact(fact_id)
        assert fact is not None
        assert fact.source_session_id is None  # left as it was


# --- import: bad rows -------------------------------------------------------------------------


def _broken_files(lines: list[bytes]) -> list[tuple[str, bytes, int, str]]:
    """(name, file, line the error names, message fragment): exports with one bad memory row."""
    records = [orjson.loads(line) for line in lines]
    entity_line = next(n for n, record in enumerate(records, 1) if record.get("type") == "entity")
    fact_line = next(n for n, record in enumerate(records, 1) if record.get("type") == "fact")

    def with_row(line: int, **changes: Any) -> bytes:
        record = records[line - 1]
        changed = {**record, "row": {**record["row"], **changes}}
        return b"".join(lines[: line - 1]) + orjson.dumps(changed) + b"\n" + b"".join(lines[line:])

    def without_column(line: int, column: str) -> bytes:
        record = records[line - 1]
        changed = {**record, "row": {key: value for key, value in record["row"].items() if key != column}}
        return b"".join(lines[: line - 1]) + orjson.dumps(changed) + b"\n" + b"".join(lines[line:])

    old_header = orjson.dumps({**records[0], "version": 2}) + b"\n"
    return [
        ("embedding not base64", with_row(entity_line, embedding={"base64": "!!"}), entity_line, "embedding"),
        ("embedding a list", with_row(fact_line, embedding=[1, 2]), fact_line, "embedding"),
        ("embedding other object", with_row(fact_line, embedding={"hex": "00"}), fact_line, "embedding"),
        ("attributes not JSON", with_row(entity_line, attributes="{"), entity_line, "attributes"),
        ("attributes not an object", with_row(entity_line, attributes="[1]"), entity_line, "attributes"),
        ("relationships wrong shape", with_row(entity_line, relationships='[{"a":1}]'), entity_line, "relationships"),
        ("name not text", with_row(entity_line, name=5), entity_line, "name"),
        ("type too long", with_row(entity_line, type="t" * 300), entity_line, "type"),
        ("id too long", with_row(fact_line, id="f" * 200), fact_line, "id"),
        ("confidence text", with_row(fact_line, confidence="high"), fact_line, "confidence"),
        ("created_at text", with_row(fact_line, created_at="now"), fact_line, "created_at"),
        ("missing column", without_column(fact_line, "workspace_id"), fact_line, "wrong columns"),
        ("entity of a session not in the file", with_row(entity_line, session_id="gone"), entity_line, "not among"),
        ("fact from a session not in the file", with_row(fact_line, source_session_id="gone"), fact_line, "not among"),
        ("memory rows in a version 2 file", old_header + b"".join(lines[1:]), entity_line, "version 3"),
    ]  # fmt: skip


async def test_bad_memory_rows_are_refused_naming_line_and_column_and_nothing_is_imported(
    store: Any, workspace: str, tmp_path: Path
) -> None:
    await _memory(store, workspace)
    path = tmp_path / "export.jsonl"
    await store.export_sessions(path, workspace_id=workspace)
    lines = path.read_bytes().splitlines(keepends=True)
    await _empty(store)
    empty = await _state(store, workspace)
    assert empty == {"sessions": [], "entities": [], "facts": []}

    for name, content, line, fragment in _broken_files(lines):
        broken = tmp_path / f"{name.replace(' ', '-')}.jsonl"
        broken.write_bytes(content)
        with pytest.raises(ExportFormatError, match=fragment) as caught:
            await store.import_sessions(broken)
        assert caught.value.line == line, name
        assert f"line {line}:" in str(caught.value), name
        assert await _state(store, workspace) == empty, f"{name}: something was imported"

    report = await store.import_sessions(path)
    assert (report.sessions, report.entities, report.facts) == (2, 3, 6)


# --- summaries --------------------------------------------------------------------------------


async def test_session_summaries_count_entities_and_the_facts_from_each_session(store: Any, workspace: str) -> None:
    ids = await _memory(store, workspace)
    one, two = ids["sessions"]["one"], ids["sessions"]["two"]

    async def counts() -> dict[str, tuple[int, int]]:
        page = await store.session_summaries(workspace, limit=None)
        return {item.session.id: (item.entity_count, item.fact_count) for item in page}

    assert await counts() == {one: (2, 3), two: (1, 1)}
    await store.delete_entity(ids["entities"]["one"][0])
    await store.delete_fact(ids["facts"]["two"][0])
    assert await counts() == {one: (1, 3), two: (1, 0)}
    await store.delete_session(one)
    assert await counts() == {two: (1, 0)}
    # The facts of the deleted session count for no session now.
    await store.save_fact("new", source_session_id=two)
    assert await counts() == {two: (1, 1)}
    paged = await store.session_summaries(workspace, limit=1)
    assert [(item.entity_count, item.fact_count) for item in paged] == [(1, 1)]


def test_session_summaries_with_memory_run_one_statement(tmp_path: Path) -> None:
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{tmp_path / 'counts.db'}") as store:
        for n in range(20):
            session = store.create_session("/p", workspace_id="w")
            store.save_entity(session.id, name=f"e{n}", type="t")
            store.save_fact(f"f{n}", source_session_id=session.id)
        with counting_statements(store._runner.engine) as statements:
            page = store.session_summaries("w", limit=None)
        assert len(statements) == 1, statements
        assert {(item.entity_count, item.fact_count) for item in page} == {(1, 1)}


# --- the command line -------------------------------------------------------------------------


def test_the_command_line_lists_memory_counts_and_moves_entities_and_facts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{copy_sqlite_fixture(tmp_path)}"
    target = f"sqlite:///{tmp_path / 'target.db'}"
    assert runner.invoke(app, ["--db", db, "db", "upgrade"]).exit_code == 0
    listed = runner.invoke(app, ["--db", db, "sessions", "--json"])
    assert listed.exit_code == 0, listed.output
    counts = {
        item["session"]["id"]: (item["entity_count"], item["fact_count"])
        for item in orjson.loads(listed.stdout)["sessions"]
    }
    assert sorted(counts.values()) == [(16, 50), (16, 50), (18, 50)]
    screen = io.StringIO()
    monkeypatch.setattr(reading, "out", Console(file=screen, width=80, highlight=False))
    assert runner.invoke(app, ["--db", db, "sessions"]).exit_code == 0
    table = screen.getvalue()
    assert "Memory" in table
    assert "18/50" in table
    session_id = next(key for key, value in counts.items() if value == (18, 50))
    assert session_id in table  # the id stays whole at 80 columns

    exported = runner.invoke(app, ["--db", db, "export", str(tmp_path / "all.jsonl")])
    assert "Exported 3 sessions, 12 messages, 6 checkpoints, 50 entities and 200 facts" in exported.stderr
    imported = runner.invoke(app, ["--db", target, "import", str(tmp_path / "all.jsonl")])
    assert "Imported 3 sessions, 12 messages, 6 checkpoints, 50 entities and 200 facts." in imported.stdout
    again = runner.invoke(app, ["--db", target, "import", str(tmp_path / "all.jsonl"), "--skip-existing"])
    assert "Skipped 3 existing sessions and 50 existing facts." in again.stdout
    report = orjson.loads(
        runner.invoke(app, ["--db", target, "import", str(tmp_path / "all.jsonl"), "--skip-existing", "--json"]).stdout
    )
    assert (report["entities"], report["facts"], report["skipped_facts"]) == (0, 0, 50)

    # A page of sessions without memory keeps the table as it was.
    empty = f"sqlite:///{tmp_path / 'plain.db'}"
    with sync.SqlAlchemyCheckpointStore(empty) as store:
        store.create_session("/p")
    screen.seek(0)
    screen.truncate()
    assert runner.invoke(app, ["--db", empty, "sessions"]).exit_code == 0
    assert "Ckpts" in screen.getvalue()
    assert "Memory" not in screen.getvalue()


def _summaries_statement(engine: Engine, workspace: str) -> tuple[str, Any]:
    """The statement ``session_summaries`` runs for a page of 20, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        sent.append((statement, parameters))

    with before_each_statement(engine, keep), engine.connect() as conn:
        summaries.session_summaries(conn, workspace, 20, None, None)
    (found,) = sent
    return found


def _seed_memory(engine: Engine, sessions_count: int, rows_each: int) -> None:
    now = now_ms()
    ids = [str(uuid.uuid4()) for _ in range(sessions_count)]
    with engine.begin() as conn:
        conn.execute(insert(sessions), [
            {"id": sid, "directory": "/p", "created_at": now + n, "updated_at": now + n, "workspace_id": "ws"}
            for n, sid in enumerate(ids)
        ])  # fmt: skip
        conn.execute(insert(entities), [
            {"id": f"{sid}-{n}", "session_id": sid, "name": "n", "type": "t", "created_at": now, "updated_at": now}
            for sid in ids for n in range(rows_each)
        ])  # fmt: skip
        conn.execute(insert(facts), [
            {"id": f"{sid}-{n}", "content": "c", "source_session_id": sid, "created_at": now}
            for sid in ids for n in range(rows_each)
        ])  # fmt: skip
        conn.execute(insert(messages), [
            {"session_id": sid, "role": "user", "content": "m", "created_at": now + n}
            for sid in ids for n in range(rows_each)
        ])  # fmt: skip


@pytest.fixture(params=["no statistics", "analyzed"])
def sqlite_summaries_plan(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    with sync.SqlAlchemyCheckpointStore(url) as store:
        store.get_session("none")  # the schema
    engine = create_engine(url)
    try:
        _seed_memory(engine, 200, 50)
        if request.param == "analyzed":
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        statement, parameters = _summaries_statement(engine, "ws")
        with engine.connect() as conn:
            return [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    finally:
        engine.dispose()


def test_summaries_count_a_pages_entities_and_messages_by_searching_their_indexes(
    sqlite_summaries_plan: list[str],
) -> None:
    plan = sqlite_summaries_plan
    for table, index in (("entities", "idx_entities_session"), ("messages", "idx_messages_session")):
        assert any(line.startswith(f"SEARCH {table} USING COVERING INDEX {index} ") for line in plan), plan
        assert not any(line.startswith(f"SCAN {table}") for line in plan), plan


def test_summaries_count_a_pages_facts_by_searching_an_index(sqlite_summaries_plan: list[str]) -> None:
    plan = sqlite_summaries_plan
    assert any(line.startswith("SEARCH facts USING COVERING INDEX idx_facts_source_session ") for line in plan), plan
    assert not any(line.startswith("SCAN facts") for line in plan), plan


@pytest.fixture(scope="module")
def postgres_summaries_plan() -> Iterator[str]:
    """The plan PostgreSQL makes for a page of summaries over 100,000 entities and facts of
    10,000 sessions, analyzed: a page's rows are a sliver of each table."""
    server = require_server("postgresql")
    with scratch_database(server) as url:
        with sync.SqlAlchemyCheckpointStore(url) as store:
            store.get_session("none")  # the schema
        engine = create_engine(normalize_url(url, for_async=False))
        try:
            with engine.begin() as conn:
                for statement in (
                    "INSERT INTO sessions (id, directory, created_at, updated_at, workspace_id) "
                    "SELECT 's' || s, '/p', s, s, 'ws' FROM generate_series(1, 10000) AS s",
                    "INSERT INTO entities (id, session_id, name, type, created_at, updated_at) "
                    "SELECT 'e' || s || '-' || n, 's' || s, 'n', 't', 1, 1 "
                    "FROM generate_series(1, 10) AS n, generate_series(1, 10000) AS s",
                    "INSERT INTO facts (id, content, source_session_id, created_at) "
                    "SELECT 'f' || s || '-' || n, 'c', 's' || s, 1 "
                    "FROM generate_series(1, 10) AS n, generate_series(1, 10000) AS s",
                ):
                    conn.exec_driver_sql(statement)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
            statement, parameters = _summaries_statement(engine, "ws")
            with engine.connect() as conn:
                yield "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
        finally:
            engine.dispose()


def test_postgresql_summaries_count_a_pages_entities_through_their_index(postgres_summaries_plan: str) -> None:
    plan = postgres_summaries_plan
    assert "idx_entities_session" in plan, plan
    assert "Seq Scan on entities" not in plan, plan
    assert "JIT" not in plan, plan


def test_postgresql_summaries_count_a_pages_facts_through_an_index(postgres_summaries_plan: str) -> None:
    plan = postgres_summaries_plan
    assert "idx_facts_source_session" in plan, plan
    assert "Seq Scan on facts" not in plan, plan


def test_a_confidence_json_cannot_write_travels_as_a_name_and_is_refused_where_it_cannot_be_stored(
    tmp_path: Path,
) -> None:
    """PostgreSQL's ``real`` holds NaN and infinities: the export names them; SQLite would
    store NaN as NULL and MariaDB holds neither, so an import there refuses the row."""
    with scratch_database(require_server("postgresql")) as url:
        with sync.SqlAlchemyCheckpointStore(url) as store:
            kept = [store.save_fact(f"fact {n}", confidence=0.5) for n in range(3)]
        engine = create_engine(normalize_url(url, for_async=False))
        with engine.begin() as conn:
            for fact, value in zip(kept, ("NaN", "Infinity", "-Infinity"), strict=True):
                conn.exec_driver_sql("UPDATE facts SET confidence = %s::real WHERE id = %s", (value, fact.id))
        engine.dispose()
        with sync.SqlAlchemyCheckpointStore(url) as store:
            store.export_sessions(tmp_path / "odd.jsonl")
    confidences = {
        record["row"]["content"]: record["row"]["confidence"] for record in _records(tmp_path / "odd.jsonl")[1:-1]
    }
    assert confidences == {"fact 0": "NaN", "fact 1": "Infinity", "fact 2": "-Infinity"}

    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{tmp_path / 'target.db'}") as target:
        with pytest.raises(ExportFormatError, match="confidence: nan cannot be stored on sqlite") as caught:
            target.import_sessions(tmp_path / "odd.jsonl")
        assert caught.value.line == 2
        assert target.list_facts() == []
        lines = (tmp_path / "odd.jsonl").read_bytes().splitlines(keepends=True)
        (tmp_path / "infinite.jsonl").write_bytes(
            lines[0] + b"".join(lines[2:-1]) + lines[-1].replace(b'"facts":3', b'"facts":2')
        )
        target.import_sessions(tmp_path / "infinite.jsonl")
        assert sorted(fact.confidence for fact in target.list_facts()) == [-math.inf, math.inf]
    with (
        sync.SqlAlchemyCheckpointStore(require_server("mariadb")) as target,
        pytest.raises(ExportFormatError, match=r"confidence: inf cannot be stored on (mariadb|mysql)"),
    ):
        target.import_sessions(tmp_path / "infinite.jsonl")
