"""Schema changes killed after any DDL statement (issue 13, item 2).

MariaDB commits each DDL statement on its own: a process killed in the middle of a
migration leaves part of a revision applied and ``alembic_version`` behind it. Every
revision therefore checks what exists before each step, and opening a store or
``obsku-checkpoint db upgrade`` completes such a database. PostgreSQL and SQLite run
the whole migration in one transaction, which a kill rolls back.

For a change that sends D DDL statements, D databases are prepared alike, and a process
forked for each N = 1..D runs the change and ``os._exit``s right after its N-th DDL
statement (no clean-up, no rollback from the client). Then a process forked for each
database looks at what the kill left and recovers it. The processes of a phase run
side by side: a MariaDB DDL statement mostly waits for the disk.
"""

from __future__ import annotations

import gc
import os
import re
import sqlite3
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from typer.testing import CliRunner

from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.cli import app
from obsku_checkpoint_sqlite.db import migrate
from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from tests.conftest import DATABASE_BACKENDS, require_server
from tests.test_typescript_compat import ORIGINAL_SCHEMA

DDL = re.compile(r"\s*(CREATE|ALTER|DROP)\s", re.IGNORECASE)
KILLED = 86
STORE_TABLES = frozenset({"sessions", "messages", "checkpoints"})
TYPESCRIPT_TABLES = STORE_TABLES | {"entities", "facts"}

Action = Callable[[str], Any]


@contextmanager
def new_databases(backend: str, tmp_path: Path, count: int) -> Iterator[list[str]]:
    """``count`` empty databases of their own on ``backend``, dropped afterwards."""
    if backend == "sqlite":
        yield [f"sqlite:///{tmp_path / f'crash-{uuid.uuid4().hex[:8]}.db'}" for _ in range(count)]
        return
    server = make_url(require_server(backend))
    names = [f"obsku_crash_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    admin = create_engine(normalize_url(server, for_async=False), isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    created: list[str] = []
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f"CREATE DATABASE {name}"))
                created.append(name)
        yield [server.set(database=name).render_as_string(hide_password=False) for name in names]
    finally:
        force = " WITH (FORCE)" if backend == "postgresql" else ""

        def drop(name: str) -> None:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE {name}{force}"))

        # Side by side: PostgreSQL takes a second or so over each, mostly waiting.
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(drop, created))
        admin.dispose()


def in_children(jobs: list[Callable[[], Any]], logs: Path) -> list[int]:
    """Run each job in a process of its own, all at once; their exit codes (0: returned).

    Every process is forked before any is waited for, and the test process starts no
    thread meanwhile. A job that raises exits with 1 and leaves its traceback in ``logs``.
    """
    logs.mkdir(exist_ok=True)
    gc.collect()
    gc.freeze()  # a child must not finalize the test process's connections
    try:
        pids = [_fork(job, logs / f"{index}.log") for index, job in enumerate(jobs)]
    finally:
        gc.unfreeze()
    return [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]


def _fork(job: Callable[[], Any], log: Path) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            job()
            code = 0
        except BaseException:
            log.write_text(traceback.format_exc())
        finally:
            os._exit(code)
    return pid


def failures(codes: list[int], logs: Path, allowed: tuple[int, ...] = (0,)) -> list[str]:
    """What went wrong in each process that exited otherwise than ``allowed``."""
    found = []
    for index, code in enumerate(codes):
        if code not in allowed:
            log = logs / f"{index}.log"
            found.append(f"#{index + 1} exited {code}:\n{log.read_text() if log.exists() else ''}")
    return found


def ddl_statements(action: Callable[[], Any]) -> int:
    """How many DDL statements ``action`` sends."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if DDL.match(statement):
            seen.append(statement)

    event.listen(Engine, "after_cursor_execute", count)
    try:
        action()
    finally:
        event.remove(Engine, "after_cursor_execute", count)
    return len(seen)


def killed_after(count: int, action: Callable[[], Any]) -> Callable[[], Any]:
    """``action``, run to its ``count``-th DDL statement and no further: the process dies there."""

    def run() -> None:
        seen = 0

        def after_cursor_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            nonlocal seen
            if DDL.match(statement):
                seen += 1
                if seen == count:
                    os._exit(KILLED)

        event.listen(Engine, "after_cursor_execute", after_cursor_execute)
        action()

    return run


def crash_after_every_ddl_statement(
    backend: str,
    tmp_path: Path,
    prepare: Action,
    change: Action,
    recover: Callable[[str, int], Any],
) -> int:
    """For each N, ``prepare`` a database, kill ``change`` after its N-th DDL statement,
    then ``recover(url, N)`` in a process of its own. Returns the number of DDL statements."""
    with new_databases(backend, tmp_path, 1) as [reference]:
        prepare(reference)
        total = ddl_statements(lambda: change(reference))
    assert total > 3, f"the change sent {total} DDL statements: too few to be the real one"
    with new_databases(backend, tmp_path, total) as urls:
        logs = tmp_path / "prepare"
        assert not failures(in_children([lambda url=url: prepare(url) for url in urls], logs), logs)
        logs = tmp_path / "kill"
        jobs = [killed_after(count, lambda url=url: change(url)) for count, url in enumerate(urls, 1)]
        assert not (problems := failures(in_children(jobs, logs), logs, (KILLED,))), "\n".join(problems)
        logs = tmp_path / "recover"
        jobs = [lambda url=url, count=count: recover(url, count) for count, url in enumerate(urls, 1)]
        assert not (problems := failures(in_children(jobs, logs), logs)), "\n".join(problems)
    return total


def in_transaction(url: str, action: Callable[[Any], Any]) -> Any:
    engine = create_sync_engine(url)
    try:
        with engine.begin() as conn:
            return action(conn)
    finally:
        engine.dispose()


def schema_state(url: str) -> tuple[frozenset[str], str | None]:
    """The tables and the recorded revision."""
    return in_transaction(
        url, lambda conn: (frozenset(inspect(conn).get_table_names()), migrate.current_revision(conn))
    )


def open_store(url: str) -> None:
    with sync.SqlAlchemyCheckpointStore(url) as store:
        store.get_session("none")


def db_upgrade(url: str) -> None:
    result = CliRunner().invoke(app, ["--db", url, "db", "upgrade"])
    assert result.exit_code == 0, result.output


def downgrade_to_base(url: str) -> None:
    in_transaction(url, lambda conn: migrate.downgrade(conn, "base"))


def nothing(_url: str) -> None:
    pass


# Each way in, by turns: a store opening the database, and the command line.
RECOVERIES = (open_store, db_upgrade)


def assert_complete_and_working(url: str, *, drift: bool = False) -> None:
    """At head, without drift (``drift``: adopted, with the original's column types), and working."""
    revision, differences = in_transaction(
        url, lambda conn: (migrate.current_revision(conn), migrate.schema_drift(conn))
    )
    assert revision == migrate.head_revision()
    if not drift:
        assert differences == []
    with sync.SqlAlchemyCheckpointStore(url, auto_migrate=False) as store:
        session = store.create_session("/after-the-crash")
        store.add_message(session.id, role="user", content="hello")
        checkpoint = store.save_checkpoint(session_id=session.id, step=1, node_results={}, source="loop")
        forked = store.fork(checkpoint.id)
        assert [m.content for m in store.get_messages(forked.id)] == ["hello"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", DATABASE_BACKENDS)
def test_a_build_killed_after_any_ddl_statement_is_completed_by_the_next_open(backend: str, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()

    def recover(url: str, count: int) -> None:
        tables, revision = schema_state(url)
        if backend == "mariadb":
            if tables & STORE_TABLES and revision != migrate.head_revision():
                (partial / str(count)).touch()
        else:
            # One transaction: the kill took all of it back.
            assert (tables & (STORE_TABLES | {migrate.VERSION_TABLE}), revision) == (frozenset(), None)
            if count > len(RECOVERIES):
                return  # the same empty database every time: recovered by each way in once
        RECOVERIES[count % 2](url)
        assert_complete_and_working(url)

    total = crash_after_every_ddl_statement(backend, tmp_path, nothing, open_store, recover)
    if backend == "mariadb":
        # The first statement makes alembic_version, and the last is followed by the
        # version's UPDATE: every kill in between leaves some tables and no head.
        assert len(list(partial.iterdir())) >= total - 2, "the kills left no partly built schema"


@pytest.mark.slow
def test_an_adoption_killed_after_any_ddl_statement_leaves_the_typescript_file_as_it_was(tmp_path: Path) -> None:
    def typescript_file(url: str) -> None:
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection:
            connection.executescript(ORIGINAL_SCHEMA)
            connection.execute("INSERT INTO sessions (id, directory, created_at, updated_at) VALUES ('s', '/p', 1, 1)")
            connection.commit()

    def recover(url: str, count: int) -> None:
        assert schema_state(url) == (TYPESCRIPT_TABLES, None)
        RECOVERIES[count % 2](url)
        assert_complete_and_working(url, drift=True)
        with sync.SqlAlchemyCheckpointStore(url) as store:
            assert store.get_session("s") is not None

    crash_after_every_ddl_statement("sqlite", tmp_path, typescript_file, open_store, recover)


@pytest.mark.slow
def test_a_downgrade_killed_after_any_ddl_statement_completes_when_run_again(tmp_path: Path) -> None:
    # MariaDB only: elsewhere a downgrade is one transaction, as the build is.
    def recover(url: str, count: int) -> None:
        downgrade_to_base(url)
        assert schema_state(url) == (frozenset({migrate.VERSION_TABLE}), None)
        if count == 1:  # and the way back, from the version table the downgrade leaves
            open_store(url)
            assert_complete_and_working(url)

    crash_after_every_ddl_statement("mariadb", tmp_path, open_store, downgrade_to_base, recover)
