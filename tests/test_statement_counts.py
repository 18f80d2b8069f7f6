"""Operations that touch many rows run a fixed number of statements, not one per row.

Counted with a ``before_cursor_execute`` listener on the store's engine, for a
history of 10 rows and of 10,000, on every backend. (While a listener is attached
the store runs every statement through SQLAlchemy's execution path, so each one is
seen; BEGIN and COMMIT are the driver's and are not counted on either size.)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import DBAPIError

from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.db.queries import checkpoints, messages, sessions
from obsku_checkpoint_sqlite.db.values import now_ms
from tests.conftest import DATABASE_BACKENDS, counting_statements, database_url

SIZES = (10, 10_000)
# Every session these tests make is in a workspace with this prefix, so the rows they
# leave in the shared server databases (tens of thousands a run) can be deleted after.
WORKSPACE_PREFIX = f"count-{uuid.uuid4().hex[:8]}-"


@pytest.fixture(params=DATABASE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sync.SqlAlchemyCheckpointStore]:
    opened = sync.SqlAlchemyCheckpointStore(database_url(str(request.param), tmp_path))
    yield opened
    _delete_our_sessions(_engine(opened))
    opened.close()


def _delete_our_sessions(engine: Engine) -> None:
    with engine.connect() as conn:
        ours = list(conn.scalars(select(sessions.c.id).where(sessions.c.workspace_id.startswith(WORKSPACE_PREFIX))))
    # Literal id lists in small transactions: MariaDB uses no index for DELETE ... IN
    # (SELECT ...), and other suites share these databases, so a deadlock is retried.
    for start in range(0, len(ours), 1000):
        chunk = ours[start : start + 1000]
        for attempt in range(5):
            try:
                with engine.begin() as conn:
                    for table in (messages, checkpoints):
                        conn.execute(delete(table).where(table.c.session_id.in_(chunk)))
                    conn.execute(delete(sessions).where(sessions.c.id.in_(chunk)))
                break
            except DBAPIError:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))


def _workspace() -> str:
    return WORKSPACE_PREFIX + uuid.uuid4().hex


def _engine(store: sync.SqlAlchemyCheckpointStore) -> Engine:
    return store._runner.engine


def _add_history(engine: Engine, session_id: str, count: int) -> None:
    """``count`` messages and checkpoints in one multi-row INSERT each: seeding, not under test."""
    now = now_ms()
    with engine.begin() as conn:
        conn.execute(insert(messages), [
            {"session_id": session_id, "role": "user", "content": f"m{n}", "created_at": now} for n in range(count)
        ])  # fmt: skip
        conn.execute(insert(checkpoints), [
            {"id": str(uuid.uuid4()), "session_id": session_id, "namespace": "", "version": n + 1, "step": n,
             "node_results": "{}", "pending_nodes": "[]", "source": "loop", "created_at": now}
            for n in range(count)
        ])  # fmt: skip


def _statements_for(
    store: sync.SqlAlchemyCheckpointStore, size: int, operation: Callable[[str, str], Any]
) -> list[str]:
    session = store.create_session("/history", workspace_id=_workspace())
    _add_history(_engine(store), session.id, size)
    # Saved through the store, so the fork copies by the recorded message watermark.
    checkpoint = store.save_checkpoint(session_id=session.id, step=size, node_results={}, source="loop")
    with counting_statements(_engine(store)) as statements:
        operation(session.id, checkpoint.id)
    return statements


def test_fork_runs_the_same_statements_for_10_and_10000_messages(store: sync.SqlAlchemyCheckpointStore) -> None:
    counts = []
    forked: list[Any] = []
    for size in SIZES:
        statements = _statements_for(store, size, lambda _session, checkpoint: forked.append(store.fork(checkpoint)))
        assert len(store.get_messages(forked[-1].id)) == size
        counts.append(statements)
    assert len(counts[0]) == len(counts[1]), counts
    assert counts[0] == counts[1], "the same statements, not only as many"
    assert len(counts[0]) <= 6, counts[0]


@pytest.mark.parametrize(
    "read",
    [
        lambda store, session, _checkpoint: store.get_messages(session),
        lambda store, session, _checkpoint: store.get_messages(session, limit=50),
        lambda store, session, _checkpoint: store.list_checkpoints(session),
        lambda store, session, _checkpoint: store.list_checkpoints(session, limit=10),
        lambda store, session, _checkpoint: store.get_latest_checkpoint(session),
    ],
    ids=["all messages", "last 50 messages", "all checkpoints", "10 checkpoints", "latest checkpoint"],
)
def test_reads_run_one_statement_however_long_the_history(
    store: sync.SqlAlchemyCheckpointStore, read: Callable[..., Any]
) -> None:
    for size in SIZES:
        statements = _statements_for(store, size, lambda session, checkpoint: read(store, session, checkpoint))
        assert len(statements) == 1, statements


def test_session_summaries_run_one_statement_for_10_and_10000_sessions(
    store: sync.SqlAlchemyCheckpointStore,
) -> None:
    if not hasattr(store, "session_summaries"):
        pytest.skip("session_summaries is not in this build")
    store.get_session("none")  # the schema is migrated on the first operation, not counted here
    for size in SIZES:
        workspace = _workspace()
        now = now_ms()
        ids = [str(uuid.uuid4()) for _ in range(size)]
        with _engine(store).begin() as conn:
            conn.execute(insert(sessions), [
                {"id": sid, "directory": "/p", "workspace_id": workspace, "created_at": now, "updated_at": now}
                for sid in ids
            ])  # fmt: skip
            conn.execute(insert(messages), [
                {"session_id": sid, "role": "user", "content": "m", "created_at": now} for sid in ids
            ])  # fmt: skip
        with counting_statements(_engine(store)) as statements:
            page = store.session_summaries(workspace, limit=None)
        assert len(page) == size
        assert len(statements) == 1, statements
