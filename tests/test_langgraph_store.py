"""LangGraph threads as the store keeps them: one database, sessions as threads, the
saver's refusals, lineage-safe deletes and prunes, and the indexes its reads use."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from sqlalchemy import create_engine, func, inspect, select, text
from typer.testing import CliRunner

from obsku_checkpoint_sqlite import ImportConflictError, PayloadTooLargeError, SessionNotFoundError, sync
from obsku_checkpoint_sqlite.cli import app
from obsku_checkpoint_sqlite.db import thread_queries
from obsku_checkpoint_sqlite.db.migrate import current_revision, head_revision, schema_drift, upgrade
from obsku_checkpoint_sqlite.db.thread_queries import lg_checkpoints, lg_writes
from obsku_checkpoint_sqlite.db.values import now_ms
from obsku_checkpoint_sqlite.langgraph import AsyncObskuSaver, ObskuSaver
from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine
from tests._langgraph import BACKENDS, fresh_database, interrupt_graph
from tests.conftest import counting_statements

REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(str(request.param), tmp_path) as opened:
        yield opened


@pytest.fixture
def store(url: str) -> Iterator[sync.SqlAlchemyCheckpointStore]:
    opened = sync.SqlAlchemyCheckpointStore(url)
    yield opened
    opened.close()


@pytest.fixture
def saver(store: sync.SqlAlchemyCheckpointStore) -> ObskuSaver:
    return ObskuSaver(store)


def put(saver: ObskuSaver, thread_id: str, parent: str | None = None, namespace: str = "", **metadata: Any) -> str:
    configurable = {"thread_id": thread_id, "checkpoint_ns": namespace}
    if parent is not None:
        configurable["checkpoint_id"] = parent
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"x": 1}
    saved = saver.put({"configurable": configurable}, checkpoint, {"source": "loop", "step": 0, **metadata}, {})
    return str(saved["configurable"]["checkpoint_id"])


def rows(store: sync.SqlAlchemyCheckpointStore, table: Any, thread_id: str) -> int:
    with store._runner.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(table.c.session_id == thread_id)).scalar_one())


def test_a_thread_is_a_session_that_the_typescript_tables_see_empty(
    store: sync.SqlAlchemyCheckpointStore, saver: ObskuSaver
) -> None:
    thread_id = f"t-{uuid.uuid4()}"
    checkpoint_id = put(saver, thread_id)
    saver.put_writes(
        {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}},
        [("x", 2)], "task-1",
    )  # fmt: skip

    session = store.get_session(thread_id)
    assert session is not None
    assert (session.directory, session.title, session.metadata) == (
        "langgraph",
        "LangGraph thread",
        {"langgraph": True},
    )
    assert store.get_messages(thread_id) == []
    assert store.list_checkpoints(thread_id) == []
    assert (rows(store, lg_checkpoints, thread_id), rows(store, lg_writes, thread_id)) == (1, 1)


def test_delete_session_deletes_a_threads_rows_explicitly(
    store: sync.SqlAlchemyCheckpointStore, saver: ObskuSaver
) -> None:
    thread_id = f"t-{uuid.uuid4()}"
    checkpoint_id = put(saver, thread_id)
    saver.put_writes(
        {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}},
        [("x", 2)], "task-1",
    )  # fmt: skip
    with counting_statements(store._runner.engine) as statements:
        store.delete_session(thread_id)
    # Not left to ON DELETE CASCADE: a database adopted without enforced foreign keys keeps none.
    assert any("DELETE FROM langgraph_writes" in statement for statement in statements)
    assert any("DELETE FROM langgraph_checkpoints" in statement for statement in statements)
    assert (rows(store, lg_checkpoints, thread_id), rows(store, lg_writes, thread_id)) == (0, 0)
    assert saver.get_tuple({"configurable": {"thread_id": thread_id}}) is None


def test_pruning_an_idle_thread_deletes_its_rows_explicitly(
    store: sync.SqlAlchemyCheckpointStore, saver: ObskuSaver
) -> None:
    thread_id = f"t-{uuid.uuid4()}"
    put(saver, thread_id)
    with counting_statements(store._runner.engine) as statements:
        report = store.prune(sessions_idle_before=now_ms() + 60_000, protect_lineage=False)
    assert thread_id in report.session_ids
    assert any("DELETE FROM langgraph_checkpoints" in statement for statement in statements)
    assert (store.get_session(thread_id), rows(store, lg_checkpoints, thread_id)) == (None, 0)


def test_a_long_thread_id_or_namespace_is_refused_and_nothing_is_written(
    store: sync.SqlAlchemyCheckpointStore, saver: ObskuSaver
) -> None:
    with pytest.raises(ValueError, match="thread_id: at most 128 characters"):
        put(saver, "t" * 129)
    thread_id = f"t-{uuid.uuid4()}"
    with pytest.raises(ValueError, match="checkpoint_ns: at most 255 characters"):
        put(saver, thread_id, namespace="n" * 256)
    assert store.get_session(thread_id) is None
    with store._runner.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(lg_checkpoints)).scalar_one() == 0
    assert put(saver, "t" * 128)


def add_all(state: list[int] | None, writes: list[list[int]]) -> list[int]:
    return [*(state or []), *(item for write in writes for item in write)]


class Growing(TypedDict):
    items: Annotated[list[int], DeltaChannel(add_all, snapshot_frequency=3)]


def test_prune_keep_latest_keeps_what_a_delta_channel_is_rebuilt_from(saver: ObskuSaver) -> None:
    builder = StateGraph(Growing)
    builder.add_node("step", lambda state: {"items": [len(state["items"])]})
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda state: END if len(state["items"]) >= 9 else "step")
    graph = builder.compile(checkpointer=saver, interrupt_before=["step"])
    config: Any = {"configurable": {"thread_id": f"delta-{uuid.uuid4()}"}}
    graph.invoke({"items": []}, config)
    for _ in range(4):
        graph.invoke(None, config)
    before = graph.get_state(config).values
    assert before == {"items": [0, 1, 2, 3]}
    latest = saver.get_tuple(config)
    assert latest is not None
    assert latest.metadata["counters_since_delta_snapshot"]  # the newest is no snapshot

    saver.prune([config["configurable"]["thread_id"]], strategy="keep_latest")

    kept = list(saver.list(config))
    assert 1 < len(kept) < 6
    assert graph.get_state(config).values == before
    assert kept[-1].parent_config is None  # the first kept one's parent went
    graph.invoke(None, config)
    assert graph.get_state(config).values == {"items": [0, 1, 2, 3, 4]}


def test_delete_for_runs_leaves_no_checkpoint_naming_a_deleted_parent(saver: ObskuSaver) -> None:
    thread_id = f"t-{uuid.uuid4()}"
    first = put(saver, thread_id, run_id="run-1")
    second = put(saver, thread_id, parent=first, run_id="run-2")
    saver.delete_for_runs(["run-1"])
    left = saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": second}})
    assert left is not None
    assert left.parent_config is None
    assert (
        saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": first}}) is None
    )


def test_copy_thread_copies_into_a_new_thread_only(store: sync.SqlAlchemyCheckpointStore, saver: ObskuSaver) -> None:
    source, target = f"s-{uuid.uuid4()}", f"c-{uuid.uuid4()}"
    put(saver, source)
    saver.copy_thread(source, target)
    copied = store.get_session(target)
    assert copied is not None
    assert copied.forked_from_session_id == source
    with pytest.raises(ImportConflictError, match="holds LangGraph checkpoints already"):
        saver.copy_thread(source, target)
    with pytest.raises(SessionNotFoundError):
        saver.copy_thread(f"missing-{uuid.uuid4()}", f"c-{uuid.uuid4()}")
    assert len(list(saver.list({"configurable": {"thread_id": target}}))) == 1


def test_a_metadata_filter_compares_json_values(saver: ObskuSaver) -> None:
    thread_id = f"t-{uuid.uuid4()}"
    put(saver, thread_id, flag=True, score=1)
    config: Any = {"configurable": {"thread_id": thread_id}}
    assert len(list(saver.list(config, filter={"flag": True}))) == 1
    assert list(saver.list(config, filter={"flag": 1})) == []
    assert len(list(saver.list(config, filter={"score": 1.0}))) == 1
    assert list(saver.list(config, filter={"missing": None})) == []


async def test_the_async_saver_answers_blocking_calls_too(url: str) -> None:
    async with AsyncObskuSaver.from_conn_string(url) as saver:
        config: Any = {"configurable": {"thread_id": f"t-{uuid.uuid4()}", "checkpoint_ns": ""}}
        saved = await saver.aput(config, empty_checkpoint(), {"source": "input", "step": -1}, {})
        found = saver.get_tuple(config)  # on a server, through a blocking engine of its own
        assert found is not None
        assert found.config == saved


def test_importing_the_package_does_not_import_langgraph() -> None:
    probe = "import sys, obsku_checkpoint_sqlite, obsku_checkpoint_sqlite.sync; print('langgraph' in sys.modules)"
    child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "False"


def test_revision_0003_completes_a_partly_applied_upgrade(scratch_url: str) -> None:
    engine = create_sync_engine(scratch_url)
    try:
        with engine.begin() as conn:
            upgrade(conn)
        # As a MariaDB upgrade cut off after its first DDL statements leaves it.
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE langgraph_writes"))
            conn.execute(text("UPDATE alembic_version SET version_num = '0002'"))
        with engine.begin() as conn:
            names = {index["name"] for index in inspect(conn).get_indexes("langgraph_checkpoints")}
            assert "idx_langgraph_checkpoints_thread" in names
            upgrade(conn)
        with engine.begin() as conn:
            assert current_revision(conn) == head_revision()
            assert schema_drift(conn) == []
    finally:
        engine.dispose()


def test_the_latest_checkpoint_and_a_page_are_index_searches_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'plans.db'}")
    with engine.begin() as conn:
        upgrade(conn)
        for key, statement in [
            ("latest", thread_queries.LATEST_WITH_WRITES),
            ("page in a namespace", thread_queries.PAGES[True, "after", False]),
            ("page in any namespace", thread_queries.PAGES[False, "after", False]),
            ("first page in any namespace", thread_queries.PAGES[False, None, False]),
        ]:
            compiled = statement.compile(dialect=engine.dialect)
            values = tuple(10 if name == "limit" else 0 if name == "param_1" else "x" for name in compiled.positiontup)
            plan = " | ".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, values))
            assert "SCAN" not in plan.replace("SCAN CONSTANT ROW", ""), (key, plan)
            assert "TEMP B-TREE" not in plan, (key, plan)
    engine.dispose()


def interrupted_thread(url: str) -> tuple[Any, str]:
    """A thread on ``url`` stopped at the interrupt graph's question; its config and id."""
    config: Any = {"configurable": {"thread_id": f"t-{uuid.uuid4()}"}}
    with ObskuSaver.from_conn_string(url) as saver:
        interrupt_graph(saver).invoke({"question": "q", "log": []}, config)
    return config, config["configurable"]["thread_id"]


def test_the_command_line_lists_and_shows_a_thread(tmp_path: Path) -> None:
    database = str(tmp_path / "cli.db")
    _, thread_id = interrupted_thread(database)
    listed = CliRunner().invoke(app, ["--db", database, "sessions"], catch_exceptions=False)
    assert thread_id in listed.output
    assert "LangGraph thread" in listed.output
    shown = CliRunner().invoke(app, ["--db", database, "show", thread_id], catch_exceptions=False)
    assert "LangGraph checkpoints" in shown.output
    as_json = CliRunner().invoke(app, ["--db", database, "show", thread_id, "--json"], catch_exceptions=False)
    graph = json.loads(as_json.output)["langgraph_checkpoints"]
    assert [row["source"] for row in graph] == ["loop", "input"]
    assert graph[0]["parent_checkpoint_id"] == graph[1]["checkpoint_id"]
    assert graph[0]["pending_writes"] >= 1  # the interrupt


@pytest.mark.parametrize("backend", ["sqlite-file", "postgresql", "mariadb"])
def test_copy_to_carries_a_thread_whole(backend: str, tmp_path: Path) -> None:
    source = str(tmp_path / "source.db")  # beside the target's langgraph.db on SQLite
    config, _ = interrupted_thread(source)
    with fresh_database(backend, tmp_path) as target:
        with sync.SqlAlchemyCheckpointStore(source) as store:
            store.copy_to(target)
        with ObskuSaver.from_conn_string(target) as saver:
            result = interrupt_graph(saver).invoke(Command(resume="42"), config)
            assert saver.get_tuple(config) is not None
        assert result["log"] == ["ask", "finish:42"]


@pytest.mark.parametrize("backend", ["sqlite-file", "postgresql", "mariadb"])
def test_export_and_import_carry_a_thread_whole(backend: str, tmp_path: Path) -> None:
    source = str(tmp_path / "source.db")
    config, thread_id = interrupted_thread(source)
    exported = tmp_path / "threads.jsonl"
    with sync.SqlAlchemyCheckpointStore(source) as store:
        store.export_sessions(exported)
    lines = exported.read_bytes().splitlines()
    assert json.loads(lines[0])["version"] == 2
    assert json.loads(lines[-1])["counts"]["langgraph_checkpoints"] == 2
    with fresh_database(backend, tmp_path) as target:
        with sync.SqlAlchemyCheckpointStore(target) as store:
            store.import_sessions(exported)
            store.import_sessions(exported, new_ids=True)
            copies = [session for session in store.list_sessions() if session.id != thread_id]
        with ObskuSaver.from_conn_string(target) as saver:
            result = interrupt_graph(saver).invoke(Command(resume="42"), config)
            assert result["log"] == ["ask", "finish:42"]
            (copy,) = copies
            again = interrupt_graph(saver).invoke(Command(resume="7"), {"configurable": {"thread_id": copy.id}})
            assert again["log"] == ["ask", "finish:7"]


def test_an_export_without_threads_stays_at_version_1(tmp_path: Path) -> None:
    exported = tmp_path / "plain.jsonl"
    with sync.SqlAlchemyCheckpointStore(str(tmp_path / "plain.db")) as store:
        store.create_session("/work")
        store.export_sessions(exported)
    lines = exported.read_bytes().splitlines()
    assert json.loads(lines[0])["version"] == 1
    assert json.loads(lines[-1])["counts"] == {"sessions": 1, "messages": 0, "checkpoints": 0}


def test_a_checkpoint_larger_than_mariadb_takes_is_refused_before_it_is_sent(tmp_path: Path) -> None:
    with fresh_database("mariadb", tmp_path) as url, ObskuSaver.from_conn_string(url) as saver:
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"big": "x" * (20 * 1024 * 1024)}
        config: Any = {"configurable": {"thread_id": f"t-{uuid.uuid4()}", "checkpoint_ns": ""}}
        with pytest.raises(PayloadTooLargeError, match="max_allowed_packet"):
            saver.put(config, checkpoint, {}, {})
        assert saver.get_tuple(config) is None
        put(saver, config["configurable"]["thread_id"])  # the connection was not lost


def test_a_thread_moves_its_updated_at_at_most_once_a_second(
    store: sync.SqlAlchemyCheckpointStore, saver: ObskuSaver
) -> None:
    thread_id = f"t-{uuid.uuid4()}"
    first = put(saver, thread_id)

    def updated_at(value: int | None = None) -> int:
        with store._runner.engine.begin() as conn:
            if value is not None:
                conn.execute(
                    text("UPDATE sessions SET updated_at = :at WHERE id = :id"), {"at": value, "id": thread_id}
                )
            return int(conn.execute(text("SELECT updated_at FROM sessions WHERE id = :id"), {"id": thread_id}).scalar())

    moved_now = updated_at(now_ms() - 200)  # moved less than a second ago: left as it is
    put(saver, thread_id, parent=first)
    assert updated_at() == moved_now
    updated_at(now_ms() - 1500)  # more than a second ago: moved to the new checkpoint's time
    before = now_ms()
    put(saver, thread_id, parent=first)
    assert updated_at() >= before


def test_postgresql_reads_a_thread_by_index_however_long(tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path) as url:
        engine = create_sync_engine(url)
        store = sync.SqlAlchemyCheckpointStore(url)
        store.get_session("none")
        store.close()
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO sessions (id, directory, created_at, updated_at) "
                "SELECT 't' || t, 'langgraph', 0, 0 FROM generate_series(1, 20) AS t"
            ))  # fmt: skip
            conn.execute(text(
                "INSERT INTO langgraph_checkpoints (session_id, checkpoint_ns, checkpoint_id, type, checkpoint, "
                "metadata, created_at) SELECT 't' || t, CASE WHEN n % 4 = 0 THEN 'child:1' ELSE '' END, "
                "lpad(n::text, 8, '0'), 'msgpack', '\\x00'::bytea, '{}', n "
                "FROM generate_series(1, 20) AS t, generate_series(1, 2000) AS n"
            ))  # fmt: skip
            conn.execute(text(
                "INSERT INTO langgraph_writes (session_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, "
                "value, task_path) SELECT session_id, checkpoint_ns, checkpoint_id, 'task', 0, 'x', 'msgpack', "
                "'\\x00'::bytea, '' FROM langgraph_checkpoints"
            ))  # fmt: skip
            conn.execute(text("ANALYZE langgraph_checkpoints"))
            conn.execute(text("ANALYZE langgraph_writes"))
            for name, statement in [
                ("latest", thread_queries.LATEST_WITH_WRITES),
                ("first page, any namespace", thread_queries.PAGES[False, None, False]),
                ("next page, any namespace", thread_queries.PAGES[False, "after", False]),
                ("next page in a namespace", thread_queries.PAGES[True, "after", False]),
            ]:
                compiled = statement.compile(dialect=engine.dialect)
                values = {"session_id": "t7", "checkpoint_ns": "", "limit": 10, "before": "00001000", "before_ns": ""}
                params = compiled.construct_params(values, _check=False)
                plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + compiled.string, params))
                assert "Seq Scan" not in plan, (name, plan)
                assert "Sort" not in plan, (name, plan)
        engine.dispose()


async def test_savers_open_on_a_callers_engine_and_leave_it_open(tmp_path: Path) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    database = tmp_path / "engines.db"
    engine = create_engine(f"sqlite:///{database}")
    config: Any = {"configurable": {"thread_id": "on-an-engine", "checkpoint_ns": ""}}
    with ObskuSaver.from_conn_string(str(database)) as first:
        first.setup()
    saver = ObskuSaver(engine)
    saved = saver.put(config, empty_checkpoint(), {"source": "input", "step": -1}, {})
    saver.close()
    with engine.connect() as conn:  # still open
        assert conn.execute(select(func.count()).select_from(lg_checkpoints)).scalar_one() == 1
    engine.dispose()

    async_engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    async_saver = AsyncObskuSaver(async_engine)
    found = await async_saver.aget_tuple(config)
    assert found is not None
    assert found.config == saved
    await async_saver.aclose()
    async with async_engine.connect() as conn:  # still open
        assert (await conn.execute(select(func.count()).select_from(lg_writes))).scalar_one() == 0
    await async_engine.dispose()
