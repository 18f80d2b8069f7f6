"""Benchmark semantic search: ``search_facts_semantic(top_k=10)`` over one workspace, its time and memory.

    python -m benchmarks.memory                                  # 10,000 and 100,000 facts of 1,536 dimensions
    python -m benchmarks.memory --typescript /tmp/obsku-ts       # with the TypeScript package's time as the baseline
    python -m benchmarks.memory --rows 10000 --backends sqlite   # one point
    python -m benchmarks.memory --rows 1000 --dim 64 --no-write  # a quick look, printed only

Each point (a backend and a number of facts) runs in a process of its own. It fills a
fresh database (a temporary SQLite file, or a scratch PostgreSQL or MariaDB database
dropped afterwards) with facts in one workspace whose embeddings are JSON text, as the
TypeScript package stores them, inserted in bulk; times the first search (which decodes
every embedding into the cache) and the warm searches, each with a query of its own;
measures the search's memory; and times the baseline on the same data: the TypeScript
package under Bun where ``--typescript`` names the directory it is installed in (SQLite
and PostgreSQL), otherwise the TypeScript store's method in pure Python (every candidate's
JSON parsed and scored on each search). The first search's ids must be the baseline's.

Memory, the number the target is about: the bytes the store keeps for searching (every
object reachable from the process's vector caches, each counted once: NumPy arrays by
their buffers, other objects by ``sys.getsizeof``) plus the most a warm search allocates
on top of that (tracemalloc's peak, which sees NumPy's buffers too), against the vectors'
own float32 size (facts x dimensions x 4 bytes). The growth of the process's resident set
over the first search is reported beside it.

Unless ``--no-write``, the result replaces the ``memory`` section of
``benchmarks/results/latest.json`` and leaves the rest of the file as it is;
``scripts/performance_page.py`` renders it with the other sections.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import fields, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psutil
from sqlalchemy import create_engine, make_url, select

from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.db.memory_queries import facts
from obsku_checkpoint_sqlite.ops.memory_search import cosine
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from obsku_checkpoint_sqlite.runtime.vectors import caches

from . import _environment
from ._server_floor import admin, libpq_url, pymysql_connect, scratch

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
SCRIPT = Path(__file__).resolve().parent / "memory_typescript.mjs"
SERVERS = {
    "postgresql": os.environ.get("OBSKU_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("OBSKU_BENCH_MYSQL_URL", "mariadb://root@127.0.0.1:3306/test"),
}
TYPESCRIPT_BACKENDS = ("sqlite", "postgresql")
WORKSPACE = "ws-bench"
SEED = 7
BATCH = 1_000
COLUMNS = ("id", "workspace_id", "content", "confidence", "source_session_id", "created_at", "embedding")

# The targets: a warm search over SMALL facts within LIMIT_MS, at most twice that per
# ten times the facts, and the search's memory within the vectors' float32 size plus a fifth.
SMALL = 10_000
LIMIT_MS = 50.0
GROWTH = 2.0
MEMORY_LIMIT = 1.2
TARGETED = ("sqlite", "postgresql")
NAMES = {"sqlite": "SQLite file", "postgresql": "PostgreSQL"}


def fill(url: str, rows: int, dim: int) -> None:
    """``rows`` facts in one workspace, their embeddings the JSON text of uniform random doubles."""
    generator = np.random.default_rng(SEED)
    now = int(time.time() * 1000)
    backend = make_url(url).get_backend_name()

    def batches() -> Iterator[list[tuple[Any, ...]]]:
        for start in range(0, rows, BATCH):
            vectors = generator.uniform(-1.0, 1.0, (min(BATCH, rows - start), dim))
            texts = [orjson.dumps(vector, option=orjson.OPT_SERIALIZE_NUMPY) for vector in vectors]
            yield [
                (str(uuid.uuid4()), WORKSPACE, f"fact {start + index}", 0.5, None, now + start + index,
                 text.decode() if backend == "sqlite" else text)
                for index, text in enumerate(texts)
            ]  # fmt: skip

    columns = ", ".join(COLUMNS)
    if backend == "sqlite":
        import sqlite3

        with sqlite3.connect(make_url(url).database or "") as conn:
            insert = f"INSERT INTO facts ({columns}) VALUES ({', '.join('?' * len(COLUMNS))})"
            for batch in batches():
                conn.executemany(insert, batch)
    elif backend == "postgresql":
        import psycopg

        # PostgreSQL's default pglz takes minutes to compress 3 GB of JSON text, lz4 one (where
        # the server was built with it). Reads decompress either, and are timed as they come.
        with suppress(psycopg.errors.FeatureNotSupported):
            admin(backend, make_url(url), "ALTER TABLE facts ALTER COLUMN embedding SET COMPRESSION lz4")
        copy_facts = f"COPY facts ({columns}) FROM STDIN (FORMAT BINARY)"
        with (
            psycopg.connect(libpq_url(make_url(url))) as conn,
            conn.cursor() as cursor,
            cursor.copy(copy_facts) as copy,
        ):
            copy.set_types(["text", "text", "text", "float4", "text", "int8", "bytea"])
            for batch in batches():
                for row in batch:
                    copy.write_row(row)
        admin(backend, make_url(url), "VACUUM ANALYZE facts")
    else:
        conn = pymysql_connect(make_url(url), autocommit=False)
        try:
            with conn.cursor() as cursor:
                insert = f"INSERT INTO facts ({columns}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
                for batch in batches():
                    cursor.executemany(insert, batch)
                    conn.commit()
        finally:
            conn.close()
        admin(backend, make_url(url), "ANALYZE TABLE facts")


def queries(count: int, dim: int) -> list[list[float]]:
    generator = np.random.default_rng(SEED + 1)
    result: list[list[float]] = generator.uniform(-1.0, 1.0, (count, dim)).tolist()
    return result


def kept_bytes() -> int:
    """Bytes reachable from the process's vector caches, each object once; NumPy arrays by their
    buffers. Objects that are not the caches' own (a connection a candidate list is keyed by, a
    lock) count nothing."""
    seen: set[int] = set()
    total = 0
    stack: list[Any] = list(caches())
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            total += sys.getsizeof(obj)  # an array that owns its buffer counts it
            if obj.base is not None:
                stack.append(obj.base)
        elif isinstance(obj, dict):
            total += sys.getsizeof(obj)
            stack += obj.keys()
            stack += obj.values()
        elif isinstance(obj, (list, tuple, set, frozenset)):
            total += sys.getsizeof(obj)
            stack += obj
        elif isinstance(obj, (str, bytes, int, float)):
            total += sys.getsizeof(obj)
        elif is_dataclass(obj):
            total += sys.getsizeof(obj) + sys.getsizeof(obj.__dict__)
            stack += [getattr(obj, field.name) for field in fields(obj)]
    return total


def python_baseline(url: str, query: list[float], top_k: int) -> tuple[float, list[str]]:
    """The TypeScript store's method in pure Python: every candidate parsed and scored, per search."""
    engine = create_engine(normalize_url(url, for_async=False))
    try:
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
        elapsed = time.perf_counter() - started
    finally:
        engine.dispose()
    return elapsed * 1000, [row_id for _, row_id in scored[:top_k]]


def typescript_baseline(
    directory: str, backend: str, url: str, search: list[list[float]], top_k: int
) -> tuple[list[float], list[str]]:
    """Each search's milliseconds in the TypeScript package under Bun, and its first search's ids."""
    target = make_url(url).database if backend == "sqlite" else libpq_url(make_url(url))
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(search, handle)
        handle.flush()
        bun = str(Path(directory) / "node_modules" / ".bin" / "bun")
        command = [bun, str(SCRIPT), str(Path(directory).resolve()), backend, str(target), WORKSPACE,
                   handle.name, str(top_k)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    return result["ms"], result["first"]


def measure(backend: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """One point: fill, first search, warm searches, memory, baseline."""
    process = psutil.Process()
    store = sync.SqlAlchemyCheckpointStore(url)
    try:
        store.list_facts(limit=1)  # the schema
        started = time.perf_counter()
        fill(url, args.rows, args.dim)
        preload = time.perf_counter() - started
        search = queries(args.repeat + 1, args.dim)

        rss_before = process.memory_info().rss
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        started = time.perf_counter()
        first = store.search_facts_semantic(search[0], top_k=args.top_k, workspace_id=WORKSPACE)
        cold = time.perf_counter() - started
        rss_after = process.memory_info().rss
        peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

        warm = []
        for query in search[1:]:
            started = time.perf_counter()
            store.search_facts_semantic(query, top_k=args.top_k, workspace_id=WORKSPACE)
            warm.append(time.perf_counter() - started)

        kept = kept_bytes()
        tracemalloc.start()
        store.search_facts_semantic(search[1], top_k=args.top_k, workspace_id=WORKSPACE)
        transient = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        store.close()

    float32 = args.rows * args.dim * 4
    point: dict[str, Any] = {
        "rows": args.rows,
        "dim": args.dim,
        "top_k": args.top_k,
        "preload_s": round(preload, 1),
        "first_ms": round(cold * 1000, 1),
        "warm_median_ms": round(statistics.median(warm) * 1000, 2),
        "warm_p90_ms": round(float(np.percentile(warm, 90)) * 1000, 2),
        "warm_min_ms": round(min(warm) * 1000, 2),
        "warm_n": len(warm),
        "vectors_float32_bytes": float32,
        "kept_bytes": kept,
        "search_peak_bytes": transient,
        "memory_bytes": kept + transient,
        "memory_over_float32": round((kept + transient) / float32, 3),
        "rss_growth_bytes": rss_after - rss_before,
        "rss_peak_growth_bytes": max(0, peak_after - rss_before) if peak_after > peak_before else None,
    }
    ids = [fact.id for fact in first]
    if args.no_baseline:
        return point
    if args.typescript and backend in TYPESCRIPT_BACKENDS:
        times, found = typescript_baseline(args.typescript, backend, url, search[: args.baseline_repeat], args.top_k)
        point["baseline"] = {"kind": "typescript", "median_ms": round(statistics.median(times), 1), "n": len(times)}
    else:
        elapsed, found = python_baseline(url, search[0], args.top_k)
        point["baseline"] = {"kind": "python", "median_ms": round(elapsed, 1), "n": 1}
    point["same_results_as_baseline"] = found == ids
    return point


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh, empty database of ``backend``, gone on exit."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="obsku-bench-memory-") as directory:
            yield f"sqlite:///{Path(directory) / 'memory.db'}"
        return
    name = f"obsku_bench_memory_{uuid.uuid4().hex[:8]}"
    with scratch(backend, make_url(SERVERS[backend]), name) as url:
        yield url.render_as_string(hide_password=False)


def run_point(backend: str, rows: int, args: argparse.Namespace) -> dict[str, Any]:
    """One point in a process of its own, so its memory figures are its own."""
    command = [sys.executable, "-m", "benchmarks.memory", "--point", backend, "--rows", str(rows), "--dim",
               str(args.dim), "--repeat", str(args.repeat), "--baseline-repeat", str(args.baseline_repeat),
               "--top-k", str(args.top_k)]  # fmt: skip
    if args.typescript:
        command += ["--typescript", args.typescript]
    if args.no_baseline:
        command.append("--no-baseline")
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        return {"rows": rows, "skipped": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def verdicts(points: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The issue's targets against the points measured; a point not measured gives "not measured"."""
    found: list[dict[str, Any]] = []
    for backend in TARGETED:
        by_rows = points.get(backend, {})
        small = by_rows.get(str(SMALL), {}).get("warm_median_ms")
        for rows_key, point in sorted(by_rows.items(), key=lambda item: int(item[0])):
            rows = int(rows_key)
            if rows < SMALL:
                continue
            growth = GROWTH ** math.log10(rows / SMALL)
            limit = LIMIT_MS * growth
            name = f"search_facts_semantic(top_k=10), {NAMES[backend]}, {rows:,} facts"
            shown = f"≤ {limit:g} ms" + ("" if rows == SMALL else f" ({GROWTH:g}× per 10× facts)")
            ms = point.get("warm_median_ms")
            value = "not measured" if ms is None else f"{ms:.1f} ms"
            if ms is not None and small and rows != SMALL:
                value += f" ({ms / small:.1f}× the {SMALL:,}-fact time)"
            found.append({"target": f"{name}: warm {shown}", "value": value, "limit": f"≤ {limit:g} ms",
                          "holds": None if ms is None else ms <= limit})  # fmt: skip
            share = point.get("memory_over_float32")
            found.append({
                "target": f"{name}: memory ≤ the vectors' float32 size + 20 %",
                "value": "not measured" if share is None else f"{share:.2f}× float32",
                "limit": f"≤ {MEMORY_LIMIT}×", "holds": None if share is None else share <= MEMORY_LIMIT,
            })  # fmt: skip
    return found


def merge(section: dict[str, Any], output: Path) -> None:
    """Replace the ``memory`` section of the results file, keeping everything else."""
    result = json.loads(output.read_text(encoding="utf-8")) if output.exists() else {}
    result["memory"] = section
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000", help="numbers of facts, comma-separated")
    parser.add_argument("--dim", type=int, default=1536)
    parser.add_argument("--repeat", type=int, default=20, help="warm searches per point")
    parser.add_argument("--baseline-repeat", type=int, default=3, help="TypeScript searches per point")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--backends", default="sqlite,postgresql,mariadb")
    parser.add_argument("--typescript", help="a directory with Bun and the TypeScript packages in node_modules")
    parser.add_argument("--no-baseline", action="store_true", help="time no baseline (implies --no-write)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the results file whose memory section to write")
    parser.add_argument("--no-write", action="store_true", help="print the result only")
    parser.add_argument("--note", help="a sentence the page shows with the run (say, that the machine was busy)")
    parser.add_argument("--point", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.point:
        with database(args.point) as url:
            print(json.dumps(measure(args.point, url, argparse.Namespace(**{**vars(args), "rows": int(args.rows)}))))
        return 0

    started = time.monotonic()
    points: dict[str, dict[str, dict[str, Any]]] = {}
    for backend in args.backends.split(","):
        for rows in (int(value) for value in args.rows.split(",")):
            point = run_point(backend, rows, args)
            points.setdefault(backend, {})[str(rows)] = point
            print(json.dumps({backend: point}), file=sys.stderr, flush=True)
    flags = [f"--{name.replace('_', '-')} {value}" for name, value in vars(args).items()
             if name in ("rows", "dim", "repeat", "backends") and value != parser.get_default(name)]  # fmt: skip
    section = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks.memory", *flags, *(["--typescript DIR"] * bool(args.typescript))]),
        "duration_s": round(time.monotonic() - started, 1),
        "environment": _environment.describe(),
        "workload": {"dim": args.dim, "top_k": args.top_k, "warm_searches": args.repeat},
        "points": points,
        "targets": verdicts(points),
    }
    if args.note:
        section["note"] = args.note
    print(json.dumps(section, indent=2, ensure_ascii=False))
    if not (args.no_write or args.no_baseline):
        merge(section, args.output)
        print(f"wrote the memory section of {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
