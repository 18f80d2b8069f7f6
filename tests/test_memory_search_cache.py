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
