"""The original package's JsonPlus format: plain JSON plus tagged values.

=============================  ======================================  =================
Python value                   stored as                               read back as
=============================  ======================================  =================
aware ``datetime``             ``{"__type": "Date", "value": ISO}``    aware ``datetime``
``JsDate`` (years <1, >9999)   ``{"__type": "Date", "value": ISO}``    ``JsDate``
``set`` / ``frozenset``        ``{"__type": "Set", "value": [...]}``   ``JsSet``
``bytes`` / ``bytearray``      ``{"__type": "Buffer", "value": b64}``  ``bytes``
``JsMap``; a ``dict`` with     ``{"__type": "Map", "value": [[k, v]]}`` ``JsMap``
non-str keys or a ``"__type"``
key
``tuple``                      a JSON array                            ``list``
=============================  ======================================  =================

Naive datetimes are refused (their instant is unknown), as are NaN and infinities
(JSON has no spelling for them), values that contain themselves, and documents nested
deeper than ``MAX_DEPTH`` arrays and objects (a stored document that deep is corrupt).
A user's own dict that has a ``"__type"`` key is written as a Map, so it cannot be
mistaken for a tag and comes back unchanged.
On reading, unknown tags stay plain dicts; a Set whose members Python cannot hash
comes back as a list, a Map whose keys it cannot hash as a list of ``[key, value]``.

What is read is written back as stored (``jsvalues``): a Map stays a Map whatever its
keys, a Set keeps its order, a Date that ``datetime`` cannot hold keeps its text.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any

import orjson
from pydantic_core import from_json

from .errors import CheckpointCorruptionError
from .jsvalues import JsDate, JsMap, JsSet, read_js_date

TAG = "__type"
_TAG_MARKER = '"__type"'

MAX_DEPTH = 512
"""How deeply arrays and objects may nest in a stored JSON document, tags included.

Writing refuses a value nested deeper (``ValueError``); reading reports a stored document
nested deeper as corrupt. The walks take one stack frame a level (the stdlib's parser and
encoder one recursion step), so a document at the limit needs about half of Python's
default recursion limit of 1000, whatever the data: no ``RecursionError``. Tags count as
the JSON they are: a Set adds two levels, a Map three.
"""


class _Unencodable(Exception):
    """Carries the path to a value that cannot be encoded, built up as the walk unwinds."""

    def __init__(self, problem: str, error_type: type[Exception], container: Any = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.error_type = error_type
        self.path: list[str] = []
        # For a value nested too deeply: the containers on its path, innermost first, to
        # tell a value that contains itself from one that is merely deep.
        self.containers: list[Any] | None = None if container is None else [container]

    def unwind(self, step: str, container: Any) -> None:
        self.path.append(step)
        if self.containers is not None:
            self.containers.append(container)

    def message(self, field: str) -> str:
        if self.containers is None:
            return field + "".join(reversed(self.path)) + ": " + self.problem
        path, containers = list(reversed(self.path)), list(reversed(self.containers))
        seen: set[int] = set()
        for index, container in enumerate(containers):
            if id(container) in seen:
                where = field + "".join(path[:index])
                return f"{where}: the value contains itself (a reference cycle), which JSON cannot hold"
            seen.add(id(container))
        return f"{field}: {self.problem}"


def _too_deep(container: Any) -> _Unencodable:
    return _Unencodable(
        f"nested deeper than {MAX_DEPTH} levels of arrays and objects (jsonplus.MAX_DEPTH)", ValueError, container
    )


def dumps(value: Any, *, field: str = "value") -> str:
    """Encode ``value`` as JsonPlus text.

    Raises:
        TypeError: a value of a type JSON cannot hold, or a naive datetime.
        ValueError: NaN or an infinity, a string that is not valid Unicode, a value that
            contains itself, or one nested deeper than ``MAX_DEPTH``.
        Each message names ``field`` and, but for a deep value, the path to the offending one.
    """
    try:
        ready = _prepare(value, 1)
    except _Unencodable as exc:
        raise exc.error_type(exc.message(field)) from None
    try:
        return orjson.dumps(ready).decode()
    except orjson.JSONEncodeError:
        pass
    # orjson refuses integers beyond 64 bits, lone surrogates and nesting beyond 254
    # levels; the stdlib writes any integer and any depth _prepare let through, and the
    # encode check below names the surrogate.
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
        CheckpointCorruptionError: malformed JSON, or nested deeper than ``MAX_DEPTH``.
    """
    try:
        # pydantic-core's parser, not orjson's: orjson reads integers beyond 64 bits as
        # floats, which would alter them. It costs a few microseconds more a payload.
        return from_json(text, allow_inf_nan=False)
    except ValueError as exc:
        problem = exc
    # pydantic-core stops at about 200 levels; the stdlib reads deeper, one stack frame
    # a level, so the depth is measured first, without recursion.
    if nesting_depth(text) > MAX_DEPTH:
        reason = f"nested deeper than {MAX_DEPTH} levels of arrays and objects (jsonplus.MAX_DEPTH)"
        raise CheckpointCorruptionError(reason, text, location=location)
    try:
        # pydantic-core (and orjson) refuse an escaped lone surrogate ("\ud83d"), which
        # JavaScript's JSON.stringify writes for a string cut inside a surrogate pair;
        # the stdlib reads it, as the original does.
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        raise CheckpointCorruptionError(f"invalid JSON ({problem})", text, location=location) from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# A JSON string, escapes included; what is left outside strings is structure and scalars.
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_STRINGS_BYTES = re.compile(_STRINGS.pattern.encode(), re.DOTALL)
_NOT_BRACKETS_BYTES = re.compile(_NOT_BRACKETS.pattern.encode())
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1, 91: 1, 123: 1, 93: -1, 125: -1}


def nesting_depth(text: str | bytes) -> int:
    """How deeply arrays and objects nest in JSON ``text``, measured without recursion.

    Text that is not JSON gets a number too (unclosed brackets count as open), so that
    no parser is handed it only to recurse too deep.
    """
    if isinstance(text, str):
        skeleton: str | bytes = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    else:
        skeleton = _NOT_BRACKETS_BYTES.sub(b"", _STRINGS_BYTES.sub(b"", text))
    return max(accumulate(map(_BRACKET_STEP.__getitem__, skeleton)), default=0)


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
# call per leaf was most of the cost of encoding a checkpoint. They loop rather than use
# comprehensions, which cost a stack frame a level of their own before Python 3.12.
_PLAIN = frozenset({str, int, bool, type(None)})
_STR_ONLY = frozenset({str})


def _prepare(value: Any, depth: int) -> Any:
    """``value`` ready for the JSON encoder; a container in it is at nesting level ``depth``."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise _Unencodable(f"{value!r} has no JSON form", ValueError)
        return value
    if kind is dict:
        if depth > MAX_DEPTH:
            raise _too_deep(value)
        if TAG not in value and _STR_ONLY.issuperset(map(type, value)):
            if _PLAIN.issuperset(map(type, value.values())):
                return value  # nothing in it to change, so no copy (orjson writes it as it is)
            prepared: dict[str, Any] = {}
            for key, item in value.items():
                if type(item) in _PLAIN:
                    prepared[key] = item
                    continue
                try:  # inline, not a helper: one stack frame a level
                    prepared[key] = _prepare(item, depth + 1)
                except _Unencodable as exc:
                    exc.unwind(f"[{key!r}]", value)
                    raise
            return prepared
        return _tagged("Map", _prepare_pairs(value, depth))
    if kind is list or kind is tuple:
        if depth > MAX_DEPTH:
            raise _too_deep(value)
        items: list[Any] = []
        for index, item in enumerate(value):
            if type(item) in _PLAIN:
                items.append(item)
                continue
            try:
                items.append(_prepare(item, depth + 1))
            except _Unencodable as exc:
                exc.unwind(f"[{index!r}]", value)
                raise
        return items
    return _prepare_special(value, depth)


def _prepare_item(item: Any, key: object, container: Any, depth: int) -> Any:
    try:
        return _prepare(item, depth)
    except _Unencodable as exc:
        exc.unwind(f"[{key!r}]", container)
        raise


def _prepare_pairs(value: dict[Any, Any], depth: int) -> list[list[Any]]:
    # {"__type": "Map", "value": [[key, value], ...]}: its arrays one and two levels down.
    if depth + 2 > MAX_DEPTH:
        raise _too_deep(value)
    pairs: list[list[Any]] = []
    for key, item in value.items():
        if type(key) in _PLAIN and type(item) in _PLAIN:
            pairs.append([key, item])  # inline, as in _prepare: most pairs hold nothing to change
        else:
            pairs.append([_prepare_item(key, "key", value, depth + 3), _prepare_item(item, key, value, depth + 3)])
    return pairs


def _prepare_special(value: Any, depth: int) -> Any:
    # Subclasses of the JSON types (IntEnum, str enums, OrderedDict...) keep their base value.
    for base in (bool, int, float, str):
        if isinstance(value, base):
            return _prepare(base(value), depth)
    if depth > MAX_DEPTH:  # everything else is written as an array or an object
        raise _too_deep(value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _Unencodable("naive datetime; give it a timezone (e.g. tzinfo=UTC)", TypeError)
        return _tagged("Date", _format_datetime(value))
    if isinstance(value, JsDate):
        return _tagged("Date", value.iso)
    if isinstance(value, (set, frozenset)):
        if depth + 1 > MAX_DEPTH:  # {"__type": "Set", "value": [...]}
            raise _too_deep(value)
        members: list[Any] = []
        for member in value.ordered() if isinstance(value, JsSet) else value:
            members.append(member if type(member) in _PLAIN else _prepare_item(member, "member", value, depth + 2))
        return _tagged("Set", members)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _tagged("Buffer", base64.b64encode(bytes(value)).decode("ascii"))
    if isinstance(value, JsMap):
        return _tagged("Map", _prepare_pairs(value, depth))
    if isinstance(value, dict):
        return _prepare(dict(value), depth)
    if isinstance(value, (list, tuple)):
        return _prepare(list(value), depth)
    raise _Unencodable(f"cannot encode a value of type {type(value).__name__}", TypeError)


def _tagged(tag: str, value: Any) -> dict[str, Any]:
    return {TAG: tag, "value": value}


def _format_datetime(value: datetime) -> str:
    offset = value.utcoffset()
    text = value.isoformat(timespec="milliseconds" if value.microsecond % 1000 == 0 else "microseconds")
    return text[:-6] + "Z" if offset == timedelta(0) else text


def _parse_date(text: Any) -> datetime | JsDate:
    if not isinstance(text, str):
        # JavaScript's toISOString throws for an invalid Date, so the original never
        # stores one; what JSON.stringify alone makes of it, null, is not a Date.
        raise TypeError("Date value is not a string")
    try:
        # Python 3.10's fromisoformat does not read a trailing Z.
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return read_js_date(text)  # six-digit years, year 0...; raises if JavaScript cannot read it
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


def _revive_set(members: Any) -> JsSet | list[Any]:
    if not isinstance(members, list):
        raise TypeError("Set value is not a list")
    items: list[Any] = _revive(members)
    try:
        return JsSet(items)
    except TypeError:
        return items


def _revive_map(pairs: Any) -> JsMap | list[list[Any]]:
    if not isinstance(pairs, list) or not all(isinstance(pair, list) and len(pair) == 2 for pair in pairs):
        raise TypeError("Map value is not a list of [key, value] pairs")
    items: list[list[Any]] = []
    for key, item in pairs:
        items.append([_revive(key), _revive(item)])
    try:
        return JsMap(items)
    except TypeError:
        return items


_REVIVERS: dict[str, Callable[[Any], Any]] = {
    "Date": _parse_date,
    "Set": _revive_set,
    "Buffer": _parse_buffer,
    "Map": _revive_map,
}


def _revive(value: Any) -> Any:
    # Loops, not comprehensions or helpers: one stack frame a level (see _prepare).
    if type(value) is list:
        items: list[Any] = []
        for item in value:
            items.append(_revive(item))
        return items
    if type(value) is not dict:
        return value
    tag = value.get(TAG)
    reviver = _REVIVERS.get(tag) if isinstance(tag, str) and len(value) == 2 and "value" in value else None
    if reviver is not None:
        return reviver(value["value"])
    revived: dict[str, Any] = {}
    for key, item in value.items():
        revived[key] = _revive(item)
    return revived


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
