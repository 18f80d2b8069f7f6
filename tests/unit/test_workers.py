"""The async face's worker threads: results, errors, parallelism, limits and cancellation."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

from obsku_checkpoint_sqlite.runtime.workers import Workers


async def test_a_call_runs_off_the_loop_thread_and_returns_its_result() -> None:
    workers = Workers()
    loop_thread = threading.get_ident()
    ran_on, result = await workers.run(lambda a, *, b: (threading.get_ident(), a + b), 2, b=3)
    assert result == 5
    assert ran_on != loop_thread


async def test_an_exception_reaches_the_awaiting_task_and_the_thread_serves_on() -> None:
    workers = Workers(limit=1)

    def fail() -> None:
        raise LookupError("missing")

    with pytest.raises(LookupError, match="missing"):
        await workers.run(fail)
    assert await workers.run(lambda: "next") == "next"


async def test_calls_run_in_parallel_up_to_the_limit() -> None:
    # Each call waits until four run at once: with fewer threads the barrier breaks.
    workers = Workers(limit=4)
    barrier = threading.Barrier(4, timeout=5)
    results = await asyncio.gather(*(workers.run(barrier.wait) for _ in range(4)))
    assert sorted(results) == [0, 1, 2, 3]


async def test_calls_beyond_the_limit_wait_their_turn() -> None:
    workers = Workers(limit=2)
    running = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()

    def call() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(5)
        with lock:
            running -= 1

    calls = [workers.run(call) for _ in range(6)]
    await asyncio.sleep(0.2)
    assert most == 2
    release.set()
    await asyncio.gather(*calls)
    assert most == 2


async def test_a_cancelled_call_finishes_in_its_thread_and_its_result_is_dropped() -> None:
    workers = Workers(limit=1)
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        finished.set()
        return "late"

    task = asyncio.ensure_future(workers.run(slow))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    await asyncio.to_thread(finished.wait, 5)
    assert await workers.run(lambda: "after") == "after"


def test_a_call_whose_loop_closed_leaves_the_thread_serving() -> None:
    workers = Workers(limit=1)
    release = threading.Event()
    loop = asyncio.new_event_loop()

    async def start() -> None:
        workers.run(release.wait, 5)

    loop.run_until_complete(start())
    loop.close()
    release.set()  # the call ends after its loop: nothing to settle, no error
    assert asyncio.run(_run(workers, lambda: "served")) == "served"


async def _run(workers: Workers, function: object) -> object:
    return await workers.run(function)  # type: ignore[arg-type]


def test_a_forked_child_starts_its_own_worker_threads() -> None:
    # The parent has a parked worker thread; the child has none, and must start one.
    from obsku_checkpoint_sqlite.runtime import workers

    async def call() -> str:
        return await workers.in_thread(lambda: "child")

    assert asyncio.run(call()) == "child"
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if the call ran within the alarm
        signal.alarm(10)
        os._exit(0 if asyncio.run(call()) == "child" else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


async def test_one_caller_at_a_time_keeps_to_the_thread_parked_last() -> None:
    # After a burst has started eight threads, calls made one after another all run on
    # one warm thread rather than on each of the eight in turn.
    workers = Workers(limit=8)
    barrier = threading.Barrier(8, timeout=5)
    await asyncio.gather(*(workers.run(barrier.wait) for _ in range(8)))
    ran_on = {await workers.run(threading.get_ident) for _ in range(40)}
    assert len(ran_on) == 1
