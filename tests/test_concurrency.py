"""Several processes writing one database at once (issue 4, items 2, 6 and 8).

Four writer processes (forked: see _processes.py) (two through the async face, two through the sync one) open the
same new database at the same moment, so they also race to build its schema; then, all
released together, they append messages and save auto-versioned checkpoints on the
same sessions. Nothing may fail, nothing may be lost, and in every (session, namespace)
the versions must be exactly 1..N. SQLite file, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from tests._processes import Acks, spawn, start_writers
from tests._writer import Options
from tests.conftest import DATABASE_BACKENDS

WRITERS = 4
ROUNDS = 40  # per writer: 40 messages and 20 checkpoints, round-robin over the 4 sessions


def check_everything_acknowledged_is_stored(url: str, acks: list[Acks], sessions: list[str]) -> None:
    """Exact counts, the acknowledged rows themselves, and versions 1..N per namespace."""
    with sync.SqlAlchemyCheckpointStore(url) as store:
        stored_messages = {session: store.get_messages(session) for session in sessions}
        stored_checkpoints = {session: store.list_checkpoints(session) for session in sessions}

    acked_messages = {mid: sid for ack in acks for mid, sid in ack.messages.items()}
    assert sum(len(ack.messages) for ack in acks) == len(acked_messages), "two writers got the same message id"
    assert {m.id: m.session_id for ms in stored_messages.values() for m in ms} == acked_messages

    acked_checkpoints = {cid: info for ack in acks for cid, info in ack.checkpoints.items()}
    stored = {c.id: (c.session_id, c.namespace, c.version) for cs in stored_checkpoints.values() for c in cs}
    assert stored == acked_checkpoints
    versions: dict[tuple[str, str], list[int]] = defaultdict(list)
    for session_id, namespace, version in stored.values():
        versions[session_id, namespace].append(version)
    for key, found in versions.items():
        assert sorted(found) == list(range(1, len(found) + 1)), f"versions of {key}: {sorted(found)}"


def run_writers(url: str, tmp_path: Path, rounds: int) -> tuple[list[Acks], list[str]]:
    start_file = tmp_path / "start"
    writers = spawn([
        Options(url, start_file, name=f"w{index}", face=("async", "sync")[index % 2], rounds=rounds)
        for index in range(WRITERS)
    ])  # fmt: skip
    start_writers(writers, start_file)
    for writer in writers:
        assert writer.finish() == 0, f"{writer.name} failed:\n{writer.report()}"
        assert writer.acks.done
    return [writer.acks for writer in writers], [writer.acks.own_session or "" for writer in writers]


@pytest.mark.slow
@pytest.mark.parametrize("scratch_url", [*DATABASE_BACKENDS, "postgresql-pgbouncer"], indirect=True)
def test_processes_share_a_new_database_without_errors_or_lost_writes(scratch_url: str, tmp_path: Path) -> None:
    acks, sessions = run_writers(scratch_url, tmp_path, ROUNDS)

    assert len(set(sessions)) == WRITERS, "each writer created its session on the new database"
    for ack in acks:
        assert len(ack.messages) == ROUNDS
        assert len(ack.checkpoints) == ROUNDS // 2
    check_everything_acknowledged_is_stored(scratch_url, acks, sessions)
    # Each writer wrote round-robin to all four sessions: every session saw every writer.
    per_session = Counter(session for ack in acks for session in ack.messages.values())
    assert per_session == dict.fromkeys(sessions, WRITERS * ROUNDS // len(sessions))
    if scratch_url.startswith("sqlite"):
        engine = create_engine(normalize_url(scratch_url, for_async=False))
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        engine.dispose()
