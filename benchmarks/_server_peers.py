"""LangGraph's PostgreSQL checkpointers on equivalent work, as the peers users compare us with.

Each saver runs on a psycopg connection opened as LangGraph's documentation opens it
(``autocommit=True, prepare_threshold=0, row_factory=dict_row``, what its
``from_conn_string`` does), and ``setup()`` runs once. A checkpoint carries the same 20
node results as ``channel_values``, each a new version of its channel at every step (as
every node result is saved again by the store at every step), so ``put`` writes all 20
to LangGraph's blob table and ``get_tuple``/``list`` read them back; the thread plays
the session. LangGraph's tables share names with the store's (``checkpoints``), so its
savers get a scratch database of their own on the same server.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncConnection, Connection
from psycopg.rows import dict_row

from . import _langgraph as lg

config_of = lg.config_of


def checkpoint_of(step: int, values: dict[str, Any]) -> Any:
    checkpoint = lg.checkpoint_of(step, values)
    # Versions as LangGraph's own savers make them: text that sorts in step order.
    checkpoint["channel_versions"] = dict.fromkeys(values, f"{step:032}.0")
    return checkpoint


def put(saver: PostgresSaver, config: Any, step: int, values: dict[str, Any]) -> Any:
    checkpoint = checkpoint_of(step, values)
    return saver.put(config, checkpoint, lg.metadata_of(step), checkpoint["channel_versions"])


async def aput(saver: AsyncPostgresSaver, config: Any, step: int, values: dict[str, Any]) -> Any:
    checkpoint = checkpoint_of(step, values)
    return await saver.aput(config, checkpoint, lg.metadata_of(step), checkpoint["channel_versions"])


async def alist(saver: AsyncPostgresSaver, config: Any, limit: int) -> list[Any]:
    return [item async for item in saver.alist(config, limit=limit)]


def open_sync(conninfo: str) -> PostgresSaver:
    conn = Connection.connect(conninfo, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    return PostgresSaver(conn)


async def open_async(conninfo: str) -> AsyncPostgresSaver:
    conn = await AsyncConnection.connect(conninfo, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    return AsyncPostgresSaver(conn)


def close_sync(saver: PostgresSaver) -> None:
    saver.conn.close()


async def close_async(saver: AsyncPostgresSaver) -> None:
    await saver.conn.close()


def seed(saver: PostgresSaver, thread_id: str, count: int, values: dict[str, Any]) -> None:
    """``count`` checkpoints in one thread through ``put`` itself, in one transaction
    (one in ten in the namespace "tools", as the store's session is seeded)."""
    conn: Connection[Any] = saver.conn  # type: ignore[assignment]
    with conn.transaction():
        for step in range(count):
            put(saver, config_of(thread_id, "tools" if step % 10 == 7 else ""), step, values)
