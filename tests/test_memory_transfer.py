"""``copy_to``, and export and import, carry the memory store whole: entities and facts, embeddings byte for byte."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import make_url, select, text

from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.db.memory_queries import entities, facts
from obsku_checkpoint_sqlite.db.memory_rows import float4
from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from tests._memory_fixtures import copy_sqlite_fixture, dumped, expected, expected_item
from tests.conftest import SyncAsAsync


def test_copy_carries_entities_and_facts_with_their_embeddings_byte_for_byte(scratch_url: str, tmp_path: Path) -> None:
    source_path = copy_sqlite_fixture(tmp_path)
    data = expected("ts-memory")
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{source_path}") as source:
        report = source.copy_to(scratch_url)
    with sqlite3.connect(source_path) as connection:
        counts = connection.execute(
            "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM messages), "
            "(SELECT count(*) FROM checkpoints), (SELECT count(*) FROM entities), (SELECT count(*) FROM facts)"
        ).fetchone()
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
    # The report counts what was copied, the memory store's rows too.
    assert (report.sessions, report.messages, report.checkpoints, report.entities, report.facts) == counts
    assert report.entities == len(data["entities"]) > 0
    assert report.facts == len(data["facts"]) > 0
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


# --- export and import ----------------------------------------------------------------------


def _stored(url: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Every entity and fact row as the database holds it, by table and id."""
    engine = create_sync_engine(normalize_url(url, for_async=False))
    try:
        with engine.connect() as conn:
            return {
                table.name: {row.id: dict(row._mapping) for row in conn.execute(select(table))}
                for table in (entities, facts)
            }
    finally:
        engine.dispose()


def _storage_classes(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as connection:
        return dict(
            connection.execute(
                "SELECT id, typeof(embedding) FROM entities UNION ALL SELECT id, typeof(embedding) FROM facts"
            )
        )


def _as_bytes(value: Any) -> bytes | None:
    return None if value is None else value.encode() if isinstance(value, str) else bytes(value)


def _same_rows(
    source: dict[str, dict[str, dict[str, Any]]],
    target: dict[str, dict[str, dict[str, Any]]],
    *,
    exact: bool,
    to_pg: bool,
) -> None:
    """The target holds the source's rows: every column equal, embeddings byte for byte
    (and of the same Python type, text or bytes, where ``exact``), a confidence as a
    PostgreSQL ``real`` holds it when ``to_pg``."""
    assert source.keys() == target.keys()
    for table, rows in source.items():
        assert rows.keys() == target[table].keys(), table
        for row_id, row in rows.items():
            moved = dict(target[table][row_id])
            want = dict(row)
            if exact:
                assert type(moved["embedding"]) is type(want["embedding"]), row_id
            want["embedding"], moved["embedding"] = _as_bytes(want["embedding"]), _as_bytes(moved["embedding"])
            if to_pg and want.get("confidence") is not None:
                want["confidence"] = float4(want["confidence"])
            assert moved == want, (table, row_id)


async def _api_results(store: Any, data: dict[str, Any], *, pg: bool = False) -> dict[str, Any]:
    """What the store returns for every fixture entity and fact and every fixture search
    (a confidence as PostgreSQL's ``real`` holds it when ``pg``)."""

    def shown(item: Any, *exclude: str) -> dict[str, Any]:
        found = dumped(item, *exclude)
        if pg and found.get("confidence") is not None:
            found["confidence"] = float4(found["confidence"])
        return found

    results: dict[str, Any] = {
        "entities": {key: shown(await store.get_entity(key)) for key in data["entities"]},
        "facts": {key: shown(await store.get_fact(key)) for key in data["facts"]},
        "searches": [],
    }
    for search in data["searches"]:
        options = search["options"]
        keywords: dict[str, Any] = {"session_id": options.get("sessionId"), "workspace_id": options.get("workspaceId")}
        keywords.update(
            {name: options[key] for key, name in (("topK", "top_k"), ("threshold", "threshold")) if key in options}
        )
        if keywords.get("top_k", 0) < 0:
            continue
        method = (
            store.search_entities_semantic
            if search["method"] == "searchEntitiesSemantic"
            else store.search_facts_semantic
        )
        found = await method(data["queries"][search["query"]], **keywords)
        results["searches"].append({
            "items": [(item.score, shown(item)) for item in found],
            "skipped": sorted(str(problem) for problem in found.skipped),
        })  # fmt: skip
    return results


def _same_api_results(ours: dict[str, Any], theirs: dict[str, Any], *, same_scan_order: bool) -> None:
    assert ours["entities"] == theirs["entities"]
    assert ours["facts"] == theirs["facts"]
    for mine, other in zip(ours["searches"], theirs["searches"], strict=True):
        assert mine["skipped"] == other["skipped"]
        if same_scan_order:
            assert mine["items"] == other["items"]
        else:
            # Equal scores come in the database's scan order, which is not data: compared
            # as sets, but for the lowest score, where the cut may take other tied rows.
            assert [score for score, _ in mine["items"]] == [score for score, _ in other["items"]]
            lowest = min((score for score, _ in other["items"]), default=None)
            for score in {score for score, _ in other["items"]} - {lowest}:
                grouped = [
                    sorted(orjson.dumps(item) for s, item in results["items"] if s == score)
                    for results in (mine, other)
                ]
                assert grouped[0] == grouped[1]


async def test_export_import_carries_entities_and_facts_byte_for_byte_both_ways(
    scratch_url: str, tmp_path: Path
) -> None:
    """The TypeScript file through an export into each backend, and back into SQLite from it:
    every stored value kept (text embeddings stay text on SQLite), the same API results."""
    data = expected("ts-memory")
    source_path = copy_sqlite_fixture(tmp_path)
    source_url = f"sqlite:///{source_path}"
    server = not scratch_url.startswith("sqlite")
    to_pg = scratch_url.startswith("postgresql")
    with sync.SqlAlchemyCheckpointStore(source_url) as source:
        exported = source.export_sessions(tmp_path / "there.jsonl")
        before = await _api_results(SyncAsAsync(source), data, pg=to_pg)
    assert (exported.entities, exported.facts) == (len(data["entities"]), len(data["facts"]))
    with sync.SqlAlchemyCheckpointStore(scratch_url) as target:
        imported = target.import_sessions(tmp_path / "there.jsonl")
        assert imported == exported
        after = await _api_results(SyncAsAsync(target), data)
        back = target.export_sessions(tmp_path / "back.jsonl")
    assert back == exported
    _same_rows(_stored(source_url), _stored(scratch_url), exact=not server, to_pg=to_pg)
    if not server:
        assert _storage_classes(Path(make_url(scratch_url).database or "")) == _storage_classes(source_path)
    # MariaDB scans by primary key, PostgreSQL in heap order: ties may come in another order.
    _same_api_results(after, before, same_scan_order=not server)

    returned = tmp_path / "returned.db"
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{returned}") as home:
        assert home.import_sessions(tmp_path / "back.jsonl") == exported
        again = await _api_results(SyncAsAsync(home), data)
    _same_rows(_stored(scratch_url), _stored(f"sqlite:///{returned}"), exact=True, to_pg=False)
    if server:  # a server's bytes come back as bytes: a BLOB, which both packages read
        assert set(_storage_classes(returned).values()) <= {"blob", "null"}
    _same_api_results(again, after, same_scan_order=not server)
