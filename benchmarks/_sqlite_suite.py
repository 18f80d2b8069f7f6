"""The hot operations on a SQLite file: floor, both faces of the store, LangGraph's savers.

The store's faces and the floor share one database file and one seeded session
(20,000 checkpoints, 20,000 messages), so they read the same pages; each writes to a
session of its own. LangGraph's savers share a second file seeded the same way.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from obsku_checkpoint_sqlite import Checkpoint, SqliteCheckpointStore, sync
from obsku_checkpoint_sqlite.db import values

from . import _langgraph as lg
from ._floor import Floor
from ._workload import Contender, History, Timing, counter, interleaved, node_results, seed, summarize, text_of


@dataclass(frozen=True)
class Profile:
    rounds: int
    calls: int
    fork_rounds: int
    history: int = 20_000
    fork_messages: int = 10_000


QUICK = Profile(rounds=3, calls=25, fork_rounds=2)
# Many short turns, not a few long ones: an operation's samples span about 1.5 s, and
# with 10 turns of 100 calls a half-second stall of the machine (writeback, another
# process) landed on one contender's turns and moved its median by a third.
# A fork takes tens of milliseconds, so it runs one call a round, in more rounds.
FULL = Profile(rounds=40, calls=25, fork_rounds=21)

Report = Callable[[str], None]


async def run_suite(directory: str, profile: Profile, report: Report) -> dict[str, dict[str, Timing]]:
    rng = random.Random(5)
    store_path = os.path.join(directory, "store.db")
    lg_path = os.path.join(directory, "langgraph.db")
    payload = node_results(rng)

    sync_store = sync.SqliteCheckpointStore(store_path)
    async_store = SqliteCheckpointStore(store_path)
    sync_store.get_session("warm-up")  # runs the migrations before seeding
    await async_store.get_session("warm-up")

    report(f"seeding {profile.history:,} checkpoints and messages...")
    reader = values.new_id()
    seed(store_path, reader, History(messages=profile.history, checkpoints=profile.history), rng)
    # The fork's source is written through the store, so its checkpoint records the
    # watermark (last_message_id) as in real use.
    fork_source = sync_store.create_session("/work/fork", title="fork source")
    fork_rng = random.Random(6)
    for index in range(profile.fork_messages):
        sync_store.add_message(
            fork_source.id, role="user" if index % 2 else "assistant", content=text_of(200, fork_rng)
        )
    fork_checkpoint = sync_store.save_checkpoint(
        session_id=fork_source.id, step=1, node_results=payload, source="loop"
    )  # fmt: skip
    thread = "bench-thread"
    lg.seed(lg_path, thread, profile.history, payload, side_namespace_every=10)

    floor = Floor(store_path)
    lg_sync = lg.open_sync(lg_path)
    lg_async, lg_conn = await lg.open_async(lg_path)
    writers = {name: sync_store.create_session(f"/work/{name}").id for name in ("floor", "sync", "async")}
    steps = counter()
    message = text_of(200, rng)
    results: dict[str, dict[str, Timing]] = {}

    async def measure(operation: str, contenders: list[Contender], *, rounds: int = 0, calls: int = 0) -> None:
        report(f"  {operation}")
        results[operation] = await interleaved(contenders, rounds or profile.rounds, calls or profile.calls)

    def save_kwargs(session_id: str) -> dict[str, Any]:
        return {"session_id": session_id, "step": next(steps), "node_results": payload,
                "pending_nodes": ["node_00"], "source": "loop", "node_id": "node_19"}  # fmt: skip

    lg_write_config = lg.config_of("bench-writes")
    await measure(
        "save_checkpoint",
        [
            Contender("floor", lambda: floor.save_checkpoint(writers["floor"], next(steps), payload)),
            Contender("sync", lambda: sync_store.save_checkpoint(**save_kwargs(writers["sync"]))),
            Contender("async", lambda: async_store.save_checkpoint(**save_kwargs(writers["async"]))),
            Contender("langgraph", lambda: _lg_put(lg_sync, lg_write_config, next(steps), payload)),
            Contender("langgraph_async", lambda: _lg_aput(lg_async, lg_write_config, next(steps), payload)),
        ],
    )
    await measure(
        "add_message",
        [
            Contender("floor", lambda: floor.add_message(writers["floor"], message)),
            Contender(
                "sync", lambda: sync_store.add_message(writers["sync"], role="user", content=message, tokens_in=12)
            ),
            Contender(
                "async", lambda: async_store.add_message(writers["async"], role="user", content=message, tokens_in=12)
            ),
        ],
    )
    for label, namespace in (("ns", ""), ("any", None)):
        lg_config = lg.config_of(thread, namespace)
        # Only a namespace filter can use LangGraph's primary key; without one its list
        # sorts the whole thread, so it gets a few calls, not a hundred.
        slow = None if namespace is not None else 3
        latest: list[Contender] = [
            Contender("floor", lambda ns=namespace: floor.get_latest_checkpoint(reader, ns)),  # type: ignore[misc]
            Contender("sync", lambda ns=namespace: sync_store.get_latest_checkpoint(reader, ns)),  # type: ignore[misc]
            Contender("async", lambda ns=namespace: async_store.get_latest_checkpoint(reader, ns)),  # type: ignore[misc]
        ]
        if namespace is not None:
            # LangGraph's get_tuple always filters by namespace ("" by default).
            latest += [
                Contender("langgraph", lambda c=lg_config: lg_sync.get_tuple(c)),  # type: ignore[misc]
                Contender("langgraph_async", lambda c=lg_config: lg_async.aget_tuple(c)),  # type: ignore[misc]
            ]
        await measure(f"get_latest_checkpoint[{label}]", latest)
        await measure(
            f"list_checkpoints(10)[{label}]",
            [
                Contender("floor", lambda ns=namespace: floor.list_checkpoints(reader, ns, 10)),  # type: ignore[misc]
                Contender("sync", lambda ns=namespace: sync_store.list_checkpoints(reader, namespace=ns, limit=10)),  # type: ignore[misc]
                Contender("async", lambda ns=namespace: async_store.list_checkpoints(reader, namespace=ns, limit=10)),  # type: ignore[misc]
                Contender("langgraph", lambda c=lg_config: list(lg_sync.list(c, limit=10)), calls=slow),  # type: ignore[misc]
                Contender("langgraph_async", lambda c=lg_config: _alist(lg_async, c), calls=slow),  # type: ignore[misc]
            ],
        )
    # Not a target: what a listing costs when every node result is then read, which is
    # when the store validates them (LangGraph's and the floor's are plain dicts).
    await measure(
        "list_checkpoints(10)+read[ns]",
        [
            Contender("floor", lambda: floor.list_checkpoints(reader, "", 10)),
            Contender("sync", lambda: _read_node_results(sync_store.list_checkpoints(reader, namespace="", limit=10))),
            Contender("async", lambda: _aread_node_results(async_store, reader)),
            Contender("langgraph", lambda: list(lg_sync.list(lg.config_of(thread, ""), limit=10))),
        ],
    )
    await measure(
        "get_messages(50)",
        [
            Contender("floor", lambda: floor.get_messages(reader, 50)),
            Contender("sync", lambda: sync_store.get_messages(reader, limit=50)),
            Contender("async", lambda: async_store.get_messages(reader, limit=50)),
        ],
    )
    # A fork writes about as many pages (~1,000) as SQLite's automatic checkpoint lets the
    # WAL hold, so about every other fork would also copy the WAL back into the database,
    # and which contender's did would go by the turn order. So each fork starts from an
    # empty WAL, as the other medians leave out the checkpoint one write in a hundred
    # pays; what checkpointing one fork's pages costs is timed and reported apart.
    checkpoint_samples: list[float] = []

    def checkpoint_wal() -> None:
        started = time.perf_counter_ns()
        floor.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        checkpoint_samples.append((time.perf_counter_ns() - started) / 1000)

    fork = f"fork({profile.fork_messages})"
    await measure(
        fork,
        [
            Contender("floor", lambda: floor.fork(fork_checkpoint.id), prepare=checkpoint_wal),
            Contender("sync", lambda: sync_store.fork(fork_checkpoint.id), prepare=checkpoint_wal),
            Contender("async", lambda: async_store.fork(fork_checkpoint.id), prepare=checkpoint_wal),
        ],
        rounds=profile.fork_rounds,
        calls=1,
    )
    # The first checkpoint copied what the warm-up forks left, not one fork's pages.
    results[f"WAL checkpoint after {fork}"] = {"floor": summarize(checkpoint_samples[1:])}

    floor.close()
    lg_sync.conn.close()
    await lg_conn.close()
    sync_store.close()
    await async_store.close()
    return results


def _read_node_results(checkpoints: list[Checkpoint]) -> int:
    return sum(len(list(checkpoint.node_results.values())) for checkpoint in checkpoints)


async def _aread_node_results(store: SqliteCheckpointStore, session_id: str) -> int:
    return _read_node_results(await store.list_checkpoints(session_id, namespace="", limit=10))


def _lg_put(saver: Any, config: Any, step: int, values: dict[str, Any]) -> Any:
    return saver.put(config, lg.checkpoint_of(step, values), lg.metadata_of(step), {})


async def _lg_aput(saver: Any, config: Any, step: int, values: dict[str, Any]) -> Any:
    return await saver.aput(config, lg.checkpoint_of(step, values), lg.metadata_of(step), {})


async def _alist(saver: Any, config: Any) -> list[Any]:
    return [item async for item in saver.alist(config, limit=10)]
