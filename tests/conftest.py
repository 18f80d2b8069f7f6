"""Backends and faces for the behavioural suite.

Every test that takes ``store`` runs against each backend (SQLite in memory, SQLite
file, PostgreSQL, MariaDB) through each face (async, sync). Server URLs come from
``OBSKU_TEST_POSTGRES_URL`` and ``OBSKU_TEST_MYSQL_URL`` (defaults: the local servers).
An unreachable server skips its tests, unless ``CI`` is set: then it fails them.
"""

from __future__ import annotations

import functools
import inspect
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL

from obsku_checkpoint_sqlite import SqlAlchemyCheckpointStore, sync
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from tests import _pgbouncer

SERVER_URLS = {
    "postgresql": os.environ.get("OBSKU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("OBSKU_TEST_MYSQL_URL", "mariadb://root@127.0.0.1:3306/test"),
}
SERVER_VARIABLES = {"postgresql": "OBSKU_TEST_POSTGRES_URL", "mariadb": "OBSKU_TEST_MYSQL_URL"}

# postgresql-pgbouncer: the same PostgreSQL behind a PgBouncer in transaction pooling mode.
BACKENDS = ["sqlite-memory", "sqlite-file", "postgresql", "postgresql-pgbouncer", "mariadb"]
DATABASE_BACKENDS = ["sqlite", "postgresql", "mariadb"]
FACES = ["async", "sync"]


@functools.cache
def server_problem(backend: str) -> str | None:
    """Why the server for ``backend`` cannot be used, or None if it answers."""
    url = normalize_url(SERVER_URLS[backend], for_async=False)
    try:
        # A short timeout: an unreachable host should skip (or fail) fast, not hang.
        engine = create_engine(url, connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{backend} at {url.render_as_string(hide_password=True)} is unreachable ({type(exc).__name__})"
    return None


def require_server(backend: str) -> str:
    """The server URL for ``backend``; skip (or, under CI, fail) if it does not answer."""
    problem = server_problem(backend)
    if problem is not None:
        message = f"{problem}: start it or set {SERVER_VARIABLES[backend]} to a reachable server"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set, so an unreachable server is a failure)")
        pytest.skip(message)
    return SERVER_URLS[backend]


def database_url(backend: str, tmp_path: Path) -> str:
    """A URL for ``backend``: a fresh SQLite file, or the shared server database."""
    if backend in ("sqlite", "sqlite-file"):
        return f"sqlite:///{tmp_path / 'checkpoints.db'}"
    if backend == "sqlite-memory":
        return "sqlite://"
    if backend == "postgresql-pgbouncer":
        return through_pgbouncer(require_server("postgresql"))
    return require_server(backend)


def through_pgbouncer(postgres_url: str) -> str:
    """``postgres_url`` through the test PgBouncer, with the URL option it needs."""
    if _pgbouncer.executable() is None:
        message = "pgbouncer is not installed (apt-get install pgbouncer)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI is set, so a missing PgBouncer is a failure")
        pytest.skip(message)
    host, port = _pgbouncer.start(SERVER_URLS["postgresql"]).split(":")
    url = make_url(postgres_url).set(host=host, port=int(port))
    return url.update_query_dict({"prepare_threshold": "none"}).render_as_string(hide_password=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _pgbouncer.stop()


class SyncAsAsync:
    """Presents a sync store with awaitable methods, so one test body drives both faces.

    The sync methods run directly on the test's thread: this is the blocking face's own
    behaviour, not a wrapper around the async one.
    """

    def __init__(self, store: sync.SqlAlchemyCheckpointStore) -> None:
        self.sync_store = store

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.sync_store, name)
        if not callable(attribute):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            return attribute(*args, **kwargs)

        return call


StoreFactory = Callable[..., Any]


@contextmanager
def before_each_statement(target: Any, callback: Callable[..., None]) -> Iterator[None]:
    """Call ``callback`` before every statement ``target`` sends while the block runs.

    ``target`` is an engine, or the ``Engine`` class for every engine (the store's own,
    and the sync engines inside its async ones). The callback gets SQLAlchemy's
    ``before_cursor_execute`` arguments: connection, cursor, statement, parameters...
    """
    event.listen(target, "before_cursor_execute", callback)
    try:
        yield
    finally:
        event.remove(target, "before_cursor_execute", callback)


@contextmanager
def counting_statements(engine: Engine) -> Iterator[list[str]]:
    """Collects every SQL statement ``engine`` sends while the block runs."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with before_each_statement(engine, count):
        yield statements


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=FACES)
def face(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(backend: str, tmp_path: Path) -> str:
    return database_url(backend, tmp_path)


@pytest.fixture
async def open_store(face: str) -> AsyncIterator[StoreFactory]:
    """Opens stores of the face under test on a URL; closes them all at the end."""
    opened: list[Any] = []

    def factory(target: str | URL, **options: Any) -> Any:
        if face == "async":
            store: Any = SqlAlchemyCheckpointStore(target, **options)
        else:
            store = SyncAsAsync(sync.SqlAlchemyCheckpointStore(target, **options))
        opened.append(store)
        return store

    yield factory
    for store in opened:
        result = store.close()
        if inspect.isawaitable(result):
            await result


@pytest.fixture
async def store(open_store: StoreFactory, url: str) -> Any:
    """A store on the backend and face under test."""
    return open_store(url)


@pytest.fixture
def workspace() -> str:
    """A workspace id no other test uses: listings filtered by it see only this test's rows."""
    return f"ws-{uuid.uuid4()}"


@pytest.fixture(params=DATABASE_BACKENDS)
def scratch_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own on each backend, dropped afterwards (for schema tests)."""
    backend = str(request.param)
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    pooled = backend == "postgresql-pgbouncer"
    with server_database("postgresql" if pooled else backend, "obsku_scratch") as server_url:
        scratch = server_url.render_as_string(hide_password=False)
        yield through_pgbouncer(scratch) if pooled else scratch


@contextmanager
def server_database(backend: str, prefix: str) -> Iterator[URL]:
    """A new, empty database named ``prefix`` and a random suffix on the ``backend`` server
    (its URL as the tests give it), dropped on exit."""
    server = make_url(require_server(backend))
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(server, for_async=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield server.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name}" + (" WITH (FORCE)" if backend == "postgresql" else "")))
        admin.dispose()
