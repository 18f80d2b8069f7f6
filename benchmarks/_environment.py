"""The machine and the versions a result was measured with."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from importlib import metadata
from typing import Any

PACKAGES = (
    "obsku-checkpoint-sqlite", "sqlalchemy", "pydantic", "orjson", "aiosqlite", "alembic",
    "langgraph-checkpoint-sqlite", "langgraph-checkpoint-postgres", "langgraph-checkpoint", "psycopg",
    "psycopg-binary", "pymysql", "aiomysql",
)  # fmt: skip


def describe() -> dict[str, Any]:
    versions: dict[str, str | None] = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    cpu = _cpu_model()
    cores = os.cpu_count()
    memory = _memory_gib()
    machine = f"{cpu}, {cores} cores, {memory} GiB RAM, {platform.system()} {platform.release()}"
    shown = ("python", "sqlite", "sqlalchemy", "pydantic", "orjson", "langgraph-checkpoint-sqlite")
    return {
        "machine": machine,
        "cpu": cpu,
        "cores": cores,
        "memory_gib": memory,
        "platform": platform.platform(),
        "python_implementation": sys.implementation.name,
        "versions": versions,
        "versions_line": " · ".join(f"{name} {versions[name]}" for name in shown),
        "commit": _git_commit(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        psutil = None
    if psutil is not None:
        total: int = psutil.virtual_memory().total
        return round(total / 2**30, 1)
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(meminfo.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(kib / 2**20, 1)


def _git_commit() -> str | None:
    try:
        output = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return output.stdout.strip() or None
