"""The issue's targets, checked against a run: each one a verdict with its number."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _savers
from ._workload import Timing

FORK_LIMIT_MS = 100.0
FLAT_LIMIT = 1.3


def check(
    operations: dict[str, dict[str, Timing]],
    scaling: dict[str, Any] | None,
    servers: dict[str, Any] | None,
    savers: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    verdicts: list[dict[str, Any]] = []
    if operations:  # none with --servers-only
        verdicts += _sqlite_verdicts(operations)
    if scaling is not None:
        verdicts += _scaling_verdicts(scaling)
    verdicts += server_verdicts(servers or {})
    if savers is not None:
        verdicts += _savers.verdicts(savers, FLAT_LIMIT)
    return verdicts


def _sqlite_verdicts(operations: dict[str, dict[str, Timing]]) -> list[dict[str, Any]]:
    verdicts: list[dict[str, Any]] = []

    def median(operation: str, contender: str) -> float:
        return operations[operation][contender].median_us

    def ratio(target: str, operation: str, over: str, under: str, limit: float) -> None:
        value = median(operation, over) / median(operation, under)
        verdicts.append({"target": target, "value": f"{value:.2f}×", "limit": f"≤ {limit}×", "holds": value <= limit})

    def faster(target: str, operation: str, ours: str, theirs: str, *, or_equal: bool = False) -> None:
        if theirs not in operations[operation]:
            return
        a, b = median(operation, ours), median(operation, theirs)
        holds = a <= b if or_equal else a < b
        verdicts.append({"target": target, "value": f"{a:,.0f} vs {b:,.0f} µs", "limit": "≤" if or_equal else "<",
                         "holds": holds})  # fmt: skip

    ratio("save_checkpoint: sync ≤ 2× floor", "save_checkpoint", "sync", "floor", 2)
    ratio("save_checkpoint: async ≤ 2× sync", "save_checkpoint", "async", "sync", 2)
    faster("save_checkpoint: async faster than AsyncSqliteSaver.aput", "save_checkpoint", "async", "langgraph_async")
    ratio("add_message: sync ≤ 2.5× floor", "add_message", "sync", "floor", 2.5)
    ratio("add_message: async ≤ 2× sync", "add_message", "async", "sync", 2)
    for label in ("ns", "any"):
        latest = f"get_latest_checkpoint[{label}]"
        ratio(f"{latest}: sync ≤ 3× floor", latest, "sync", "floor", 3)
        ratio(f"{latest}: async ≤ 2× sync", latest, "async", "sync", 2)
        faster(f"{latest}: async faster than AsyncSqliteSaver.aget_tuple", latest, "async", "langgraph_async")
        listing = f"list_checkpoints(10)[{label}]"
        ratio(f"{listing}: sync ≤ 2× floor", listing, "sync", "floor", 2)
        faster(f"{listing}: sync no slower than SqliteSaver.list", listing, "sync", "langgraph", or_equal=True)
        faster(f"{listing}: async faster than AsyncSqliteSaver.alist", listing, "async", "langgraph_async")
    ratio("get_messages(50): sync ≤ 3× floor", "get_messages(50)", "sync", "floor", 3)
    ratio("get_messages(50): async ≤ 2× sync", "get_messages(50)", "async", "sync", 2)
    fork = next(operation for operation in operations if operation.startswith("fork("))
    for face in ("sync", "async"):
        value = median(fork, face) / 1000
        verdicts.append({"target": f"{fork}: {face} ≤ {FORK_LIMIT_MS:.0f} ms", "value": f"{value:.1f} ms",
                         "limit": f"≤ {FORK_LIMIT_MS:.0f} ms", "holds": value <= FORK_LIMIT_MS})  # fmt: skip
    return verdicts


def _scaling_verdicts(scaling: dict[str, Any]) -> list[dict[str, Any]]:
    verdicts: list[dict[str, Any]] = []
    for operation, kinds in scaling["operations"].items():
        value = kinds["sync"]["ratio"]
        verdicts.append({
            "target": f"flat: {operation} at {scaling['large']:,} ≤ {FLAT_LIMIT}× at {scaling['small']:,}",
            "value": f"{value:.2f}×", "limit": f"≤ {FLAT_LIMIT}×", "holds": value <= FLAT_LIMIT,
        })  # fmt: skip
    memory = scaling["memory"]
    verdicts.append({
        "target": f"memory: get_messages(limit=50) on {scaling['large']:,} messages < {memory['limit_mb']:.0f} MB",
        "value": f"{memory['peak_added_mb']:.2f} MB", "limit": f"< {memory['limit_mb']:.0f} MB",
        "holds": memory["peak_added_mb"] < memory["limit_mb"],
    })  # fmt: skip
    return verdicts


SERVER_FLOOR_LIMIT = 1.3  # a hot operation's median, sync face, over the raw driver's
ASYNC_CPU_LIMIT = 1.3  # the async face's client CPU per call over the sync face's
SERVER_OPERATIONS = (
    "save_checkpoint", "get_latest_checkpoint[ns]", "list_checkpoints(10)[ns]", "add_message", "get_messages(50)",
)  # fmt: skip
SERVER_WRITES = ("save_checkpoint", "add_message")
PEERED = ("save_checkpoint", "get_latest_checkpoint[ns]", "list_checkpoints(10)[ns]")
MAX_ROUND_TRIPS = {"read": 1, "write": 2}  # PostgreSQL: a one-statement read, a write
THROUGHPUT_WRITERS = ("1", "4", "16")


def server_verdicts(servers: dict[str, Any]) -> list[dict[str, Any]]:
    """The server targets; a server that was skipped or a number not measured gives "not measured"."""
    verdicts: list[dict[str, Any]] = []
    for backend, result in servers.items():
        verdicts += _server_verdicts(backend, result)
    return verdicts


def _server_verdicts(backend: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    verdicts: list[dict[str, Any]] = []
    missing = "skipped" if "skipped" in result else "not measured"
    operations: dict[str, dict[str, Any]] = result.get("operations", {})
    throughput: dict[str, dict[str, Any]] = result.get("throughput", {})

    def number(operation: str, contender: str, key: str, table: dict[str, dict[str, Any]] = operations) -> Any:
        return table.get(operation, {}).get(contender, {}).get(key)

    def add(target: str, limit: str, a: Any, b: Any, holds: Callable[[Any, Any], bool], shown: str) -> None:
        if a is None or b is None:
            verdicts.append({"target": target, "value": missing, "limit": limit, "holds": None})
            return
        value = shown.format(a=a, b=b, r=a / b if b else float("inf"))
        verdicts.append({"target": target, "value": value, "limit": limit, "holds": holds(a, b)})

    def at_most(limit: float) -> Callable[[Any, Any], bool]:
        return lambda a, b: a <= limit * b

    def median(operation: str, contender: str) -> Any:
        return number(operation, contender, "median_us")

    if backend == "postgresql":
        for face, peer, saver in (
            ("sync", "langgraph", "PostgresSaver"),
            ("async", "langgraph_async", "AsyncPostgresSaver"),
        ):
            for operation in PEERED:
                add(f"postgresql {operation}: {face} no slower than {saver}", "≤", median(operation, face),
                    median(operation, peer), at_most(1), "{a:,.0f} vs {b:,.0f} µs")  # fmt: skip
    floor = "psycopg floor" if backend == "postgresql" else "PyMySQL floor"
    for operation in SERVER_OPERATIONS:
        add(f"{backend} {operation}: sync ≤ {SERVER_FLOOR_LIMIT}× {floor}", f"≤ {SERVER_FLOOR_LIMIT}×",
            median(operation, "sync"), median(operation, "floor"), at_most(SERVER_FLOOR_LIMIT),
            "{r:.2f}× ({a:,.0f} vs {b:,.0f} µs)")  # fmt: skip
    for face in ("sync", "async"):
        for operation in SERVER_OPERATIONS:
            trips = number(operation, face, "round_trips")
            if backend == "postgresql":
                most = MAX_ROUND_TRIPS["write" if operation in SERVER_WRITES else "read"]
                add(f"postgresql {operation}: {face} ≤ {most} round trip{'s' if most > 1 else ''}", f"≤ {most}",
                    trips, most, at_most(1), "{a:g}")  # fmt: skip
            else:
                add(f"mariadb {operation}: {face} round trips ≤ the floor's (no ping per call)", "≤ floor",
                    trips, number(operation, "floor", "round_trips"), at_most(1), "{a:g} vs {b:g}")  # fmt: skip
    if backend == "postgresql":
        for operation in SERVER_OPERATIONS:
            # What psycopg's AsyncConnection alone costs over its blocking connection, for scale.
            driver = number(operation, "floor_async", "cpu_us"), number(operation, "floor", "cpu_us")
            beside = f"; psycopg alone {driver[0] / driver[1]:.2f}×" if None not in driver else ""
            add(f"postgresql {operation}: async client CPU ≤ {ASYNC_CPU_LIMIT}× sync's", f"≤ {ASYNC_CPU_LIMIT}×",
                number(operation, "async", "cpu_us"), number(operation, "sync", "cpu_us"),
                at_most(ASYNC_CPU_LIMIT), "{r:.2f}× ({a:,.0f} vs {b:,.0f} µs)" + beside)  # fmt: skip
        for writers in THROUGHPUT_WRITERS:
            add(f"postgresql save_checkpoint, {writers} writer{'s' if writers != '1' else ''}: async throughput"
                " ≥ AsyncPostgresSaver's", "≥", number("save_checkpoint", "async", writers, throughput),
                number("save_checkpoint", "langgraph_async", writers, throughput), lambda a, b: a >= b,
                "{a:,.0f} vs {b:,.0f} ops/s")  # fmt: skip
    for operation in SERVER_WRITES:
        rates = [number(operation, "async", writers, throughput) for writers in THROUGHPUT_WRITERS]
        target = f"{backend} {operation}: throughput rises with writers (1 < 4 < 16)"
        if None in rates:
            verdicts.append({"target": target, "value": missing, "limit": "rising", "holds": None})
        else:
            verdicts.append({"target": target, "value": " < ".join(f"{rate:,.0f}" for rate in rates) + " ops/s",
                             "limit": "rising", "holds": rates[0] < rates[1] < rates[2]})  # fmt: skip
    return verdicts


def render(verdicts: list[dict[str, Any]]) -> str:
    lines = ["| target | measured | verdict |", "|---|---:|---|"]
    for verdict in verdicts:
        mark = {True: "holds", False: "**MISSED**", None: "not measured"}[verdict["holds"]]
        lines.append(f"| {verdict['target']} | {verdict['value']} | {mark} |")
    held = sum(1 for verdict in verdicts if verdict["holds"])
    lines.append(f"\n{held} of {len(verdicts)} targets hold.")
    return "\n".join(lines)
