"""The memory store against the TypeScript packages' own files, on every backend and both faces.

Gets, lists and searches return what the TypeScript store returned from the same rows
(``/work/shared/fixtures/*.expected.json``): the same rows, values and types, the same
search results in the same order with the same scores. Where the TypeScript store fails
a whole search for one bad row, this store skips that row and names it in ``skipped``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from obsku_checkpoint_sqlite import CheckpointStoreError, EmbeddingDeserializationError, VectorDimensionError
from tests._memory_fixtures import (
    copy_sqlite_fixture,
    dumped,
    expected,
    expected_item,
    load_postgres_dump,
    load_sqlite_rows,
    scratch_database,
)
from tests.conftest import StoreFactory, require_server, through_pgbouncer

ERRORS = {"VectorDimensionError": VectorDimensionError, "EmbeddingDeserializationError": EmbeddingDeserializationError}


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-pgbouncer", "mariadb"])
def memory_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A database holding a TypeScript fixture's rows, and what the TypeScript store returned."""
    backend = str(request.param)
    if backend == "sqlite":
        yield f"sqlite:///{copy_sqlite_fixture(tmp_path)}", expected("ts-memory")
        return
    server = require_server("postgresql" if backend.startswith("postgresql") else backend)
    with scratch_database(server) as url:
        if backend == "mariadb":
            load_sqlite_rows(url, tmp_path)
            yield url, expected("ts-memory")
        else:
            load_postgres_dump(url)
            yield (through_pgbouncer(url) if backend == "postgresql-pgbouncer" else url), expected("ts-postgres")


def _in_scan_order(url: str, data: dict[str, Any]) -> bool:
    # Equal scores keep the scan order: rowid order on SQLite, heap order after a fresh
    # load on PostgreSQL (which the fixture recorded). MariaDB scans by primary key.
    return not url.startswith("mariadb")


async def test_gets_return_what_the_typescript_store_returned(
    open_store: StoreFactory, memory_database: tuple[str, dict[str, Any]]
) -> None:
    url, data = memory_database
    store = open_store(url)
    for entity_id, item in data["entities"].items():
        entity = await store.get_entity(entity_id)
        assert dumped(entity) == expected_item(item), entity_id
    for fact_id, item in data["facts"].items():
        fact = await store.get_fact(fact_id)
        assert dumped(fact) == expected_item(item), fact_id
        assert type(fact.confidence) is (float if item.get("confidence") is not None else type(None))
    for lookup in data["deleted_lookups"]["entities"]:
        assert await store.get_entity(lookup["id"]) is None
    for lookup in data["deleted_lookups"].get("facts", []):
        assert await store.get_fact(lookup["id"]) is None
    assert store.has_semantic_search is True


async def test_lists_return_what_the_typescript_store_returned(
    open_store: StoreFactory, memory_database: tuple[str, dict[str, Any]]
) -> None:
    url, data = memory_database
    store = open_store(url)
    for listing in data["lists"]:
        options = listing["options"]
        if listing["method"] == "listEntities":
            found = await store.list_entities(
                session_id=options.get("sessionId"),
                workspace_id=options.get("workspaceId"),
                type=options.get("type"),
                limit=options.get("limit"),
            )
            every = data["entities"]
            assert found.skipped == []
        else:
            found = await store.list_facts(
                workspace_id=options.get("workspaceId"),
                min_confidence=options.get("minConfidence"),
                limit=options.get("limit"),
            )
            every = data["facts"]
        # Rows of the same created_at come in an unspecified order, as there.
        assert [item.created_at for item in found] == [every[row_id]["createdAt"] for row_id in listing["ids"]], options
        assert all(dumped(item) == expected_item(every[item.id]) for item in found)
        if url.startswith("sqlite"):
            assert [item.id for item in found] == listing["ids"], options


async def test_searches_return_the_typescript_results_scores_and_order(
    open_store: StoreFactory, memory_database: tuple[str, dict[str, Any]]
) -> None:
    url, data = memory_database
    store = open_store(url)
    for search in data["searches"]:
        options = search["options"]
        query = data["queries"][search["query"]]
        method = (
            store.search_entities_semantic
            if search["method"] == "searchEntitiesSemantic"
            else store.search_facts_semantic
        )
        keywords: dict[str, Any] = {"session_id": options.get("sessionId"), "workspace_id": options.get("workspaceId")}
        if "topK" in options:
            keywords["top_k"] = options["topK"]
        if "threshold" in options:
            keywords["threshold"] = options["threshold"]
        if keywords.get("top_k", 0) < 0:
            # JavaScript's slice drops that many from the end; a negative count is refused here.
            with pytest.raises(ValueError, match="top_k"):
                await method(query, **keywords)
            continue
        found = await method(query, **keywords)
        if "error" in search:
            # The TypeScript store failed the whole search; here the row is skipped and named.
            error = search["error"]
            kind = ERRORS[error["name"]]
            assert any(
                isinstance(problem, kind)
                and (
                    kind is not VectorDimensionError
                    or (problem.dimension_a, problem.dimension_b) == (error["dimensionA"], error["dimensionB"])
                )
                for problem in found.skipped
            ), (options, found.skipped)
            skipped_ids = {getattr(problem, "row_id", None) for problem in found.skipped}
            assert not skipped_ids & {item.id for item in found}
            continue
        result = search["result"]
        assert found.skipped == [], options
        assert [item.score for item in found] == pytest.approx(result["scores"], rel=0, abs=1e-9), options
        if search.get("has_equal_scores") and not _in_scan_order(url, data):
            # Another scan order: the same rows for each score, except which of the rows
            # tied at the cut are taken.
            ours, theirs = _by_score(found), _by_score_expected(result)
            lowest = min(theirs, default=None)
            assert {score: len(ids) for score, ids in ours.items()} == {s: len(ids) for s, ids in theirs.items()}
            assert {k: v for k, v in ours.items() if k != lowest} == {k: v for k, v in theirs.items() if k != lowest}
        else:
            assert [item.id for item in found] == result["ids"], options
        items = {item["id"]: item for item in result["items"]}
        every = data["entities"] if search["method"] == "searchEntitiesSemantic" else data["facts"]
        for item in found:
            if item.id in items:
                assert dumped(item, "embedding") == expected_item(items[item.id]), item.id
            else:  # a row tied at the cut that another scan order took
                assert item.id in every


def _by_score(found: list[Any]) -> dict[float, set[str]]:
    groups: dict[float, set[str]] = defaultdict(set)
    for item in found:
        groups[item.score].add(item.id)
    return dict(groups)


def _by_score_expected(result: dict[str, Any]) -> dict[float, set[str]]:
    groups: dict[float, set[str]] = defaultdict(set)
    for row_id, score in zip(result["ids"], result["scores"], strict=True):
        groups[score].add(row_id)
    return dict(groups)


async def test_search_errors_are_store_errors_naming_the_row(
    open_store: StoreFactory, memory_database: tuple[str, dict[str, Any]]
) -> None:
    url, data = memory_database
    store = open_store(url)
    found = await store.search_entities_semantic(data["queries"]["q_entity"], top_k=1000)
    roles = data["ids"]["roles"]
    assert {problem.row_id for problem in found.skipped} == {roles["entity_wrongDim"], roles["entity_emptyEmb"]}
    assert all(isinstance(problem, CheckpointStoreError) for problem in found.skipped)
