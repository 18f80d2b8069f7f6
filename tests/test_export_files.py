"""Export and import files: private, never through a symlink, whole or absent, and each retry afresh."""

from __future__ import annotations

import gzip
import io
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from obsku_checkpoint_sqlite import sync
from obsku_checkpoint_sqlite.errors import ExportFormatError

from .conftest import before_each_statement
from .test_cli import fill

HEADER = b'{"format":"obsku-checkpoint-export"'


class InjectedFailure(Exception):
    """Raised by a test in the middle of an export or import."""


@contextmanager
def failing_once(matches: Callable[[str], bool], error: Exception) -> Iterator[list[str]]:
    """Raise ``error`` before the first statement ``matches`` accepts, once; yields the statements seen."""
    seen: list[str] = []

    def before_cursor_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        normalized = " ".join(statement.split())
        seen.append(normalized)
        if matches(normalized) and "failed" not in seen:
            seen.append("failed")
            raise error

    with before_each_statement(Engine, before_cursor_execute):
        yield seen


def reads_checkpoints(statement: str) -> bool:
    # After the header, the first session and its messages are written: mid-file.
    return statement.startswith("SELECT") and "FROM checkpoints" in statement


@pytest.fixture
def filled_store(tmp_path: Path) -> Iterator[sync.SqlAlchemyCheckpointStore]:
    filled = fill(str(tmp_path / "source.db"))
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{filled.db}") as store:
        yield store


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual umask, under which open() makes 0644 files
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def lines_of(data: bytes) -> list[bytes]:
    return (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).splitlines()


def assert_one_whole_export(data: bytes) -> None:
    lines = lines_of(data)
    assert lines[0].startswith(HEADER)
    assert sum(line.startswith(HEADER) for line in lines) == 1
    assert lines[-1] == b'{"type":"end","counts":{"sessions":2,"messages":5,"checkpoints":3}}'


@pytest.mark.usefixtures("umask_022")
@pytest.mark.parametrize("name", ["export.jsonl", "export.jsonl.gz"])
def test_an_export_file_is_new_private_and_never_written_through_a_symlink(
    filled_store: sync.SqlAlchemyCheckpointStore, tmp_path: Path, name: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = out / name
    filled_store.export_sessions(path)
    assert mode(path) == 0o600
    assert_one_whole_export(path.read_bytes())

    first = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        filled_store.export_sessions(path)
    assert path.read_bytes() == first

    path.chmod(0o644)
    filled_store.export_sessions(path, overwrite=True)
    assert mode(path) == 0o600

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = out / f"link-{name}"
    link.symlink_to(victim)
    with pytest.raises(FileExistsError):
        filled_store.export_sessions(link)
    filled_store.export_sessions(link, overwrite=True)
    assert victim.read_text() == "precious"  # the link was replaced, not followed
    assert not link.is_symlink()
    assert mode(link) == 0o600
    assert_one_whole_export(link.read_bytes())
    assert sorted(os.listdir(out)) == sorted([name, f"link-{name}"])  # no partial files left


def test_a_failed_export_leaves_nothing_and_keeps_the_file_it_would_replace(
    filled_store: sync.SqlAlchemyCheckpointStore, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with failing_once(reads_checkpoints, InjectedFailure()), pytest.raises(InjectedFailure):
        filled_store.export_sessions(out / "new.jsonl.gz")
    assert os.listdir(out) == []

    kept = out / "kept.jsonl"
    kept.write_bytes(b"the previous backup\n")
    with failing_once(reads_checkpoints, InjectedFailure()), pytest.raises(InjectedFailure):
        filled_store.export_sessions(kept, overwrite=True)
    assert kept.read_bytes() == b"the previous backup\n"
    assert os.listdir(out) == ["kept.jsonl"]


@pytest.mark.parametrize("target", ["file", "gzip file", "seekable stream"])
def test_a_retried_export_starts_the_file_afresh(
    filled_store: sync.SqlAlchemyCheckpointStore, tmp_path: Path, target: str
) -> None:
    stream = io.BytesIO(b"kept before the export\n")
    stream.seek(0, io.SEEK_END)
    path = tmp_path / ("export.jsonl.gz" if target == "gzip file" else "export.jsonl")
    # The runner retries lock contention: the first attempt has written part of the file.
    locked = sqlite3.OperationalError("database is locked")
    with failing_once(reads_checkpoints, locked) as seen:
        report = filled_store.export_sessions(stream if target == "seekable stream" else path)
    assert "failed" in seen
    assert report.checkpoints == 3
    if target == "seekable stream":
        kept, _, export = stream.getvalue().partition(b"\n")
        assert kept == b"kept before the export"
        assert_one_whole_export(export)
    else:
        assert_one_whole_export(path.read_bytes())
        assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


class Unseekable(io.RawIOBase):
    """A pipe: read or written once, front to back."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = io.BytesIO(data)
        self.written = bytearray()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self.data.readinto(buffer)

    def write(self, data: Any) -> int:
        self.written += bytes(data)
        return len(data)


def test_a_retried_export_into_a_stream_that_cannot_rewind_fails_instead_of_writing_twice(
    filled_store: sync.SqlAlchemyCheckpointStore,
) -> None:
    sink = Unseekable()
    with (
        failing_once(reads_checkpoints, sqlite3.OperationalError("database is locked")),
        pytest.raises(OSError, match="cannot be rewound"),
    ):
        filled_store.export_sessions(sink)  # type: ignore[arg-type]
    assert bytes(sink.written).count(HEADER) == 1


@pytest.mark.parametrize("compressed", [False, True])
def test_an_import_reads_a_stream_and_a_retry_reads_it_again_from_the_start(
    filled_store: sync.SqlAlchemyCheckpointStore, tmp_path: Path, compressed: bool
) -> None:
    export = io.BytesIO()
    filled_store.export_sessions(export)
    data = gzip.compress(export.getvalue()) if compressed else export.getvalue()
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{tmp_path / 'target.db'}") as target:
        locked = sqlite3.OperationalError("database is locked")
        with failing_once(lambda statement: statement.startswith("INSERT INTO checkpoints"), locked) as seen:
            report = target.import_sessions(io.BufferedReader(Unseekable(data)))  # type: ignore[arg-type]
        assert "failed" in seen
        assert (report.sessions, report.messages, report.checkpoints) == (2, 5, 3)
        assert len(target.list_sessions()) == 2
        # A seekable stream is read from where it stands.
        again = io.BytesIO(b"ignored" + data)
        again.seek(len(b"ignored"))
        assert target.import_sessions(again, new_ids=True).sessions == 2


def test_a_truncated_or_corrupt_gzip_export_names_the_problem(
    filled_store: sync.SqlAlchemyCheckpointStore, tmp_path: Path
) -> None:
    path = tmp_path / "export.jsonl.gz"
    filled_store.export_sessions(path)
    data = path.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    corrupt = tmp_path / "corrupt.jsonl.gz"
    corrupt.write_bytes(data[:-8] + bytes(byte ^ 0xFF for byte in data[-8:]))  # the CRC and size trailer
    with sync.SqlAlchemyCheckpointStore(f"sqlite:///{tmp_path / 'target.db'}") as target:
        with pytest.raises(ExportFormatError, match="the gzip stream is truncated"):
            target.import_sessions(cut)
        with pytest.raises(ExportFormatError, match="the gzip stream is corrupt"):
            target.import_sessions(corrupt)
        assert target.list_sessions() == []
