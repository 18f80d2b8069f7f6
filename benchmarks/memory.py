"""Benchmark semantic search: ``search_facts_semantic(top_k=10)`` over one workspace.

    python -m benchmarks.memory                       # 10,000 facts of 1,536 dimensions, SQLite and PostgreSQL
    python -m benchmarks.memory --rows 1000 --dim 64  # smaller
    python -m benchmarks.memory --backends sqlite

Fills a fresh database (a temporary SQLite file; a scratch PostgreSQL database at
``OBSKU_BENCH_POSTGRES_URL``, default the local test server, dropped afterwards) with
facts whose embeddings are stored as JSON text, as the TypeScript package stores them;
then times the first search (which decodes every embedding into the cache), the warm
searches (median of ``--repeat``), and, as the baseline, the TypeScript store's own
method done in pure Python (parse every candidate's JSON, score it in a loop, sort).
Reports the cache's size against the vectors' float32 size. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, make_url, select, text

from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.db.memory_queries import facts
from obsku_checkpoint_sqlite.ops.memory_search import cosine
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from obsku_checkpoint_sqlite.runtime.vectors import cached_bytes

POSTGRES = os.environ.get("OBSKU_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
WORKSPACE = "ws-bench"


def fill(store: sync.SqlAlchemyCheckpointStore, url: str, rows: int, dim: int, seed: int) -> list[float]:
    """``rows`` facts in one workspace, written in batches; returns a query vector."""
    generator = random.Random(seed)
    engine = create_engine(normalize_url(url, for_async=False))
    now = int(time.time() * 1000)
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for index in range(rows):
            vector = [generator.uniform(-1.0, 1.0) for _ in range(dim)]
            embedding: str | bytes = orjson.dumps(vector).decode()
            if conn.dialect.name != "sqlite":
                embedding = embedding.encode()  # type: ignore[union-attr]
            batch.append(
                {
                    "id": str(uuid.uuid4()), "workspace_id": WORKSPACE, "content": f"fact {index}",
                    "confidence": 0.5, "source_session_id": None, "created_at": now + index, "embedding": embedding,
                }
            )  # fmt: skip
            if len(batch) == 500:
                conn.execute(facts.insert(), batch)
                batch = []
        if batch:
            conn.execute(facts.insert(), batch)
    engine.dispose()
    return [generator.uniform(-1.0, 1.0) for _ in range(dim)]


def baseline(url: str, query: list[float], top_k: int) -> float:
    """The TypeScript store's method in pure Python: every candidate parsed and scored, per search."""
    engine = create_engine(normalize_url(url, for_async=False))
    started = time.perf_counter()
    with engine.connect() as conn:
        statement = select(facts.c.id, facts.c.embedding).where(
            facts.c.embedding.is_not(None), facts.c.workspace_id == WORKSPACE
        )
        scored = []
        for row_id, stored in conn.execute(statement):
            vector = json.loads(stored if isinstance(stored, str) else bytes(stored).decode())
            scored.append((cosine(query, vector), row_id))
        scored.sort(key=lambda item: -item[0])
        scored[:top_k]
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def measure(url: str, rows: int, dim: int, repeat: int, top_k: int) -> dict[str, Any]:
    store = sync.SqlAlchemyCheckpointStore(url)
    try:
        store.list_facts(limit=1)  # the schema
        query = fill(store, url, rows, dim, seed=7)
        started = time.perf_counter()
        first = store.search_facts_semantic(query, top_k=top_k, workspace_id=WORKSPACE)
        cold = time.perf_counter() - started
        warm = []
        for _ in range(repeat):
            started = time.perf_counter()
            again = store.search_facts_semantic(query, top_k=top_k, workspace_id=WORKSPACE)
            warm.append(time.perf_counter() - started)
        assert [fact.id for fact in again] == [fact.id for fact in first]
        cache_bytes = cached_bytes()
        brute = baseline(url, query, top_k)
    finally:
        store.close()
    return {
        "rows": rows,
        "dim": dim,
        "top_k": top_k,
        "cold_ms": round(cold * 1000, 1),
        "warm_median_ms": round(statistics.median(warm) * 1000, 2),
        "warm_min_ms": round(min(warm) * 1000, 2),
        "pure_python_baseline_ms": round(brute * 1000, 1),
        "cache_bytes": cache_bytes,
        "vectors_float32_bytes": rows * dim * 4,
        "cache_over_float32": round(cache_bytes / (rows * dim * 4), 3),
    }


@contextmanager
def scratch_postgres() -> Iterator[str]:
    server = make_url(POSTGRES)
    name = f"obsku_bench_memory_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(server, for_async=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=1536)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as directory:
                url = f"sqlite:///{Path(directory) / 'memory.db'}"
                results[backend] = measure(url, args.rows, args.dim, args.repeat, args.top_k)
        elif backend == "postgresql":
            with scratch_postgres() as url:
                results[backend] = measure(url, args.rows, args.dim, args.repeat, args.top_k)
        print(json.dumps({backend: results[backend]}), file=sys.stderr)
    print(json.dumps(results, indent=2))
    return 0 if all(math.isfinite(r["warm_median_ms"]) for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
