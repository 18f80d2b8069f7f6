"""The issue's targets, checked against a run: each one a verdict with its number."""

from __future__ import annotations

from typing import Any

from ._workload import Timing

FORK_LIMIT_MS = 100.0
FLAT_LIMIT = 1.3


def check(
    operations: dict[str, dict[str, Timing]], scaling: dict[str, Any] | None, servers: dict[str, Any] | None
) -> list[dict[str, Any]]:
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

    if scaling is not None:
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

    for backend, result in (servers or {}).items():
        if "skipped" in result:
            verdicts.append({"target": f"{backend}: throughput rises with writers", "value": "skipped",
                             "limit": "1 < 4 < 16", "holds": None})  # fmt: skip
            continue
        for operation, by_writers in result["throughput"].items():
            one, four, sixteen = (by_writers[key] for key in ("1", "4", "16"))
            verdicts.append({
                "target": f"{backend} {operation}: throughput rises with writers (1 < 4 < 16)",
                "value": f"{one:,.0f} < {four:,.0f} < {sixteen:,.0f} ops/s", "limit": "rising",
                "holds": one < four < sixteen,
            })  # fmt: skip
    return verdicts


def render(verdicts: list[dict[str, Any]]) -> str:
    lines = ["| target | measured | verdict |", "|---|---:|---|"]
    for verdict in verdicts:
        mark = {True: "holds", False: "**MISSED**", None: "not measured"}[verdict["holds"]]
        lines.append(f"| {verdict['target']} | {verdict['value']} | {mark} |")
    held = sum(1 for verdict in verdicts if verdict["holds"])
    lines.append(f"\n{held} of {len(verdicts)} targets hold.")
    return "\n".join(lines)
