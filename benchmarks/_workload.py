"""The work every contender does: payloads, seeded histories, and the timing loop.

Payloads follow the issue's measured facts: a checkpoint carries 20 node results with
200-character outputs; a message carries about 200 characters of content, and one in
four carries a tool call. Seeding goes straight through ``sqlite3.executemany`` with
the store's own INSERT statements compiled for SQLite, so a history of 100,000 rows
costs seconds, not the minutes its one-transaction-per-row API would take.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.dialects import sqlite as sqlite_dialect

from obsku_checkpoint_sqlite.db import values

NODE_COUNT = 20
OUTPUT_CHARS = 200
MESSAGE_CHARS = 200
_WORDS = [
    "the",
    "agent",
    "read",
    "a",
    "file",
    "then",
    "ran",
    "tests",
    "and",
    "wrote",
    "summary",
    "of",
    "what",
    "failed",
    "why",
]


def text_of(length: int, rng: random.Random) -> str:
    """Prose-like text: JSON codecs are faster on repetitive bytes than on real output."""
    words: list[str] = []
    size = 0
    while size < length:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:length]


def node_results(rng: random.Random, started: int = 1_764_000_000_000) -> dict[str, dict[str, Any]]:
    """20 completed node results with 200-character outputs, in the original's camelCase."""
    return {
        f"node_{index:02d}": {
            "status": "completed",
            "output": text_of(OUTPUT_CHARS, rng),
            "startedAt": started + index * 10,
            "completedAt": started + index * 10 + 7,
        }
        for index in range(NODE_COUNT)
    }


def tool_calls(rng: random.Random) -> list[dict[str, Any]]:
    return [{"toolUseId": f"tu_{rng.randrange(10**9)}", "name": "read_file", "input": {"path": "src/app.py"}}]


@dataclass
class Compiled:
    """A store statement compiled for SQLite, callable with named values like SQLAlchemy's."""

    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]

    @classmethod
    def of(cls, statement: Any) -> Compiled:
        compiled = statement.compile(dialect=sqlite_dialect.dialect())
        return cls(compiled.string, tuple(compiled.positiontup or ()), dict(compiled.params))

    def args(self, values: dict[str, Any]) -> tuple[Any, ...]:
        merged = {**self.defaults, **values}
        return tuple(merged[name] for name in self.names)


def sqlite_connect(path: str) -> sqlite3.Connection:
    """A stdlib connection with the store's pragmas, in autocommit so BEGIN is explicit."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def insert_session(conn: sqlite3.Connection, session_id: str, now: int) -> None:
    conn.execute(
        "INSERT INTO sessions (id, directory, title, workspace_id, metadata, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (session_id, "/work/project", f"bench {session_id[:8]}", "bench", '{"team":"perf"}', now, now),
    )


@dataclass
class History:
    """Sizes of what ``seed`` puts in the measured session and around it."""

    messages: int
    checkpoints: int
    # Rows of other sessions written between each of the measured session's rows, so
    # its rows are spread through the tables as on a server with many sessions.
    interleave: int = 0
    side_namespace_every: int = 10


def seed(path: str, session_id: str, history: History, rng: random.Random) -> None:
    """Fill the measured session (and, interleaved, others) in one transaction."""
    conn = sqlite_connect(path)
    now = values.now_ms() - 10_000_000
    others = [values.new_id() for _ in range(max(history.interleave, 1))] if history.interleave else []
    conn.execute("BEGIN IMMEDIATE")
    for sid in [session_id, *others]:
        insert_session(conn, sid, now)
    payload = json.dumps(node_results(rng), separators=(",", ":"))
    versions: dict[tuple[str, str], int] = {}
    message_rows = []
    for index in range(history.messages):
        for sid in [session_id, *others[: history.interleave]]:
            calls = json.dumps(tool_calls(rng), separators=(",", ":")) if index % 4 == 3 else None
            role = "assistant" if index % 2 else "user"
            message_rows.append((sid, role, text_of(MESSAGE_CHARS, rng), calls, None, 12, 34, now + index))
        if len(message_rows) >= 20_000:
            _insert_messages(conn, message_rows)
    _insert_messages(conn, message_rows)
    checkpoint_rows = []
    for index in range(history.checkpoints):
        namespace = "tools" if history.side_namespace_every and index % history.side_namespace_every == 7 else ""
        for sid in [session_id, *others[: history.interleave]]:
            version = versions[sid, namespace] = versions.get((sid, namespace), 0) + 1
            checkpoint_rows.append(
                (values.new_id(), sid, namespace, None, version, index, "node_19", payload, '["node_00"]', None,
                 "loop", now + index, None)
            )  # fmt: skip
        if len(checkpoint_rows) >= 5_000:
            _insert_checkpoints(conn, checkpoint_rows)
    _insert_checkpoints(conn, checkpoint_rows)
    conn.execute("COMMIT")
    # No ANALYZE: the store never runs it, so a real database has no statistics either
    # (and statistics of a one-session file would mislead the planner).
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _insert_messages(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    conn.executemany(
        "INSERT INTO messages (session_id, role, content, tool_calls, tool_results, tokens_in, tokens_out, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    rows.clear()


def _insert_checkpoints(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    conn.executemany(
        "INSERT INTO checkpoints (id, session_id, namespace, parent_id, version, step, node_id, node_results, "
        "pending_nodes, cycle_state, source, created_at, last_message_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    rows.clear()


# --- timing -----------------------------------------------------------------------------

Call = Callable[[], Any]


@dataclass
class Contender:
    name: str
    call: Call  # a function, or a coroutine function for async contenders
    # Fewer calls for a contender that takes milliseconds (a full sort), so it does not
    # dominate the run; its median is as meaningful with fewer samples.
    calls: int | None = None
    # Run before each call, untimed: puts the database in the same state for every call.
    prepare: Callable[[], Any] | None = None
    samples: list[float] = field(default_factory=list)
    # The process's CPU time per call, in µs, when ``interleaved`` is asked to record it.
    cpu_samples: list[float] = field(default_factory=list)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.call)


@dataclass
class Timing:
    median_us: float
    p90_us: float
    n: int
    # Mean CPU time of the benchmark process per call (client side only: the servers run
    # in their own processes); None where it was not recorded.
    cpu_us: float | None = None

    def as_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"median_us": round(self.median_us, 2), "p90_us": round(self.p90_us, 2), "n": self.n}
        if self.cpu_us is not None:
            result["cpu_us"] = round(self.cpu_us, 2)
        return result


async def interleaved(
    contenders: Sequence[Contender], rounds: int, calls: int, warmup: int = 3, *, cpu: bool = False
) -> dict[str, Timing]:
    """Time each call of each contender, taking turns round by round.

    Each round runs the contenders in a fresh (seeded) random order, so that none always
    runs right after another's page-cache misses or WAL growth: alternating one order
    with its reverse kept the middle contender always after a writer, and a fork after
    another fork pays for checkpointing its WAL. Medians then compare like with like.

    With ``cpu``, each call's process CPU time is read too, outside the wall-clock
    bracket, so the wall times do not include reading the CPU clock (a system call).
    """
    for contender in contenders:
        for _ in range(min(warmup, contender.calls or warmup)):
            await _call(contender)
    shuffler = random.Random(20261127)
    sequence = list(contenders)
    for _ in range(rounds):
        shuffler.shuffle(sequence)
        for contender in sequence:
            for _ in range(contender.calls or calls):
                if contender.prepare is not None:
                    contender.prepare()
                if cpu:
                    cpu_started = time.process_time_ns()
                started = time.perf_counter_ns()
                await _call(contender)
                contender.samples.append((time.perf_counter_ns() - started) / 1000)
                if cpu:
                    contender.cpu_samples.append((time.process_time_ns() - cpu_started) / 1000)
    timings = {contender.name: summarize(contender.samples) for contender in contenders}
    for contender in contenders:
        if contender.cpu_samples:
            timings[contender.name].cpu_us = statistics.fmean(contender.cpu_samples)
    return timings


async def _call(contender: Contender) -> Any:
    result = contender.call()
    if inspect.isawaitable(result):
        return await result
    return result


def summarize(samples: list[float]) -> Timing:
    ordered = sorted(samples)
    return Timing(statistics.median(ordered), ordered[int(len(ordered) * 0.9) - 1], len(ordered))


def counter() -> Iterator[int]:
    value = 0
    while True:
        value += 1
        yield value


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)
