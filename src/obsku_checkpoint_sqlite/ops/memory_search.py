"""Semantic search over entities and facts: the TypeScript store's ranking, made fast.

The TypeScript store parses every candidate's embedding from JSON on every search and
scores it in a loop. Here each row's vector is decoded once and kept, as float32, in a
matrix per table and dimension (``VectorCache``), keyed by row id and a change marker
(``updated_at`` for entities, ``created_at`` for facts; the API can change an entity's
embedding only through ``update_entity``, which moves ``updated_at``, and a fact's not
at all). A search reads only the candidates' ids and markers, decodes the rows it has
not seen or that changed, ranks all candidates with one matrix product, and then scores
the few that can reach the result exactly as the TypeScript store does (the same
summation order, in doubles) from their stored text: the results, their order and their
scores are the TypeScript store's, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, Table, select

from ..db import memory_queries as q
from ..db.memory_rows import entity_from_row, fact_from_row, parse_embedding
from ..errors import (
    CheckpointCorruptionError,
    CheckpointStoreError,
    EmbeddingDeserializationError,
    VectorDimensionError,
)
from ..memory_dto import Entity, Fact, MemoryResults
from ..runtime.vectors import VectorCache, cache_for

# How far a float32 score may be from the exact one, with room to spare: candidates
# within this of the cut are scored exactly before the cut is made.
MARGIN = 1e-4
# Rows fetched per statement when filling the cache (bound parameters stay few).
CHUNK = 500


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """The TypeScript framework's ``cosineSimilarity``: one pass in doubles, 0 for a zero vector.

    ``np.add.accumulate`` adds strictly in order, each product rounded as JavaScript rounds
    it, so the sums are bit for bit those of its loop (a dot product or ``np.sum`` would
    add in another order).
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"vectors of {len(x)} and {len(y)} numbers")
    if len(x) == 0:
        return 0.0
    dot = float(np.add.accumulate(x * y)[-1])
    na = float(np.add.accumulate(x * x)[-1])
    nb = float(np.add.accumulate(y * y)[-1])
    denominator = math.sqrt(na) * math.sqrt(nb)
    return 0.0 if denominator == 0 else dot / denominator


def _cache(conn: Connection, table: Table) -> VectorCache:
    return cache_for(conn.engine, table.name)


def search_entities(
    conn: Connection, query: list[float], top_k: int, threshold: float, session_id: str | None, workspace_id: str | None
) -> MemoryResults[Entity]:
    candidates = _candidates(conn, *q.entity_candidates(session_id, workspace_id, conn.dialect.name))
    ranked, skipped = _rank(
        conn, q.entities, candidates, query, top_k, threshold, full=not (session_id or workspace_id)
    )
    rows = {row.id: row for row in _fetch(conn, q.entities, q.ENTITY_COLUMNS, [row_id for row_id, _ in ranked])}
    found: list[Entity] = []
    for row_id, score in ranked:
        if row_id not in rows:
            continue
        try:
            entity = entity_from_row(rows[row_id], lenient=True)
        except CheckpointCorruptionError as exc:
            skipped.append(exc)
            continue
        found.append(entity.model_copy(update={"score": score}))
    return MemoryResults(found[:top_k], skipped=skipped)


def search_facts(
    conn: Connection, query: list[float], top_k: int, threshold: float, workspace_id: str | None
) -> MemoryResults[Fact]:
    candidates = _candidates(conn, *q.fact_candidates(workspace_id, conn.dialect.name))
    ranked, skipped = _rank(conn, q.facts, candidates, query, top_k, threshold, full=not workspace_id)
    rows = {row.id: row for row in _fetch(conn, q.facts, q.FACT_COLUMNS, [row_id for row_id, _ in ranked])}
    postgresql = conn.dialect.name == "postgresql"
    found = [
        fact_from_row(rows[row_id], postgresql=postgresql, with_embedding=False).model_copy(update={"score": score})
        for row_id, score in ranked
        if row_id in rows
    ]
    return MemoryResults(found[:top_k], skipped=skipped)


def _candidates(conn: Connection, statement: Any, with_rowid: bool) -> list[tuple[str, Any]]:
    """(id, marker) of each candidate, in the scan order of the TypeScript store's query."""
    rows = list(conn.execute(statement).all())
    if with_rowid:
        rows.sort(key=lambda row: row[0])
        return [(row[1], row[2]) for row in rows]
    return [(row[0], row[1]) for row in rows]


def _fetch(conn: Connection, table: Table, columns: Sequence[Any], ids: list[str]) -> list[Any]:
    rows: list[Any] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows.extend(conn.execute(select(*columns).where(table.c.id.in_(chunk))).all())
    return rows


def _rank(
    conn: Connection,
    table: Table,
    candidates: Sequence[Any],
    query: list[float],
    top_k: int,
    threshold: float,
    *,
    full: bool,
) -> tuple[list[tuple[str, float]], list[CheckpointStoreError]]:
    """The candidates that pass ``threshold``, best first (ties in scan order), at most
    ``top_k`` plus the rows tied at the cut; and the errors of rows that cannot be scored."""
    cache = _cache(conn, table)
    with cache.lock:
        stale = [row_id for row_id, marker in candidates if (cache.rows.get(row_id) or (None,))[0] != marker]
        for row in _fetch(conn, table, [table.c.id, _marker(table), table.c.embedding], stale):
            try:
                cache.store(row[0], row[1], parse_embedding(row[2]))
            except ValueError as exc:
                cache.store(row[0], row[1], None, str(exc))
        if full:
            cache.forget({row_id for row_id, _ in candidates})
        return _score(cache, table.name, candidates, query, top_k, threshold, lambda ids: _exact(conn, table, ids))


def _marker(table: Table) -> Any:
    return table.c.updated_at if table.name == "entities" else table.c.created_at


def _exact(conn: Connection, table: Table, ids: list[str]) -> dict[str, list[float] | None]:
    return {row[0]: parse_embedding(row[1]) for row in _fetch(conn, table, [table.c.id, table.c.embedding], ids)}


def _score(
    cache: VectorCache,
    table: str,
    candidates: Sequence[Any],
    query: list[float],
    top_k: int,
    threshold: float,
    exact: Callable[[list[str]], dict[str, list[float] | None]],
) -> tuple[list[tuple[str, float]], list[CheckpointStoreError]]:
    dimension = len(query)
    skipped: list[CheckpointStoreError] = []
    order: list[str] = []
    slots: list[int] = []
    for row_id, _ in candidates:
        entry = cache.rows[row_id]
        if len(entry) == 2:
            skipped.append(EmbeddingDeserializationError(str(entry[1]), table=table, row_id=row_id))
        elif entry[1] == -1:
            continue  # an empty stored value: no embedding, skipped as the TypeScript store skips it
        elif entry[1] != dimension:
            skipped.append(VectorDimensionError(dimension, int(entry[1]), row_id=row_id))
        else:
            order.append(row_id)
            slots.append(int(entry[2]))
    if not order or top_k == 0:
        return [], skipped
    block = cache.blocks[dimension]
    array = np.asarray(query, dtype=np.float64)
    norm = float(np.linalg.norm(array))
    unit = (array / norm if norm > 0 else np.zeros_like(array)).astype(np.float32)
    # A few candidates among many cached rows: copy theirs (at most an eighth of the cache);
    # otherwise score every cached row of this dimension, which copies nothing.
    if len(slots) < block.used // 8:
        approx = block.matrix[np.asarray(slots)] @ unit
    else:
        approx = (block.matrix[: block.used] @ unit)[np.asarray(slots)]
    # Exact scoring for every row that may pass the threshold and reach the cut.
    eligible = np.flatnonzero(approx >= threshold - MARGIN)
    if len(eligible) > top_k:
        cut = np.partition(approx[eligible], len(eligible) - top_k)[len(eligible) - top_k]
        eligible = eligible[approx[eligible] >= cut - MARGIN]
    chosen = [order[index] for index in sorted(eligible.tolist())]
    vectors = exact(chosen)
    scored: list[tuple[float, int, str]] = []
    for position, row_id in enumerate(chosen):
        vector = vectors.get(row_id)
        if vector is None or len(vector) != dimension:
            continue  # changed or deleted since the candidates were read
        score = cosine(query, vector)
        if score >= threshold:
            scored.append((score, position, row_id))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [(row_id, score) for score, _, row_id in scored[:top_k]], skipped
