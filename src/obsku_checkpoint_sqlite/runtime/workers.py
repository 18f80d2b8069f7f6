"""Worker threads for the async face: a blocking call handed off and awaited, one hand-off each.

``loop.run_in_executor`` wraps each call in two futures, a ``concurrent.futures`` one
chained to an asyncio one, with a lock and a condition variable on each side. A store
operation on a server is one round trip, so that bookkeeping is a large part of what
the async face adds to it. Here a call is an item handed to a parked thread's own
``queue.SimpleQueue`` and an asyncio future that the worker settles through
``call_soon_threadsafe``: the same two thread wake-ups, and little else.

The thread parked last takes the next call. A shared queue would wake the one parked
longest, so after a burst of 16 callers, 4 would be served by all 16 threads in turn,
each with a cold stack and cache: measurably more CPU and context switches per call.

The threads are shared by every store in the process, started as calls need them, up
to ``WORKER_LIMIT``; a call beyond that waits its turn. They are daemon threads, so an
unclosed store keeps none alive at exit. A process forked from one that has them
starts with none.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# As many as the pools of a few stores hold: more would only wait for a connection.
WORKER_LIMIT = 32

_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class Workers:
    """Daemon threads that run blocking calls for event loops."""

    def __init__(self, limit: int = WORKER_LIMIT) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._threads = 0
        self._parked: list[queue.SimpleQueue[_Call]] = []  # parked threads' inboxes, the last parked on top
        self._waiting: collections.deque[_Call] = collections.deque()  # calls beyond the limit

    def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """``function(*args, **kwargs)`` in a worker thread; await the returned future for its result.

        Cancelling the future does not stop a call that a thread has taken: it runs to
        the end, and its result is dropped.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        call: _Call = (loop, future, function, args, kwargs)
        with self._lock:
            inbox = self._parked.pop() if self._parked else None
            start = inbox is None and self._threads < self._limit
            if start:
                self._threads += 1
            elif inbox is None:
                self._waiting.append(call)
        if inbox is not None:
            inbox.put(call)
        elif start:
            threading.Thread(target=self._work, args=(call,), name="obsku-worker", daemon=True).start()
        return future

    def _work(self, call: _Call | None) -> None:
        inbox: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        while call is not None:
            loop, future, function, args, kwargs = call
            outcome = _outcome(function, args, kwargs)
            # Parked before the caller hears back, so that its next call comes to this thread.
            with self._lock:
                call = self._waiting.popleft() if self._waiting else None
                if call is None:
                    self._parked.append(inbox)
            _settle_soon(loop, future, *outcome)
            del loop, future, function, args, kwargs, outcome  # hold no call's values while parked
            if call is None:
                call = inbox.get()


def _outcome(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, BaseException | None]:
    """``function(*args, **kwargs)``'s result, or the exception it raised."""
    try:
        return function(*args, **kwargs), None
    except BaseException as exc:  # handed to the awaiting task, whatever it is
        return None, exc


def _settle_soon(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, exc: BaseException | None
) -> None:
    # A loop closed meanwhile raises RuntimeError: no one awaits the call any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_settle, future, result, exc)


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():  # the awaiting task was cancelled
        return
    if exc is None:
        future.set_result(result)
    else:
        future.set_exception(exc)


WORKERS = Workers()


def _start_over_in_child() -> None:
    # A forked child has none of its parent's threads, but would inherit their count as idle
    # and queue calls that no thread takes: it starts with no threads instead.
    global WORKERS
    WORKERS = Workers()


os.register_at_fork(after_in_child=_start_over_in_child)


def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
    """``function(*args, **kwargs)`` in one of the process's worker threads, awaitable."""
    return WORKERS.run(function, *args, **kwargs)
