"""The memory tables' schema: created as the TypeScript package creates them, adopted where
they exist, re-runnable over a partly applied revision, and downgraded."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, text, update

from obsku_checkpoint_sqlite import SchemaError
from obsku_checkpoint_sqlite.db import migrate
from obsku_checkpoint_sqlite.db.models import Base
from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine
from obsku_checkpoint_sqlite.runtime.urls import normalize_url

FIXTURES = Path("/work/shared/fixtures")
MEMORY_INDEXES = {
    "entities": {"idx_entities_session", "idx_entities_workspace", "idx_entities_type"},
    "facts": {"idx_facts_workspace", "idx_facts_confidence"},
}
FOREIGN_KEYS = {
    "entities": (["session_id"], "sessions", "CASCADE"),
    "facts": (["source_session_id"], "sessions", "SET NULL"),
}


def _engine(url: str) -> Engine:
    return create_sync_engine(normalize_url(url, for_async=False))


def test_memory_tables_have_the_typescript_columns_indexes_and_foreign_keys(scratch_url: str) -> None:
    engine = _engine(scratch_url)
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn)
        with engine.begin() as conn:
            inspector = inspect(conn)
            entities = {column["name"]: column for column in inspector.get_columns("entities")}
            facts = {column["name"]: column for column in inspector.get_columns("facts")}
            assert list(entities) == [
                "id", "session_id", "workspace_id", "name", "type", "attributes", "relationships",
                "created_at", "updated_at", "embedding",
            ]  # fmt: skip
            assert list(facts) == [
                "id",
                "workspace_id",
                "content",
                "confidence",
                "source_session_id",
                "created_at",
                "embedding",
            ]
            assert [name for name, column in entities.items() if not column["nullable"]] == [
                "id", "session_id", "name", "type", "created_at", "updated_at",
            ]  # fmt: skip
            assert [name for name, column in facts.items() if not column["nullable"]] == ["id", "content", "created_at"]
            assert "1" in str(facts["confidence"]["default"])
            for table, expected in MEMORY_INDEXES.items():
                assert {index["name"] for index in inspector.get_indexes(table)} >= expected
                (key,) = inspector.get_foreign_keys(table)
                columns, referred, action = FOREIGN_KEYS[table]
                assert (key["constrained_columns"], key["referred_table"]) == (columns, referred)
                assert key["options"]["ondelete"] == action
            assert migrate.schema_drift(conn) == []
    finally:
        engine.dispose()


def test_revision_0004_downgrades_and_completes_a_partly_applied_upgrade(scratch_url: str) -> None:
    engine = _engine(scratch_url)
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn)
        with engine.begin() as conn:
            migrate.downgrade(conn, "0003")
        with engine.begin() as conn:
            assert not {"entities", "facts"} & set(inspect(conn).get_table_names())
            migrate.upgrade(conn)
        # What a run cut short leaves on MariaDB, where each DDL statement commits: one
        # table made, an index of it missing, alembic_version still at 0003.
        with engine.begin() as conn:
            Base.metadata.tables["facts"].drop(conn)
            (index,) = (i for i in Base.metadata.tables["entities"].indexes if i.name == "idx_entities_type")
            index.drop(conn)
            conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
        with engine.begin() as conn:
            migrate.upgrade(conn)
        with engine.begin() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision()
            assert migrate.schema_drift(conn) == []
    finally:
        engine.dispose()


def test_revision_0006_indexes_facts_by_session_once_downgrades_and_runs_again(scratch_url: str) -> None:
    engine = _engine(scratch_url)

    def indexes_on_the_session() -> list[str]:
        with engine.connect() as conn:
            return [
                index["name"] or ""
                for index in inspect(conn).get_indexes("facts")
                if index["column_names"] == ["source_session_id"]
            ]

    try:
        with engine.begin() as conn:
            migrate.upgrade(conn)
        # One index on every backend: on MariaDB the foreign key's own, renamed.
        assert indexes_on_the_session() == ["idx_facts_source_session"]
        with engine.begin() as conn:
            migrate.downgrade(conn, "0005")
        mariadb = engine.dialect.name in ("mysql", "mariadb")
        assert indexes_on_the_session() == (["fk_facts_source_session_id_sessions"] if mariadb else [])
        with engine.begin() as conn:
            migrate.upgrade(conn)
        # A run whose DDL committed but whose version row did not: the next run completes it.
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0005'"))
        with engine.begin() as conn:
            migrate.upgrade(conn)
        with engine.begin() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision()
            assert migrate.schema_drift(conn) == []
        assert indexes_on_the_session() == ["idx_facts_source_session"]
    finally:
        engine.dispose()


def test_deleting_or_pruning_a_session_finds_its_facts_through_the_index(tmp_path: Path) -> None:
    """The UPDATE that detaches a deleted (or pruned) session's facts, as ops.sessions and
    ops.retention build it, searches idx_facts_source_session instead of reading all facts."""
    engine = create_engine(f"sqlite:///{tmp_path / 'plans.db'}")
    facts = Base.metadata.tables["facts"]
    source = facts.c.source_session_id
    statements = [
        update(facts).where(source == "s1").values(source_session_id=None),
        update(facts).where(source.in_(["s1", "s2"])).values(source_session_id=None),
    ]
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn)
            for statement in statements:
                sql = statement.compile(conn, compile_kwargs={"literal_binds": True})
                plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
                assert any(line.startswith("SEARCH facts USING INDEX idx_facts_source_session ") for line in plan), plan
    finally:
        engine.dispose()


def test_a_typescript_memory_file_is_adopted_with_its_memory_tables_and_rows_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ts-memory.db"
    shutil.copy(FIXTURES / "ts-memory.db", path)

    def memory_schema_and_rows() -> tuple[list[tuple[str, str]], list[tuple[object, ...]], list[tuple[object, ...]]]:
        with sqlite3.connect(path) as connection:
            schema = connection.execute(
                "SELECT name, sql FROM sqlite_master WHERE tbl_name IN ('entities', 'facts') ORDER BY name"
            ).fetchall()
            entities = connection.execute("SELECT *, typeof(embedding) FROM entities ORDER BY rowid").fetchall()
            facts = connection.execute("SELECT *, typeof(embedding) FROM facts ORDER BY rowid").fetchall()
        return schema, entities, facts

    before = memory_schema_and_rows()
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn)
            assert migrate.current_revision(conn) == migrate.head_revision()
    finally:
        engine.dispose()
    schema, *rows = memory_schema_and_rows()
    # Only indexes are added (revisions 0005 and 0006), which the TypeScript package ignores.
    added = {"idx_entities_search", "idx_facts_search", "idx_facts_source_session"}
    assert {name for name, _ in schema} - {name for name, _ in before[0]} == added
    assert ([entry for entry in schema if entry[0] not in added], *rows) == before


def test_a_file_whose_memory_tables_are_not_the_typescript_ones_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn, "0003")
            conn.execute(text("CREATE TABLE facts (id TEXT PRIMARY KEY, body TEXT)"))
        with engine.begin() as conn, pytest.raises(SchemaError, match=r"facts\.content is missing"):
            migrate.upgrade(conn)
    finally:
        engine.dispose()
