"""JavaScript values that Python's own types cannot stand for, as JsonPlus stores them.

``JsDate`` is a Date in years Python's ``datetime`` does not reach, ``JsMap`` a Map (a dict
that stays a Map when written back, whatever its keys), ``JsSet`` a Set (a set that keeps its
members' order). ``jsonplus`` reads stored values into them and writes them back as they were.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema, SchemaSerializer, core_schema
from pydantic_core.core_schema import SerializationInfo, SerializerFunctionWrapHandler

# JavaScript's Dates span 100,000,000 days either side of the epoch (ECMA-262 TimeClip).
JS_DATE_MAX_MS = 8_640_000_000_000_000
_MS_PER_DAY = 86_400_000
# The epoch milliseconds of 0001-01-01 and 10000-01-01: datetime holds the instants between.
_DATETIME_MIN_MS = -62_135_596_800_000
_DATETIME_END_MS = 253_402_300_800_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# The ISO form JavaScript writes (toISOString: "+010000-01-01T00:00:00.000Z"), with the
# offsets and fraction lengths its Date parser also reads. ASCII digits only.
_JS_ISO = re.compile(
    r"(?P<year>[+-]\d{6}|\d{4})-(?P<month>\d\d)-(?P<day>\d\d)"
    r"T(?P<hour>\d\d):(?P<minute>\d\d)(?::(?P<second>\d\d)(?:\.(?P<fraction>\d+))?)?"
    r"(?:Z|(?P<sign>[+-])(?P<offset_hours>\d\d):(?P<offset_minutes>\d\d))",
    re.ASCII,
)


# The calendar in integers, for any year (Howard Hinnant's days_from_civil and
# civil_from_days): datetime stops at years 1 and 9999.
def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a date of the proleptic Gregorian calendar."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """The (year, month, day) ``days`` after 1970-01-01: ``_days_from_civil`` reversed."""
    days += 719_468
    era = days // 146_097
    day_of_era = days - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + (3 if shifted_month < 10 else -9)
    return year_of_era + era * 400 + (month <= 2), month, day


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parse_js_iso(text: str) -> tuple[int, int, int]:
    """The year, epoch milliseconds and UTC offset in minutes of an ISO date-time, as
    JavaScript's Date reads it.

    Fraction digits past the millisecond are dropped, as JavaScript drops them.

    Raises:
        ValueError: not an ISO date-time with a timezone, a day or time that does not
            exist, or an instant outside JavaScript's range (where its Date is invalid).
    """
    match = _JS_ISO.fullmatch(text)
    if match is None:
        raise ValueError(f"Date value {text!r} is not an ISO date-time with a timezone")
    year_text = match["year"]
    if year_text == "-000000":
        raise ValueError(f"Date value {text!r}: year -000000 is not a year (ECMA-262 refuses it)")
    year, month, day = int(year_text), int(match["month"]), int(match["day"])
    hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"] or 0)
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        raise ValueError(f"Date value {text!r}: no such day")
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"Date value {text!r}: no such time")
    offset = 0
    if match["sign"] is not None:
        offset_hours, offset_minutes = int(match["offset_hours"]), int(match["offset_minutes"])
        if offset_hours > 23 or offset_minutes > 59:
            raise ValueError(f"Date value {text!r}: no such offset")
        offset = (offset_hours * 60 + offset_minutes) * (1 if match["sign"] == "+" else -1)
    millisecond = int((match["fraction"] or "").ljust(3, "0")[:3])
    epoch_ms = (
        _days_from_civil(year, month, day) * _MS_PER_DAY
        + ((hour * 60 + minute - offset) * 60 + second) * 1000
        + millisecond
    )
    if abs(epoch_ms) > JS_DATE_MAX_MS:
        raise ValueError(f"Date value {text!r} is outside JavaScript's range of dates (±8.64e15 ms)")
    return year, epoch_ms, offset


def read_js_date(text: str) -> datetime | JsDate:
    """A stored Date's ISO text as JavaScript reads it: a ``JsDate`` for a year outside
    1-9999, else an aware ``datetime`` in the text's offset (to the millisecond).

    For text ``datetime.fromisoformat`` does not read: six-digit years, year 0, and
    before Python 3.11 fraction lengths other than 3 and 6.

    Raises:
        ValueError: as ``parse_js_iso``.
    """
    year, epoch_ms, offset = parse_js_iso(text)
    if not 1 <= year <= 9999:
        return JsDate.from_iso(text)
    zone = timezone.utc if offset == 0 else timezone(timedelta(minutes=offset))
    try:
        return (_EPOCH + timedelta(milliseconds=epoch_ms)).astimezone(zone)
    except OverflowError:  # in years 1-9999 as written, not in UTC
        raise ValueError(f"Date value {text!r} is outside the years Python's datetime holds") from None


def _js_iso(epoch_ms: int) -> str:
    """``new Date(epoch_ms).toISOString()``: a year outside 0-9999 as a sign and six digits."""
    days, in_day = divmod(epoch_ms, _MS_PER_DAY)
    year, month, day = _civil_from_days(days)
    year_text = f"{year:04d}" if 0 <= year <= 9999 else f"{'+' if year > 0 else '-'}{abs(year):06d}"
    seconds, millisecond = divmod(in_day, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{year_text}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{millisecond:03d}Z"


@functools.total_ordering
class JsDate:
    """A JavaScript ``Date`` whose year Python's ``datetime`` cannot hold (before 1 or after 9999).

    JavaScript's Dates reach 8.64e15 milliseconds either side of the epoch (years -271821
    to 275760) and write a year outside 0-9999 with a sign and six digits:
    ``+010000-01-01T00:00:00.000Z``, ``-000001-01-01T00:00:00.000Z``. A stored Date like
    that reads as a ``JsDate``, which keeps the stored text, so writing it back stores the
    same text; every other Date reads as an aware ``datetime``.

    ``JsDate(epoch_ms)`` makes one from milliseconds since the Unix epoch, written as
    JavaScript's ``toISOString`` writes it; ``JsDate.from_iso(text)`` from ISO text, kept as
    given. Immutable and hashable; JsDates compare by instant, as aware datetimes do (two
    texts of one instant are equal). JSON mode of pydantic's ``model_dump`` writes the text.

    Raises:
        TypeError: ``epoch_ms`` is not an int.
        ValueError: an instant outside JavaScript's range, or one a ``datetime`` holds.
    """

    __slots__ = ("epoch_ms", "iso")
    epoch_ms: int
    """Milliseconds since 1970-01-01T00:00:00Z: JavaScript's ``date.getTime()``."""
    iso: str
    """The ISO text stored for it: as read, or as ``toISOString`` writes ``epoch_ms``."""

    def __init__(self, epoch_ms: int) -> None:
        if type(epoch_ms) is not int:
            raise TypeError(f"JsDate: expected epoch milliseconds as an int, got {type(epoch_ms).__name__}")
        if abs(epoch_ms) > JS_DATE_MAX_MS:
            raise ValueError(f"JsDate: {epoch_ms} ms is outside JavaScript's range of dates (±8.64e15 ms)")
        if _DATETIME_MIN_MS <= epoch_ms < _DATETIME_END_MS:
            raise ValueError(
                f"JsDate: {epoch_ms} ms falls in years 1-9999; use an aware datetime, e.g. "
                "datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=epoch_ms)"
            )
        self._set(epoch_ms, _js_iso(epoch_ms))

    @classmethod
    def from_iso(cls, text: str) -> JsDate:
        """A JsDate of ISO text as JavaScript writes it (or with an offset, or more or fewer
        fraction digits), its text kept as given.

        Raises:
            TypeError: ``text`` is not a str.
            ValueError: not an ISO date-time with a timezone, a day or time that does not
                exist, an instant outside JavaScript's range, or a year from 1 to 9999.
        """
        if not isinstance(text, str):
            raise TypeError(f"JsDate.from_iso: expected str, got {type(text).__name__}")
        year, epoch_ms, _ = parse_js_iso(text)
        if 1 <= year <= 9999:
            raise ValueError(f"JsDate.from_iso: {text!r} is in years 1-9999; use an aware datetime")
        date = cls.__new__(cls)
        date._set(epoch_ms, text)
        return date

    def _set(self, epoch_ms: int, iso: str) -> None:
        object.__setattr__(self, "epoch_ms", epoch_ms)
        object.__setattr__(self, "iso", iso)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"JsDate is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"JsDate is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JsDate):
            return NotImplemented
        return self.epoch_ms == other.epoch_ms

    def __lt__(self, other: JsDate) -> bool:
        if not isinstance(other, JsDate):
            return NotImplemented
        return self.epoch_ms < other.epoch_ms

    def __hash__(self) -> int:
        return hash((JsDate, self.epoch_ms))

    def __repr__(self) -> str:
        return f"JsDate.from_iso({self.iso!r})"

    def __str__(self) -> str:
        return self.iso

    def __reduce__(self) -> tuple[Callable[[str], JsDate], tuple[str]]:
        return (JsDate.from_iso, (self.iso,))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.is_instance_schema(cls, serialization=_JS_DATE_SERIALIZATION)


class JsMap(dict[Any, Any]):
    """A JavaScript ``Map`` read from stored JSON: a ``dict`` that is written back as a Map.

    Every stored Map reads as a ``JsMap``, so one with string keys, which a plain dict would
    write as a JSON object, stays a Map when saved again, as the TypeScript package keeps
    it. Wrap a dict in ``JsMap(...)`` to store it as a Map. It is a dict in every other way
    and equals a dict of the same items; a plain dict with string keys is written as a JSON
    object, as before. ``copy()`` keeps the type; other operations that build a new
    dict (``|``, ``dict(m)``) give a plain dict.
    """

    __slots__ = ()

    def copy(self) -> JsMap:
        """A shallow copy that is still a ``JsMap``."""
        return JsMap(self)

    def __repr__(self) -> str:
        return f"JsMap({dict.__repr__(self)})"


class JsSet(set[Any]):
    """A JavaScript ``Set`` read from stored JSON: a ``set`` that keeps its members' order.

    JavaScript's Sets keep insertion order, Python's do not. A ``JsSet`` remembers the order
    its members were read (or given to ``JsSet(...)``) in and is written back in it, so a
    Set saved again unchanged stores the same text. Members added later are written after
    those, in the set's own order. It is a set in every other way and equals a set of the
    same members; ``copy()`` keeps the type and order, while operations that build a new set
    (``|``, ``-``, ``set(s)``) give a plain set.
    """

    __slots__ = ("_order",)

    def __init__(self, members: Iterable[Any] = ()) -> None:
        order = list(members)
        super().__init__(order)
        # Repeats (1 and True are one member) come only from a caller: the first place counts.
        self._order = order if len(order) == len(self) else list(dict.fromkeys(order))

    def ordered(self) -> list[Any]:
        """The members: those it was made from in their order, then any added since."""
        order = self._order
        # Unchanged (the usual case): the order, which has no repeats, holds every member.
        if len(order) == len(self) and self.issuperset(order):
            return list(order)
        ordered = [member for member in order if member in self]
        if len(ordered) != len(self):
            kept = set(ordered)
            ordered.extend(member for member in self if member not in kept)
        return ordered

    def copy(self) -> JsSet:
        """A shallow copy that is still a ``JsSet``, in the same order."""
        return JsSet(self.ordered())

    def __repr__(self) -> str:
        return f"JsSet({self.ordered()!r})"

    def __reduce__(self) -> tuple[type[JsSet], tuple[list[Any]]]:
        return (JsSet, (self.ordered(),))


def _serialize_map(value: JsMap, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
    items = handler(value)
    return JsMap(items) if info.mode == "python" else items


def _serialize_set(value: JsSet, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
    members = handler(value.ordered())
    return JsSet(members) if info.mode == "python" else members


_JS_DATE_SERIALIZATION = core_schema.plain_serializer_function_ser_schema(lambda date: date.iso, when_used="json")


def _keep_type_in_pydantic_dumps() -> None:
    """Make pydantic's ``model_dump`` keep these types where a model holds them as ``Any``.

    A model's ``Any`` field (a node's ``output``, a tool call's ``input``) is dumped by
    type inference, which turns a dict or set subclass into a plain dict or set (so a Map
    would be written back as an object) and refuses unknown types in JSON mode. Inference
    serializes any object whose type has a ``__pydantic_serializer__`` with it, as it does
    pydantic's own dataclasses: that is the one hook, set here and tested
    (``tests/unit/test_jsonplus.py``) so that a pydantic release that drops it fails loudly.
    """
    anything = core_schema.any_schema()
    schemas: dict[type, CoreSchema] = {
        JsDate: core_schema.any_schema(serialization=_JS_DATE_SERIALIZATION),
        JsMap: core_schema.any_schema(
            serialization=core_schema.wrap_serializer_function_ser_schema(
                _serialize_map, schema=core_schema.dict_schema(anything, anything), info_arg=True
            )
        ),
        JsSet: core_schema.any_schema(
            serialization=core_schema.wrap_serializer_function_ser_schema(
                _serialize_set, schema=core_schema.list_schema(anything), info_arg=True
            )
        ),
    }
    for kind, schema in schemas.items():
        setattr(kind, "__pydantic_serializer__", SchemaSerializer(schema))  # noqa: B010


_keep_type_in_pydantic_dumps()
