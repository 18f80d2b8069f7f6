"""Benchmark the store against the raw drivers and LangGraph's checkpointers.

    pip install -e ".[bench]"
    python -m benchmarks.run                          # full run, a few minutes
    python -m benchmarks.run --quick                  # fewer samples, smaller scaling set
    python -m benchmarks.run --servers-only --quick   # the PostgreSQL and MariaDB section alone
    python -m benchmarks.run --savers-only --quick    # the LangGraph savers against LangGraph's own

Prints a table of medians with each contender's ratio to the raw floor, checks every
target of the performance issue, and writes ``benchmarks/results/latest.json``.
The server section runs against ``OBSKU_BENCH_POSTGRES_URL`` / ``OBSKU_BENCH_MYSQL_URL``
(defaults: the local test servers) in scratch databases it drops afterwards; an
unreachable server is reported and skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import _environment, _savers, _scaling, _servers, _sqlite_suite, _targets
from ._workload import Timing

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, shorter runs")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json", help="where to write the JSON result")
    parser.add_argument("--no-servers", action="store_true", help="skip the PostgreSQL and MariaDB section")
    parser.add_argument("--no-scaling", action="store_true", help="skip the 1,000 vs 100,000 rows comparison")
    parser.add_argument("--servers-only", action="store_true", help="only the PostgreSQL and MariaDB section")
    parser.add_argument("--no-savers", action="store_true", help="skip the LangGraph savers section")
    parser.add_argument("--savers-only", action="store_true", help="only the LangGraph savers section")
    parser.add_argument("--directory", help="where to put the SQLite files (default: a temporary directory)")
    args = parser.parse_args(argv)
    if args.servers_only and args.no_servers:
        parser.error("--servers-only and --no-servers leave nothing to run")
    if args.savers_only and (args.no_savers or args.servers_only):
        parser.error("--savers-only goes with neither --no-savers nor --servers-only")
    return asyncio.run(_main(args))


def report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def _main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    profile = _sqlite_suite.QUICK if args.quick else _sqlite_suite.FULL
    operations: dict[str, dict[str, Timing]] = {}
    scaling = servers = savers = None
    with tempfile.TemporaryDirectory(prefix="obsku-bench-", dir=args.directory) as directory:
        if not (args.servers_only or args.savers_only):
            report("hot operations on a SQLite file")
            operations = await _sqlite_suite.run_suite(directory, profile, report)
            if not args.no_scaling:
                report("scaling")
                scaling = await _scaling.run_scaling(directory, quick=args.quick, report=report)
        if not (args.no_servers or args.savers_only):
            servers = await _servers.run_servers(_servers.QUICK if args.quick else _servers.FULL, report)
        if not (args.no_savers or args.servers_only):
            savers = await _savers.run_savers(directory, _savers.QUICK if args.quick else _savers.FULL, report)
    verdicts = _targets.check(operations, scaling, servers, savers)
    flags = [f"--{name.replace('_', '-')}" for name in
             ("quick", "servers_only", "savers_only", "no_servers", "no_savers", "no_scaling")
             if getattr(args, name)]  # fmt: skip
    result: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "command": " ".join(["python -m benchmarks.run", *flags]),
        "duration_s": round(time.monotonic() - started, 1),
        "environment": _environment.describe(),
        "operations": {op: {name: t.as_json() for name, t in timings.items()} for op, timings in operations.items()},
        "scaling": scaling,
        "servers": servers,
        "savers": savers,
        "targets": verdicts,
    }
    if args.output.exists():  # the semantic-search section is written by benchmarks.memory
        memory = json.loads(args.output.read_text(encoding="utf-8")).get("memory")
        if memory is not None:
            result["memory"] = memory
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result, operations))
    report(f"wrote {args.output} in {result['duration_s']} s")
    return 0


CONTENDERS = ("floor", "sync", "async", "langgraph", "langgraph_async")


def render(result: dict[str, Any], operations: dict[str, dict[str, Timing]]) -> str:
    env = result["environment"]
    lines = [
        f"{result['date']} · {result['mode']} run · {env['machine']}",
        f"{env['versions_line']}",
        "",
        "| operation | floor µs | sync µs (×floor) | async µs (×sync) | LangGraph sync µs | LangGraph async µs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    if not operations:
        lines.pop()
        lines[-1] = "SQLite: not measured in this run (--servers-only or --savers-only)"
    for operation, timings in operations.items():
        floor = timings["floor"].median_us
        cells = [operation, _us(floor)]
        if "sync" in timings:
            sync_us = timings["sync"].median_us
            async_us = timings["async"].median_us
            cells += [f"{_us(sync_us)} ({sync_us / floor:.2f}×)", f"{_us(async_us)} ({async_us / sync_us:.2f}×)"]
        else:  # raw SQLite work only (the WAL checkpoint after a fork)
            cells += ["–", "–"]
        for name in ("langgraph", "langgraph_async"):
            cells.append(_us(timings[name].median_us) if name in timings else "–")
        lines.append("| " + " | ".join(cells) + " |")
    scaling = result.get("scaling")
    if scaling:
        lines += ["", _scaling.render(scaling)]
    servers = result.get("servers")
    if servers:
        lines += ["", _servers.render(servers)]
    savers = result.get("savers")
    if savers:
        lines += ["", _savers.render(savers)]
    lines += ["", _targets.render(result["targets"])]
    return "\n".join(lines)


def _us(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:,.1f} ms"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


if __name__ == "__main__":
    raise SystemExit(main())
