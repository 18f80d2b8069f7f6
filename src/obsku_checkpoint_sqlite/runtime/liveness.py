"""Finding a pooled server connection that the server has closed, without a round trip.

A connection resting in the pool has nothing to read: the server speaks only when
asked. If its socket is readable, the server closed it (a restart, an idle timeout,
``pg_terminate_backend``, ``KILL``) or sent a fatal notice before closing it. A checkout
that finds it so raises ``DisconnectionError``, SQLAlchemy's documented signal for a
pool to discard the connection and hand out a new one. This replaces the pool's
pre-ping, a round trip on every checkout.
"""

from __future__ import annotations

import select
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

# The blocking drivers whose socket can be found; the pool pre-pings for all others.
CHECKED_DRIVERS = frozenset({"psycopg", "pymysql"})


def install_liveness_check(engine: Engine) -> None:
    """Check each connection as it leaves ``engine``'s pool (a driver of ``CHECKED_DRIVERS``)."""
    if not event.contains(engine, "checkout", _check_on_checkout):
        event.listen(engine, "checkout", _check_on_checkout)


def _check_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    if not is_alive(dbapi_connection):
        raise DisconnectionError("The server closed this pooled connection")


def is_alive(dbapi_connection: Any) -> bool:
    """False if the server has closed this idle connection (its socket has something to read)."""
    fd = socket_of(dbapi_connection)
    return fd is None or not select.select([fd], [], [], 0)[0]


def socket_of(dbapi_connection: Any) -> int | None:
    """The file descriptor of a psycopg or PyMySQL connection's socket, or None if closed.

    psycopg exposes it as ``fileno()``. PyMySQL has no public accessor: its ``_sock``
    attribute is read here and only here, and ``tests/unit/test_liveness.py`` fails if
    PyMySQL stops having it.
    """
    fileno = getattr(dbapi_connection, "fileno", None)
    if callable(fileno):  # psycopg
        try:
            return int(fileno())
        except Exception:  # closed: the pool's own checks report it
            return None
    sock = getattr(dbapi_connection, "_sock", None)  # PyMySQL
    return None if sock is None else int(sock.fileno())
