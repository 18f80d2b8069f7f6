"""LangGraph's SQLite checkpointers on equivalent work, as the peers users compare us with.

A LangGraph checkpoint carries the same 20 node results as ``channel_values``; its
thread plays the session. Both savers get ``synchronous=NORMAL`` (their ``setup``
already turns WAL on), the setting our store runs with: LangGraph's default FULL
would make them look slower than they need to be.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import aiosqlite
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver


def checkpoint_of(step: int, values: dict[str, Any]) -> Any:
    checkpoint = empty_checkpoint()
    checkpoint["id"] = str(uuid6(clock_seq=step))
    checkpoint["channel_values"] = values
    checkpoint["channel_versions"] = dict.fromkeys(values, step)
    return checkpoint


def metadata_of(step: int) -> Any:
    return {"source": "loop", "step": step, "parents": {}}


def config_of(thread_id: str, namespace: str | None = "") -> Any:
    configurable: dict[str, Any] = {"thread_id": thread_id}
    if namespace is not None:
        configurable["checkpoint_ns"] = namespace
    return {"configurable": configurable}


def open_sync(path: str) -> SqliteSaver:
    saver = SqliteSaver(sqlite3.connect(path, check_same_thread=False))
    saver.setup()
    saver.conn.execute("PRAGMA synchronous=NORMAL")
    return saver


async def open_async(path: str) -> tuple[AsyncSqliteSaver, aiosqlite.Connection]:
    conn = await aiosqlite.connect(path)
    saver = AsyncSqliteSaver(conn)
    await saver.setup()
    await conn.execute("PRAGMA synchronous=NORMAL")
    return saver, conn


def seed(path: str, thread_id: str, count: int, values: dict[str, Any], side_namespace_every: int) -> None:
    """``count`` checkpoints in one thread, written in one transaction as ``put`` would write them."""
    saver = open_sync(path)
    rows = []
    for step in range(count):
        namespace = "tools" if side_namespace_every and step % side_namespace_every == 7 else ""
        checkpoint = checkpoint_of(step, values)
        kind, blob = saver.serde.dumps_typed(checkpoint)
        metadata = json.dumps(metadata_of(step)).encode()
        rows.append((thread_id, namespace, checkpoint["id"], None, kind, blob, metadata))
    with saver.conn:
        saver.conn.executemany(
            "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, "
            "checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    saver.conn.close()
