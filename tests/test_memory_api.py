"""The memory API on every backend and both faces: saves, reads, updates, refusals, search."""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from obsku_checkpoint_sqlite import (
    CheckpointCorruptionError,
    EmbeddingDeserializationError,
    EntityNotFoundError,
    SessionNotFoundError,
)
from obsku_checkpoint_sqlite.db import migrate
from obsku_checkpoint_sqlite.ops import memory as memory_ops
from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from tests.conftest import StoreFactory


def _raw(url: str, statement: str) -> list[Any]:
    engine = create_sync_engine(normalize_url(url, for_async=False))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(statement)).all())
    finally:
        engine.dispose()


async def test_an_entity_round_trips_and_its_embedding_is_stored_as_typescript_writes_it(
    store: Any, url: str, workspace: str
) -> None:
    session = await store.create_session("/tmp", workspace_id=workspace)
    saved = await store.save_entity(
        session.id,
        name="example.com",
        type="domain",
        attributes={"ports": [80, 443]},
        relationships=[{"targetId": "other", "type": "owns", "weight": 0.5}],
        embedding=[1.0, -0.0, 1e-7, 0.000001, 1e21, 1e20, 0.5],
        workspace_id=workspace,
    )
    assert saved.created_at == saved.updated_at
    assert await store.get_entity(saved.id) == saved
    assert saved.relationships[0].model_dump(by_alias=True) == {"targetId": "other", "type": "owns", "weight": 0.5}
    assert saved.embedding == [1.0, 0.0, 1e-7, 0.000001, 1e21, 1e20, 0.5]
    if url != "sqlite://":
        (stored,) = _raw(url, f"SELECT embedding FROM entities WHERE id = '{saved.id}'")
        value = stored[0]
        text_value = value if isinstance(value, str) else bytes(value).decode()
        assert text_value == "[1,0,1e-7,0.000001,1e+21,100000000000000000000,0.5]"
        if url.startswith("sqlite"):
            assert isinstance(value, str)  # storage class TEXT, as the TypeScript package writes it
    bare = await store.save_entity(session.id, name="bare", type="domain")
    assert (bare.attributes, bare.relationships, bare.embedding, bare.workspace_id) == ({}, [], None, None)
    listed = await store.list_entities(workspace_id=workspace)
    assert [entity.id for entity in listed] == [saved.id]


async def test_update_entity_replaces_what_is_passed_and_none_clears(store: Any, workspace: str) -> None:
    session = await store.create_session("/tmp")
    saved = await store.save_entity(
        session.id, name="a", type="t", attributes={"x": 1}, embedding=[1.0, 2.0], workspace_id=workspace
    )
    await store.update_entity(saved.id, name="b", workspace_id=None, embedding=None, attributes={"y": 2})
    updated = await store.get_entity(saved.id)
    assert (updated.name, updated.type, updated.workspace_id, updated.embedding) == ("b", "t", None, None)
    assert updated.attributes == {"y": 2}
    assert updated.updated_at >= saved.updated_at
    with pytest.raises(EntityNotFoundError, match="Entity not found: nope"):
        await store.update_entity("nope", name="x")
    with pytest.raises(ValueError, match="name"):
        await store.update_entity(saved.id, name=None)
    await store.delete_entity(saved.id)
    await store.delete_entity(saved.id)
    assert await store.get_entity(saved.id) is None


async def test_bad_memory_input_is_refused_before_anything_is_written(store: Any, workspace: str) -> None:
    session = await store.create_session("/tmp")
    for embedding in ([], [math.nan], [1.0, math.inf]):
        with pytest.raises(ValueError, match="embedding"):
            await store.save_entity(session.id, name="a", type="t", embedding=embedding, workspace_id=workspace)
        with pytest.raises(ValueError, match="embedding"):
            await store.save_fact("f", embedding=embedding, workspace_id=workspace)
    with pytest.raises(SessionNotFoundError):
        await store.save_entity("no-such-session", name="a", type="t", workspace_id=workspace)
    with pytest.raises(SessionNotFoundError):
        await store.save_fact("f", source_session_id="no-such-session", workspace_id=workspace)
    with pytest.raises(ValueError, match="confidence"):
        await store.save_fact("f", confidence=math.nan, workspace_id=workspace)
    with pytest.raises(ValueError, match="embedding"):
        await store.search_facts_semantic([], workspace_id=workspace)
    with pytest.raises(ValueError, match="top_k"):
        await store.search_facts_semantic([1.0], top_k=-1, workspace_id=workspace)
    assert await store.list_entities(workspace_id=workspace) == []
    assert await store.list_facts(workspace_id=workspace) == []


async def test_facts_confidence_follows_the_column(store: Any, url: str, workspace: str) -> None:
    null = await store.save_fact("no confidence", workspace_id=workspace)
    high = await store.save_fact("high", confidence=0.95, workspace_id=workspace)
    fine = await store.save_fact("fine", confidence=0.123456789, workspace_id=workspace)
    assert null.confidence is None
    assert high.confidence == 0.95
    # PostgreSQL's real holds 4 bytes: read as its shortest decimal, as the TypeScript store reads it.
    assert fine.confidence == (0.12345679 if url.startswith("postgresql") else 0.123456789)
    assert await store.get_fact(fine.id) == fine
    # Compared in the column's precision: 0.95 stored in a float4 passes 0.95.
    assert {fact.id for fact in await store.list_facts(workspace_id=workspace, min_confidence=0.95)} == {high.id}
    assert null.id not in {fact.id for fact in await store.list_facts(workspace_id=workspace, min_confidence=0)}
    assert len(await store.list_facts(workspace_id=workspace)) == 3
    assert len(await store.list_facts(workspace_id=workspace, limit=2)) == 2
    await store.delete_fact(high.id)
    assert await store.get_fact(high.id) is None


async def test_search_ranks_scores_and_sees_changes_made_through_another_store(
    store: Any, open_store: StoreFactory, url: str, workspace: str
) -> None:
    session = await store.create_session("/tmp")
    near = await store.save_entity(session.id, name="near", type="t", embedding=[1.0, 0.1], workspace_id=workspace)
    far = await store.save_entity(session.id, name="far", type="t", embedding=[0.0, 1.0], workspace_id=workspace)
    found = await store.search_entities_semantic([1.0, 0.0], workspace_id=workspace)
    assert [entity.id for entity in found] == [near.id, far.id]
    assert found[0].score == 1.0 / math.sqrt(1.01)
    assert found[1].score == 0.0
    assert found[0].embedding is None
    assert [e.id for e in await store.search_entities_semantic([1.0, 0.0], workspace_id=workspace, threshold=0.5)] == [
        near.id
    ]
    other = store if url == "sqlite://" else open_store(url)
    await other.update_entity(far.id, embedding=[1.0, 0.0])
    found = await store.search_entities_semantic([1.0, 0.0], workspace_id=workspace, top_k=1)
    assert [entity.id for entity in found] == [far.id]
    assert found[0].score == 1.0
    await other.delete_entity(far.id)
    fact = await store.save_fact("f", embedding=[3.0, 4.0], workspace_id=workspace)
    found_facts = await store.search_facts_semantic([3.0, 4.0], workspace_id=workspace)
    assert [(item.id, item.score) for item in found_facts] == [(fact.id, 1.0)]
    assert [e.id for e in await store.search_entities_semantic([1.0, 0.0], workspace_id=workspace)] == [near.id]


async def test_a_row_stored_unreadable_is_named_not_fatal(store: Any, url: str, workspace: str) -> None:
    if url == "sqlite://":
        pytest.skip("a private in-memory database cannot be written from a second connection")
    session = await store.create_session("/tmp")
    good = await store.save_entity(session.id, name="good", type="t", embedding=[1.0, 0.0], workspace_id=workspace)
    # Scored below `good` (0.8 against 1.0), so the expected order below does not rest on a tie.
    bad = await store.save_entity(session.id, name="bad", type="t", embedding=[0.8, 0.6], workspace_id=workspace)
    broken = await store.save_entity(session.id, name="broken", type="t", embedding=[0.0, 1.0], workspace_id=workspace)
    # What the TypeScript store writes for updateEntity(id, {attributes: null, embedding: null}).
    engine = create_sync_engine(normalize_url(url, for_async=False))
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE entities SET attributes = 'null', relationships = '[1]' WHERE id = :id"), {"id": bad.id}
            )
            conn.execute(
                text("UPDATE entities SET embedding = :value, updated_at = updated_at + 1 WHERE id = :id"),
                {"id": broken.id, "value": "null" if url.startswith("sqlite") else b"null"},
            )
    finally:
        engine.dispose()
    listed = await store.list_entities(workspace_id=workspace)
    assert {entity.id for entity in listed} == {good.id, broken.id}
    assert [error.location for error in listed.skipped] == [f"entities row {bad.id!r}, column attributes"]
    with pytest.raises(CheckpointCorruptionError, match=bad.id):
        await store.get_entity(bad.id)
    assert (await store.get_entity(broken.id)).embedding is None
    found = await store.search_entities_semantic([1.0, 0.0], workspace_id=workspace)
    # As the TypeScript store's search builds it: bad attributes read as {}, bad relationships as [].
    assert [(entity.id, entity.attributes, entity.relationships) for entity in found] == [
        (good.id, {}, []),
        (bad.id, {}, []),
    ]
    (problem,) = found.skipped
    assert isinstance(problem, EmbeddingDeserializationError)
    assert problem.row_id == broken.id
    await store.update_entity(bad.id, attributes={"fixed": True}, relationships=[])
    assert (await store.get_entity(bad.id)).attributes == {"fixed": True}


async def test_deleting_a_session_deletes_its_entities_and_keeps_its_facts_unattributed(
    store: Any, url: str, workspace: str
) -> None:
    kept = await store.create_session("/tmp")
    doomed = await store.create_session("/tmp")
    gone = await store.save_entity(doomed.id, name="gone", type="t", workspace_id=workspace)
    stays = await store.save_entity(kept.id, name="stays", type="t", workspace_id=workspace)
    fact = await store.save_fact("learned", source_session_id=doomed.id, workspace_id=workspace)
    other = await store.save_fact("elsewhere", source_session_id=kept.id, workspace_id=workspace)
    await store.delete_session(doomed.id)
    assert await store.get_entity(gone.id) is None
    assert await store.get_entity(stays.id) is not None
    assert (await store.get_fact(fact.id)).source_session_id is None
    assert (await store.get_fact(other.id)).source_session_id == kept.id


async def test_deleting_and_pruning_do_not_rely_on_foreign_keys(open_store: StoreFactory, tmp_path: Path) -> None:
    # Memory tables built without foreign keys (adopted from elsewhere): the explicit
    # statements still remove a session's entities and unattribute its facts.
    url = f"sqlite:///{tmp_path / 'no-foreign-keys.db'}"
    engine = create_sync_engine(url)
    with engine.begin() as conn:
        migrate.upgrade(conn, "0003")
        conn.execute(
            text(
                "CREATE TABLE entities (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, workspace_id TEXT,"
                " name TEXT NOT NULL, type TEXT NOT NULL, attributes TEXT, relationships TEXT,"
                " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, embedding BLOB)"
            )
        )
        conn.execute(
            text(
                "CREATE TABLE facts (id TEXT PRIMARY KEY, workspace_id TEXT, content TEXT NOT NULL,"
                " confidence REAL DEFAULT 1.0, source_session_id TEXT, created_at INTEGER NOT NULL, embedding BLOB)"
            )
        )
    engine.dispose()
    store = open_store(url)
    deleted = await store.create_session("/tmp")
    pruned = await store.create_session("/tmp")
    entities = [await store.save_entity(s.id, name="e", type="t") for s in (deleted, pruned)]
    facts = [await store.save_fact("f", source_session_id=s.id) for s in (deleted, pruned)]
    await store.delete_session(deleted.id)
    await store.prune(sessions_idle_before=pruned.updated_at + 1)
    for entity, fact in zip(entities, facts, strict=True):
        assert await store.get_entity(entity.id) is None
        assert (await store.get_fact(fact.id)).source_session_id is None


async def test_every_update_moves_updated_at_so_searches_see_it(
    store: Any, workspace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every write in the same millisecond: updated_at is the search cache's change marker.
    monkeypatch.setattr(memory_ops, "now_ms", lambda: 1_700_000_000_000)
    session = await store.create_session("/tmp")
    entity = await store.save_entity(session.id, name="e", type="t", embedding=[0.0, 1.0], workspace_id=workspace)
    seen = [entity.updated_at]
    for step in range(5):
        await store.search_entities_semantic([1.0, 0.0], workspace_id=workspace)
        await store.update_entity(entity.id, embedding=[1.0, float(step)])
        seen.append((await store.get_entity(entity.id)).updated_at)
        (found,) = await store.search_entities_semantic([1.0, 0.0], workspace_id=workspace)
        assert found.score == 1.0 / math.sqrt(1.0 + step * step)
    assert seen == [1_700_000_000_000 + step for step in range(6)]


async def test_a_search_sees_rows_another_process_wrote_since_the_last_one(
    store: Any, url: str, workspace: str
) -> None:
    if url == "sqlite://":
        pytest.skip("a private in-memory database cannot be written from a second connection")
    first = await store.save_fact("first", embedding=[1.0, 1.0], workspace_id=workspace)
    assert [fact.id for fact in await store.search_facts_semantic([1.0, 0.0], workspace_id=workspace)] == [first.id]
    # As the TypeScript package writes it, from a connection of its own.
    ts_id = str(uuid.uuid4())
    engine = create_sync_engine(normalize_url(url, for_async=False))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO facts (id, workspace_id, content, confidence, created_at, embedding)"
                    " VALUES (:id, :workspace, 'from TypeScript', 0.5, 1, :embedding)"
                ),
                {"id": ts_id, "workspace": workspace, "embedding": "[1,0]" if url.startswith("sqlite") else b"[1,0]"},
            )
    finally:
        engine.dispose()
    found = await store.search_facts_semantic([1.0, 0.0], workspace_id=workspace)
    assert [(fact.id, fact.score) for fact in found] == [(ts_id, 1.0), (first.id, 1.0 / math.sqrt(2.0))]
    await store.delete_fact(ts_id)
    assert [fact.id for fact in await store.search_facts_semantic([1.0, 0.0], workspace_id=workspace)] == [first.id]


async def test_a_fork_copies_no_entities_and_no_facts_as_the_typescript_package(store: Any, workspace: str) -> None:
    session = await store.create_session("/tmp", workspace_id=workspace)
    entity = await store.save_entity(session.id, name="e", type="t", workspace_id=workspace)
    fact = await store.save_fact("f", source_session_id=session.id, workspace_id=workspace)
    checkpoint = await store.save_checkpoint(session_id=session.id, step=0, node_results={}, source="input")
    fork = await store.fork(checkpoint.id)
    assert await store.list_entities(session_id=fork.id) == []
    assert [item.id for item in await store.list_entities(workspace_id=workspace)] == [entity.id]
    assert [item.id for item in await store.list_facts(workspace_id=workspace)] == [fact.id]
    assert (await store.get_fact(fact.id)).source_session_id == session.id


async def test_numpy_embeddings_store_what_the_same_python_floats_store(store: Any, url: str, workspace: str) -> None:
    session = await store.create_session("/tmp", workspace_id=workspace)
    single = np.array([0.1, -0.0, 1e-7, 3.0], dtype=np.float32)
    floats = [float(number) for number in single]  # float32 widens exactly
    double = np.array([0.1, -0.0, 1e-7, 3.0])
    by_list = await store.save_entity(session.id, name="list", type="t", embedding=floats, workspace_id=workspace)
    by_array = await store.save_entity(session.id, name="array", type="t", embedding=single, workspace_id=workspace)
    fact_by_list = await store.save_fact("fact list", embedding=[0.1, -0.0, 1e-7, 3.0], workspace_id=workspace)
    # list(array) holds numpy.float64 items, float's subclass.
    fact_by_items = await store.save_fact("fact items", embedding=list(double), workspace_id=workspace)
    assert by_array.embedding == by_list.embedding == floats
    assert all(type(number) is float for number in by_array.embedding)
    assert fact_by_items.embedding == fact_by_list.embedding == [0.1, 0.0, 1e-7, 3.0]
    updated = await store.save_entity(session.id, name="updated", type="t", embedding=[1.0], workspace_id=workspace)
    await store.update_entity(updated.id, embedding=double)
    assert (await store.get_entity(updated.id)).embedding == [0.1, 0.0, 1e-7, 3.0]
    if url != "sqlite://":
        stored = dict(_raw(url, f"SELECT name, embedding FROM entities WHERE workspace_id = '{workspace}'"))
        stored |= dict(_raw(url, f"SELECT content, embedding FROM facts WHERE workspace_id = '{workspace}'"))
        as_text = {key: value if isinstance(value, str) else bytes(value).decode() for key, value in stored.items()}
        assert as_text["array"] == as_text["list"] == "[0.10000000149011612,0,1.0000000116860974e-7,3]"
        assert as_text["updated"] == as_text["fact items"] == as_text["fact list"] == "[0.1,0,1e-7,3]"
    found = await store.search_entities_semantic(single, workspace_id=workspace)
    scores = {entity.name: entity.score for entity in found}
    assert scores.keys() == {"array", "list", "updated"}
    assert scores["array"] == scores["list"] == pytest.approx(1.0)
    facts_found = await store.search_facts_semantic(double, workspace_id=workspace)
    assert {fact.content for fact in facts_found} == {"fact list", "fact items"}
    # Still refused, before anything is written: what is not a number, an array not 1-D.
    refused: list[tuple[Any, type[Exception], str]] = [
        ([True, 1.0], TypeError, "item 0 is a bool"),
        ([0.5, "0.5"], TypeError, "item 1 is a str"),
        ([None], TypeError, "item 0 is a NoneType"),
        (np.array([True]), TypeError, "dtype bool"),
        (np.array([[0.5]]), ValueError, r"1-D array, got one of shape \(1, 1\)"),
        (np.array([0.5, np.nan]), ValueError, "item 1 is nan"),
    ]
    if np.dtype(np.longdouble).itemsize > 8:  # wider than a float here: it would be rounded
        refused.append((np.array([0.5], dtype=np.longdouble), TypeError, f"dtype {np.dtype(np.longdouble)}"))
    for bad, error, message in refused:
        with pytest.raises(error, match=message):
            await store.save_fact("bad", embedding=bad, workspace_id=workspace)
        with pytest.raises(error, match=message):
            await store.update_entity(by_array.id, embedding=bad)
        with pytest.raises(error, match=message):
            await store.search_facts_semantic(bad, workspace_id=workspace)
    assert {fact.content for fact in await store.list_facts(workspace_id=workspace)} == {"fact list", "fact items"}
    assert (await store.get_entity(by_array.id)).embedding == floats
