"""How the memory store takes an embedding: numbers of Python's and numpy's types, as the
Python floats they equal, and nothing else."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from obsku_checkpoint_sqlite.db.memory_rows import encode_embedding
from obsku_checkpoint_sqlite.memory_dto import EntityChanges, NewEntity, NewFact, check_embedding, check_query

FLOATS = [0.1, -0.0, 1e-7, 3.0, -2.5e300]


def _as_new_fact(embedding: object) -> list[float] | None:
    return NewFact(content="c", embedding=embedding).embedding


def _as_new_entity(embedding: object) -> list[float] | None:
    return NewEntity(session_id="s", name="n", type="t", embedding=embedding).embedding


def _as_changes(embedding: object) -> list[float] | None:
    return EntityChanges.model_validate({"embedding": embedding}).embedding


TAKERS = [check_embedding, check_query, _as_new_fact, _as_new_entity, _as_changes]


@pytest.mark.parametrize("take", TAKERS)
@pytest.mark.parametrize(
    "given",
    [
        pytest.param(FLOATS, id="list"),
        pytest.param(tuple(FLOATS), id="tuple"),
        pytest.param(np.array(FLOATS), id="float64 array"),
        pytest.param(list(np.array(FLOATS)), id="numpy.float64 items"),
    ],
)
def test_numbers_of_python_and_numpy_give_the_same_python_floats(take: Any, given: object) -> None:
    vector = take(given)
    assert vector == FLOATS
    assert all(type(number) is float for number in vector)
    assert [math.copysign(1.0, number) for number in vector] == [math.copysign(1.0, n) for n in FLOATS]
    assert encode_embedding(vector) == encode_embedding(FLOATS)


@pytest.mark.parametrize("take", TAKERS)
def test_float32_widens_exactly_and_integers_become_the_floats_they_equal(take: Any) -> None:
    single = np.array([0.1, 1e-7, 65504.0], dtype=np.float32)
    widened = [float(number) for number in single]
    assert widened[0] == 0.10000000149011612  # float32's 0.1, not 0.1
    for given in (single, list(single), single.astype(np.float16)[2:]):
        vector = take(given)
        assert vector == [float(number) for number in given]
        assert all(type(number) is float for number in vector)
    assert take(single) == widened
    assert take(np.array([1, -2, 2**53 + 1], dtype=np.int64)) == [1.0, -2.0, float(2**53 + 1)]
    assert take(np.array([255], dtype=np.uint8)) == [255.0]
    assert take([np.int64(3), 4, np.float32(0.5)]) == [3.0, 4.0, 0.5]
    assert take([1, 2**60]) == [1.0, float(2**60)]


@pytest.mark.parametrize("take", TAKERS)
@pytest.mark.parametrize(
    ("given", "message"),
    [
        ([True, 1.0], "item 0 is a bool, not a number"),
        ([1.0, np.bool_(False)], "item 1 is a bool, not a number"),
        (["0.5"], "item 0 is a str, not a number"),
        ([1.0, None], "item 1 is a NoneType, not a number"),
        ([Decimal("0.5")], "item 0 is a Decimal, not a number"),
        ([Fraction(1, 3)], "item 0 is a Fraction, not a number"),
        ([[0.5]], "item 0 is a list, not a number"),
        ("0.5", "expected a list of numbers or a 1-D numpy array, got str"),
        (b"\x00", "expected a list of numbers or a 1-D numpy array, got bytes"),
        ({0.5}, "got set"),
        ({"a": 0.5}, "got dict"),
        (iter([0.5]), "got list_iterator"),
        (np.array([True]), "dtype bool"),
        (np.array([1 + 2j]), "dtype complex128"),
        (np.array(["0.5"]), "dtype <U3"),
        (np.array([0.5], dtype=object), "dtype object"),
    ],
)
def test_what_is_not_a_number_is_a_type_error_naming_it(take: Any, given: object, message: str) -> None:
    with pytest.raises(TypeError, match=f"embedding: .*{re.escape(message)}"):
        take(given)


@pytest.mark.parametrize("take", TAKERS)
def test_a_long_double_would_be_rounded_and_is_refused(take: Any) -> None:
    if np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("long double is a float here")
    with pytest.raises(TypeError, match=f"dtype {np.dtype(np.longdouble)}"):
        take(np.array([0.1], dtype=np.longdouble))
    with pytest.raises(TypeError, match="item 1 is a longdouble, wider than a float"):
        take([0.5, np.longdouble("0.1")])


@pytest.mark.parametrize("take", TAKERS)
@pytest.mark.parametrize(
    ("given", "message"),
    [
        ([], "at least one number"),
        (np.array([]), "at least one number"),
        ([0.5, math.nan], "item 1 is nan: an embedding holds finite numbers only"),
        ([math.inf], "item 0 is inf"),
        (np.array([1.0, -np.inf]), "item 1 is -inf"),
        (np.array([np.nan], dtype=np.float32), "item 0 is nan"),
        ([np.float64("nan")], "item 0 is nan"),
        ([1, 10**400], "embedding: item 1 is too large for a float"),
        (np.array([[0.5, 0.5]]), r"expected a 1-D array, got one of shape \(1, 2\)"),
        (np.array(0.5), r"expected a 1-D array, got one of shape \(\)"),
    ],
)
def test_an_empty_non_finite_or_misshapen_embedding_is_a_value_error(take: Any, given: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        take(given)


def test_large_finite_numbers_whose_sum_overflows_are_kept() -> None:
    assert check_embedding([1e308, 1e308, -1e308]) == [1e308, 1e308, -1e308]


def test_no_embedding_is_none_on_the_inputs_and_refused_as_a_query() -> None:
    assert _as_new_fact(None) is None
    assert _as_changes(None) is None
    with pytest.raises(TypeError, match="got NoneType"):
        check_query(None)
