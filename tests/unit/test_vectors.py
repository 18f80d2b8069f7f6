"""The vector cache holds the vectors' float32 size and little more."""

from __future__ import annotations

import numpy as np

from obsku_checkpoint_sqlite.runtime.vectors import VectorCache


def test_a_fill_grows_the_matrix_once_to_the_rows_it_was_told_of() -> None:
    cache = VectorCache()
    vectors = np.random.default_rng(1).uniform(-1.0, 1.0, (1_000, 8))
    cache.expect(len(vectors))
    for index, vector in enumerate(vectors):
        cache.store(f"row-{index}", index, vector)
    (block,) = cache.blocks.values()
    assert block.used == 1_000
    # The first 64 rows, then room for the rest at once: growing by a quarter would leave 1,220.
    assert len(block.matrix) == 1_000 + 63
    assert cache.coming == 0
    assert np.allclose(block.matrix[5], vectors[5] / np.linalg.norm(vectors[5]), atol=1e-7)


def test_rows_stored_one_at_a_time_leave_at_most_a_sixteenth_unused() -> None:
    cache = VectorCache()
    for index, vector in enumerate(np.random.default_rng(2).uniform(-1.0, 1.0, (5_000, 4))):
        cache.store(f"row-{index}", index, vector)
    (block,) = cache.blocks.values()
    assert block.used == 5_000
    assert len(block.matrix) <= 5_000 * 17 // 16 + 64


def test_a_row_without_a_vector_or_unreadable_takes_no_slot() -> None:
    cache = VectorCache()
    cache.store("none", 1, None)
    cache.store("empty", 1, np.zeros(0))
    cache.store("bad", 1, None, "Invalid JSON")
    assert cache.rows == {"none": (1, -1, -1), "empty": (1, 0, -1), "bad": (1, "Invalid JSON")}
    assert cache.blocks == {}
