"""On a SQLite file the hot operations take the short path, and the store behaves the same without it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from obsku_checkpoint_sqlite.dto import NewCheckpoint, NewMessage, NewSession
from obsku_checkpoint_sqlite.ops import checkpoints, forks, messages, sessions
from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine
from obsku_checkpoint_sqlite.runtime.sync_runner import SyncRunner

REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[SyncRunner]:
    runner = SyncRunner(create_sync_engine(f"sqlite:///{tmp_path / 'fast.db'}"), owns_engine=True)
    yield runner
    runner.close()


def through_sqlalchemy(engine: Engine) -> tuple[list[str], Callable[[], None]]:
    """The statements that go through ``Connection.execute``, and a function that stops recording."""
    seen: list[str] = []

    def record(conn: Any, clause: Any, *args: Any) -> None:
        seen.append(str(clause))

    event.listen(engine, "before_execute", record)
    return seen, lambda: event.remove(engine, "before_execute", record)


def hot_operations(runner: SyncRunner) -> None:
    session = runner.run(sessions.create_session, NewSession(directory="/fast"), write=True)
    runner.run(messages.add_message, NewMessage(session_id=session.id, role="user", content="hi"), write=True)
    new = NewCheckpoint(session_id=session.id, step=1, node_results={"a": {"status": "completed"}}, source="loop")
    saved = runner.run(checkpoints.save_checkpoint, new, write=True)
    for namespace in ("", None):
        runner.run(checkpoints.get_latest_checkpoint, session.id, namespace, write=False)
        runner.run(checkpoints.list_checkpoints, session.id, namespace, 10, write=False)
    runner.run(messages.get_messages, session.id, None, 50, write=False)
    runner.run(checkpoints.get_checkpoint, saved.id, write=False)
    runner.run(sessions.get_session, session.id, write=False)
    runner.run(forks.fork, saved.id, None, write=True)


def test_hot_operations_take_the_short_path_on_pysqlite(runner: SyncRunner) -> None:
    runner.run(sessions.get_session, "warm-up", write=False)  # the schema is built through SQLAlchemy
    seen, stop = through_sqlalchemy(runner.engine)
    try:
        hot_operations(runner)
    finally:
        stop()
    assert seen == []


def test_a_cursor_listener_sends_every_statement_through_sqlalchemy(runner: SyncRunner) -> None:
    # The control for the test above: the detector sees statements when the short path is off.
    runner.run(sessions.get_session, "warm-up", write=False)
    event.listen(runner.engine, "before_cursor_execute", lambda *args: None)
    seen, stop = through_sqlalchemy(runner.engine)
    try:
        hot_operations(runner)
    finally:
        stop()
    assert len(seen) >= 14


def test_the_store_behaves_the_same_without_the_short_path() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "sqlite", "tests/test_store.py"],
        cwd=REPOSITORY,
        env={**os.environ, "OBSKU_SHORT_PATH": "0"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert " passed" in completed.stdout
    assert " failed" not in completed.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_langgraph_saver_calls_take_the_short_path(backend: str, tmp_path: Path) -> None:
    # Their checkpoints and writes are bytes, which sqlite3 and psycopg take and return as
    # they are: a bytes type with a conversion would send every call through SQLAlchemy.
    from langgraph.checkpoint.base import empty_checkpoint

    from obsku_checkpoint_sqlite.langgraph import ObskuSaver
    from tests.conftest import require_server

    url = f"sqlite:///{tmp_path / 'saver.db'}" if backend == "sqlite" else require_server(backend)
    with ObskuSaver.from_conn_string(url) as saver:
        config = {"configurable": {"thread_id": f"t-{uuid.uuid4()}", "checkpoint_ns": ""}}
        saved = saver.put(config, empty_checkpoint(), {"source": "loop", "step": 0}, {})  # creates the thread
        seen, stop = through_sqlalchemy(saver._runner.engine)
        try:
            saved = saver.put(saved, empty_checkpoint(), {"source": "loop", "step": 1}, {})
            saver.put_writes(saved, [("x", b"\x00bytes"), ("y", 2)], "task")
            found = saver.get_tuple(saved)
        finally:
            stop()
        listed = list(saver.list(config, limit=10))  # its writes of a page: an expanding IN, through SQLAlchemy
    assert seen == []
    assert found is not None
    assert [(channel, value) for _, channel, value in found.pending_writes] == [("x", b"\x00bytes"), ("y", 2)]
    assert len(listed) == 2
