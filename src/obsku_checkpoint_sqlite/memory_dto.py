"""Pydantic DTOs of the memory store: entities, their relationships, facts, search results.

Field names are snake_case; ``model_dump(by_alias=True)`` gives the TypeScript package's
camelCase shape (``sessionId``, ``targetId``...), and inputs accept either spelling.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .bounds import Id, Name, Text
from .errors import CheckpointStoreError


def _finite(vector: list[float]) -> list[float]:
    for index, number in enumerate(vector):
        if not math.isfinite(number):
            raise ValueError(f"item {index} is {number}: an embedding holds finite numbers only")
    if not vector:
        raise ValueError("an embedding has at least one number")
    return vector


Vector = Annotated[list[Annotated[float, Field(strict=False, allow_inf_nan=True)]], AfterValidator(_finite)]
"""An embedding as the store takes it: finite numbers, at least one (ints become floats)."""


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
    """A search's query vector as floats: a list of finite numbers, at least one.

    Raises:
        TypeError: not a list of numbers.
        ValueError: empty, or holding NaN or an infinity.
    """
    if not isinstance(embedding, list):
        raise TypeError(f"embedding: expected a list of numbers, got {type(embedding).__name__}")
    for index, number in enumerate(embedding):
        if type(number) not in (int, float):
            raise TypeError(f"embedding: item {index} is a {type(number).__name__}, not a number")
    vector = [float(number) for number in embedding]
    return _finite(vector)


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
