"""Database URLs: what names a database, the default, how a URL is shown, and each face's driver."""

from __future__ import annotations

import os

from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_URL = "sqlite:///./checkpoints.db"
URL_ENVIRONMENT_VARIABLE = "OBSKU_CHECKPOINT_URL"

# Plain URLs name a backend; these are the drivers used for each face.
SYNC_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "psycopg", "mysql": "aiomysql", "mariadb": "aiomysql"}
# The package extra that installs each backend's drivers.
EXTRAS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}


DatabaseTarget = str | os.PathLike[str] | URL


def database_url(target: DatabaseTarget) -> URL:
    """The database ``target`` names: a URL, or the SQLite file at a path.

    The one rule for the stores and the command line: a str holding ``://`` is a
    SQLAlchemy URL; any other str, and any ``os.PathLike``, is the path of a SQLite file
    (``":memory:"`` is a private in-memory database).

    Raises:
        ValueError: an empty str, or a str with ``://`` that is not a URL.
        TypeError: ``target`` is none of these.
    """
    if isinstance(target, URL):
        return target
    if isinstance(target, os.PathLike):
        return sqlite_url(target)
    if not isinstance(target, str):
        raise TypeError(f"A database URL or path is a str, os.PathLike or URL, not {type(target).__name__}")
    if "://" not in target:
        if not target.strip():
            raise ValueError("The database URL or path is empty")
        return sqlite_url(target)
    try:
        return make_url(target)
    except ArgumentError:
        # Only the scheme: the rest may hold a password.
        scheme = target.partition("://")[0]
        raise ValueError(
            f"{scheme}://...: not a database URL (e.g. postgresql://user@host/db, or a SQLite file path)"
        ) from None


def shown_url(target: DatabaseTarget) -> str:
    """``target`` as the store and the command line print it: any password masked."""
    return database_url(target).render_as_string(hide_password=True)


def normalize_url(url: DatabaseTarget, *, for_async: bool) -> URL:
    """Give a plain URL (``postgresql://``, ``mariadb://``...) the driver for the face using it.

    A URL that names a driver explicitly is returned as given; a path names a SQLite file.
    """
    parsed = database_url(url)
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
    # Built, not parsed: a path may hold "?" or "#", which a URL string would misread.
    return URL.create("sqlite", database=None if text in ("", ":memory:") else text)


def is_memory_sqlite(url: URL) -> bool:
    """Whether ``url`` opens a private in-memory SQLite database."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def blocking_url(url: URL) -> URL:
    """``url`` as given, or with its backend's blocking driver where it names an asyncio one.

    Raises:
        ValueError: ``url`` names an asyncio driver of a backend this package has no
            blocking driver for.
    """
    if not names_async_driver(url):
        return url
    backend = url.get_backend_name()
    if backend not in SYNC_DRIVERS:
        raise ValueError(
            f"{url.drivername} is an asyncio driver, which the blocking store and the command line "
            f"cannot use: name a blocking driver of {backend} in the URL"
        )
    return url.set(drivername=f"{backend}+{SYNC_DRIVERS[backend]}")


def names_async_driver(url: URL) -> bool:
    """Whether ``url`` names an asyncio driver (aiosqlite, asyncpg, aiomysql, psycopg_async...)."""
    try:
        return bool(url.get_dialect().is_async)
    except Exception:  # an unknown driver: SQLAlchemy's own error says so when the engine is made
        return False
