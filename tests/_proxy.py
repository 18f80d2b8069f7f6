"""A TCP proxy on loopback that counts round trips between a client and a database server.

It reads the client's side of the wire protocol: a round trip is a message after which
the client waits for the server. On PostgreSQL that is a Sync (the end of an
extended-protocol batch, however many statements a pipeline put in it) or a simple
Query; on MariaDB/MySQL, every command packet (PyMySQL sends one and waits). The
handshake of a new connection counts as nothing. The proxy can also cut a connection
at a chosen round trip, before or after the server receives it.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class RoundTripProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port`` and counts round trips."""

    def __init__(self, target_host: str, target_port: int, protocol: str) -> None:
        if protocol not in ("postgresql", "mysql"):
            raise ValueError(f"protocol: 'postgresql' or 'mysql', got {protocol!r}")
        self._target = (target_host, target_port)
        self._protocol = protocol
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._round_trips = 0
        self._cut: tuple[int, bool] | None = None  # (round trip to cut at, deliver it first)
        self._open = 0  # connections being forwarded
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def round_trips(self) -> int:
        with self._lock:
            return self._round_trips

    @contextmanager
    def counting(self) -> Iterator[list[int]]:
        """Yields a list that holds, after the block, the round trips made inside it."""
        result: list[int] = []
        before = self.round_trips
        yield result
        result.append(self.round_trips - before)

    def cut(self, round_trip: int, *, deliver: bool) -> None:
        """Close the connection that makes the ``round_trip``-th round trip from now.

        With ``deliver`` the server receives that request and the client never gets the
        reply (the request happened, and the client cannot know); without, the request
        is lost before it reaches the server.
        """
        with self._lock:
            self._cut = (self._round_trips + round_trip, deliver)

    def wait_until_all_closed(self, timeout: float = 10) -> None:
        """Wait until every connection through the proxy is closed on both sides: a server
        that closed its side is done with before the proxy has told the client."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._open:
                    return
            assert time.monotonic() < deadline, "connections through the proxy stayed open"
            time.sleep(0.005)

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._target)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open += 1
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, server)
        selector.register(server, selectors.EVENT_READ, client)
        reader = _PostgresRequests() if self._protocol == "postgresql" else _MySqlRequests()
        try:
            while not self._stopped.is_set():
                for key, _ in selector.select(timeout=0.5):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is client:
                        starting = reader.idle  # these bytes begin a new request
                        if self._count(starting, reader.waits_in(data), server, data):
                            return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            client.close()
            server.close()
            with self._lock:
                self._open -= 1

    def _count(self, starting: bool, waits: int, server: socket.socket, data: bytes) -> bool:
        """Count ``waits`` round trips in ``data``; True when the connection is cut here."""
        with self._lock:
            first, last = self._round_trips + 1, self._round_trips + waits
            cut = self._cut
            if cut is not None and not cut[1] and starting and cut[0] == first:
                self._cut = None  # not one byte of the request reaches the server
                return True
            self._round_trips = last
            if cut is None or not cut[1] or not waits or not first <= cut[0] <= last:
                return False
            self._cut = None
        server.sendall(data)
        return True


class _PostgresRequests:
    """Counts the client messages after which it waits: Sync ('S') and simple Query ('Q')."""

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False  # the startup packet has no type byte
        self.idle = True  # the last message made the client wait, and nothing followed

    def waits_in(self, data: bytes) -> int:
        self._buffer += data
        waits = 0
        while True:
            if not self._started:
                self.idle = False
                if len(self._buffer) < 4:
                    return waits
                (length,) = struct.unpack("!I", self._buffer[:4])
                if len(self._buffer) < length:
                    return waits
                code = struct.unpack("!I", self._buffer[4:8])[0] if length >= 8 else 0
                self._buffer = self._buffer[length:]
                # An SSL or GSS request is answered by one byte; the startup packet follows.
                self._started = code not in (80877103, 80877104)
                continue
            if len(self._buffer) < 5:
                self.idle = self.idle and not self._buffer
                return waits
            kind = self._buffer[:1]
            (length,) = struct.unpack("!I", self._buffer[1:5])
            if len(self._buffer) < 1 + length:
                self.idle = False
                return waits
            self._buffer = self._buffer[1 + length :]
            if kind in (b"S", b"Q"):
                waits += 1
                self.idle = True
            elif kind != b"H":  # a Flush asks for nothing new
                self.idle = False


class _MySqlRequests:
    """Counts the client's command packets (sequence number 0), each answered before the next."""

    def __init__(self) -> None:
        self._buffer = b""
        self.idle = True  # the last packet was complete: the next bytes begin a new one

    def waits_in(self, data: bytes) -> int:
        self._buffer += data
        waits = 0
        while len(self._buffer) >= 4:
            length = int.from_bytes(self._buffer[:3], "little")
            if len(self._buffer) < 4 + length:
                break
            if self._buffer[3] == 0:
                waits += 1
            self._buffer = self._buffer[4 + length :]
        self.idle = not self._buffer
        return waits
