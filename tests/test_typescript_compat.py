"""A database file written by the original TypeScript package opens, reads and takes writes.

The file is built here with plain SQL in the original's exact schema and stored-JSON
shape (camelCase keys, JsonPlus tags), plus tables of its own that must be left alone.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Table, create_engine, insert, select, update

from obsku_checkpoint_sqlite import (
    CheckpointCorruptionError,
    CheckpointNodeResult,
    CycleState,
    JsDate,
    JsMap,
    JsSet,
    StoredToolResult,
    ToolCall,
)
from obsku_checkpoint_sqlite.db.memory_queries import entities
from obsku_checkpoint_sqlite.db.migrate import head_revision
from obsku_checkpoint_sqlite.db.queries import checkpoints, messages, sessions
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from tests.conftest import StoreFactory, database_url

ORIGINAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  workspace_id TEXT,
  title TEXT,
  directory TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  metadata TEXT
);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  role TEXT NOT NULL,
  content TEXT,
  tool_calls TEXT,
  tool_results TEXT,
  tokens_in INTEGER,
  tokens_out INTEGER,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
  id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  namespace TEXT NOT NULL DEFAULT '',
  parent_id TEXT,
  version INTEGER NOT NULL DEFAULT 1,
  step INTEGER NOT NULL,
  node_id TEXT,
  node_results TEXT NOT NULL,
  pending_nodes TEXT,
  cycle_state TEXT,
  source TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_sessions_workspace ON sessions(workspace_id, updated_at DESC);
CREATE INDEX IF NOT EXISTS idx_messages_session ON messages(session_id, created_at);
CREATE INDEX IF NOT EXISTS idx_checkpoints_session ON checkpoints(session_id, namespace, step);
CREATE UNIQUE INDEX IF NOT EXISTS idx_checkpoints_version ON checkpoints(session_id, namespace, version);
CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY, session_id TEXT NOT NULL, workspace_id TEXT, name TEXT NOT NULL, type TEXT NOT NULL,
    attributes TEXT, relationships TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, embedding BLOB,
    FOREIGN KEY (session_id) REFERENCES sessions(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_entities_session ON entities(session_id);
CREATE INDEX IF NOT EXISTS idx_entities_workspace ON entities(workspace_id);
CREATE INDEX IF NOT EXISTS idx_entities_type ON entities(type);
CREATE TABLE IF NOT EXISTS facts (
    id TEXT PRIMARY KEY, workspace_id TEXT, content TEXT NOT NULL, confidence REAL DEFAULT 1.0,
    source_session_id TEXT, created_at INTEGER NOT NULL, embedding BLOB,
    FOREIGN KEY (source_session_id) REFERENCES sessions(id) ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS idx_facts_workspace ON facts(workspace_id);
CREATE INDEX IF NOT EXISTS idx_facts_confidence ON facts(confidence);
"""

SESSION_ID = "5f0c2a8e-8a52-4d5c-9b4e-0d5f3c1f2a11"
CHECKPOINT_ID = "c1a5b0de-2f43-4d0a-8c3e-6b7e8f9a0b12"


@pytest.fixture
def typescript_database(tmp_path: Path) -> str:
    path = tmp_path / "from-typescript.db"
    connection = sqlite3.connect(path)
    connection.executescript(ORIGINAL_SCHEMA)
    connection.execute(
        "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            SESSION_ID, "ws-1", "Security Scan", "./my-project", 1717243200000, 1717243205000,
            '{"startedAt":{"__type":"Date","value":"2024-06-01T12:00:00.000Z"},'
            '"targets":{"__type":"Set","value":["example.com"]},"depth":2}',
        ),
    )  # fmt: skip
    connection.executemany(
        "INSERT INTO messages (session_id, role, content, tool_calls, tool_results, tokens_in, tokens_out, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (SESSION_ID, "user", "Scan example.com", None, None, 10, None, 1717243201000),
            (
                SESSION_ID, "assistant", None,
                '[{"toolUseId":"tu_1","name":"nmap","input":{"host":"example.com"}}]', None, 20, 30, 1717243202000,
            ),
            (
                SESSION_ID, "tool", None, None,
                '[{"toolUseId":"tu_1","content":"22/tcp open","status":"success","fullOutputRef":"blob://1"}]',
                None, None, 1717243203000,
            ),
            (SESSION_ID, "assistant", "Port 22 is open", None, None, 5, 7, 1717243206000),
        ],
    )  # fmt: skip
    connection.execute(
        "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            CHECKPOINT_ID, SESSION_ID, "main", None, 1, 5, "scan",
            '{"plan":{"status":"completed","output":{"hosts":["example.com"],'
            '"at":{"__type":"Date","value":"2024-06-01T12:00:02.000Z"}},"startedAt":1717243201000,'
            '"completedAt":1717243202000},"scan":{"status":"running","startedAt":1717243202500}}',
            '["report"]', '{"backEdge":"scan->plan","iteration":2}', "loop", 1717243204000,
        ),
    )  # fmt: skip
    connection.execute(
        "INSERT INTO entities (id, session_id, name, type, created_at, updated_at)"
        " VALUES ('e1', ?, 'example.com', 'domain', 1717243204000, 1717243204000)",
        (SESSION_ID,),
    )
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


async def test_opens_reads_and_writes_a_typescript_database(open_store: StoreFactory, typescript_database: str) -> None:
    store = open_store(typescript_database)

    session = await store.get_session(SESSION_ID)
    assert session.metadata == {
        "startedAt": datetime(2024, 6, 1, 12, tzinfo=timezone.utc),
        "targets": {"example.com"},
        "depth": 2,
    }
    messages = await store.get_messages(SESSION_ID)
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1].tool_calls == [ToolCall(tool_use_id="tu_1", name="nmap", input={"host": "example.com"})]
    assert messages[2].tool_results == [
        StoredToolResult(tool_use_id="tu_1", content="22/tcp open", status="success", full_output_ref="blob://1")
    ]
    latest = await store.get_latest_checkpoint(SESSION_ID)
    assert latest.id == CHECKPOINT_ID
    assert latest.node_results["plan"] == CheckpointNodeResult(
        status="completed",
        output={"hosts": ["example.com"], "at": datetime(2024, 6, 1, 12, 0, 2, tzinfo=timezone.utc)},
        started_at=1717243201000,
        completed_at=1717243202000,
    )
    assert latest.cycle_state == CycleState(back_edge="scan->plan", iteration=2)
    assert latest.pending_nodes == ["report"]

    # A checkpoint from the original has no message watermark: the fork falls back to
    # the original's rule and copies the messages created up to the checkpoint's time.
    forked = await store.fork(CHECKPOINT_ID)
    assert [m.created_at for m in await store.get_messages(forked.id)] == [1717243201000, 1717243202000, 1717243203000]

    added = await store.add_message(SESSION_ID, role="user", content="continue")
    saved = await store.save_checkpoint(session_id=SESSION_ID, namespace="main", step=6, node_results={}, source="loop")
    assert added.id == 8  # after the 4 original messages and the 3 the fork copied
    assert saved.version == 2

    connection = sqlite3.connect(typescript_database.removeprefix("sqlite:///"))
    try:
        assert connection.execute("SELECT name FROM entities").fetchall() == [("example.com",)]
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored_checkpoint = connection.execute(
            "SELECT node_results, pending_nodes FROM checkpoints WHERE id = ?", (saved.id,)
        ).fetchone()
        stored_message = connection.execute(
            "SELECT tool_calls, content FROM messages WHERE id = ?", (added.id,)
        ).fetchone()
    finally:
        connection.close()
    # Written the way the original writes it, so it can read this row back.
    assert stored_checkpoint == ("{}", "[]")
    assert stored_message == (None, "continue")


@pytest.mark.parametrize("stored", [None, "null", "[]"], ids=["sql-null", "json-null", "empty-array"])
async def test_a_checkpoint_stored_with_no_pending_nodes_reads_as_none_pending(
    open_store: StoreFactory, typescript_database: str, stored: str | None
) -> None:
    set_pending_nodes(typescript_database, stored)
    checkpoint = await open_store(typescript_database).get_checkpoint(CHECKPOINT_ID)
    assert checkpoint is not None
    assert checkpoint.pending_nodes == []


async def test_pending_nodes_of_the_wrong_shape_are_corruption_not_none_pending(
    open_store: StoreFactory, typescript_database: str
) -> None:
    set_pending_nodes(typescript_database, "{}")  # once read as none pending
    with pytest.raises(CheckpointCorruptionError, match=rf"checkpoints row {CHECKPOINT_ID!r}.*pending_nodes"):
        await open_store(typescript_database).get_checkpoint(CHECKPOINT_ID)


async def test_reads_strings_the_original_cut_inside_a_surrogate_pair(
    open_store: StoreFactory, typescript_database: str
) -> None:
    # JSON.stringify writes a lone surrogate as an escape: what "🔍 done".slice(0, 1) leaves.
    rewrite(
        typescript_database,
        (
            "UPDATE checkpoints SET node_results = ? WHERE id = ?",
            ('{"scan":{"status":"completed","output":"\\ud83d"}}', CHECKPOINT_ID),
        ),
        (
            "UPDATE messages SET tool_results = ? WHERE role = 'tool'",
            ('[{"toolUseId":"tu_1","content":"22/tcp \\ud83d"}]',),
        ),
    )
    store = open_store(typescript_database)

    checkpoint = await store.get_checkpoint(CHECKPOINT_ID)
    assert checkpoint.node_results["scan"].output == "\ud83d"
    messages = await store.get_messages(SESSION_ID)
    assert messages[2].tool_results == [StoredToolResult(tool_use_id="tu_1", content="22/tcp \ud83d")]


def set_pending_nodes(url: str, stored: str | None) -> None:
    rewrite(url, ("UPDATE checkpoints SET pending_nodes = ? WHERE id = ?", (stored, CHECKPOINT_ID)))


def rewrite(url: str, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Change the file behind the store's back, in one transaction, as the original would."""
    connection = sqlite3.connect(url.removeprefix("sqlite:///"))
    with connection:
        for sql, parameters in statements:
            connection.execute(sql, parameters)
    connection.close()


async def test_python_writes_the_original_json_shape(open_store: StoreFactory, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shape.db'}"
    store = open_store(url)
    session = await store.create_session("/a")
    await store.add_message(
        session.id,
        role="tool",
        tool_results=[{"tool_use_id": "t", "content": "c", "full_output_ref": "ref"}],
    )
    saved = await store.save_checkpoint(
        session_id=session.id,
        step=1,
        node_results={"n": {"status": "completed", "started_at": 5}},
        cycle_state={"back_edge": "e", "iteration": 1},
        source="loop",
    )
    connection = sqlite3.connect(tmp_path / "shape.db")
    try:
        row: Any = connection.execute(
            "SELECT node_results, cycle_state FROM checkpoints WHERE id = ?", (saved.id,)
        ).fetchone()
        tool_results = connection.execute("SELECT tool_results FROM messages").fetchone()[0]
    finally:
        connection.close()
    assert row == ('{"n":{"status":"completed","startedAt":5}}', '{"backEdge":"e","iteration":1}')
    assert tool_results == '[{"toolUseId":"t","content":"c","fullOutputRef":"ref"}]'


# --- what the TypeScript package writes, read and saved back unchanged --------------------
#
# The rows below are written with SQL, as the TypeScript package stores them, on a SQLite
# file, PostgreSQL and MariaDB; read through the store and saved again, their JSON must be
# stored byte for byte as it was, as the TypeScript package itself writes it back: a Map
# with string keys stays a Map, a Set keeps its order, a Date beyond datetime's years its
# text, a node status its spelling. (The TypeScript framework writes a node result's own
# keys sorted, "completedAt" first; this package writes them in field order, so the rows
# here use that order: see docs/interop.md.)

MAP = '{"__type":"Map","value":[["http",80],["https",{"port":443,"tls":true}]]}'
NODE_RESULTS = (
    '{"scan":{"status":"Complete","output":{"ports":' + MAP + ","
    '"until":{"__type":"Date","value":"+010000-01-01T00:00:00.000Z"},'
    '"since":{"__type":"Date","value":"-000001-01-01T00:00:00.000Z"},'
    '"seen":{"__type":"Set","value":["b","a",3]}},"startedAt":1717243201000,"completedAt":1717243202000},'
    '"probe":{"status":"Failed","error":"timeout"},"report":{"status":"Skipped"}}'
)
ATTRIBUTES = (
    '{"seenAt":{"__type":"Date","value":"+010000-01-01T00:00:00.000Z"},"ports":' + MAP + ","
    '"labels":{"__type":"Set","value":["b","a",3]},"raw":{"__type":"Buffer","value":"cmF3IAAgYnl0ZXM="},'
    '"nested":{"when":[{"__type":"Date","value":"1970-01-01T00:00:00.000Z"}],'
    '"byId":{"__type":"Map","value":[[2,"two"],[1,"one"]]}}}'
)
METADATA = (
    '{"startedAt":{"__type":"Date","value":"-000001-01-01T00:00:00.000Z"},'
    '"targets":{"__type":"Set","value":["b.example","a.example"]},"byHost":' + MAP + "}"
)
TOOL_CALLS = (
    '[{"toolUseId":"tu_1","name":"nmap","input":{"hosts":' + MAP + ","
    '"before":{"__type":"Date","value":"+010000-01-01T00:00:00.000Z"}}}]'
)


@pytest.fixture(params=["sqlite-file", "postgresql", "mariadb"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database the TypeScript package could share: a SQLite file, PostgreSQL or MariaDB."""
    return database_url(str(request.param), tmp_path)


def write_behind(url: str, statement: Any, rows: list[dict[str, Any]] | None = None) -> None:
    """Run ``statement`` on the database behind the store's back, as the TypeScript package would."""
    engine = create_engine(normalize_url(url, for_async=False))
    try:
        with engine.begin() as conn:
            conn.execute(statement, rows)
    finally:
        engine.dispose()


def stored_text(url: str, column: Column[Any], table: Table, row_id: object) -> Any:
    engine = create_engine(normalize_url(url, for_async=False))
    try:
        with engine.connect() as conn:
            return conn.execute(select(column).where(table.c.id == row_id)).scalar_one()
    finally:
        engine.dispose()


async def test_a_typescript_checkpoint_is_read_and_saved_back_byte_for_byte(
    open_store: StoreFactory, shared_url: str
) -> None:
    store = open_store(shared_url)
    session = await store.create_session("./from-typescript")
    checkpoint_id = str(uuid.uuid4())
    row = {
        "id": checkpoint_id, "session_id": session.id, "namespace": "main", "parent_id": None, "version": 1,
        "step": 1, "node_id": "scan", "node_results": NODE_RESULTS, "pending_nodes": '["report"]',
        "cycle_state": None, "source": "loop", "created_at": 1717243204000,
    }  # fmt: skip
    write_behind(shared_url, insert(checkpoints), [row])

    read = await store.get_checkpoint(checkpoint_id)
    scan = read.node_results["scan"]
    assert [result.status for result in read.node_results.values()] == ["Complete", "Failed", "Skipped"]
    assert [result.canonical_status for result in read.node_results.values()] == ["completed", "failed", "skipped"]
    assert scan.output["ports"] == {"http": 80, "https": {"port": 443, "tls": True}}
    assert type(scan.output["ports"]) is JsMap
    assert scan.output["until"] == JsDate(253_402_300_800_000)
    assert scan.output["since"] == JsDate(-62_198_755_200_000)
    assert type(scan.output["seen"]) is JsSet
    assert scan.output["seen"].ordered() == ["b", "a", 3]

    saved = await store.save_checkpoint(
        session_id=session.id, namespace="main", step=2, node_results=dict(read.node_results),
        pending_nodes=read.pending_nodes, source="loop",
    )  # fmt: skip
    assert stored_text(shared_url, checkpoints.c.node_results, checkpoints, saved.id) == NODE_RESULTS


async def test_typescript_entity_attributes_are_read_and_saved_back_byte_for_byte(
    open_store: StoreFactory, shared_url: str
) -> None:
    store = open_store(shared_url)
    session = await store.create_session("./from-typescript")
    entity_id = str(uuid.uuid4())
    row = {
        "id": entity_id, "session_id": session.id, "workspace_id": None, "name": "example.com", "type": "domain",
        "attributes": ATTRIBUTES, "relationships": "[]", "created_at": 1717243204000, "updated_at": 1717243204000,
        "embedding": None,
    }  # fmt: skip
    write_behind(shared_url, insert(entities), [row])

    entity = await store.get_entity(entity_id)
    assert entity.attributes["ports"] == {"http": 80, "https": {"port": 443, "tls": True}}
    assert type(entity.attributes["ports"]) is JsMap
    assert entity.attributes["seenAt"] == JsDate(253_402_300_800_000)
    assert entity.attributes["nested"]["byId"] == {2: "two", 1: "one"}

    await store.update_entity(entity_id, attributes=entity.attributes)
    assert stored_text(shared_url, entities.c.attributes, entities, entity_id) == ATTRIBUTES
    again = await store.save_entity(session.id, name=entity.name, type=entity.type, attributes=entity.attributes)
    assert stored_text(shared_url, entities.c.attributes, entities, again.id) == ATTRIBUTES


async def test_typescript_session_metadata_and_tool_calls_are_saved_back_byte_for_byte(
    open_store: StoreFactory, shared_url: str
) -> None:
    store = open_store(shared_url)
    session = await store.create_session("./from-typescript")
    write_behind(shared_url, update(sessions).where(sessions.c.id == session.id).values(metadata=METADATA))
    message = {
        "session_id": session.id, "role": "assistant", "content": None, "tool_calls": TOOL_CALLS,
        "tool_results": None, "tokens_in": None, "tokens_out": None, "created_at": 1717243204000,
    }  # fmt: skip
    write_behind(shared_url, insert(messages), [message])

    metadata = (await store.get_session(session.id)).metadata
    assert type(metadata["byHost"]) is JsMap
    assert metadata["startedAt"] == JsDate(-62_198_755_200_000)
    await store.update_session(session.id, metadata=metadata)
    assert stored_text(shared_url, sessions.c.metadata, sessions, session.id) == METADATA

    (read,) = await store.get_messages(session.id)
    assert type(read.tool_calls[0].input["hosts"]) is JsMap
    added = await store.add_message(session.id, role="assistant", tool_calls=read.tool_calls)
    assert stored_text(shared_url, messages.c.tool_calls, messages, added.id) == TOOL_CALLS


async def test_capitalised_node_statuses_are_taken_on_write_as_the_typescript_store_takes_them(
    open_store: StoreFactory, shared_url: str
) -> None:
    store = open_store(shared_url)
    session = await store.create_session("./from-python")
    saved = await store.save_checkpoint(
        session_id=session.id, step=1, node_results={"a": {"status": "Complete"}, "b": {"status": "failed"}},
        source="loop",
    )  # fmt: skip
    stored = stored_text(shared_url, checkpoints.c.node_results, checkpoints, saved.id)
    assert stored == '{"a":{"status":"Complete"},"b":{"status":"failed"}}'
    assert (await store.get_checkpoint(saved.id)).node_results["a"].canonical_status == "completed"
    # Spellings neither package takes are refused, nothing written...
    with pytest.raises(ValueError, match="status"):
        await store.save_checkpoint(
            session_id=session.id, step=2, node_results={"a": {"status": "COMPLETE"}}, source="loop"
        )
    # ...and a stored one is corrupt, naming its row, as the TypeScript store refuses it.
    write_behind(
        shared_url,
        update(checkpoints).where(checkpoints.c.id == saved.id).values(node_results='{"a":{"status":"done"}}'),
    )
    read = await store.get_checkpoint(saved.id)
    with pytest.raises(CheckpointCorruptionError, match=rf"checkpoints row {saved.id!r}, column node_results"):
        read.node_results["a"]


def test_canonical_status_reads_the_capitalised_spellings_as_the_framework_does() -> None:
    assert [CheckpointNodeResult(status=status).canonical_status for status in ("Complete", "Failed", "Skipped")] == [
        "completed", "failed", "skipped",
    ]  # fmt: skip
    for status in ("pending", "running", "completed", "failed", "skipped"):
        assert CheckpointNodeResult(status=status).canonical_status == status
