"""Write throughput on PostgreSQL and MariaDB with 1, 4 and 16 concurrent writers.

The async face, as an agent server uses it: each writer is a task writing its own
session (the store locks a session's row while writing it, so writers of different
sessions must not wait for each other). The pool holds a connection per writer.
Each run uses a scratch database that is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, make_url, text

from obsku_checkpoint_sqlite import SqlAlchemyCheckpointStore
from obsku_checkpoint_sqlite.runtime.urls import normalize_url

from ._workload import node_results, text_of

SERVERS = {
    "postgresql": os.environ.get("OBSKU_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("OBSKU_BENCH_MYSQL_URL", "mariadb://root@127.0.0.1:3306/test"),
}
WRITERS = (1, 4, 16)

Report = Callable[[str], None]


async def run_servers(*, quick: bool, report: Report) -> dict[str, Any]:
    # Seconds per concurrency level, split into windows that take turns.
    duration, rounds = (0.75, 1) if quick else (6.0, 3)
    results: dict[str, Any] = {}
    for backend, url in SERVERS.items():
        report(f"server throughput: {backend}")
        try:
            results[backend] = await _run_backend(backend, url, duration, rounds)
        except Exception as exc:  # an unreachable server is a line in the report, not a crash
            report(f"  skipped: {type(exc).__name__}: {exc}")
            results[backend] = {"skipped": f"{type(exc).__name__}: {exc}"}
    return results


async def _run_backend(backend: str, url: str, duration: float, rounds: int) -> dict[str, Any]:
    server = make_url(url)
    name = f"obsku_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_url(server, for_async=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        version = conn.execute(text("SELECT version()")).scalar_one()
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        scratch = server.set(database=name)
        store = SqlAlchemyCheckpointStore(scratch, pool_size=max(WRITERS), max_overflow=4)
        try:
            throughput = await _measure(store, duration, rounds)
        finally:
            await store.close()
    finally:
        with admin.connect() as conn:
            suffix = " WITH (FORCE)" if backend == "postgresql" else ""
            conn.execute(text(f"DROP DATABASE {name}{suffix}"))
        admin.dispose()
    return {
        "server_version": str(version).split("\n")[0][:80],
        "duration_s": duration,
        "windows": rounds,
        "throughput": throughput,
    }


async def _measure(store: SqlAlchemyCheckpointStore, duration: float, rounds: int) -> dict[str, dict[str, Any]]:
    rng = random.Random(11)
    payload = node_results(rng)
    message = text_of(200, rng)
    sessions = [(await store.create_session(f"/srv/{index}")).id for index in range(max(WRITERS))]

    async def save(session_id: str, step: int) -> None:
        await store.save_checkpoint(session_id=session_id, step=step, node_results=payload, source="loop")

    async def add(session_id: str, step: int) -> None:
        await store.add_message(session_id, role="assistant", content=message, tokens_out=step)

    operations: dict[str, Callable[[str, int], Any]] = {"save_checkpoint": save, "add_message": add}
    results: dict[str, dict[str, Any]] = {}
    for operation, call in operations.items():
        await call(sessions[0], 0)  # compile and pool warm-up
        # Each concurrency level runs in several short windows, taking turns, and reports
        # its median: a server's background work (InnoDB purge and flushing, autovacuum)
        # then weighs on every level alike instead of on whichever window it fell in.
        windows: dict[int, list[tuple[float, float]]] = {writers: [] for writers in WRITERS}
        for _ in range(rounds):
            for writers in WRITERS:
                windows[writers].append(await _window(call, sessions[:writers], duration / rounds))
        results[operation] = {}
        for writers, measured in windows.items():
            throughput, cores = sorted(measured)[len(measured) // 2]
            results[operation][str(writers)] = round(throughput, 1)
            # The client's own share of a core: when the client saturates its core, more
            # writers cannot raise throughput whatever the server does.
            results[operation][f"{writers}_client_cores"] = round(cores, 2)
    return results


async def _window(call: Callable[[str, int], Any], sessions: list[str], duration: float) -> tuple[float, float]:
    """Operations per second and client cores used, with one writer per session."""
    deadline = time.monotonic() + duration

    async def writer(session_id: str) -> int:
        done = 0
        while time.monotonic() < deadline:
            await call(session_id, done)
            done += 1
        return done

    started = time.monotonic()
    cpu_started = time.process_time()
    counts = await asyncio.gather(*(writer(session) for session in sessions))
    elapsed = time.monotonic() - started
    return sum(counts) / elapsed, (time.process_time() - cpu_started) / elapsed


def render(servers: dict[str, Any]) -> str:
    lines = [
        "Server write throughput, async face (operations/s; each writer its own session;"
        " in brackets the CPU the benchmark process itself used, in cores)",
        "",
        "| backend | operation | " + " | ".join(f"{n} writer{'s' if n > 1 else ''}" for n in WRITERS) + " |",
        "|---|---|" + "---:|" * len(WRITERS),
    ]
    for backend, result in servers.items():
        if "skipped" in result:
            lines.append(f"| {backend} | skipped: {result['skipped']} |" + " |" * len(WRITERS))
            continue
        for operation, by_writers in result["throughput"].items():
            cells = " | ".join(
                f"{by_writers[str(n)]:,.0f} ({by_writers[f'{n}_client_cores']:.2f} cores)" for n in WRITERS
            )
            lines.append(f"| {backend} | {operation} | {cells} |")
    return "\n".join(lines)
