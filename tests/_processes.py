"""Writer processes for the multi-process tests, and what they acknowledged.

Writers are forked from the test process rather than started afresh: they are real
processes with their own connections, locks and fate under SIGKILL, but they inherit
the imported modules, so each costs milliseconds instead of the second and a half an
interpreter takes to import SQLAlchemy, pydantic and Alembic on this machine. Fork
before starting any thread (``spawn`` forks every writer of a group first), and a child
leaves with ``os._exit``, so it never runs the parent's cleanup on inherited objects.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests import _writer


@dataclass
class Acks:
    """The writes a writer process acknowledged: each after its call returned."""

    own_session: str | None = None
    messages: dict[int, str] = field(default_factory=dict)  # message id -> session id
    checkpoints: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # id -> (session, namespace, version)
    errors: list[str] = field(default_factory=list)
    done: bool = False

    def read(self, line: str) -> None:
        kind, _, rest = line.rstrip("\n").partition(" ")
        values = rest.split()
        if kind == "S":
            self.own_session = values[0]
        elif kind == "M":
            self.messages[int(values[0])] = values[1]
        elif kind == "C":
            checkpoint_id, session_id, namespace, version = values
            self.checkpoints[checkpoint_id] = (session_id, "" if namespace == "-" else namespace, int(version))
        elif kind == "E":
            self.errors.append(rest)
        elif kind == "DONE":
            self.done = True

    @property
    def count(self) -> int:
        return len(self.messages) + len(self.checkpoints)


class Writer:
    """One forked writer process; a thread reads its acknowledgements as they come."""

    def __init__(self, options: _writer.Options) -> None:
        self.name = options.name
        self.acks = Acks()
        self.returncode: int | None = None
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(read_fd)
            code = 0
            try:
                _writer.run(options, write_fd)
            except BaseException:
                for line in traceback.format_exc().splitlines():
                    os.write(write_fd, f"E {line}\n".encode())
                code = 1
            finally:
                os._exit(code)
        os.close(write_fd)
        self.pid = pid
        self._read_fd = read_fd
        self.started = threading.Event()  # its own session exists: the schema is built
        self.changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        with os.fdopen(self._read_fd, "r") as stream:
            for line in stream:
                with self.changed:
                    self.acks.read(line)
                    self.changed.notify_all()
                if line.startswith("S "):
                    self.started.set()
        with self.changed:
            self.changed.notify_all()
        self.started.set()  # or it never will: start_writers then reports the errors

    def wait_for_acks(self, count: int, timeout: float = 30) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.acks.count >= count or not self._reader.is_alive(), timeout)
        if self.acks.count < count:
            raise AssertionError(f"{self.name}: {self.acks.count} of {count} writes:\n{self.report()}")

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)

    def finish(self, timeout: float = 60) -> int:
        """Wait for the process to exit and its last acknowledgement; its exit code."""
        deadline = time.monotonic() + timeout
        while self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                self.kill()
            else:
                time.sleep(0.01)
        self._reader.join(timeout)
        return self.returncode

    def report(self) -> str:
        return "\n".join(self.acks.errors) or "(no error reported)"


def spawn(options: Sequence[_writer.Options]) -> list[Writer]:
    """Fork every writer, then start reading them: no thread exists when a fork happens."""
    # Frozen objects are never collected in the children: a child must not finalize the
    # test process's leftover connections (and close what the parent still shares).
    gc.collect()
    gc.freeze()
    try:
        writers = [Writer(option) for option in options]
    finally:
        gc.unfreeze()
    for writer in writers:
        writer._reader.start()
    return writers


def start_writers(writers: Sequence[Writer], start_file: Path, timeout: float = 60) -> None:
    """Once every writer has its session, release them all at once onto all those sessions."""
    for writer in writers:
        if not writer.started.wait(timeout) or writer.acks.own_session is None:
            for other in writers:
                other.kill()
                other.finish()
            raise AssertionError(f"{writer.name} did not start:\n{writer.report()}")
    sessions = [writer.acks.own_session or "" for writer in writers]
    partial = start_file.with_suffix(".partial")
    partial.write_text(" ".join(sessions))
    partial.rename(start_file)  # atomic: no writer reads half a list
