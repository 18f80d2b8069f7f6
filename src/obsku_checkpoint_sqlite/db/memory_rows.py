"""Rows of the memory tables to DTOs, and embeddings to and from the TypeScript package's text.

An embedding is stored as the JSON text of its numbers written as JavaScript writes them
(``JSON.stringify``): that is what the TypeScript package writes and reads.
"""

from __future__ import annotations

import math
import struct
from decimal import Decimal
from typing import Any, cast

import numpy as np
import orjson
from pydantic import ValidationError

from .. import jsonplus
from ..errors import CheckpointCorruptionError
from ..memory_dto import Entity, EntityRelationship, Fact
from .rows import AnyRow, invalid_shape, location


def js_number(value: float) -> str:
    """``value`` as JavaScript's ``Number.prototype.toString`` writes it (finite values only).

    The digits are the shortest that round-trip, as ``repr`` finds them; JavaScript writes
    them in plain notation for decimal exponents from -7 to 20 and ``1e-7`` / ``1e+21``
    beyond, with no ``.0`` on integral values and ``-0`` as ``0``.
    """
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)
    exponent += len(digit_tuple) - len(digits)
    k = len(digits)
    n = exponent + k
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{mantissa}e{'+' if e > 0 else '-'}{abs(e)}"


def encode_embedding(vector: list[float] | None) -> str | None:
    """The stored text of an embedding: ``[0.5,-1,0,1e-7]``, or None for no embedding."""
    if vector is None:
        return None
    return "[" + ",".join(js_number(number) for number in vector) + "]"


def parse_embedding(value: str | bytes | None) -> list[float] | None:
    """A stored embedding's numbers; None for NULL or an empty value.

    Raises:
        ValueError: the value is not the JSON text of an array of finite numbers (its
            message says why).
    """
    if value is None or len(value) == 0:
        return None
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"Invalid JSON: {exc}") from None
    if isinstance(parsed, list) and not _has_letters(value):
        # The common case, checked by NumPy: numbers only (no true, false, null or strings,
        # whose letters the text would show), one level deep, all finite.
        array = np.array(parsed)
        if array.ndim == 1 and array.dtype.kind in "fi":
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise ValueError("Invalid numeric array: a number out of range")
            return cast(list[float], array.astype(np.float64).tolist())
    if not isinstance(parsed, list):
        raise ValueError(f"Invalid numeric array: a JSON {type(parsed).__name__}, not an array")
    for index, number in enumerate(parsed):
        if type(number) not in (int, float):
            raise ValueError(f"Invalid numeric array: item {index} is {number!r}")
    vector = [float(number) for number in parsed]
    if not all(math.isfinite(number) for number in vector):
        raise ValueError("Invalid numeric array: a number out of range")
    return vector


def _has_letters(value: str | bytes) -> bool:
    # Numbers are written with digits, signs, a point and "e" only; "t", "f", "n" and quotes
    # mean true, false, null or a string somewhere.
    if isinstance(value, str):
        return any(mark in value for mark in ('"', "t", "f", "n"))
    return any(mark in value for mark in (b'"', b"t", b"f", b"n"))


def readable_embedding(value: str | bytes | None) -> list[float] | None:
    """As ``parse_embedding``, but None for an unreadable value: reads of an entity or fact
    show no embedding there, as the TypeScript store's reads do, and search reports it."""
    try:
        return parse_embedding(value)
    except ValueError:
        return None


def float4(value: float | None) -> float | None:
    """The shortest decimal that identifies ``value``'s single-precision float.

    PostgreSQL's ``real`` holds 4 bytes; its own text form (which the TypeScript store
    reads) is this decimal, while a driver reading binary gets the widened double.
    """
    if value is None or not math.isfinite(value):
        return value
    (single,) = struct.unpack("<f", struct.pack("<f", value))
    for precision in range(1, 10):
        candidate = float(f"{single:.{precision}g}")
        if struct.pack("<f", candidate) == struct.pack("<f", single):
            return candidate
    return float(single)


def _json_column(text: str | None, table: str, row_id: str, column: str) -> Any:
    if text is None:
        return None
    try:
        return jsonplus.loads(text)
    except CheckpointCorruptionError as exc:
        raise CheckpointCorruptionError(exc.reason, text, location=location(table, row_id, column)) from None


def entity_from_row(row: AnyRow, *, lenient: bool = False) -> Entity:
    """An ``entities`` row as an ``Entity``.

    Strict (reads): attributes that are not a JSON object, or relationships that are not a
    list of ``{targetId, type}``, raise ``CheckpointCorruptionError`` naming the row. Lenient
    (search results, as the TypeScript store builds them): those become ``{}`` / ``[]``,
    relationships keep only ``targetId`` and ``type``, and no embedding is read; text that
    is not JSON still raises.
    """
    mapping = row._mapping
    row_id = mapping["id"]
    # A NULL column reads as empty; the stored text ``null`` is a value of the wrong shape.
    attributes = _json_column(mapping["attributes"], "entities", row_id, "attributes")
    relationships = _json_column(mapping["relationships"], "entities", row_id, "relationships")
    if mapping["attributes"] is None:
        attributes = {}
    if mapping["relationships"] is None:
        relationships = []
    if lenient:
        if not isinstance(attributes, dict):
            attributes = {}
        links = _relationships(relationships)
        relationships = [] if links is None else [{"targetId": link.target_id, "type": link.type} for link in links]
    elif not isinstance(attributes, dict):
        raise CheckpointCorruptionError(
            f"attributes must be an object, not a JSON {type(attributes).__name__}",
            mapping["attributes"],
            location=location("entities", row_id, "attributes"),
        )
    try:
        return Entity(
            id=row_id,
            session_id=mapping["session_id"],
            workspace_id=mapping["workspace_id"],
            name=mapping["name"],
            type=mapping["type"],
            attributes=attributes,
            relationships=relationships,
            embedding=None if lenient else readable_embedding(mapping["embedding"]),
            created_at=mapping["created_at"],
            updated_at=mapping["updated_at"],
        )
    except ValidationError as exc:
        column = str(exc.errors()[0]["loc"][0])
        raw = mapping.get(column)
        raise invalid_shape(exc.errors(), repr(raw), location("entities", row_id, column)) from None


def _relationships(value: Any) -> list[EntityRelationship] | None:
    if not isinstance(value, list):
        return None
    try:
        return [EntityRelationship.model_validate(item) for item in value]
    except ValidationError:
        return None


def fact_from_row(row: AnyRow, *, postgresql: bool = False, with_embedding: bool = True) -> Fact:
    """A ``facts`` row as a ``Fact``; on PostgreSQL the ``real`` confidence as its float4 decimal."""
    mapping = row._mapping
    confidence = mapping["confidence"]
    if confidence is not None:
        confidence = float4(float(confidence)) if postgresql else float(confidence)
    return Fact(
        id=mapping["id"],
        content=mapping["content"],
        confidence=confidence,
        workspace_id=mapping["workspace_id"],
        source_session_id=mapping["source_session_id"],
        embedding=readable_embedding(mapping["embedding"]) if with_embedding else None,
        created_at=mapping["created_at"],
    )
