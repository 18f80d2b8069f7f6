"""Engines: created from a URL with the options the store needs, or adopted from the caller."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import URL, Engine, create_engine
from sqlalchemy.exc import NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from ..errors import DatabaseUnavailableError, DriverNotInstalledError
from .failures import DEFAULT_LOCK_TIMEOUT
from .liveness import CHECKED_DRIVERS, install_liveness_check
from .mysql import skip_idle_transaction_ends
from .sqlite import configure_sqlite_engine
from .urls import EXTRAS, blocking_url, is_memory_sqlite, normalize_url

T = TypeVar("T")


def create_sync_engine(url: str | URL, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, **options: Any) -> Engine:
    """A synchronous engine configured for the store (SQLite pragmas, pre-ping on servers)."""
    parsed = blocking_url(normalize_url(url, for_async=False))
    if parsed.get_backend_name() == "sqlite":
        # Worker threads of the async face share the pool.
        options.setdefault("connect_args", {}).setdefault("check_same_thread", False)
    parsed = _driver_options(parsed, options)
    engine = _build(create_engine, parsed, _store_options(parsed, options))
    configure_engine(engine, owned=True, lock_timeout=lock_timeout)
    if engine.dialect.driver in CHECKED_DRIVERS and not options.get("pool_pre_ping"):
        install_liveness_check(engine)
    if engine.dialect.driver == "pymysql":
        skip_idle_transaction_ends(engine)
    return engine


def create_async_store_engine(
    url: str | URL, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, **options: Any
) -> AsyncEngine:
    """An asyncio engine for a server database (or an explicit ``sqlite+aiosqlite`` URL)."""
    parsed = _driver_options(normalize_url(url, for_async=True), options)
    engine = _build(create_async_engine, parsed, _store_options(parsed, options))
    configure_engine(engine.sync_engine, owned=True, lock_timeout=lock_timeout)
    return engine


def configure_engine(engine: Engine, *, owned: bool, lock_timeout: float) -> None:
    """Prepare ``engine`` for the store: on SQLite, its connection set-up and transactions."""
    if engine.dialect.name == "sqlite":
        configure_sqlite_engine(engine, owned=owned, lock_timeout=lock_timeout)


def _driver_options(url: URL, options: dict[str, Any]) -> URL:
    """Move the options the store reads from a URL's query into the driver's arguments.

    ``prepare_threshold`` (psycopg): after how many runs a statement is prepared on the
    server; ``none`` never prepares, as PgBouncer in transaction pooling mode needs (its
    clients share server connections, which do not share prepared statements).
    """
    if url.get_backend_name() != "postgresql" or "prepare_threshold" not in url.query:
        return url
    value = url.query["prepare_threshold"]
    text = value if isinstance(value, str) else value[-1]
    if text.strip().lower() in ("", "none"):
        threshold: int | None = None
    elif text.strip().isdigit():
        threshold = int(text)
    else:
        raise ValueError(f"prepare_threshold={text!r} in the database URL: a whole number, or none to never prepare")
    options.setdefault("connect_args", {})["prepare_threshold"] = threshold
    return url.difference_update_query(["prepare_threshold"])


def _store_options(url: URL, options: dict[str, Any]) -> dict[str, Any]:
    """The engine options the store needs on ``url``'s backend, under the caller's own."""
    if url.get_backend_name() != "sqlite":
        # A blocking engine whose driver's socket can be checked needs no pre-ping (liveness).
        checked = url.get_driver_name() in CHECKED_DRIVERS and not url.get_dialect().is_async
        options.setdefault("pool_pre_ping", not checked)
        if url.get_backend_name() in ("mysql", "mariadb"):
            # Each operation ends its transaction (commit, or rollback on error), and a
            # connection closed inside one rolls it back: the pool's own ROLLBACK on return
            # would be one more round trip per call (psycopg skips it when idle).
            options.setdefault("pool_reset_on_return", None)
    elif is_memory_sqlite(url):
        # One connection, shared: a second one would see a different, empty database.
        options.setdefault("poolclass", StaticPool)
    else:
        _create_private_file(url)
    return options


def _build(factory: Callable[..., T], url: URL, options: dict[str, Any]) -> T:
    try:
        return factory(url, **options)
    except (ModuleNotFoundError, NoSuchModuleError) as exc:
        extra = EXTRAS.get(url.get_backend_name())
        hint = f'pip install "obsku-checkpoint-sqlite[{extra}]"' if extra else "install its driver"
        raise DriverNotInstalledError(
            f"The database URL needs the driver {url.drivername!r}, which is not installed: {hint}"
        ) from exc


def _create_private_file(url: URL) -> None:
    # Checkpoints hold tool outputs and secrets: a new file is readable by its owner only.
    # SQLite gives its -wal and -shm files the mode of the database file.
    path = _database_file(url)
    if path is None:
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        # As SQLite's own "unable to open database file" would be: a store error.
        raise DatabaseUnavailableError(f"Cannot create the SQLite database file {path!r}: {exc.strerror}") from exc


def _database_file(url: URL) -> str | None:
    """The file a SQLite URL opens and may create, or None (memory, read-only, none)."""
    database = url.database or ""
    if url.query.get("uri") not in ("true", "1") or not database.startswith("file:"):
        return database or None
    # A URI filename: the file is its path, unless it names memory or may not create.
    parts = urllib.parse.urlsplit(database)
    # SQLAlchemy appends the URL's other parameters to the URI, so mode may be in either.
    mode = url.query.get("mode") or urllib.parse.parse_qs(parts.query).get("mode", ["rwc"])[-1]
    if parts.path in ("", ":memory:") or mode != "rwc":
        return None
    return urllib.parse.unquote(parts.path)
