"""The original package's JsonPlus format: plain JSON plus tagged values.

=============================  ======================================  =================
Python value                   stored as                               read back as
=============================  ======================================  =================
aware ``datetime``             ``{"__type": "Date", "value": ISO}``    aware ``datetime``
``set`` / ``frozenset``        ``{"__type": "Set", "value": [...]}``   ``set``
``bytes`` / ``bytearray``      ``{"__type": "Buffer", "value": b64}``  ``bytes``
``dict`` with non-str keys,    ``{"__type": "Map", "value": [[k, v]]}`` ``dict``
or with a ``"__type"`` key
``tuple``                      a JSON array                            ``list``
=============================  ======================================  =================

Naive datetimes are refused (their instant is unknown), as are NaN and infinities
(JSON has no spelling for them). A user's own dict that has a ``"__type"`` key is
written as a Map, so it cannot be mistaken for a tag and comes back unchanged.
On reading, unknown tags stay plain dicts; a Set whose members Python cannot hash
comes back as a list, a Map whose keys it cannot hash as a list of ``[key, value]``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic_core import from_json

from .errors import CheckpointCorruptionError

TAG = "__type"
_TAG_MARKER = '"__type"'


class _Unencodable(Exception):
    """Carries the path to a value that cannot be encoded, built up as the walk unwinds."""

    def __init__(self, problem: str, error_type: type[Exception]) -> None:
        super().__init__(problem)
        self.problem = problem
        self.error_type = error_type
        self.path: list[str] = []


def dumps(value: Any, *, field: str = "value") -> str:
    """Encode ``value`` as JsonPlus text.

    Raises:
        TypeError: a value of a type JSON cannot hold, or a naive datetime.
        ValueError: NaN or an infinity, or a string that is not valid Unicode.
        Either message names the path to the offending value, starting at ``field``.
    """
    try:
        ready = _prepare(value)
    except _Unencodable as exc:
        path = field + "".join(reversed(exc.path))
        raise exc.error_type(f"{path}: {exc.problem}") from None
    try:
        return orjson.dumps(ready).decode()
    except orjson.JSONEncodeError:
        pass
    # orjson refuses integers beyond 64 bits and lone surrogates; the stdlib writes
    # any integer, and the encode check below names the surrogate.
    text = json.dumps(ready, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{field}{_find_invalid_string(ready)}") from None
    return text


def loads(text: str | bytes, *, location: str | None = None) -> Any:
    """Decode JsonPlus text: ``revive(parse(text), text)``.

    Raises:
        CheckpointCorruptionError: malformed JSON or a malformed tag, with a preview
            of the data and ``location`` (e.g. the row) in its message.
    """
    return revive(parse(text, location=location), text, location=location)


def parse(text: str | bytes, *, location: str | None = None) -> Any:
    """Parse JsonPlus text as plain JSON, leaving its tags as they are (see ``revive``).

    Raises:
        CheckpointCorruptionError: malformed JSON.
    """
    try:
        # pydantic-core's parser, not orjson's: orjson reads integers beyond 64 bits as
        # floats, which would alter them. It costs a few microseconds more a payload.
        return from_json(text, allow_inf_nan=False)
    except ValueError as exc:
        problem = exc
    try:
        # pydantic-core (and orjson) refuse an escaped lone surrogate ("\ud83d"), which
        # JavaScript's JSON.stringify writes for a string cut inside a surrogate pair;
        # the stdlib reads it, as the original does.
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        raise CheckpointCorruptionError(f"invalid JSON ({problem})", text, location=location) from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def revive(value: Any, text: str | bytes, *, location: str | None = None) -> Any:
    """Turn the tags in ``value``, parsed from ``text``, back into Python values.

    Raises:
        CheckpointCorruptionError: a malformed tag.
    """
    marker_present = (_TAG_MARKER in text) if isinstance(text, str) else (b'"__type"' in text)
    if not marker_present:
        return value
    try:
        return _revive(value)
    except (ValueError, TypeError) as exc:
        raise CheckpointCorruptionError(f"malformed tagged value ({exc})", text, location=location) from None


# Values JSON holds as they are. The walks below pass them through inline: a function
# call per leaf was most of the cost of encoding a checkpoint.
_PLAIN = frozenset({str, int, bool, type(None)})
_STR_ONLY = frozenset({str})


def _prepare(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise _Unencodable(f"{value!r} has no JSON form", ValueError)
        return value
    if kind is dict:
        if TAG not in value and _STR_ONLY.issuperset(map(type, value)):
            if _PLAIN.issuperset(map(type, value.values())):
                return value  # nothing in it to change, so no copy (orjson writes it as it is)
            return {key: item if type(item) in _PLAIN else _prepare_item(item, key) for key, item in value.items()}
        return _tagged("Map", [[_prepare_item(key, "key"), _prepare_item(item, key)] for key, item in value.items()])
    if kind is list or kind is tuple:
        return [item if type(item) in _PLAIN else _prepare_item(item, index) for index, item in enumerate(value)]
    return _prepare_special(value)


def _prepare_item(item: Any, key: object) -> Any:
    try:
        return _prepare(item)
    except _Unencodable as exc:
        exc.path.append(f"[{key!r}]")
        raise


def _prepare_special(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _Unencodable("naive datetime; give it a timezone (e.g. tzinfo=UTC)", TypeError)
        return _tagged("Date", _format_datetime(value))
    if isinstance(value, (set, frozenset)):
        return _tagged("Set", [_prepare_item(member, "member") for member in value])
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _tagged("Buffer", base64.b64encode(bytes(value)).decode("ascii"))
    # Subclasses of the JSON types (IntEnum, str enums, OrderedDict...) keep their base value.
    for base in (bool, int, float, str):
        if isinstance(value, base):
            return _prepare(base(value))
    if isinstance(value, dict):
        return _prepare(dict(value))
    if isinstance(value, (list, tuple)):
        return _prepare(list(value))
    raise _Unencodable(f"cannot encode a value of type {type(value).__name__}", TypeError)


def _tagged(tag: str, value: Any) -> dict[str, Any]:
    return {TAG: tag, "value": value}


def _format_datetime(value: datetime) -> str:
    offset = value.utcoffset()
    text = value.isoformat(timespec="milliseconds" if value.microsecond % 1000 == 0 else "microseconds")
    return text[:-6] + "Z" if offset == timedelta(0) else text


def _parse_datetime(text: Any) -> datetime:
    if not isinstance(text, str):
        raise TypeError("Date value is not a string")
    # Python 3.10's fromisoformat does not read a trailing Z.
    parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if parsed.tzinfo is None:
        raise ValueError(f"Date value {text!r} has no timezone")
    return parsed


def _parse_buffer(text: Any) -> bytes:
    if not isinstance(text, str):
        raise TypeError("Buffer value is not a string")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"Buffer value is not base64: {exc}") from None


def _revive_set(members: Any) -> set[Any] | list[Any]:
    if not isinstance(members, list):
        raise TypeError("Set value is not a list")
    items = [_revive(member) for member in members]
    try:
        return set(items)
    except TypeError:
        return items


def _revive_map(pairs: Any) -> dict[Any, Any] | list[list[Any]]:
    if not isinstance(pairs, list) or not all(isinstance(pair, list) and len(pair) == 2 for pair in pairs):
        raise TypeError("Map value is not a list of [key, value] pairs")
    items = [[_revive(key), _revive(item)] for key, item in pairs]
    try:
        return dict(items)
    except TypeError:
        return items


_REVIVERS: dict[str, Callable[[Any], Any]] = {
    "Date": _parse_datetime,
    "Set": _revive_set,
    "Buffer": _parse_buffer,
    "Map": _revive_map,
}


def _revive(value: Any) -> Any:
    if type(value) is list:
        return [_revive(item) for item in value]
    if type(value) is not dict:
        return value
    tag = value.get(TAG)
    reviver = _REVIVERS.get(tag) if isinstance(tag, str) and len(value) == 2 and "value" in value else None
    if reviver is not None:
        return reviver(value["value"])
    return {key: _revive(item) for key, item in value.items()}


def _find_invalid_string(value: Any, path: str = "") -> str:
    """Name the first string that is not valid Unicode (a lone surrogate)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{path}: string is not valid Unicode (lone surrogate)"
        return ""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in children:
        if isinstance(key, str) and (found := _find_invalid_string(key, f"{path}[{key!r}]")):
            return found
        if found := _find_invalid_string(item, f"{path}[{key!r}]"):
            return found
    return ""
