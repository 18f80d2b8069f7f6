"""The store's LangGraph checkpointers against LangGraph's own, on the same calls.

On each backend four savers take turns in shuffled rounds (as every other section does):
``ObskuSaver`` and ``AsyncObskuSaver`` (``obsku_checkpoint_sqlite.langgraph``, opened with
``from_conn_string`` and ``setup()``), and LangGraph's peers:

- SQLite: ``SqliteSaver`` and ``AsyncSqliteSaver`` on a file of their own, WAL (their
  ``setup`` turns it on) and ``synchronous=NORMAL`` set on their connection, the settings
  the store runs with;
- PostgreSQL: ``PostgresSaver`` and ``AsyncPostgresSaver`` on psycopg connections opened as
  LangGraph's documentation opens them, in a scratch database of their own (their tables
  share names with the store's), dropped afterwards with the store's.

Every saver gets the same calls: ``put`` of a checkpoint whose channel values are 20 node
results of 200 characters (each a new version, as every node result is saved again at
every step), ``put_writes`` of 4 writes under a fresh task id, ``get_tuple`` of a thread's
latest checkpoint (which has 4 pending writes), and ``list(config, limit=10)`` with and
without a namespace. Writes go to a thread per saver; reads go to a thread preloaded with
``history`` checkpoints (one in ten in the namespace "tools") through each saver's own
``put`` in a loop. Then ``list`` without a namespace runs on that thread and on one of
``small`` checkpoints, interleaved, to show whether its cost grows with the thread.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import make_url

from obsku_checkpoint_sqlite.langgraph import AsyncObskuSaver, ObskuSaver

from . import _langgraph as lg
from . import _server_peers as peers
from ._server_floor import admin, analyze, libpq_url, scratch
from ._workload import Contender, Timing, counter, interleaved, node_results

BACKENDS = ("sqlite", "postgresql")
POSTGRES_URL = os.environ.get("OBSKU_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
LABELS = {
    "sqlite": {"sync": "ObskuSaver", "async": "AsyncObskuSaver", "peer": "SqliteSaver",
               "peer_async": "AsyncSqliteSaver"},
    "postgresql": {"sync": "ObskuSaver", "async": "AsyncObskuSaver", "peer": "PostgresSaver",
                   "peer_async": "AsyncPostgresSaver"},
}  # fmt: skip
OURS = {"sync": "peer", "async": "peer_async"}  # each face against the peer of the same face
LIST_ANY = "list(10)[any]"
WRITES = 4
SIDE_NAMESPACE_EVERY = 10
READ_THREAD, SMALL_THREAD = "bench-read", "bench-small"

Report = Callable[[str], None]


@dataclass(frozen=True)
class Profile:
    rounds: int
    calls: int
    scaling_rounds: int
    history: int = 20_000
    small: int = 1_000
    # A peer's list without a namespace sorts the whole thread (milliseconds): fewer calls.
    slow_calls: int = 3


QUICK = Profile(rounds=4, calls=10, scaling_rounds=4)
FULL = Profile(rounds=20, calls=10, scaling_rounds=16)


@dataclass
class Savers:
    sync: Any  # ObskuSaver
    async_: Any  # AsyncObskuSaver
    peer: Any  # SqliteSaver / PostgresSaver
    peer_async: Any  # AsyncSqliteSaver / AsyncPostgresSaver

    def by_name(self) -> dict[str, Any]:
        return {"sync": self.sync, "async": self.async_, "peer": self.peer, "peer_async": self.peer_async}


async def run_savers(directory: str, profile: Profile, report: Report) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for backend in BACKENDS:
        report(f"LangGraph savers: {backend}")
        try:
            results[backend] = await _run_backend(backend, directory, profile, report)
        except Exception as exc:  # an unreachable server is a line in the report, not a crash
            if backend == "sqlite":
                raise
            report(f"  skipped: {type(exc).__name__}: {exc}")
            results[backend] = {"skipped": f"{type(exc).__name__}: {exc}"}
    return results


# --- opening and preloading ---------------------------------------------------------------


async def _open(stack: AsyncExitStack, backend: str, ours: str, theirs: str) -> Savers:
    sync_saver = stack.enter_context(ObskuSaver.from_conn_string(ours))
    sync_saver.setup()
    async_saver = await stack.enter_async_context(AsyncObskuSaver.from_conn_string(ours))
    await async_saver.asetup()
    peer: Any
    peer_async: Any
    if backend == "sqlite":
        peer = lg.open_sync(theirs)  # setup(), then synchronous=NORMAL
        stack.callback(peer.conn.close)
        peer_async, conn = await lg.open_async(theirs)
        stack.push_async_callback(conn.close)
    else:
        peer = peers.open_sync(theirs)
        stack.callback(peers.close_sync, peer)
        peer.setup()  # once, as LangGraph's documentation says
        peer_async = await peers.open_async(theirs)
        stack.push_async_callback(peers.close_async, peer_async)
    return Savers(sync_saver, async_saver, peer, peer_async)


def _checkpoint(step: int, values: dict[str, Any]) -> Any:
    # Versions as LangGraph's own savers make them; every channel is new at every step.
    return peers.checkpoint_of(step, values)


def _put(saver: Any, config: Any, step: int, values: dict[str, Any]) -> Any:
    checkpoint = _checkpoint(step, values)
    return saver.put(config, checkpoint, lg.metadata_of(step), checkpoint["channel_versions"])


async def _aput(saver: Any, config: Any, step: int, values: dict[str, Any]) -> Any:
    checkpoint = _checkpoint(step, values)
    return await saver.aput(config, checkpoint, lg.metadata_of(step), checkpoint["channel_versions"])


def _writes(values: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(channel, values[channel]) for channel in list(values)[:WRITES]]


def _preload(saver: Any, thread: str, count: int, steps: Iterator[int], values: dict[str, Any]) -> None:
    """``count`` checkpoints through the saver's own ``put``, then 4 writes on the newest of
    namespace "" (what ``get_tuple`` reads)."""
    latest = None
    for index in range(count):
        namespace = "tools" if index % SIDE_NAMESPACE_EVERY == 7 else ""
        saved = _put(saver, lg.config_of(thread, namespace), next(steps), values)
        if namespace == "":
            latest = saved
    saver.put_writes(latest, _writes(values), "preload-task")


def _preload_all(
    backend: str, savers: Savers, ours: str, profile: Profile, values: dict[str, Any], report: Report
) -> dict[str, float]:
    steps = counter()
    seconds: dict[str, float] = {}
    started = time.monotonic()
    if backend == "postgresql":
        # A saver of its own whose commits do not wait for the server's WAL flush: the same
        # puts in about half the time. The measured savers commit with the server's default.
        with ObskuSaver.from_conn_string(ours, connect_args={"options": "-c synchronous_commit=off"}) as loader:
            for thread, count in ((READ_THREAD, profile.history), (SMALL_THREAD, profile.small)):
                _preload(loader, thread, count, steps, values)
    else:
        for thread, count in ((READ_THREAD, profile.history), (SMALL_THREAD, profile.small)):
            _preload(savers.sync, thread, count, steps, values)
    seconds["ours"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    if backend == "postgresql":
        with savers.peer.conn.transaction():  # LangGraph's put, all in one transaction
            for thread, count in ((READ_THREAD, profile.history), (SMALL_THREAD, profile.small)):
                _preload(savers.peer, thread, count, steps, values)
    else:
        for thread, count in ((READ_THREAD, profile.history), (SMALL_THREAD, profile.small)):
            _preload(savers.peer, thread, count, steps, values)
    seconds["peer"] = round(time.monotonic() - started, 1)
    report(f"  preloaded in {seconds['ours']} s (ours) and {seconds['peer']} s (peer)")
    return seconds


# --- one backend --------------------------------------------------------------------------


@contextmanager
def _places(backend: str, directory: str) -> Iterator[tuple[str, str, str | None]]:
    """Where our savers and the peers live: two SQLite files, or two scratch databases."""
    if backend == "sqlite":
        yield f"sqlite:///{os.path.join(directory, 'obsku-savers.db')}", os.path.join(directory, "lg-savers.db"), None
        return
    server = make_url(POSTGRES_URL)
    version = str(admin("postgresql", server, "SELECT version()")).split("\n")[0][:80]
    name = f"obsku_savers_{uuid.uuid4().hex[:10]}"
    with scratch("postgresql", server, name) as ours, scratch("postgresql", server, f"{name}_lg") as theirs:
        yield ours.render_as_string(hide_password=False), libpq_url(theirs), version


async def _run_backend(backend: str, directory: str, profile: Profile, report: Report) -> dict[str, Any]:
    values = node_results(random.Random(13))
    with _places(backend, directory) as (ours, theirs, version):
        async with AsyncExitStack() as stack:
            savers = await _open(stack, backend, ours, theirs)
            report(f"  preloading {profile.history:,} + {profile.small:,} checkpoints per saver...")
            preload_s = _preload_all(backend, savers, ours, profile, values, report)
            if backend == "postgresql":
                for url in (make_url(ours), make_url(theirs)):
                    analyze("postgresql", url)
            await _check_results(savers)
            operations: dict[str, dict[str, Timing]] = {}
            for operation, contenders in _contenders(savers, values, profile).items():
                report(f"  {operation}")
                operations[operation] = await interleaved(contenders, profile.rounds, profile.calls)
            report(f"  {LIST_ANY} at {profile.small:,} and {profile.history:,}")
            scaling = await _scaling(savers, profile)
    result: dict[str, Any] = {
        "history": profile.history,
        "small": profile.small,
        "rounds": profile.rounds,
        "calls": profile.calls,
        "preload_s": preload_s,
        "operations": {op: {name: t.as_json() for name, t in timings.items()} for op, timings in operations.items()},
        "scaling": scaling,
    }
    if version is not None:
        result["server_version"] = version
    return result


def _contenders(savers: Savers, values: dict[str, Any], profile: Profile) -> dict[str, list[Contender]]:
    steps = counter()
    s, a, p, pa = savers.sync, savers.async_, savers.peer, savers.peer_async
    writes = _writes(values)
    # A thread per saver for its writes, and a checkpoint in it for put_writes to name.
    put_to = {name: lg.config_of(f"bench-writes-{name}") for name in LABELS["sqlite"]}
    # (Each async saver shares its database with its sync twin, which saves it.)
    write_to = {name: _put(s if name in ("sync", "async") else p, put_to[name], next(steps), values)
                for name in put_to}  # fmt: skip

    def task() -> str:
        return str(uuid.uuid4())

    operations: dict[str, list[Contender]] = {
        "put": [
            Contender("sync", lambda: _put(s, put_to["sync"], next(steps), values)),
            Contender("async", lambda: _aput(a, put_to["async"], next(steps), values)),
            Contender("peer", lambda: _put(p, put_to["peer"], next(steps), values)),
            Contender("peer_async", lambda: _aput(pa, put_to["peer_async"], next(steps), values)),
        ],
        f"put_writes({WRITES})": [
            Contender("sync", lambda: s.put_writes(write_to["sync"], writes, task())),
            Contender("async", lambda: a.aput_writes(write_to["async"], writes, task())),
            Contender("peer", lambda: p.put_writes(write_to["peer"], writes, task())),
            Contender("peer_async", lambda: pa.aput_writes(write_to["peer_async"], writes, task())),
        ],
    }
    read_ns, read_any = lg.config_of(READ_THREAD, ""), lg.config_of(READ_THREAD, None)
    operations["get_tuple"] = [
        Contender("sync", lambda: s.get_tuple(read_ns)),
        Contender("async", lambda: a.aget_tuple(read_ns)),
        Contender("peer", lambda: p.get_tuple(read_ns)),
        Contender("peer_async", lambda: pa.aget_tuple(read_ns)),
    ]
    for label, config, slow in (("ns", read_ns, None), ("any", read_any, profile.slow_calls)):
        operations[f"list(10)[{label}]"] = [
            Contender("sync", lambda c=config: list(s.list(c, limit=10))),  # type: ignore[misc]
            Contender("async", lambda c=config: _alist(a, c)),  # type: ignore[misc]
            Contender("peer", lambda c=config: list(p.list(c, limit=10)), calls=slow),  # type: ignore[misc]
            Contender("peer_async", lambda c=config: _alist(pa, c), calls=slow),  # type: ignore[misc]
        ]
    return operations


async def _alist(saver: Any, config: Any) -> list[Any]:
    return [item async for item in saver.alist(config, limit=10)]


async def _check_results(savers: Savers) -> None:
    """Every saver reads the same thing: the latest checkpoint with 20 channel values and 4
    pending writes, and ten checkpoints per listing. A benchmark of empty answers measures nothing."""
    read_ns, read_any = lg.config_of(READ_THREAD, ""), lg.config_of(READ_THREAD, None)
    found: dict[str, tuple[Any, ...]] = {}
    for name, saver in savers.by_name().items():
        if name.endswith("async"):
            latest = await saver.aget_tuple(read_ns)
            listed = (len(await _alist(saver, read_ns)), len(await _alist(saver, read_any)))
        else:
            latest = saver.get_tuple(read_ns)
            listed = (len(list(saver.list(read_ns, limit=10))), len(list(saver.list(read_any, limit=10))))
        shape = (len(latest.checkpoint["channel_values"]), len(latest.pending_writes)) if latest else (0, 0)
        found[name] = (*shape, *listed)
    if set(found.values()) != {(20, WRITES, 10, 10)}:
        raise AssertionError(f"savers read different things: {found}")


async def _scaling(savers: Savers, profile: Profile) -> dict[str, Any]:
    sizes = {profile.small: SMALL_THREAD, profile.history: READ_THREAD}
    contenders = [
        Contender(f"{name}@{size}", _lister(name, saver, lg.config_of(thread, None)),
                  calls=profile.slow_calls if name.startswith("peer") else None)
        for name, saver in savers.by_name().items() for size, thread in sizes.items()
    ]  # fmt: skip
    timings = await interleaved(contenders, profile.scaling_rounds, profile.calls)
    rows: dict[str, Any] = {}
    for name in savers.by_name():
        small, large = timings[f"{name}@{profile.small}"].median_us, timings[f"{name}@{profile.history}"].median_us
        rows[name] = {"small_us": round(small, 2), "large_us": round(large, 2), "ratio": round(large / small, 3)}
    return {"operation": LIST_ANY, "small": profile.small, "large": profile.history, "contenders": rows}


def _lister(name: str, saver: Any, config: Any) -> Callable[[], Any]:
    if name.endswith("async"):
        return lambda: _alist(saver, config)
    return lambda: list(saver.list(config, limit=10))


# --- report ------------------------------------------------------------------------------


def label(backend: str, contender: str) -> str:
    return LABELS.get(backend, {}).get(contender, contender)


def render(savers: dict[str, Any]) -> str:
    lines: list[str] = []
    for backend, result in savers.items():
        if "skipped" in result:
            lines += [f"LangGraph savers on {backend}: skipped: {result['skipped']}", ""]
            continue
        where = result.get("server_version", "SQLite file, WAL, synchronous=NORMAL")
        lines += [
            f"LangGraph savers on {backend} ({where}): µs per call, median / p90; thread of "
            f"{result['history']:,} checkpoints",
            "",
            "| operation | " + " | ".join(label(backend, name) for name in LABELS[backend]) + " |",
            "|---|" + "---:|" * len(LABELS[backend]),
        ]
        for operation, timings in result["operations"].items():
            cells = [f"{t['median_us']:,.0f} / {t['p90_us']:,.0f}" if (t := timings.get(name)) else "–"
                     for name in LABELS[backend]]  # fmt: skip
            lines.append(f"| {operation} | " + " | ".join(cells) + " |")
        scaling = result["scaling"]
        lines += [
            "",
            f"| {scaling['operation']} | µs @{scaling['small']:,} | µs @{scaling['large']:,} | ratio |",
            "|---|---:|---:|---:|",
        ]
        for name, row in scaling["contenders"].items():
            lines.append(
                f"| {label(backend, name)} | {row['small_us']:,.0f} | {row['large_us']:,.0f} | {row['ratio']:.2f}× |"
            )
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def verdicts(savers: dict[str, Any], flat_limit: float) -> list[dict[str, Any]]:
    """Each face no slower than its peer on every call, and ``list`` without a namespace flat."""
    found: list[dict[str, Any]] = []
    for backend in BACKENDS:
        result = savers.get(backend)
        if result is None:
            continue
        missing = result.get("skipped")
        operations: dict[str, dict[str, Any]] = result.get("operations", {})
        names = operations or {op: {} for op in ("put", f"put_writes({WRITES})", "get_tuple", "list(10)[ns]", LIST_ANY)}
        for ours, theirs in OURS.items():
            for operation in names:
                target = f"{backend} {operation}: {label(backend, ours)} no slower than {label(backend, theirs)}"
                a = operations.get(operation, {}).get(ours, {}).get("median_us")
                b = operations.get(operation, {}).get(theirs, {}).get("median_us")
                if a is None or b is None:
                    found.append({"target": target, "value": "skipped" if missing else "not measured", "limit": "≤",
                                  "holds": None})  # fmt: skip
                    continue
                found.append({"target": target, "value": f"{a:,.0f} vs {b:,.0f} µs", "limit": "≤", "holds": a <= b})
        scaling = result.get("scaling")
        for ours in OURS:
            row = scaling["contenders"].get(ours) if scaling else None
            large, small = (scaling["large"], scaling["small"]) if scaling else (20_000, 1_000)
            target = f"{backend} flat: {label(backend, ours)}.{LIST_ANY} at {large:,} ≤ {flat_limit}× at {small:,}"
            if row is None:
                found.append({"target": target, "value": "skipped" if missing else "not measured",
                              "limit": f"≤ {flat_limit}×", "holds": None})  # fmt: skip
                continue
            found.append({"target": target, "value": f"{row['ratio']:.2f}×", "limit": f"≤ {flat_limit}×",
                          "holds": row["ratio"] <= flat_limit})  # fmt: skip
    return found
