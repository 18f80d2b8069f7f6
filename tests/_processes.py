"""Launching ``_writer.py`` processes and reading what they acknowledged."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

WRITER = Path(__file__).with_name("_writer.py")


@dataclass
class Acks:
    """The writes a writer process acknowledged: each after its call returned."""

    own_session: str | None = None
    messages: dict[int, str] = field(default_factory=dict)  # message id -> session id
    checkpoints: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # id -> (session, namespace, version)
    done: bool = False

    def read(self, line: str) -> None:
        kind, *values = line.split()
        if kind == "S":
            self.own_session = values[0]
        elif kind == "M":
            self.messages[int(values[0])] = values[1]
        elif kind == "C":
            checkpoint_id, session_id, namespace, version = values
            self.checkpoints[checkpoint_id] = (session_id, "" if namespace == "-" else namespace, int(version))
        elif kind == "DONE":
            self.done = True

    @property
    def count(self) -> int:
        return len(self.messages) + len(self.checkpoints)


class Writer:
    """One writer process; a thread reads its acknowledgements as they come."""

    def __init__(self, url: str, start_file: Path, *, name: str, face: str = "sync", **options: object) -> None:
        command = [sys.executable, str(WRITER), url, str(start_file), "--name", name, "--face", face]
        for key, value in options.items():
            command += [f"--{key.replace('_', '-')}", str(value)]
        self.name = name
        self.acks = Acks()
        self.lock = threading.Lock()
        self.started = threading.Event()  # its own session exists: the schema is built
        self.changed = threading.Condition(self.lock)
        environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
        )
        self.stderr = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._errors = threading.Thread(target=self._read_errors, daemon=True)
        self._errors.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.changed:
                self.acks.read(line)
                self.changed.notify_all()
            if line.startswith("S "):
                self.started.set()
        self.started.set()  # or it never will: start_writers then reports its stderr

    def _read_errors(self) -> None:
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()

    def wait_for_acks(self, count: int, timeout: float = 30) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: self.acks.count >= count or self.process.poll() is not None, timeout):
                raise TimeoutError(f"{self.name}: {self.acks.count} of {count} writes after {timeout}s")
        if self.acks.count < count:
            raise AssertionError(f"{self.name} exited early:\n{self.finish()}")

    def finish(self, timeout: float = 60) -> str:
        """Wait for the process to exit; its stderr."""
        self.process.wait(timeout)
        self._reader.join(timeout)
        self._errors.join(timeout)
        return self.stderr


def start_writers(writers: Sequence[Writer], start_file: Path, timeout: float = 60) -> None:
    """Once every writer has its session, release them all at once onto all those sessions."""
    for writer in writers:
        if not writer.started.wait(timeout) or writer.acks.own_session is None:
            raise AssertionError(f"{writer.name} did not start:\n{writer.finish(5)}")
    sessions = [writer.acks.own_session for writer in writers]
    partial = start_file.with_suffix(".partial")
    partial.write_text(" ".join(sessions))
    partial.rename(start_file)  # atomic: no writer reads half a list
