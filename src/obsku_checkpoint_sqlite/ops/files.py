"""Export and import files: written privately and whole, read from a path or a stream, each attempt afresh.

The runner may run an export or import more than once (it retries on lock contention
and on a read's lost connection), so the objects here keep what must outlast one attempt:
whether the file was published, where a caller's stream started, a spooled copy of a
stream that cannot be rewound.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO, Protocol

# A new file is readable by its owner only: checkpoints hold tool outputs and secrets.
PRIVATE_MODE = 0o600
# O_EXCL alone already refuses a symlink; O_NOFOLLOW says so where it exists (not Windows).
_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
GZIP_MAGIC = b"\x1f\x8b"

ExportTarget = str | os.PathLike[str] | BinaryIO
ImportSource = str | os.PathLike[str] | BinaryIO


class Writer(Protocol):
    def write(self, data: bytes, /) -> int: ...


class ExportFile:
    """Where an export goes: a new file at a path (``.gz`` compresses it), or a binary stream.

    A path gets a new file of mode 0600, created beside it under a temporary name (never
    through a symlink) and moved into place only once complete: a failed export leaves
    nothing at the path, and with ``overwrite`` leaves the old file as it was. Without
    ``overwrite`` an existing path (a file, a symlink, anything) is refused.

    A stream is written from where it stands; a retried export rewinds a seekable one
    there, and refuses to write a second copy after a first into one that cannot be rewound.
    """

    def __init__(self, target: ExportTarget, *, overwrite: bool) -> None:
        self.target = target
        self.overwrite = overwrite
        self._published = False
        self._stream_start: int | None = None
        self._stream_used = False

    @contextlib.contextmanager
    def attempt(self) -> Iterator[Writer]:
        """The output of one attempt, empty: complete and in place when the block ends without error.

        Raises:
            FileExistsError: the path exists and ``overwrite`` is False.
            OSError: the file cannot be written, or a stream cannot start afresh.
        """
        if isinstance(self.target, (str, os.PathLike)):
            with self._attempt_file(Path(self.target)) as out:
                yield out
            return
        stream = self.target
        if not self._stream_used:
            self._stream_used = True
            self._stream_start = stream.tell() if stream.seekable() else None
        elif self._stream_start is None:
            raise OSError(
                errno.ESPIPE,
                "The export was interrupted after writing to a stream that cannot be rewound, so it "
                "cannot start afresh; nothing more was written. Run it again",
            )
        else:
            stream.seek(self._stream_start)
            stream.truncate()
        yield stream
        stream.flush()

    @contextlib.contextmanager
    def _attempt_file(self, path: Path) -> Iterator[Writer]:
        replace = self.overwrite or self._published
        if not replace and os.path.lexists(path):
            raise FileExistsError(
                errno.EEXIST, "The export file exists already; pass overwrite=True to replace it", str(path)
            )
        if path.is_dir() and not path.is_symlink():
            raise IsADirectoryError(errno.EISDIR, "The export path is a directory", str(path))
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        fd = os.open(partial, _CREATE_NEW, PRIVATE_MODE)
        try:
            with os.fdopen(fd, "wb") as raw:
                if path.suffix == ".gz":
                    with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw) as compressed:
                        yield compressed
                else:
                    yield raw
                raw.flush()
                os.fsync(raw.fileno())
            _publish(partial, path, replace=replace)
            self._published = True
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise


def _publish(partial: Path, path: Path, *, replace: bool) -> None:
    """Move the complete ``partial`` file to ``path``: over what is there only if ``replace``."""
    if replace:
        os.replace(partial, path)  # replaces a symlink itself, never the file it points to
        return
    try:
        # A hard link fails if the path exists: no export lands over a file made meanwhile.
        os.link(partial, path)
    except FileExistsError:
        raise FileExistsError(
            errno.EEXIST, "The export file exists already; pass overwrite=True to replace it", str(path)
        ) from None
    except OSError:
        # A file system without hard links: claim the name, then move the file over the claim.
        os.close(os.open(path, _CREATE_NEW, PRIVATE_MODE))
        os.replace(partial, path)
        return
    os.unlink(partial)


class ImportFile:
    """What an import reads: a file at a path, or a binary stream; gzip is recognised by its
    first bytes. Each attempt reads it from the start: a stream that cannot be rewound
    (standard input) is first copied to a private temporary file. Close it afterwards.
    """

    def __init__(self, source: ImportSource) -> None:
        self.source = source
        self._stream_start: int | None = None
        self._spool: IO[bytes] | None = None

    def __enter__(self) -> ImportFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the spooled copy of a stream, if one was made."""
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.close()

    @contextlib.contextmanager
    def attempt(self) -> Iterator[tuple[BinaryIO, int | None]]:
        """The raw input from its start, and its size in bytes where known.

        Raises:
            OSError: the file cannot be read.
        """
        if isinstance(self.source, (str, os.PathLike)):
            with open(self.source, "rb") as opened:
                yield opened, os.fstat(opened.fileno()).st_size
            return
        stream = self._rewound()
        yield stream, _size_after(stream)

    def _rewound(self) -> BinaryIO:
        stream = self.source
        assert not isinstance(stream, (str, os.PathLike))
        if self._spool is not None:
            self._spool.seek(0)
            return self._spool  # type: ignore[return-value]  # a binary file, typed IO[bytes]
        if self._stream_start is not None:
            stream.seek(self._stream_start)
            return stream
        if stream.seekable():
            self._stream_start = stream.tell()
            return stream
        # Created unlinked where the platform allows, readable by its owner only.
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115  # kept across attempts; close() closes it
        shutil.copyfileobj(stream, self._spool)
        self._spool.seek(0)
        return self._spool


def _size_after(raw: BinaryIO) -> int | None:
    """How many bytes ``raw`` holds from where it stands, where that can be told."""
    try:
        return os.fstat(raw.fileno()).st_size - raw.tell()
    except (OSError, ValueError, AttributeError):
        return None


def is_gzip(raw: BinaryIO) -> bool:
    """Whether the data ahead in ``raw``, a seekable file, starts as gzip does; nothing is consumed."""
    start = raw.tell()
    head = raw.read(2)
    raw.seek(start)
    return head == GZIP_MAGIC
