"""Decoded embeddings kept between searches: float32 matrices per table and dimension.

Process state shared by the threads of a store, so it lives here, the one layer that
knows threads: ``ops.memory_search`` fills and reads it under its lock, and has a
shortlist computed here in the background while it waits for the server.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine


@dataclass
class Block:
    """The vectors of one dimension: unit rows of float32 (zero rows for zero vectors)."""

    matrix: NDArray[np.float32]
    used: int = 0
    free: list[int] = field(default_factory=list)

    # One int object for every row of the block (the rows map holds it, a few bytes saved a row).
    dimension: int = field(init=False)

    def __post_init__(self) -> None:
        self.dimension = int(self.matrix.shape[1])

    def put(self, vector: NDArray[np.float32], slot: int | None, coming: int = 0) -> int:
        """Write ``vector`` at ``slot``, or at a free one; ``coming``: rows still to be put by
        the same fill, room for which is made at once when the matrix must grow."""
        if slot is None:
            if self.free:
                slot = self.free.pop()
            else:
                if self.used == len(self.matrix):
                    # Grown to hold the rest of a fill, or by a sixteenth: the slack stays within
                    # about 6 % of the vectors' float32 size, and a fill copies the matrix once.
                    size = len(self.matrix) + max(coming, 64, len(self.matrix) // 16)
                    grown = np.zeros((size, self.matrix.shape[1]), dtype=np.float32)
                    grown[: self.used] = self.matrix[: self.used]
                    self.matrix = grown
                slot = self.used
                self.used += 1
        self.matrix[slot] = vector
        return slot


@dataclass
class VectorCache:
    """Decoded embeddings of one table of one database, by row id.

    ``rows`` maps an id to ``(marker, dimension, slot)``, or to ``(marker, reason)`` when
    its stored value is unreadable (so a bad row is parsed once, and reported each time).
    Dimension -1 is no embedding (an empty value); a slot of -1 holds no vector.
    """

    rows: dict[str, tuple[Any, int, int] | tuple[Any, str]] = field(default_factory=dict)
    blocks: dict[int, Block] = field(default_factory=dict)
    # The last candidates of a search per filter, with what says whether they still hold
    # (``ops.memory_search._candidates``): on SQLite per connection, with the connection and
    # the stamp they were read at; on PostgreSQL with their fingerprint. The list comes last.
    candidates: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)
    # What a search found scorable in its candidates, per filter and query dimension, valid
    # for the same candidates while ``generation`` (moved by every change to ``rows``) stays.
    plans: dict[tuple[Any, int], tuple[Any, ...]] = field(default_factory=dict)
    generation: int = 0
    # Rows the fill under way has still to store (``expect``): room is made for them at once.
    coming: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, count: int) -> None:
        """Say that ``count`` rows are about to be stored, so a matrix grows once for all of them."""
        self.coming = count

    def store(self, row_id: str, marker: Any, vector: NDArray[np.float64] | None, problem: str | None = None) -> None:
        """Keep a row's decoded vector (None: no embedding) or why it cannot be read."""
        previous = self.rows.get(row_id)
        self.generation += 1
        self.coming = max(0, self.coming - 1)
        if problem is not None or vector is None or len(vector) == 0:
            self._release(previous)
            if problem is not None:
                self.rows[row_id] = (marker, problem)
            else:
                self.rows[row_id] = (marker, -1 if vector is None else 0, -1)
            return
        dimension = len(vector)
        norm = float(np.linalg.norm(vector))
        unit = (vector / norm if norm > 0 and math.isfinite(norm) else np.zeros_like(vector)).astype(np.float32)
        block = self.blocks.get(dimension)
        if block is None:
            block = self.blocks[dimension] = Block(np.zeros((64, dimension), dtype=np.float32))
        slot: int | None = None
        if previous is not None and len(previous) == 3 and previous[1] == dimension and previous[2] >= 0:
            slot = previous[2]
        else:
            self._release(previous)
        self.rows[row_id] = (marker, block.dimension, block.put(unit, slot, self.coming))

    def _release(self, previous: tuple[Any, ...] | None) -> None:
        if previous is not None and len(previous) == 3 and previous[2] >= 0:
            self.blocks[previous[1]].free.append(previous[2])

    def forget(self, keep: set[str]) -> None:
        """Drop the rows not in ``keep`` (after a search that saw every row of the table)."""
        for row_id in [row_id for row_id in self.rows if row_id not in keep]:
            self.generation += 1
            self._release(self.rows.pop(row_id))


T = TypeVar("T")


def _background_threads() -> ThreadPoolExecutor:
    # Shortlists computed while a search waits for the server (``ops.memory_search``):
    # NumPy's matrix product releases the GIL, so it runs beside the round trip.
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="obsku-rank")


_BACKGROUND = _background_threads()


Pending = Future
"""What ``in_background`` returns: ``result()`` waits for the value (or raises its error)."""


def in_background(function: Callable[..., T], *args: Any) -> Pending[T]:
    """``function(*args)`` in a background thread; the future gives its result."""
    return _BACKGROUND.submit(function, *args)


_CACHES: weakref.WeakKeyDictionary[Engine, dict[str, VectorCache]] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def cache_for(engine: Engine, table: str) -> VectorCache:
    """The cache of ``table`` in the database of ``engine``; it goes with the engine."""
    with _CACHES_LOCK:
        return _CACHES.setdefault(engine, {}).setdefault(table, VectorCache())


def _start_over_in_child() -> None:
    # A forked child has none of its parent's threads: an executor that counts them would
    # queue work no thread takes, and a lock one of them held would never be released.
    global _BACKGROUND, _CACHES, _CACHES_LOCK
    _BACKGROUND = _background_threads()
    _CACHES = weakref.WeakKeyDictionary()
    _CACHES_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_start_over_in_child)


def caches() -> list[VectorCache]:
    """Every cache of this process (for the benchmark, which measures what they hold)."""
    with _CACHES_LOCK:
        return [cache for by_table in _CACHES.values() for cache in by_table.values()]
