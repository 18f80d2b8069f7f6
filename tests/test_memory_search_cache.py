"""What semantic search keeps between searches never hides a change made elsewhere."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine
from obsku_checkpoint_sqlite.runtime.urls import normalize_url


async def test_a_fact_replaced_elsewhere_by_one_with_the_same_marker_is_found(
    store: Any, url: str, workspace: str
) -> None:
    if url == "sqlite://":
        pytest.skip("a private in-memory database cannot be written from a second connection")
    replaced = await store.save_fact("replaced", embedding=[1.0, 0.0], workspace_id=workspace)
    kept = await store.save_fact("kept", embedding=[0.6, 0.8], workspace_id=workspace)
    assert [fact.id for fact in await store.search_facts_semantic([1.0, 0.0], workspace_id=workspace)] == [
        replaced.id,
        kept.id,
    ]
    # The same number of candidates with the same markers: only an id and an embedding differ.
    newcomer = str(uuid.uuid4())
    engine = create_sync_engine(normalize_url(url, for_async=False))
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM facts WHERE id = :id"), {"id": replaced.id})
            conn.execute(
                text(
                    "INSERT INTO facts (id, workspace_id, content, confidence, created_at, embedding) "
                    "VALUES (:id, :workspace, 'newcomer', 0.5, :created_at, :embedding)"
                ),
                {
                    "id": newcomer,
                    "workspace": workspace,
                    "created_at": replaced.created_at,
                    "embedding": "[0,1]" if url.startswith("sqlite") else b"[0,1]",
                },
            )
    finally:
        engine.dispose()
    found = await store.search_facts_semantic([0.0, 1.0], workspace_id=workspace)
    assert [(fact.id, fact.score) for fact in found] == [(newcomer, 1.0), (kept.id, pytest.approx(0.8))]


async def test_a_warm_search_on_postgresql_ranks_while_the_server_checks_its_candidates(
    store: Any, url: str, workspace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not url.startswith("postgresql"):
        pytest.skip("only PostgreSQL checks the last candidates with a round trip")
    from obsku_checkpoint_sqlite.ops import memory_search

    ranked_in: list[str] = []
    shortlist = memory_search._shortlist

    def recording(*args: Any) -> list[str]:
        ranked_in.append(threading.current_thread().name)
        return shortlist(*args)

    monkeypatch.setattr(memory_search, "_shortlist", recording)
    near = await store.save_fact("near", embedding=[1.0, 0.1], workspace_id=workspace)
    far = await store.save_fact("far", embedding=[0.1, 1.0], workspace_id=workspace)
    cold = await store.search_facts_semantic([1.0, 0.0], workspace_id=workspace)
    assert [fact.id for fact in cold] == [near.id, far.id]
    ranked_in.clear()
    warm = await store.search_facts_semantic([1.0, 0.0], workspace_id=workspace)
    assert [(fact.id, fact.score) for fact in warm] == [(fact.id, fact.score) for fact in cold]
    # One shortlist, made in the background while the fingerprint query ran, and taken.
    assert len(ranked_in) == 1
    assert ranked_in[0].startswith("obsku-rank")

    # A new candidate: the early shortlist is dropped and the search ranks again, finding it.
    nearest = await store.save_fact("nearest", embedding=[1.0, 0.0], workspace_id=workspace)
    ranked_in.clear()
    found = await store.search_facts_semantic([1.0, 0.0], workspace_id=workspace)
    assert [fact.id for fact in found] == [nearest.id, near.id, far.id]
    assert len(ranked_in) == 2
    assert not ranked_in[1].startswith("obsku-rank")


async def test_rows_without_an_embedding_are_skipped_until_they_have_one(store: Any, workspace: str) -> None:
    session = await store.create_session("/embeddings")
    bare = await store.save_entity(session.id, name="bare", type="t", workspace_id=workspace)
    near = await store.save_entity(session.id, name="near", type="t", workspace_id=workspace, embedding=[1.0, 0.0])
    await store.save_fact("bare fact", workspace_id=workspace, source_session_id=session.id)
    fact = await store.save_fact("fact", workspace_id=workspace, embedding=[1.0, 0.0])
    for in_session in (None, session.id):
        found = await store.search_entities_semantic([1.0, 0.0], workspace_id=workspace, session_id=in_session)
        assert [entity.id for entity in found] == [near.id]
    assert [found.id for found in await store.search_facts_semantic([1.0, 0.0], workspace_id=workspace)] == [fact.id]
    await store.update_entity(bare.id, embedding=[0.0, 1.0])
    await store.update_entity(near.id, embedding=None)
    found = await store.search_entities_semantic([0.0, 1.0], workspace_id=workspace)
    assert [(entity.id, entity.score) for entity in found] == [(bare.id, 1.0)]


@pytest.mark.parametrize("dialect", ["mysql", "mariadb"])
def test_candidates_on_mariadb_never_read_an_embedding(dialect: str) -> None:
    # InnoDB reads a LONGBLOB named in a condition, even to test it for NULL: a search
    # at 10,000 facts then read every embedding to list its candidates.
    from sqlalchemy.dialects import mysql

    from obsku_checkpoint_sqlite.db import memory_queries

    statements = [
        memory_queries.fact_candidates("w", dialect)[0],
        memory_queries.fact_candidates(None, dialect)[0],
        memory_queries.entity_candidates("s", "w", dialect)[0],
        memory_queries.entity_candidates(None, None, dialect)[0],
    ]
    for statement in statements:
        assert "embedding" not in str(statement.compile(dialect=mysql.dialect()))
