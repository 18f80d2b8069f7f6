"""Crossings between the faces, for framework adapters: a blocking call off the event loop,
and a blocking runner on the database an async runner uses.

LangGraph calls a checkpointer through both faces: ``graph.invoke`` and ``get_state`` the
blocking one, ``ainvoke`` and ``aget_state`` the async one, whichever saver it was given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .async_runners import AsyncRunner, ThreadRunner
from .engines import create_sync_engine
from .sync_runner import SyncRunner
from .urls import blocking_url, is_memory_sqlite
from .workers import in_thread

T = TypeVar("T")


async def in_worker_thread(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a worker thread, awaited: the event loop runs on meanwhile."""
    return await in_thread(function, *args)


def blocking_twin(runner: AsyncRunner) -> tuple[SyncRunner, bool]:
    """A blocking runner on ``runner``'s database, and whether the caller must close it.

    On SQLite the async runner is a blocking one underneath, shared. On a server a new
    runner opens an engine of its own with the backend's blocking driver.

    Raises:
        ValueError: the database is a private in-memory one behind a caller's
            ``AsyncEngine``, which no second engine can open.
    """
    if isinstance(runner, ThreadRunner):
        return runner.sync_runner, False
    url = runner.engine.url
    if is_memory_sqlite(url):
        raise ValueError(
            "A private in-memory database behind an AsyncEngine has no blocking face: "
            "open the saver on a URL (sqlite:// runs both faces on one connection)"
        )
    engine = create_sync_engine(blocking_url(url), lock_timeout=runner.lock_timeout)
    return SyncRunner(engine, owns_engine=True, auto_migrate=True, lock_timeout=runner.lock_timeout), True
