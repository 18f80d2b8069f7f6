"""Flat growth: the same operations with 1,000 and with 100,000 rows in the session.

Each size has its own file, where another session's rows are interleaved with the
measured session's (one for one), as on a server that writes many sessions at once.
Both sizes run interleaved in one loop, so the ratio compares like with like. The
floor runs too: where it grows, SQLite itself grows (a deeper B-tree), not the store.
Also measured here: the peak memory ``get_messages(limit=50)`` adds on the large session.
"""

from __future__ import annotations

import gc
import os
import random
import tracemalloc
from collections.abc import Callable
from typing import Any

from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.db import values

from ._floor import Floor
from ._workload import Contender, History, counter, interleaved, node_results, seed, text_of

SMALL = 1_000
LARGE = 100_000
QUICK_LARGE = 20_000
MEMORY_LIMIT_MB = 5.0

Report = Callable[[str], None]


async def run_scaling(directory: str, *, quick: bool, report: Report) -> dict[str, Any]:
    large = QUICK_LARGE if quick else LARGE
    rng = random.Random(7)
    payload = node_results(rng)
    message = text_of(200, rng)
    stores: dict[int, Any] = {}
    floors: dict[int, Floor] = {}
    sessions: dict[int, str] = {}
    writers: dict[tuple[str, int], str] = {}
    for size in (SMALL, large):
        path = os.path.join(directory, f"scaling-{size}.db")
        store = sync.SqliteCheckpointStore(path)
        store.get_session("warm-up")
        report(f"  seeding {size:,} rows per table in the session (+{size:,} of another session)...")
        sessions[size] = values.new_id()
        seed(path, sessions[size], History(messages=size, checkpoints=size, interleave=1), rng)
        stores[size] = store
        floors[size] = Floor(path)
        # Writes go to the large session itself: what grows is what they must look at.
        writers["sync", size] = writers["floor", size] = sessions[size]

    steps = counter()
    # Many short turns, as in the main suite: with 8 turns of 60 calls one stall of the
    # machine on a contender's turns moved its median by a third (add_message read 1.31x
    # at 100,000 while its floor read 0.91x, against 0.91-1.09x in five runs before).
    rounds, calls = (3, 20) if quick else (24, 20)

    def contenders(make: Callable[[str, int], Callable[[], Any]]) -> list[Contender]:
        return [Contender(f"{kind}@{size}", make(kind, size)) for kind in ("floor", "sync") for size in (SMALL, large)]

    def save(kind: str, size: int) -> Callable[[], Any]:
        if kind == "floor":
            return lambda: floors[size].save_checkpoint(sessions[size], next(steps), payload)
        return lambda: stores[size].save_checkpoint(
            session_id=sessions[size], step=next(steps), node_results=payload, source="loop"
        )

    def add(kind: str, size: int) -> Callable[[], Any]:
        if kind == "floor":
            return lambda: floors[size].add_message(sessions[size], message)
        return lambda: stores[size].add_message(sessions[size], role="user", content=message)

    def latest(namespace: str | None) -> Callable[[str, int], Callable[[], Any]]:
        def make(kind: str, size: int) -> Callable[[], Any]:
            if kind == "floor":
                return lambda: floors[size].get_latest_checkpoint(sessions[size], namespace)
            return lambda: stores[size].get_latest_checkpoint(sessions[size], namespace)

        return make

    def listing(namespace: str | None) -> Callable[[str, int], Callable[[], Any]]:
        def make(kind: str, size: int) -> Callable[[], Any]:
            if kind == "floor":
                return lambda: floors[size].list_checkpoints(sessions[size], namespace, 10)
            return lambda: stores[size].list_checkpoints(sessions[size], namespace=namespace, limit=10)

        return make

    def messages(kind: str, size: int) -> Callable[[], Any]:
        if kind == "floor":
            return lambda: floors[size].get_messages(sessions[size], 50)
        return lambda: stores[size].get_messages(sessions[size], limit=50)

    operations: dict[str, Any] = {}
    # Reads first: the writes then add rows to the sessions the reads measure.
    plan = [
        ("get_latest_checkpoint[ns]", latest("")),
        ("get_latest_checkpoint[any]", latest(None)),
        ("list_checkpoints(10)[ns]", listing("")),
        ("list_checkpoints(10)[any]", listing(None)),
        ("get_messages(50)", messages),
        ("save_checkpoint", save),
        ("add_message", add),
    ]
    for operation, make in plan:
        report(f"  {operation} at {SMALL:,} and {large:,}")
        timings = await interleaved(contenders(make), rounds, calls)
        operations[operation] = {
            kind: {
                "small_us": round(timings[f"{kind}@{SMALL}"].median_us, 2),
                "large_us": round(timings[f"{kind}@{large}"].median_us, 2),
                "ratio": round(timings[f"{kind}@{large}"].median_us / timings[f"{kind}@{SMALL}"].median_us, 3),
            }
            for kind in ("floor", "sync")
        }

    memory = measure_memory(stores[large], sessions[large], large)
    for size in (SMALL, large):
        stores[size].close()
        floors[size].close()
    return {"small": SMALL, "large": large, "operations": operations, "memory": memory}


def measure_memory(store: Any, session_id: str, messages_in_session: int) -> dict[str, Any]:
    """Peak Python memory added by one ``get_messages(limit=50)`` on the large session.

    tracemalloc sees every Python allocation (rows, strings, DTOs); SQLite's page
    cache is C memory it does not see, and is bounded by ``cache_size`` anyway.
    """
    store.get_messages(session_id, limit=50)  # statement and pool warm
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    result = store.get_messages(session_id, limit=50)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    added_mb = (peak - before) / 2**20
    return {
        "operation": "get_messages(limit=50)",
        "messages_in_session": messages_in_session,
        "returned": len(result),
        "peak_added_mb": round(added_mb, 3),
        "limit_mb": MEMORY_LIMIT_MB,
    }


def render(scaling: dict[str, Any]) -> str:
    small, large = scaling["small"], scaling["large"]
    lines = [
        f"Scaling: {small:,} vs {large:,} rows in the session (another session's rows interleaved)",
        "",
        f"| operation | sync µs @{small:,} | sync µs @{large:,} | sync ratio | floor ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for operation, kinds in scaling["operations"].items():
        sync_row, floor_row = kinds["sync"], kinds["floor"]
        lines.append(
            f"| {operation} | {sync_row['small_us']:.1f} | {sync_row['large_us']:.1f} | "
            f"{sync_row['ratio']:.2f}× | {floor_row['ratio']:.2f}× |"
        )
    memory = scaling["memory"]
    lines += [
        "",
        f"Memory: {memory['operation']} on the {large:,}-message session adds "
        f"{memory['peak_added_mb']:.2f} MB peak (tracemalloc; limit {memory['limit_mb']:.0f} MB)",
    ]
    return "\n".join(lines)
