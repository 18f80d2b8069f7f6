"""A SQLite writer killed with SIGKILL loses no write whose call had returned (issue 4, item 7).

Each round releases two (forked) writer processes onto the same file: a victim that writes
until it is killed (50 KB payloads, so its transactions span many pages and the kill
can land mid-commit) and a survivor with a fixed amount of work. Once the victim has
acknowledged a given number of writes, it gets SIGKILL at a random moment. Then:
the survivor still finishes without an error (the dead writer's lock died with it);
every write either process ever acknowledged is in the file, with its version; the
versions are still 1..N per (session, namespace); at most the one call in flight was
committed unacknowledged; and ``PRAGMA integrity_check`` says ``ok``. The next round
reopens the file the dead process left, with its WAL.
"""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import time
from collections import defaultdict
from pathlib import Path

import pytest

from obsku_checkpoint_sqlite import sync
from tests._processes import Acks, spawn, start_writers
from tests._writer import Options

# Acknowledged writes before each kill; the kill itself lands 0-20 ms later.
KILL_AFTER_ACKS = (12, 40, 75, 130, 200)


@pytest.mark.slow
def test_a_sigkilled_writer_loses_no_acknowledged_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    rng = random.Random()
    acknowledged: list[Acks] = []
    victims: list[Acks] = []
    for round_, kill_after in enumerate(KILL_AFTER_ACKS):
        start_file = tmp_path / f"start-{round_}"
        victim, survivor = spawn([
            Options(url, start_file, name=f"victim{round_}", rounds=0, checkpoint_every=1, payload_bytes=50_000),
            Options(url, start_file, name=f"survivor{round_}", face="async", rounds=40, checkpoint_every=2),
        ])  # fmt: skip
        start_writers([victim, survivor], start_file)
        victim.wait_for_acks(kill_after)
        delay = rng.uniform(0, 0.02)
        time.sleep(delay)
        victim.kill()
        assert victim.finish() == -signal.SIGKILL, f"round {round_}: the victim was not killed"
        assert survivor.finish() == 0, f"round {round_}: the survivor failed:\n{survivor.report()}"
        acknowledged += [victim.acks, survivor.acks]
        victims.append(victim.acks)

        with contextlib.closing(sqlite3.connect(tmp_path / "crash.db")) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)], f"round {round_}"
        check_acknowledged_writes(url, acknowledged, victims, context=f"round {round_}, killed after {delay:.3f}s")


def check_acknowledged_writes(url: str, acknowledged: list[Acks], victims: list[Acks], *, context: str) -> None:
    sessions = {ack.own_session for ack in acknowledged if ack.own_session is not None}
    with sync.SqlAlchemyCheckpointStore(url) as store:
        stored_messages = [m for session in sessions for m in store.get_messages(session)]
        stored_checkpoints = [c for session in sessions for c in store.list_checkpoints(session)]
    messages = {m.id: m.session_id for m in stored_messages}
    checkpoints = {c.id: (c.session_id, c.namespace, c.version) for c in stored_checkpoints}

    acked_messages = {mid: sid for ack in acknowledged for mid, sid in ack.messages.items()}
    acked_checkpoints = {cid: info for ack in acknowledged for cid, info in ack.checkpoints.items()}
    lost_messages = acked_messages.keys() - messages.keys()
    lost_checkpoints = acked_checkpoints.keys() - checkpoints.keys()
    assert not lost_messages, f"{context}: acknowledged messages lost: {sorted(lost_messages)}"
    assert not lost_checkpoints, f"{context}: acknowledged checkpoints lost: {sorted(lost_checkpoints)}"
    assert {mid: messages[mid] for mid in acked_messages} == acked_messages
    assert {cid: checkpoints[cid] for cid in acked_checkpoints} == acked_checkpoints, f"{context}: versions changed"
    # Beyond the acknowledged: only the call each victim had in flight when it died.
    assert len(messages) - len(acked_messages) <= len(victims), context
    assert len(checkpoints) - len(acked_checkpoints) <= len(victims), context

    versions: dict[tuple[str, str], list[int]] = defaultdict(list)
    for session_id, namespace, version in checkpoints.values():
        versions[session_id, namespace].append(version)
    for key, found in versions.items():
        assert sorted(found) == list(range(1, len(found) + 1)), f"{context}: versions of {key}: {sorted(found)}"
