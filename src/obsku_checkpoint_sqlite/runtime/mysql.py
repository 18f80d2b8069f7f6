"""MariaDB and MySQL connections: no COMMIT or ROLLBACK sent where no transaction is open.

SQLAlchemy ends every transaction with the driver's ``commit()`` or ``rollback()``, and
PyMySQL sends the statement even on a connection in autocommit mode, where each
statement has committed itself: one more round trip for every read. On an engine the
store created, the dialect skips it when the connection is in autocommit mode and the
server reports no transaction open (``SERVER_STATUS_IN_TRANS``, in every OK packet).
A connection out of autocommit mode always gets its COMMIT or ROLLBACK: there a plain
SELECT holds a snapshot the server does not report as a transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

# Bits of the server status in the MySQL protocol's OK packet (PyMySQL's SERVER_STATUS).
SERVER_STATUS_IN_TRANS = 1
SERVER_STATUS_AUTOCOMMIT = 2


def skip_idle_transaction_ends(engine: Engine) -> None:
    """Install the skip on ``engine``'s dialect (a PyMySQL engine the store created)."""
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        if not _nothing_open(dbapi_connection):
            commit(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        if not _nothing_open(dbapi_connection):
            rollback(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]


def _nothing_open(dbapi_connection: Any) -> bool:
    status = dbapi_connection.server_status
    return bool(status & SERVER_STATUS_AUTOCOMMIT) and not status & SERVER_STATUS_IN_TRANS
