"""``copy_to`` carries the memory store whole: entities and facts, embeddings byte for byte."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.db.memory_rows import float4
from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from tests._memory_fixtures import copy_sqlite_fixture, dumped, expected, expected_item


def test_copy_carries_entities_and_facts_with_their_embeddings_byte_for_byte(scratch_url: str, tmp_path: Path) -> None:
    source_path = copy_sqlite_fixture(tmp_path)
    data = expected("ts-memory")
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{source_path}") as source:
        source.copy_to(scratch_url)
    with sqlite3.connect(source_path) as connection:
        stored = dict(
            connection.execute("SELECT id, embedding FROM facts UNION ALL SELECT id, embedding FROM entities")
        )
    engine = create_sync_engine(normalize_url(scratch_url, for_async=False))
    try:
        with engine.connect() as conn:
            copied = dict(
                conn.execute(text("SELECT id, embedding FROM facts UNION ALL SELECT id, embedding FROM entities")).all()
            )
    finally:
        engine.dispose()
    as_bytes = {
        key: None if value is None else (value.encode() if isinstance(value, str) else bytes(value))
        for key, value in stored.items()
    }
    assert {
        key: None if value is None else (value.encode() if isinstance(value, str) else bytes(value))
        for key, value in copied.items()
    } == as_bytes
    if scratch_url.startswith("sqlite"):
        assert copied == stored  # storage class TEXT kept
    with sync.SqlAlchemyCheckpointStore(scratch_url) as target:
        for entity_id, item in data["entities"].items():
            assert dumped(target.get_entity(entity_id)) == expected_item(item)
        for fact_id, item in data["facts"].items():
            want = expected_item(item)
            if scratch_url.startswith("postgresql") and "confidence" in want:
                want["confidence"] = float4(want["confidence"])  # PostgreSQL's real holds 4 bytes
            assert dumped(target.get_fact(fact_id)) == want
