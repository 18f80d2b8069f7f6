"""The hot operations on PostgreSQL and MariaDB: floor, both faces of the store, LangGraph's savers.

Per server, in one process and taking turns in shuffled rounds as the SQLite suite does:
the raw floor (``_server_floor``: psycopg 3 or PyMySQL running the store's SQL), the
store's blocking face (``sync.SqlAlchemyCheckpointStore``) and async face
(``SqlAlchemyCheckpointStore``), and on PostgreSQL LangGraph's ``PostgresSaver`` and
``AsyncPostgresSaver`` (``_server_peers``). Each contender writes to a session (thread)
of its own and reads one session seeded with 2,000 checkpoints of 20 node results of
200 characters and 2,000 messages, after ``VACUUM ANALYZE`` (PostgreSQL) or
``ANALYZE TABLE`` (MariaDB), as a server that has run a while has statistics.

Three passes:

- timed: wall time of each call (median, 90th percentile) and the benchmark process's
  CPU time per call (the servers run in their own processes, so this is the client's);
- counted: a second set of the same contenders, connected through ``tests/_proxy.py``'s
  ``RoundTripProxy``, makes a few calls each while the proxy counts round trips (each
  client message after which the client waits for the server); it is not timed, the
  proxy's hop would weigh on the timings;
- throughput: 1, 4 and 16 concurrent writers, each on a session (LangGraph: a thread,
  and a saver with its own connection) of its own, in windows taking turns; the async
  face's pool holds a connection per writer.

Everything runs in scratch databases (LangGraph's tables share the store's table names,
so its savers get a second one) that are dropped afterwards.
"""

from __future__ import annotations

import inspect
import os
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import URL, make_url

from obsku_checkpoint_sqlite import SqlAlchemyCheckpointStore, sync

from . import _server_peers as peers
from . import _server_throughput
from ._server_floor import (
    AsyncPostgresFloor,
    MariaDBFloor,
    PostgresFloor,
    ServerFloor,
    admin,
    analyze,
    libpq_url,
    scratch,
)
from ._server_throughput import WRITERS
from ._workload import Contender, Timing, counter, interleaved, node_results, text_of

SERVERS = {
    "postgresql": os.environ.get("OBSKU_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("OBSKU_BENCH_MYSQL_URL", "mariadb://root@127.0.0.1:3306/test"),
}
LABELS = {
    "postgresql": {
        "floor": "psycopg floor",
        "floor_async": "psycopg async floor",
        "langgraph": "PostgresSaver",
        "langgraph_async": "AsyncPostgresSaver",
    },
    "mariadb": {"floor": "PyMySQL floor"},
}

COUNT_WARMUP = 10
Report = Callable[[str], None]


@dataclass(frozen=True)
class Profile:
    rounds: int
    calls: int
    counted_calls: int  # calls per contender and operation through the counting proxy
    throughput_s: float  # per contender and number of writers, split into windows
    windows: int
    history: int = 2_000


QUICK = Profile(rounds=4, calls=10, counted_calls=10, throughput_s=0.6, windows=1)
FULL = Profile(rounds=20, calls=10, counted_calls=20, throughput_s=6.0, windows=3)


async def run_servers(profile: Profile, report: Report) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for backend, url in SERVERS.items():
        report(f"servers: {backend}")
        try:
            results[backend] = await _run_backend(backend, make_url(url), profile, report)
        except Exception as exc:  # an unreachable server is a line in the report, not a crash
            report(f"  skipped: {type(exc).__name__}: {exc}")
            results[backend] = {"skipped": f"{type(exc).__name__}: {exc}"}
    return results


def _proxied(url: URL, port: int) -> URL:
    return url.set(host="127.0.0.1", port=port)


# --- contenders -------------------------------------------------------------------------


@dataclass
class Side:
    """One set of contenders, connected to the server directly or through the proxy."""

    floor: ServerFloor
    sync_store: sync.SqlAlchemyCheckpointStore
    async_store: SqlAlchemyCheckpointStore
    lg_sync: Any = None  # PostgresSaver, on PostgreSQL
    lg_async: Any = None  # AsyncPostgresSaver, on PostgreSQL
    floor_async: AsyncPostgresFloor | None = None  # on PostgreSQL


async def _open_side(stack: AsyncExitStack, backend: str, store_url: URL, lg_url: URL | None) -> Side:
    url = store_url.render_as_string(hide_password=False)
    sync_store = sync.SqlAlchemyCheckpointStore(url)
    stack.callback(sync_store.close)
    sync_store.get_session("warm-up")  # migrates the scratch database on the first side
    async_store = SqlAlchemyCheckpointStore(url)
    stack.push_async_callback(async_store.close)
    await async_store.get_session("warm-up")
    floor: ServerFloor = PostgresFloor(store_url) if backend == "postgresql" else MariaDBFloor(store_url)
    stack.callback(floor.close)
    side = Side(floor, sync_store, async_store)
    if backend == "postgresql":
        side.floor_async = await AsyncPostgresFloor.connect(store_url)
        stack.push_async_callback(side.floor_async.close)
    if lg_url is not None:
        side.lg_sync = peers.open_sync(libpq_url(lg_url))
        stack.callback(peers.close_sync, side.lg_sync)
        side.lg_async = await peers.open_async(libpq_url(lg_url))
        stack.push_async_callback(peers.close_async, side.lg_async)
    return side


@dataclass(frozen=True)
class Ids:
    reader: str  # the seeded session (LangGraph: the seeded thread)
    writers: dict[str, str]  # a session per contender of the store and the floor
    throughput: list[str]  # a session per concurrent writer


READ_THREAD = "bench-thread"


def _contenders(side: Side, ids: Ids, payload: dict[str, Any], message: str) -> dict[str, list[Contender]]:
    steps = counter()
    w, reader = ids.writers, ids.reader

    def save_kwargs(session_id: str) -> dict[str, Any]:
        return {"session_id": session_id, "step": next(steps), "node_results": payload,
                "pending_nodes": ["node_00"], "source": "loop", "node_id": "node_19"}  # fmt: skip

    operations: dict[str, list[Contender]] = {
        "save_checkpoint": [
            Contender("floor", lambda: side.floor.save_checkpoint(w["floor"], next(steps), payload)),
            Contender("sync", lambda: side.sync_store.save_checkpoint(**save_kwargs(w["sync"]))),
            Contender("async", lambda: side.async_store.save_checkpoint(**save_kwargs(w["async"]))),
        ],
        "get_latest_checkpoint[ns]": [
            Contender("floor", lambda: side.floor.get_latest_checkpoint(reader, "")),
            Contender("sync", lambda: side.sync_store.get_latest_checkpoint(reader, "")),
            Contender("async", lambda: side.async_store.get_latest_checkpoint(reader, "")),
        ],
        "list_checkpoints(10)[ns]": [
            Contender("floor", lambda: side.floor.list_checkpoints(reader, "", 10)),
            Contender("sync", lambda: side.sync_store.list_checkpoints(reader, namespace="", limit=10)),
            Contender("async", lambda: side.async_store.list_checkpoints(reader, namespace="", limit=10)),
        ],
        "add_message": [
            Contender("floor", lambda: side.floor.add_message(w["floor"], message)),
            Contender(
                "sync", lambda: side.sync_store.add_message(w["sync"], role="user", content=message, tokens_in=12)
            ),
            Contender(
                "async", lambda: side.async_store.add_message(w["async"], role="user", content=message, tokens_in=12)
            ),
        ],
        "get_messages(50)": [
            Contender("floor", lambda: side.floor.get_messages(reader, 50)),
            Contender("sync", lambda: side.sync_store.get_messages(reader, limit=50)),
            Contender("async", lambda: side.async_store.get_messages(reader, limit=50)),
        ],
    }
    if side.floor_async is not None:
        floor_async = side.floor_async
        operations["save_checkpoint"].append(
            Contender("floor_async", lambda: floor_async.save_checkpoint(w["floor_async"], next(steps), payload))
        )
        operations["get_latest_checkpoint[ns]"].append(
            Contender("floor_async", lambda: floor_async.get_latest_checkpoint(reader, ""))
        )
        operations["list_checkpoints(10)[ns]"].append(
            Contender("floor_async", lambda: floor_async.list_checkpoints(reader, "", 10))
        )
        operations["add_message"].append(
            Contender("floor_async", lambda: floor_async.add_message(w["floor_async"], message))
        )
        operations["get_messages(50)"].append(Contender("floor_async", lambda: floor_async.get_messages(reader, 50)))
    if side.lg_sync is not None:
        lg, alg = side.lg_sync, side.lg_async
        read = peers.config_of(READ_THREAD, "")
        put_config, aput_config = peers.config_of("bench-writes-sync"), peers.config_of("bench-writes-async")
        operations["save_checkpoint"] += [
            Contender("langgraph", lambda: peers.put(lg, put_config, next(steps), payload)),
            Contender("langgraph_async", lambda: peers.aput(alg, aput_config, next(steps), payload)),
        ]
        operations["get_latest_checkpoint[ns]"] += [
            Contender("langgraph", lambda: lg.get_tuple(read)),
            Contender("langgraph_async", lambda: alg.aget_tuple(read)),
        ]
        operations["list_checkpoints(10)[ns]"] += [
            Contender("langgraph", lambda: list(lg.list(read, limit=10))),
            Contender("langgraph_async", lambda: peers.alist(alg, read, 10)),
        ]
    return operations


# --- one server -------------------------------------------------------------------------


async def _run_backend(backend: str, server: URL, profile: Profile, report: Report) -> dict[str, Any]:
    version = str(admin(backend, server, "SELECT version()")).split("\n")[0][:80]
    name = f"obsku_bench_{uuid.uuid4().hex[:10]}"
    rng = random.Random(11)
    payload = node_results(rng)
    message = text_of(200, rng)
    lg_scratch = scratch(backend, server, f"{name}_lg") if backend == "postgresql" else _nothing()
    with scratch(backend, server, name) as store_url, lg_scratch as lg_url:
        async with AsyncExitStack() as stack:
            side = await _open_side(stack, backend, store_url, lg_url)
            ids = Ids(
                reader=side.sync_store.create_session("/srv/reader", title="seeded").id,
                writers={
                    who: side.sync_store.create_session(f"/srv/{who}").id
                    for who in ("floor", "floor_async", "sync", "async")
                },
                throughput=[side.sync_store.create_session(f"/srv/tp{i}").id for i in range(max(WRITERS))],
            )
            report(f"  seeding {profile.history:,} checkpoints and messages...")
            side.floor.seed(ids.reader, profile.history, rng)
            if side.lg_sync is not None:
                side.lg_sync.setup()  # once, as LangGraph's documentation says
                peers.seed(side.lg_sync, READ_THREAD, profile.history, payload)
            analyze(backend, store_url)
            if lg_url is not None:
                analyze(backend, lg_url)

            await _check_results(side, ids)
            operations: dict[str, dict[str, Timing]] = {}
            for operation, contenders in _contenders(side, ids, payload, message).items():
                report(f"  {operation}")
                operations[operation] = await interleaved(contenders, profile.rounds, profile.calls, cpu=True)
            report("  counting round trips")
            round_trips, proxy_note = await _count_round_trips(
                backend, store_url, lg_url, ids, payload, message, profile.counted_calls
            )
            report("  throughput")
            throughput = await _server_throughput.measure(
                stack, store_url, lg_url, ids.throughput, payload, message,
                duration=profile.throughput_s, windows=profile.windows,
            )  # fmt: skip
    return {
        "server_version": version,
        "workload": {
            "checkpoints": profile.history,
            "messages": profile.history,
            "node_results": 20,
            "output_chars": 200,
        },
        "rounds": profile.rounds,
        "calls": profile.calls,
        "counted_calls": profile.counted_calls,
        "round_trips_note": proxy_note,
        "operations": {
            operation: {
                name: {**timing.as_json(), "round_trips": round_trips.get(operation, {}).get(name)}
                for name, timing in timings.items()
            }
            for operation, timings in operations.items()
        },
        "duration_s": profile.throughput_s,
        "windows": profile.windows,
        "throughput": throughput,
    }


async def _check_results(side: Side, ids: Ids) -> None:
    """Every reader gets the same rows: the seeded session's latest checkpoint (20 node
    results), ten checkpoints, fifty messages. A benchmark of empty answers measures nothing."""
    reader, floor = ids.reader, side.floor
    floor_latest = floor.get_latest_checkpoint(reader, "")
    latest = [len(floor_latest["node_results"]) if floor_latest else 0]
    listed = [len(floor.list_checkpoints(reader, "", 10))]
    messages = [len(floor.get_messages(reader, 50))]
    for store_latest, store_list, store_messages in (
        (side.sync_store.get_latest_checkpoint(reader, ""),
         side.sync_store.list_checkpoints(reader, namespace="", limit=10),
         side.sync_store.get_messages(reader, limit=50)),
        (await side.async_store.get_latest_checkpoint(reader, ""),
         await side.async_store.list_checkpoints(reader, namespace="", limit=10),
         await side.async_store.get_messages(reader, limit=50)),
    ):  # fmt: skip
        latest.append(len(store_latest.node_results) if store_latest else 0)
        listed.append(len(store_list))
        messages.append(len(store_messages))
    if side.floor_async is not None:
        found = await side.floor_async.get_latest_checkpoint(reader, "")
        latest.append(len(found["node_results"]) if found else 0)
        listed.append(len(await side.floor_async.list_checkpoints(reader, "", 10)))
        messages.append(len(await side.floor_async.get_messages(reader, 50)))
    if side.lg_sync is not None:
        read = peers.config_of(READ_THREAD, "")
        for found, page in (
            (side.lg_sync.get_tuple(read), list(side.lg_sync.list(read, limit=10))),
            (await side.lg_async.aget_tuple(read), await peers.alist(side.lg_async, read, 10)),
        ):
            latest.append(len(found.checkpoint["channel_values"]) if found else 0)
            listed.append(len(page))
    if set(latest) != {20} or set(listed) != {10} or set(messages) != {50}:
        raise AssertionError(f"contenders read different things: {latest=} {listed=} {messages=}")


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


async def _count_round_trips(
    backend: str, store_url: URL, lg_url: URL | None, ids: Ids, payload: dict[str, Any], message: str, calls: int
) -> tuple[dict[str, dict[str, float]], str | None]:
    try:
        from tests._proxy import RoundTripProxy
    except ImportError as exc:  # run from a checkout without the tests: no counts
        return {}, f"not counted: {exc}"
    protocol = "postgresql" if backend == "postgresql" else "mysql"
    proxies = [RoundTripProxy(store_url.host or "127.0.0.1", store_url.port or _default_port(backend), protocol)]
    try:
        lg_proxied = None
        if lg_url is not None:
            proxies.append(RoundTripProxy(lg_url.host or "127.0.0.1", lg_url.port or 5432, protocol))
            lg_proxied = _proxied(lg_url, proxies[1].port)
        counts: dict[str, dict[str, float]] = {}
        async with AsyncExitStack() as stack:
            side = await _open_side(stack, backend, _proxied(store_url, proxies[0].port), lg_proxied)
            for operation, contenders in _contenders(side, ids, payload, message).items():
                counts[operation] = {}
                for contender in contenders:
                    proxy = proxies[1] if contender.name.startswith("langgraph") else proxies[0]
                    # Past psycopg's prepare_threshold (5): a statement's first executions
                    # pay for preparing it, once per connection.
                    for _ in range(COUNT_WARMUP):
                        await _call(contender)
                    with proxy.counting() as counted:
                        for _ in range(calls):
                            await _call(contender)
                    counts[operation][contender.name] = round(counted[0] / calls, 2)
        return counts, None
    finally:
        for proxy in proxies:
            proxy.close()


def _default_port(backend: str) -> int:
    return 5432 if backend == "postgresql" else 3306


async def _call(contender: Contender) -> Any:
    result = contender.call()
    if inspect.isawaitable(result):
        return await result
    return result


# --- report -----------------------------------------------------------------------------


def _writers(count: int) -> str:
    return f"{count} writer{'s' if count > 1 else ''}"


def label(backend: str, contender: str) -> str:
    return LABELS.get(backend, {}).get(contender, contender)


def render(servers: dict[str, Any]) -> str:
    lines: list[str] = []
    for backend, result in servers.items():
        if "skipped" in result:
            lines += [f"{backend}: skipped: {result['skipped']}", ""]
            continue
        lines += [
            f"{backend} ({result['server_version']}): µs per call, median / p90; client CPU µs per call;"
            " round trips per call",
            "",
            "| operation | contender | median µs | p90 µs | ×floor | CPU µs | round trips |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for operation, timings in result["operations"].items():
            floor = timings["floor"]["median_us"]
            for name, timing in timings.items():
                trips = timing.get("round_trips")
                lines.append(
                    f"| {operation} | {label(backend, name)} | {timing['median_us']:,.0f} | {timing['p90_us']:,.0f} "
                    f"| {timing['median_us'] / floor:.2f}× | {timing['cpu_us']:,.0f} "
                    f"| {'–' if trips is None else f'{trips:g}'} |"
                )
        lines.append("")
    lines += [
        "Async write throughput (operations/s; each writer its own session or thread; in brackets the CPU"
        " the benchmark process itself used, in cores)",
        "",
        "| backend | operation | contender | " + " | ".join(_writers(n) for n in WRITERS) + " |",
        "|---|---|---|" + "---:|" * len(WRITERS),
    ]
    for backend, result in servers.items():
        for operation, by_contender in result.get("throughput", {}).items():
            for name, rates in by_contender.items():
                cells = " | ".join(f"{rates[str(n)]:,.0f} ({rates[f'{n}_client_cores']:.2f} cores)" for n in WRITERS)
                lines.append(f"| {backend} | {operation} | {label(backend, name)} | {cells} |")
    return "\n".join(lines)
