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
from obsku_checkpoint_sqlite._engine import normalize_url

from ._workload import node_results, text_of

SERVERS = {
    "postgresql": os.environ.get("OBSKU_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("OBSKU_BENCH_MYSQL_URL", "mariadb://root@127.0.0.1:3306/test"),
}
WRITERS = (1, 4, 16)

Report = Callable[[str], None]


async def run_servers(*, quick: bool, report: Report) -> dict[str, Any]:
    duration = 0.75 if quick else 4.0
    results: dict[str, Any] = {}
    for backend, url in SERVERS.items():
        report(f"server throughput: {backend}")
        try:
            results[backend] = await _run_backend(backend, url, duration)
        except Exception as exc:  # an unreachable server is a line in the report, not a crash
            report(f"  skipped: {type(exc).__name__}: {exc}")
            results[backend] = {"skipped": f"{type(exc).__name__}: {exc}"}
    return results


async def _run_backend(backend: str, url: str, duration: float) -> dict[str, Any]:
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
            throughput = await _measure(store, duration)
        finally:
            await store.close()
    finally:
        with admin.connect() as conn:
            suffix = " WITH (FORCE)" if backend == "postgresql" else ""
            conn.execute(text(f"DROP DATABASE {name}{suffix}"))
        admin.dispose()
    return {"server_version": str(version).split("\n")[0][:80], "duration_s": duration, "throughput": throughput}


async def _measure(store: SqlAlchemyCheckpointStore, duration: float) -> dict[str, dict[str, Any]]:
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
        results[operation] = {}
        for writers in WRITERS:
            deadline = time.monotonic() + duration

            async def writer(
                session_id: str, call: Callable[[str, int], Any] = call, deadline: float = deadline
            ) -> int:
                done = 0
                while time.monotonic() < deadline:
                    await call(session_id, done)
                    done += 1
                return done

            started = time.monotonic()
            cpu_started = time.process_time()
            counts = await asyncio.gather(*(writer(session) for session in sessions[:writers]))
            elapsed = time.monotonic() - started
            results[operation][str(writers)] = round(sum(counts) / elapsed, 1)
            # The client's own CPU per operation and share of a core: when the client
            # saturates its core, more writers cannot raise throughput whatever the server does.
            cpu = time.process_time() - cpu_started
            results[operation][f"{writers}_client_cpu_ms_per_op"] = round(cpu * 1000 / max(sum(counts), 1), 2)
            results[operation][f"{writers}_client_cores"] = round(cpu / elapsed, 2)
    return results


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
