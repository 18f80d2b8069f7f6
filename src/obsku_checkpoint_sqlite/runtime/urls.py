"""Database URLs: the default, the environment variable, and the driver each face uses."""

from __future__ import annotations

import os

from sqlalchemy import URL, make_url

DEFAULT_URL = "sqlite:///./checkpoints.db"
URL_ENVIRONMENT_VARIABLE = "OBSKU_CHECKPOINT_URL"

# Plain URLs name a backend; these are the drivers used for each face.
SYNC_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "psycopg", "mysql": "aiomysql", "mariadb": "aiomysql"}
# The package extra that installs each backend's drivers.
EXTRAS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}


def normalize_url(url: str | URL, *, for_async: bool) -> URL:
    """Give a plain URL (``postgresql://``, ``mariadb://``...) the driver for the face using it.

    A URL that names a driver explicitly is returned as given.
    """
    parsed = make_url(url)
    backend = "postgresql" if parsed.drivername == "postgres" else parsed.drivername
    drivers = ASYNC_DRIVERS if for_async else SYNC_DRIVERS
    if "+" not in backend and backend in drivers:
        parsed = parsed.set(drivername=f"{backend}+{drivers[backend]}")
    if parsed.get_backend_name() in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def sqlite_url(path: str | os.PathLike[str]) -> URL:
    """The URL of a SQLite database file, or of a private in-memory one for ``":memory:"``."""
    text = os.fspath(path)
    return make_url("sqlite://" if text in ("", ":memory:") else f"sqlite:///{text}")


def is_memory_sqlite(url: URL) -> bool:
    """Whether ``url`` opens a private in-memory SQLite database."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def blocking_url(url: URL) -> URL:
    """``url`` as given, or with its backend's blocking driver where it names an async one."""
    backend = url.get_backend_name()
    if backend in SYNC_DRIVERS and _names_async_driver(url):
        return url.set(drivername=f"{backend}+{SYNC_DRIVERS[backend]}")
    return url


def _names_async_driver(url: URL) -> bool:
    try:
        return bool(url.get_dialect().is_async)
    except Exception:  # an unknown driver: SQLAlchemy's own error says so when the engine is made
        return False
