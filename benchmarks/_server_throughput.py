"""Async write throughput with 1, 4 and 16 concurrent writers, each on a session of its own.

The store's async face as an agent server uses it: one store whose pool holds a
connection per writer, each writer a task writing its own session (the store locks a
session's row while writing it, so writers of different sessions never wait for each
other). On PostgreSQL, LangGraph's ``AsyncPostgresSaver`` does the same saves with one
saver (and connection) per writer, each on a thread of its own.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from sqlalchemy import URL

from obsku_checkpoint_sqlite import SqlAlchemyCheckpointStore

from . import _server_peers as peers
from ._server_floor import libpq_url
from ._workload import counter

WRITERS = (1, 4, 16)
Writer = Callable[[int, int], Any]  # (writer index, call number) -> awaitable


async def measure(
    stack: AsyncExitStack, store_url: URL, lg_url: URL | None, sessions: list[str],
    payload: dict[str, Any], message: str, *, duration: float, windows: int,
) -> dict[str, dict[str, dict[str, float]]]:  # fmt: skip
    """Operations per second by operation, contender and number of writers (the median of
    ``windows`` windows of ``duration / windows`` seconds), with the client's cores used.

    ``sessions`` holds a session per writer; LangGraph's writers use a thread each.
    """
    store = SqlAlchemyCheckpointStore(store_url.render_as_string(hide_password=False), pool_size=max(WRITERS))
    stack.push_async_callback(store.close)

    async def save(index: int, step: int) -> None:
        await store.save_checkpoint(session_id=sessions[index], step=step, node_results=payload,
                                    pending_nodes=["node_00"], source="loop", node_id="node_19")  # fmt: skip

    async def add(index: int, step: int) -> None:
        await store.add_message(sessions[index], role="user", content=message, tokens_in=12)

    writers: dict[str, dict[str, Writer]] = {"save_checkpoint": {"async": save}, "add_message": {"async": add}}
    if lg_url is not None:
        savers = [await peers.open_async(libpq_url(lg_url)) for _ in range(max(WRITERS))]
        for saver in savers:
            stack.push_async_callback(peers.close_async, saver)
        steps = counter()

        async def aput(index: int, _: int) -> None:
            await peers.aput(savers[index], peers.config_of(f"throughput-{index}"), next(steps), payload)

        writers["save_checkpoint"]["langgraph_async"] = aput

    shuffler = random.Random(20261128)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for operation, by_contender in writers.items():
        for call in by_contender.values():
            await _window(call, max(WRITERS), 0.1)  # opens every writer's connection
        # Each number of writers runs in several short windows, taking turns with the
        # other contenders: a server's background work (InnoDB purge and flushing,
        # autovacuum) then weighs on every contender and level alike.
        taken: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for _ in range(windows):
            for count in WRITERS:
                order = list(by_contender.items())
                shuffler.shuffle(order)
                for name, call in order:
                    measured = await _window(call, count, duration / windows)
                    taken.setdefault((name, count), []).append(measured)
        results[operation] = {}
        for (name, count), measured_windows in taken.items():
            rates = results[operation].setdefault(name, {})
            throughput, cores = sorted(measured_windows)[len(measured_windows) // 2]
            rates[str(count)] = round(throughput, 1)
            # The client's own share of a core: when the client saturates its core, more
            # writers cannot raise throughput whatever the server does.
            rates[f"{count}_client_cores"] = round(cores, 2)
    return results


async def _window(call: Writer, writers: int, duration: float) -> tuple[float, float]:
    """Operations per second and client cores used, with ``writers`` concurrent writers."""
    deadline = time.monotonic() + duration

    async def writer(index: int) -> int:
        done = 0
        while time.monotonic() < deadline:
            await call(index, done)
            done += 1
        return done

    started = time.monotonic()
    cpu_started = time.process_time()
    counts = await asyncio.gather(*(writer(index) for index in range(writers)))
    elapsed = time.monotonic() - started
    return sum(counts) / elapsed, (time.process_time() - cpu_started) / elapsed
