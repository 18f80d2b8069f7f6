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
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import orjson
from numpy.typing import NDArray
from sqlalchemy import Connection, Numeric, Select, Table, bindparam, cast, func, select
from sqlalchemy.engine import Dialect

from ..db import memory_queries as q
from ..db.memory_rows import entity_from_row, fact_from_row, parse_embedding
from ..errors import (
    CheckpointCorruptionError,
    CheckpointStoreError,
    EmbeddingDeserializationError,
    VectorDimensionError,
)
from ..memory_dto import Entity, Fact, MemoryResults
from ..runtime.vectors import Pending, VectorCache, cache_for, in_background

# How far a float32 score may be from the exact one, with room to spare: candidates
# within this of the cut are scored exactly before the cut is made.
MARGIN = 1e-4
# Candidate lists kept per table (a few per pooled connection and filter).
MAX_LISTS = 64
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
    return _Scorer(x)(y)


class _Scorer:
    """``cosine(query, vector)`` for one query and many vectors: the query's sum is taken once
    (each of the three sums is its own running total, so the bits are the same)."""

    def __init__(self, query: NDArray[np.float64]) -> None:
        self.query = query
        self.root = math.sqrt(float(np.add.accumulate(query * query)[-1]))

    def __call__(self, vector: NDArray[np.float64]) -> float:
        dot = float(np.add.accumulate(self.query * vector)[-1])
        denominator = self.root * math.sqrt(float(np.add.accumulate(vector * vector)[-1]))
        return 0.0 if denominator == 0 else dot / denominator


def _decode(value: str | bytes | None) -> NDArray[np.float64] | None:
    """``parse_embedding``'s numbers as an array: the same values, None and errors, without a
    list of floats in between when the value is the JSON text of plain numbers."""
    if value and not any(mark in value for mark in _LETTERS[isinstance(value, str)]):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list) and parsed:
            array = np.array(parsed)
            if array.ndim == 1 and array.dtype.kind == "f" and np.isfinite(array).all():
                return array
    vector = parse_embedding(value)
    return None if vector is None else np.asarray(vector, dtype=np.float64)


# Numbers are written with digits, signs, a point and "e" only: these mean true, false, null
# or a string (which np.array would turn into numbers or objects), left to parse_embedding.
_LETTERS: dict[bool, tuple[Any, ...]] = {True: ('"', "t", "f", "n"), False: (b'"', b"t", b"f", b"n")}


def _cache(conn: Connection, table: Table) -> VectorCache:
    return cache_for(conn.engine, table.name)


def search_entities(
    conn: Connection, query: list[float], top_k: int, threshold: float, session_id: str | None, workspace_id: str | None
) -> MemoryResults[Entity]:
    statement, with_rowid = q.entity_candidates(session_id, workspace_id, conn.dialect.name)
    key = ("entities", session_id, workspace_id)
    early = _rank_early(conn, q.entities, key, query, top_k, threshold)
    candidates = _candidates(conn, q.entities, statement, with_rowid, key)
    everything = not (session_id or workspace_id)
    ranked, skipped = _rank(
        conn, q.entities, q.ENTITY_COLUMNS, candidates, key, query, top_k, threshold, full=everything, early=early
    )
    found: list[Entity] = []
    for row, score in ranked:
        try:
            entity = entity_from_row(row, lenient=True)
        except CheckpointCorruptionError as exc:
            skipped.append(exc)
            continue
        found.append(entity.model_copy(update={"score": score}))
    return MemoryResults(found, skipped=skipped)


def search_facts(
    conn: Connection, query: list[float], top_k: int, threshold: float, workspace_id: str | None
) -> MemoryResults[Fact]:
    statement, with_rowid = q.fact_candidates(workspace_id, conn.dialect.name)
    key = ("facts", None, workspace_id)
    early = _rank_early(conn, q.facts, key, query, top_k, threshold)
    candidates = _candidates(conn, q.facts, statement, with_rowid, key)
    ranked, skipped = _rank(
        conn, q.facts, q.FACT_COLUMNS, candidates, key, query, top_k, threshold, full=not workspace_id, early=early
    )
    postgresql = conn.dialect.name == "postgresql"
    found = [
        fact_from_row(row, postgresql=postgresql, with_embedding=False).model_copy(update={"score": score})
        for row, score in ranked
    ]
    return MemoryResults(found, skipped=skipped)


def _candidates(
    conn: Connection, table: Table, statement: Any, with_rowid: bool, key: tuple[Any, ...]
) -> list[tuple[str, Any]]:
    """(id, marker) of each candidate, in the scan order of the TypeScript store's query.

    On SQLite a connection's last list is reused while nothing was written: ``data_version``
    moves when another connection (of any process) commits, ``total_changes()`` when this
    one writes; either change, and the list is read again. On PostgreSQL the last list is
    reused while the candidates' fingerprint (``_fingerprints``) is the same.
    """
    cache = _cache(conn, table)
    if conn.dialect.name == "postgresql":
        return _listed(conn, cache, statement, key)
    stamp = _sqlite_stamp(conn)
    if stamp is not None:
        with cache.lock:
            hit = cache.candidates.get((key, id(stamp[0])))
        if hit is not None and hit[0] is stamp[0] and hit[1] == stamp[1]:
            listed: list[tuple[str, Any]] = hit[-1]
            return listed
    rows = list(conn.execute(statement).all())
    if with_rowid:
        rows.sort(key=lambda row: row[0])
        found = [(row[1], row[2]) for row in rows]
    else:
        found = [(row[0], row[1]) for row in rows]
    if stamp is not None:
        with cache.lock:
            if len(cache.candidates) >= MAX_LISTS:
                cache.candidates.clear()
            cache.candidates[(key, id(stamp[0]))] = (stamp[0], stamp[1], found)
    return found


def _listed(conn: Connection, cache: VectorCache, statement: Any, key: tuple[Any, ...]) -> list[tuple[str, Any]]:
    with cache.lock:
        hit = cache.candidates.get(key)
    fingerprint_of, listing = (hit[0], hit[1]) if hit is not None else _fingerprints(statement, conn.dialect)
    if hit is not None and tuple(conn.execute(fingerprint_of).one()) == hit[2]:
        listed: list[tuple[str, Any]] = hit[-1]
        return listed
    rows = conn.execute(listing).all()
    found = [(row[0], row[1]) for row in rows]
    fingerprint = tuple(rows[0][2:]) if rows else (0, None, None)
    with cache.lock:
        if len(cache.candidates) >= MAX_LISTS:
            cache.candidates.clear()
        cache.candidates[key] = (fingerprint_of, listing, fingerprint, found)
    return found


def _fingerprints(statement: Any, dialect: Dialect) -> tuple[Any, Any]:
    """A statement giving the fingerprint of the candidates of ``statement`` (id, marker), and
    one giving the candidates with it on every row (both from one snapshot).

    The fingerprint is the count, the sum of the markers and the combination of 64-bit
    hashes of each id seeded with its marker: the server reads the candidates and sends one
    row instead of one a candidate. A change that kept all three would need two sets of rows
    whose hashes combine alike. The hashes are combined with ``bit_xor`` (PostgreSQL 14 and
    newer), which stays a bigint, or else summed as numeric, which costs the server more.
    """
    rows = statement.subquery()
    row_id, marker = rows.c
    hashed = func.hashtextextended(row_id, func.coalesce(marker, 0))
    version = dialect.server_version_info or (0,)
    combined = func.bit_xor(hashed) if version >= (14,) else func.sum(cast(hashed, Numeric()))
    parts = (func.count(), func.sum(marker), combined)
    return select(*parts), select(row_id, marker, *(part.over() for part in parts))


def _sqlite_stamp(conn: Connection) -> tuple[Any, tuple[Any, ...]] | None:
    """The SQLite connection and what says whether its database changed, or None elsewhere."""
    if conn.dialect.name != "sqlite":
        return None
    version = conn.exec_driver_sql("SELECT data_version, total_changes() FROM pragma_data_version()").one()
    return conn.connection.dbapi_connection, tuple(version)


def _fetch(conn: Connection, table: Table, columns: Sequence[Any], ids: list[str]) -> Iterator[Any]:
    """The rows of ``ids``, a statement per ``CHUNK`` of them: one chunk's rows in memory at a time."""
    statement = _by_ids(table, tuple(columns))
    for start in range(0, len(ids), CHUNK):
        yield from conn.execute(statement, {"ids": ids[start : start + CHUNK]}).all()


_BY_IDS: dict[tuple[Any, ...], Select[Any]] = {}


def _by_ids(table: Table, columns: tuple[Any, ...]) -> Select[Any]:
    # Built once: SQLAlchemy then finds its compiled form without walking a new statement.
    key = (table.name, *(column.name for column in columns))
    statement = _BY_IDS.get(key)
    if statement is None:
        statement = _BY_IDS[key] = select(*columns).where(table.c.id.in_(bindparam("ids", expanding=True)))
    return statement


def _rank(
    conn: Connection,
    table: Table,
    columns: Sequence[Any],
    candidates: Sequence[Any],
    key: tuple[Any, ...],
    query: list[float],
    top_k: int,
    threshold: float,
    *,
    full: bool,
    early: Pending[_EarlyShortlist | None] | None = None,
) -> tuple[list[tuple[Any, float]], list[CheckpointStoreError]]:
    """The rows (``columns``, the embedding among them) of the candidates that pass
    ``threshold``, best first (ties in scan order), at most ``top_k``, with their scores; and
    the errors of rows that cannot be scored. ``early``: the shortlist ``_rank_early`` began."""
    cache = _cache(conn, table)
    # Taken before the lock, which the background shortlist holds while it computes.
    began = early.result() if early is not None else None

    def exact(ids: list[str]) -> dict[str, Any]:
        return {row.id: row for row in _fetch(conn, table, columns, ids)}

    with cache.lock:
        plan = cache.plans.get((key, len(query)))
        if plan is not None and plan[1] == cache.generation and (plan[0] is candidates or plan[0] == candidates):
            # The same candidates with the same markers over an unchanged cache: every row
            # is fresh, and the rows to score are those found last time.
            order, slots, skipped = plan[2], plan[3], list(plan[4])
            if began is not None and began.plan is plan and began.generation == cache.generation:
                chosen = began.chosen  # computed from these very rows while the server answered
            else:
                chosen = _shortlist(cache, order, slots, query, top_k, threshold)
            return _scored(chosen, query, top_k, threshold, exact), skipped
        stale = [row_id for row_id, marker in candidates if (cache.rows.get(row_id) or (None,))[0] != marker]
        cache.expect(len(stale))
        for row in _fetch(conn, table, [table.c.id, _marker(table), table.c.embedding], stale):
            try:
                cache.store(row[0], row[1], _decode(row[2]))
            except ValueError as exc:
                cache.store(row[0], row[1], None, str(exc))
        cache.expect(0)
        if full:
            cache.forget({row_id for row_id, _ in candidates})
        order, slots, skipped = _classify(cache, table.name, candidates, len(query))
        if len(cache.plans) >= MAX_LISTS:
            cache.plans.clear()
        cache.plans[(key, len(query))] = (candidates, cache.generation, order, slots, list(skipped))
        chosen = _shortlist(cache, order, slots, query, top_k, threshold)
        return _scored(chosen, query, top_k, threshold, exact), skipped


class _EarlyShortlist(NamedTuple):
    plan: tuple[Any, ...]
    generation: int
    chosen: list[str]


def _rank_early(
    conn: Connection, table: Table, key: tuple[Any, ...], query: list[float], top_k: int, threshold: float
) -> Pending[_EarlyShortlist | None] | None:
    """On PostgreSQL, the shortlist of the filter's last plan, begun in the background.

    Whether the last candidates still hold takes a round trip to the server, which scans
    them; the shortlist is the matrix product, as long again. With the shortlist begun
    first the two run at once, and ``_rank`` takes it if the candidates and the cache
    turn out unchanged (the same inputs, so the same shortlist); otherwise it is dropped.
    """
    if conn.dialect.name != "postgresql":
        return None
    cache = _cache(conn, table)
    with cache.lock:
        plan = cache.plans.get((key, len(query)))
    if plan is None:
        return None
    return in_background(_shortlist_of_plan, cache, plan, query, top_k, threshold)


def _shortlist_of_plan(
    cache: VectorCache, plan: tuple[Any, ...], query: list[float], top_k: int, threshold: float
) -> _EarlyShortlist | None:
    with cache.lock:
        if plan[1] != cache.generation:
            return None
        return _EarlyShortlist(plan, cache.generation, _shortlist(cache, plan[2], plan[3], query, top_k, threshold))


def _marker(table: Table) -> Any:
    return table.c.updated_at if table.name == "entities" else table.c.created_at


def _classify(
    cache: VectorCache, table: str, candidates: Sequence[Any], dimension: int
) -> tuple[list[str], NDArray[np.intp], list[CheckpointStoreError]]:
    """The candidates that can be scored against a query of ``dimension`` numbers, with
    their slots in its block, and the errors of those that cannot."""
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
    return order, np.asarray(slots, dtype=np.intp), skipped


def _shortlist(
    cache: VectorCache, order: list[str], slots: NDArray[np.intp], query: list[float], top_k: int, threshold: float
) -> list[str]:
    """The candidates (of ``order``, their vectors at ``slots``) whose float32 score may pass
    ``threshold`` and reach the first ``top_k``, in scan order: the rows to score exactly."""
    dimension = len(query)
    if not order or top_k == 0:
        return []
    block = cache.blocks[dimension]
    array = np.asarray(query, dtype=np.float64)
    norm = float(np.linalg.norm(array))
    unit = (array / norm if norm > 0 else np.zeros_like(array)).astype(np.float32)
    # A few candidates among many cached rows: copy theirs (at most an eighth of the cache);
    # otherwise score every cached row of this dimension, which copies nothing.
    everything = len(slots) >= block.used // 8
    approx = (block.matrix[: block.used] @ unit)[slots] if everything else block.matrix[slots] @ unit
    # Exact scoring for every row that may pass the threshold and reach the cut.
    eligible = np.flatnonzero(approx >= threshold - MARGIN)
    if len(eligible) > top_k:
        cut = np.partition(approx[eligible], len(eligible) - top_k)[len(eligible) - top_k]
        eligible = eligible[approx[eligible] >= cut - MARGIN]
    return [order[index] for index in sorted(eligible.tolist())]


def _scored(
    chosen: list[str], query: list[float], top_k: int, threshold: float, exact: Callable[[list[str]], dict[str, Any]]
) -> list[tuple[Any, float]]:
    """The rows of ``chosen`` that pass ``threshold``, scored as the TypeScript store scores
    them from their stored text, best first (ties in scan order), at most ``top_k``."""
    if not chosen:
        return []
    dimension = len(query)
    rows = exact(chosen)
    scorer = _Scorer(np.asarray(query, dtype=np.float64))
    scored: list[tuple[float, int, Any]] = []
    for position, row_id in enumerate(chosen):
        row = rows.get(row_id)
        vector = None if row is None else _decode(row.embedding)
        if vector is None or len(vector) != dimension:
            continue  # changed or deleted since the candidates were read
        score = scorer(vector)
        if score >= threshold:
            scored.append((score, position, row))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [(row, score) for score, _, row in scored[:top_k]]
