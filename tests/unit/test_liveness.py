"""The one driver internal the store reads: PyMySQL's socket, for the liveness check without a ping."""

from __future__ import annotations

import socket

import psycopg
import pymysql

from obsku_checkpoint_sqlite.runtime.liveness import is_alive, socket_of


def test_pymysql_still_keeps_its_socket_where_the_liveness_check_reads_it() -> None:
    # PyMySQL has no public accessor for its socket; runtime.liveness reads ``_sock``.
    # If this fails, PyMySQL moved it: find the new place before upgrading PyMySQL.
    unconnected = pymysql.connections.Connection(defer_connect=True)
    assert hasattr(unconnected, "_sock")
    assert unconnected._sock is None
    assert socket_of(unconnected) is None


def test_psycopg_gives_its_socket_by_a_public_method() -> None:
    assert callable(psycopg.Connection.fileno)


def test_a_socket_with_something_to_read_is_not_alive() -> None:
    ours, theirs = socket.socketpair()

    class Holder:
        def __init__(self, sock: socket.socket) -> None:
            self._sock = sock

    try:
        assert is_alive(Holder(ours))
        theirs.close()  # the peer went away: the socket reads end-of-file
        assert not is_alive(Holder(ours))
    finally:
        ours.close()
