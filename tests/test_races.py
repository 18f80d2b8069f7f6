"""Writers of related rows racing the deletion of their session (issue 13, item 1).

A fork, a checkpoint save or a message, against ``delete_session`` or a prune of idle
sessions, on PostgreSQL and MariaDB. Each interleaving is made on purpose, not hoped
for: one side is held at a gap between its statements (before its N-th statement, or
before a commit), the other side runs until it finishes or waits for a lock the held
side has, then the held side goes on. Every gap of either side is tried. The outcome
must be whole or a clean not-found with nothing left: never a fork short of messages or
of its checkpoint, never an orphan row, never a bare SQLAlchemy error.

SQLite is left out: ``BEGIN IMMEDIATE`` makes each writer wait for the whole of the
other, so it has no gaps to interleave in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text

from obsku_checkpoint_sqlite import CheckpointNotFoundError, SessionNotFoundError, sync
from obsku_checkpoint_sqlite.db.values import now_ms
from obsku_checkpoint_sqlite.runtime.urls import normalize_url

HISTORY = 10
WAIT_S = 20.0

pytestmark = pytest.mark.parametrize("scratch_url", ["postgresql", "mariadb"], indirect=True)


class Gate:
    """Holds one thread at its ``at``-th arrival (a statement or a commit) on an engine."""

    def __init__(self, engine: Engine, at: int) -> None:
        self.engine = engine
        self.at = at
        self.arrivals = 0
        self.thread: int | None = None
        self.held = threading.Event()
        self.release = threading.Event()

    def arrive(self, *_args: Any) -> None:
        if threading.get_ident() != self.thread:
            return
        self.arrivals += 1
        if self.arrivals == self.at:
            self.held.set()
            self.release.wait(WAIT_S)

    def __enter__(self) -> Gate:
        event.listen(self.engine, "before_cursor_execute", self.arrive)
        event.listen(self.engine, "commit", self.arrive)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release.set()
        event.remove(self.engine, "before_cursor_execute", self.arrive)
        event.remove(self.engine, "commit", self.arrive)


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def start(gate: Gate | None, action: Callable[[], Any]) -> Outcome:
    """Run ``action`` on a thread of its own, held by ``gate`` if one is given."""
    outcome = Outcome()

    def run() -> None:
        if gate is not None:
            gate.thread = threading.get_ident()
        try:
            outcome.value = action()
        except BaseException as exc:
            outcome.error = exc
        finally:
            outcome.done.set()

    threading.Thread(target=run, daemon=True).start()
    return outcome


@dataclass
class Source:
    """The session under race: ``HISTORY`` messages and one checkpoint that saw them all."""

    session_id: str
    checkpoint_id: str
    workspace: str
    idle_before: int


class Race:
    """Two stores on one scratch database, and a connection that watches them."""

    def __init__(self, url: str) -> None:
        self.writer = sync.SqlAlchemyCheckpointStore(url)
        self.deleter = sync.SqlAlchemyCheckpointStore(url)
        self.watcher = create_engine(normalize_url(url, for_async=False))
        self.counter = 0
        # MariaDB refreshes INNODB_TRX only when it was last read over 0.1 s ago.
        self.look_every_s = 0.002 if self.watcher.dialect.name == "postgresql" else 0.12

    def close(self) -> None:
        self.writer.close()
        self.deleter.close()
        self.watcher.dispose()

    def source(self) -> Source:
        self.counter += 1
        workspace = f"race-{self.counter}"
        session = self.writer.create_session("/race", workspace_id=workspace, title="source")
        for index in range(HISTORY):
            self.writer.add_message(session.id, role="user", content=f"m{index}")
        checkpoint = self.writer.save_checkpoint(session_id=session.id, step=1, node_results={}, source="loop")
        time.sleep(0.005)  # the source is idle before this moment; a fork or a message is not
        return Source(session.id, checkpoint.id, workspace, now_ms())

    def count(self, query: str, **params: Any) -> int:
        with self.watcher.connect() as conn:
            return int(conn.execute(text(query), params).scalar_one())

    def someone_waits_for_a_lock(self) -> bool:
        if self.watcher.dialect.name == "postgresql":
            query = (
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        else:
            query = (
                "SELECT count(*) FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p"
                " ON p.ID = t.trx_mysql_thread_id WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()"
            )
        return self.count(query) > 0

    def rows_of(self, session_id: str) -> tuple[int, int, int]:
        """The session's rows: (sessions, messages, checkpoints)."""
        return (
            self.count("SELECT count(*) FROM sessions WHERE id = :id", id=session_id),
            self.count("SELECT count(*) FROM messages WHERE session_id = :id", id=session_id),
            self.count("SELECT count(*) FROM checkpoints WHERE session_id = :id", id=session_id),
        )

    def forks_of(self, session_id: str) -> list[str]:
        with self.watcher.connect() as conn:
            query = text("SELECT id FROM sessions WHERE forked_from_session_id = :id")
            return list(conn.execute(query, {"id": session_id}).scalars())


@pytest.fixture
def race(scratch_url: str) -> Iterator[Race]:
    opened = Race(scratch_url)
    yield opened
    opened.close()


# The writers and the deleters, as calls on a store.
WRITERS: dict[str, Callable[[sync.SqlAlchemyCheckpointStore, Source], Any]] = {
    "fork": lambda store, source: store.fork(source.checkpoint_id),
    "checkpoint": lambda store, source: store.save_checkpoint(
        session_id=source.session_id, step=2, node_results={}, source="loop"
    ),
    "message": lambda store, source: store.add_message(source.session_id, role="user", content="late"),
}
DELETERS: dict[str, Callable[[sync.SqlAlchemyCheckpointStore, Source], Any]] = {
    "delete_session": lambda store, source: store.delete_session(source.session_id),
    "prune": lambda store, source: store.prune(sessions_idle_before=source.idle_before, workspace_id=source.workspace),
    # Not the session: the checkpoint a fork copies, pruned on its own.
    "prune_checkpoints": lambda store, source: store.prune(
        checkpoints_before=source.idle_before, workspace_id=source.workspace
    ),
}
NOT_FOUND = {"fork": CheckpointNotFoundError, "checkpoint": SessionNotFoundError, "message": SessionNotFoundError}


def arrivals(race: Race, held_side: str, writer: str, deleter: str) -> int:
    """How many statements and commits the held side sends when it runs alone."""
    source = race.source()
    store = race.writer if held_side == "writer" else race.deleter
    action = WRITERS[writer] if held_side == "writer" else DELETERS[deleter]
    with Gate(store._runner.engine, 0) as counter:
        counter.thread = threading.get_ident()
        action(store, source)
        return counter.arrivals


def interleave(race: Race, held_side: str, at: int, writer: str, deleter: str) -> tuple[Source, Outcome, Outcome]:
    """Hold one side at its ``at``-th arrival, run the other as far as it goes, then both."""
    source = race.source()
    stores = {"writer": race.writer, "deleter": race.deleter}
    actions = {"writer": WRITERS[writer], "deleter": DELETERS[deleter]}
    other_side = "deleter" if held_side == "writer" else "writer"
    with Gate(stores[held_side]._runner.engine, at) as gate:
        held = start(gate, lambda: actions[held_side](stores[held_side], source))
        deadline = time.monotonic() + WAIT_S
        while not (gate.held.is_set() or held.done.is_set()):
            assert time.monotonic() < deadline, "the held side neither stopped nor finished"
            time.sleep(0.001)
        other = start(None, lambda: actions[other_side](stores[other_side], source))
        while not (other.done.wait(race.look_every_s) or race.someone_waits_for_a_lock()):
            assert time.monotonic() < deadline, "the other side neither finished nor waited for a lock"
        gate.release.set()
        assert held.done.wait(WAIT_S), "the held side never finished"
        assert other.done.wait(WAIT_S), "the other side never finished"
    outcomes = {held_side: held, other_side: other}
    return source, outcomes["writer"], outcomes["deleter"]


def check(race: Race, source: Source, writer: str, deleter: str, wrote: Outcome, deleted: Outcome) -> str:
    """Assert the outcome is whole or a clean not-found; return which it was."""
    assert deleted.error is None, repr(deleted.error)
    gone = (0, 0, 0)
    if deleter == "prune_checkpoints":
        gone = (1, HISTORY, 0)
    if wrote.error is not None:
        assert isinstance(wrote.error, NOT_FOUND[writer]), repr(wrote.error)
        assert race.rows_of(source.session_id) == gone, "a failed write left rows of the deleted session"
        assert race.forks_of(source.session_id) == [], "a failed fork left a session"
        return "not found"
    after = race.rows_of(source.session_id)
    if writer == "fork":
        forked = wrote.value
        messages = race.writer.get_messages(forked.id)
        assert [m.content for m in messages] == [f"m{i}" for i in range(HISTORY)], "an incomplete fork"
        assert [c.parent_id for c in race.writer.list_checkpoints(forked.id)] == [source.checkpoint_id]
        assert race.forks_of(source.session_id) == [forked.id]
        # The fork outlives what it came from. A prune keeps a fork's origin, unless the
        # fork was still in flight while the prune planned (its time is from before the
        # plan): then the origin goes, whole, as it would have without the fork.
        assert after in ([gone] if deleter == "delete_session" else [(1, HISTORY, 1), gone])
    elif writer == "message":
        # A message makes the session active: a prune spares it; delete_session takes it with the rest.
        assert after == ((1, HISTORY + 1, 1) if deleter == "prune" else gone)
    else:
        # A checkpoint does not make the session active: a prune may take it, whole, with the rest.
        assert after in ([(1, HISTORY, 2), gone] if deleter == "prune" else [gone])
    return "whole"


@pytest.mark.slow
@pytest.mark.parametrize("deleter", ["delete_session", "prune"])
@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_writer_racing_the_deletion_of_its_session_is_whole_or_a_clean_not_found(
    race: Race, writer: str, deleter: str
) -> None:
    every_interleaving_is_whole_or_a_clean_not_found(race, writer, deleter)


@pytest.mark.slow
def test_a_fork_racing_a_prune_of_its_checkpoint_is_whole_or_a_clean_not_found(race: Race) -> None:
    every_interleaving_is_whole_or_a_clean_not_found(race, "fork", "prune_checkpoints")


def every_interleaving_is_whole_or_a_clean_not_found(race: Race, writer: str, deleter: str) -> None:
    seen: dict[str, set[str]] = {}
    for held_side in ("writer", "deleter"):
        for at in range(1, arrivals(race, held_side, writer, deleter) + 1):
            source, wrote, deleted = interleave(race, held_side, at, writer, deleter)
            where = f"{held_side} held at arrival {at}"
            try:
                result = check(race, source, writer, deleter, wrote, deleted)
            except AssertionError as exc:
                raise AssertionError(f"{where}: {exc}") from exc
            seen.setdefault(result, set()).add(where)
    # Both outcomes happened, so the interleavings reached both orders.
    assert set(seen) == {"whole", "not found"}, seen
