"""Pydantic DTOs of the memory store: entities, their relationships, facts, search results.

Field names are snake_case; ``model_dump(by_alias=True)`` gives the TypeScript package's
camelCase shape (``sessionId``, ``targetId``...), and inputs accept either spelling.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from pydantic.alias_generators import to_camel

from .bounds import Id, Name, Text
from .errors import CheckpointStoreError

EmbeddingInput: TypeAlias = Sequence[float] | npt.NDArray[np.floating[Any] | np.integer[Any]]
"""An embedding as the store takes it: a list (or other sequence) of numbers, or a 1-D
numpy array of a real dtype. See ``check_embedding``."""


def check_embedding(embedding: object) -> list[float]:
    """An embedding as Python floats: finite numbers, at least one.

    Takes a list, tuple or other sequence of ints and floats (their subclasses too, such
    as ``numpy.float64``; numpy's integer and floating scalars as well), or a 1-D numpy
    array of an integer or floating dtype. Each number becomes the float it equals: a
    float32 widens exactly, so an array stores what a list of the same Python floats
    stores. Not bools, strings or None.

    Raises:
        TypeError: not a sequence of numbers or a numeric array, or an item that is not a
            number (a bool, a string, None...) or a float wider than 64 bits.
        ValueError: empty, an array that is not 1-D, or a number that is NaN, an
            infinity or beyond a float's range.
    """
    if isinstance(embedding, np.ndarray):
        dtype = embedding.dtype
        # float16, float32 and float64 widen to a Python float exactly; a long double would be rounded.
        if dtype.kind not in "iuf" or (dtype.kind == "f" and dtype.itemsize > 8):
            raise TypeError(f"embedding: expected an array of integers or floats of up to 64 bits, got dtype {dtype}")
        if embedding.ndim != 1:
            raise ValueError(f"embedding: expected a 1-D array, got one of shape {embedding.shape}")
        # Python ints and floats, each equal to its array value.
        items: Sequence[object] = embedding.tolist()
    elif isinstance(embedding, Sequence) and not isinstance(embedding, (str, bytes, bytearray)):
        items = embedding
        # Checked by type, not item by item: a vector holds one or two types.
        refused = {kind for kind in set(map(type, items)) if not _is_number_type(kind)}
        if refused:
            index, number = next((index, item) for index, item in enumerate(items) if type(item) in refused)
            reason = "wider than a float" if issubclass(type(number), np.floating) else "not a number"
            raise TypeError(f"embedding: item {index} is a {type(number).__name__}, {reason}")
    else:
        raise TypeError(f"embedding: expected a list of numbers or a 1-D numpy array, got {type(embedding).__name__}")
    try:
        vector = list(map(float, items))  # type: ignore[arg-type]
    except OverflowError:
        index = next(index for index, number in enumerate(items) if not _fits(number))
        raise ValueError(f"embedding: item {index} is too large for a float") from None
    return _finite(vector)


@functools.cache
def _is_number_type(kind: type) -> bool:
    """Whether ``float()`` turns a value of this type into the number it is: ints and floats
    and their subclasses, numpy's integers and floats of up to 64 bits; not bools."""
    if issubclass(kind, (bool, np.bool_)):
        return False
    if issubclass(kind, np.floating):
        return np.dtype(kind).itemsize <= 8
    return issubclass(kind, (int, float, np.integer))


def _fits(number: object) -> bool:
    try:
        float(number)  # type: ignore[arg-type]
    except OverflowError:
        return False
    return True


def _finite(vector: list[float]) -> list[float]:
    if not vector:
        raise ValueError("an embedding has at least one number")
    # NaN and infinities make the sum non-finite; so may a sum of large finite numbers,
    # hence the look at each number then.
    if not math.isfinite(sum(vector)):
        for index, number in enumerate(vector):
            if not math.isfinite(number):
                raise ValueError(f"item {index} is {number}: an embedding holds finite numbers only")
    return vector


Vector = Annotated[list[float], PlainValidator(check_embedding, json_schema_input_type=list[float])]
"""An embedding field: what ``check_embedding`` takes, stored as the list of floats it returns."""


class _Dto(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, frozen=True)


class EntityRelationship(_Dto):
    """A link from an entity to another one. Extra keys (``weight``...) are kept."""

    model_config = ConfigDict(extra="allow")

    target_id: Text
    type: Text


class Entity(_Dto):
    """Something an agent learned about in a session: a person, a domain, a service...

    ``score`` is set only on search results (the cosine similarity to the query), which
    carry no ``embedding``, as the TypeScript store's search results carry none.
    """

    id: str
    session_id: str
    workspace_id: str | None = None
    name: str
    type: str
    attributes: dict[str, Any] = Field(default_factory=dict)
    relationships: list[EntityRelationship] = Field(default_factory=list)
    embedding: list[float] | None = None
    created_at: int
    updated_at: int
    score: float | None = Field(default=None, exclude_if=lambda value: value is None)


class Fact(_Dto):
    """A statement an agent holds, with its confidence (None when saved without one).

    ``score`` is set only on search results, as for ``Entity``.
    """

    id: str
    content: str
    confidence: float | None = None
    workspace_id: str | None = None
    source_session_id: str | None = None
    embedding: list[float] | None = None
    created_at: int
    score: float | None = Field(default=None, exclude_if=lambda value: value is None)


class NewEntity(_Dto):
    """``save_entity``'s input, checked before anything is written."""

    session_id: Id
    name: Text
    type: Name
    workspace_id: Name | None = None
    attributes: dict[Text, Any] | None = None
    relationships: list[EntityRelationship] | None = None
    embedding: Vector | None = None


class EntityChanges(_Dto):
    """``update_entity``'s changes: only the fields set are written."""

    name: Text | None = None
    type: Name | None = None
    workspace_id: Name | None = None
    attributes: dict[Text, Any] | None = None
    relationships: list[EntityRelationship] | None = None
    embedding: Vector | None = None


class NewFact(_Dto):
    """``save_fact``'s input, checked before anything is written."""

    content: Text
    confidence: Annotated[float, Field(allow_inf_nan=False)] | None = None
    workspace_id: Name | None = None
    source_session_id: Id | None = None
    embedding: Vector | None = None


T = TypeVar("T", bound=_Dto)


class MemoryResults(list[T]):
    """Entities or facts from a listing or a semantic search (best first, ``score`` set).

    Rows that could not be read are not in the list but in ``skipped``, each error naming
    its row: for a listing, an entity whose attributes or relationships are not JSON of
    the right shape (``CheckpointCorruptionError``); for a search also a stored embedding
    that is not an array of finite numbers (``EmbeddingDeserializationError``) or one of
    another length than the query (``VectorDimensionError``).
    """

    def __init__(self, items: Iterable[T] = (), *, skipped: Iterable[CheckpointStoreError] = ()) -> None:
        super().__init__(items)
        self.skipped = list(skipped)
        """The rows that could not be read or scored, each error naming its row."""


def check_query(embedding: object) -> list[float]:
    """A search's query vector as floats, taken as a saved embedding is (``check_embedding``).

    Raises:
        TypeError: as ``check_embedding``.
        ValueError: as ``check_embedding``.
    """
    return check_embedding(embedding)


def check_score(name: str, value: object) -> float | None:
    """A threshold or minimum confidence: None, or a finite number (as a float).

    Raises:
        TypeError: not a number.
        ValueError: NaN or an infinity.
    """
    if value is None:
        return None
    if type(value) not in (int, float):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError(f"{name}: must be a finite number, got {number}")
    return number
