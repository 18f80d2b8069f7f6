"""The JsonPlus serializer: tagged values, the original's wire format, and refusals."""

from __future__ import annotations

import copy
import enum
import json
import pickle
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel

from obsku_checkpoint_sqlite import CheckpointCorruptionError, CheckpointNodeResult, JsDate, JsMap, JsSet
from obsku_checkpoint_sqlite.jsonplus import MAX_DEPTH, dumps, loads, nesting_depth
from obsku_checkpoint_sqlite.jsvalues import _js_iso, parse_js_iso

UTC = timezone.utc


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**63),
        2**80 + 1,
        -(2**70) - 3,
        {"big": [12345678901234567890123, "12345678901234567890123"]},
        1.5,
        "",
        "naïve ☃ 𝄞 '; DROP TABLE sessions; --",
        "nul \x00 inside",
        [1, [2, [3]]],
        {"nested": {"list": [None, {"x": 1}]}},
        datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        {1, 2, 3},
        b"\x00\x01binary\xff",
        {1: "one", 2: "two"},
        {"__type": "Date", "value": "not a date, a user's dict"},
        {"__type": "mine"},
        {"outer": {"__type": "Set", "value": [1]}},
    ],
    ids=repr,
)
def test_round_trip(value: Any) -> None:
    assert loads(dumps(value)) == value


def test_round_trip_preserves_types() -> None:
    value = {"when": datetime(2024, 1, 1, tzinfo=UTC), "tags": {"a"}, "raw": b"x", "ids": {3: "c"}}
    revived = loads(dumps(value))
    assert type(revived["when"]) is datetime
    assert revived["when"].tzinfo is not None
    assert type(revived["tags"]) is JsSet
    assert isinstance(revived["tags"], set)
    assert type(revived["raw"]) is bytes
    assert type(revived["ids"]) is JsMap
    assert isinstance(revived["ids"], dict)
    assert list(revived["ids"]) == [3]


def test_writes_the_original_wire_format() -> None:
    encoded = json.loads(
        dumps(
            {
                "d": datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
                "s": {"x"},
                "b": b"hi",
                "m": {1: 2},
            }
        )
    )
    assert encoded == {
        "d": {"__type": "Date", "value": "2024-01-02T03:04:05.678Z"},
        "s": {"__type": "Set", "value": ["x"]},
        "b": {"__type": "Buffer", "value": "aGk="},
        "m": {"__type": "Map", "value": [[1, 2]]},
    }
    assert dumps({"a": [1, "b"]}) == '{"a":[1,"b"]}'


def test_reads_values_written_by_the_typescript_package() -> None:
    text = (
        '{"created":{"__type":"Date","value":"2024-06-01T12:00:00.000Z"},'
        '"seen":{"__type":"Set","value":["a","b"]},'
        '"blob":{"__type":"Buffer","value":"AAE="},'
        '"byName":{"__type":"Map","value":[["x",1],["y",{"__type":"Set","value":[2]}]]},'
        '"future":{"__type":"BigInt","value":"12"}}'
    )
    assert loads(text) == {
        "created": datetime(2024, 6, 1, 12, tzinfo=UTC),
        "seen": {"a", "b"},
        "blob": b"\x00\x01",
        "byName": {"x": 1, "y": {2}},
        "future": {"__type": "BigInt", "value": "12"},
    }


def test_unhashable_set_members_and_map_keys_come_back_as_lists() -> None:
    assert loads('{"__type":"Set","value":[[1],[2]]}') == [[1], [2]]
    assert loads('{"__type":"Map","value":[[[1],"a"]]}') == [[[1], "a"]]


class Color(enum.IntEnum):
    RED = 1


def test_subclasses_of_json_types_keep_their_base_value() -> None:
    assert loads(dumps({"color": Color.RED, "t": (1, 2)})) == {"color": 1, "t": [1, 2]}


@pytest.mark.parametrize(
    ("value", "error", "path"),
    [
        ({"a": [1, float("nan")]}, ValueError, r"payload\['a'\]\[1\]"),
        ({"a": float("inf")}, ValueError, r"payload\['a'\]"),
        ({"when": datetime(2024, 1, 1)}, TypeError, r"payload\['when'\].*naive"),
        ({"x": object()}, TypeError, r"payload\['x'\].*object"),
        ({"s": "\ud800"}, ValueError, r"payload\['s'\].*surrogate"),
    ],
)
def test_refuses_what_it_cannot_encode_naming_the_path(value: Any, error: type[Exception], path: str) -> None:
    with pytest.raises(error, match=path):
        dumps(value, field="payload")


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"__type":"Date","value":"yesterday"}',
        '{"__type":"Date","value":"2024-01-01T00:00:00"}',
        '{"__type":"Buffer","value":"***"}',
        '{"__type":"Set","value":"abc"}',
        '{"__type":"Map","value":[[1]]}',
        '{"__type":"Date","value":null}',  # what JSON.stringify makes of an invalid Date
        '{"__type":"Date","value":"+275760-09-13T00:00:00.001Z"}',  # past JavaScript's last Date
        '{"__type":"Date","value":"-000000-01-01T00:00:00.000Z"}',  # ECMA-262 refuses year -0
        '{"__type":"Date","value":"+010000-02-30T00:00:00.000Z"}',
        '{"__type":"Date","value":"+010000-01-01T00:00:00.000"}',  # no timezone
        '{"score":NaN}',
        "[Infinity]",
    ],
)
def test_malformed_stored_data_is_a_corruption_error_with_preview(text: str) -> None:
    with pytest.raises(CheckpointCorruptionError, match="row 7") as caught:
        loads(text, location="row 7")
    assert text[:20] in str(caught.value)


def test_reads_the_escaped_lone_surrogates_javascript_writes() -> None:
    # JSON.stringify("cut 😀".slice(0, 5)) in the original: the pair cut in half.
    assert loads('{"output":"cut \\ud83d","n":[1,2]}') == {"output": "cut \ud83d", "n": [1, 2]}
    with pytest.raises(CheckpointCorruptionError, match="invalid JSON"):
        loads('{"output":"cut \\ud83d')  # read by neither parser: the text is cut short


def test_preview_is_truncated() -> None:
    with pytest.raises(CheckpointCorruptionError) as caught:
        loads("[" + "1," * 5000)
    assert len(str(caught.value)) < 400


# --- JavaScript values that Python's own types do not hold ------------------------------

# Epoch milliseconds and what Node.js's new Date(ms).toISOString() writes for them.
JAVASCRIPT_DATES = [
    (253_402_300_800_000, "+010000-01-01T00:00:00.000Z"),
    (-62_198_755_200_000, "-000001-01-01T00:00:00.000Z"),
    (-62_198_755_199_999, "-000001-01-01T00:00:00.001Z"),
    (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
    (-62_135_596_800_001, "0000-12-31T23:59:59.999Z"),
    (8_640_000_000_000_000, "+275760-09-13T00:00:00.000Z"),
    (-8_640_000_000_000_000, "-271821-04-20T00:00:00.000Z"),
    (1_118_337_478_637_695, "+037408-09-14T19:37:17.695Z"),
    (6_684_068_126_678_467, "+213779-09-08T14:44:38.467Z"),
    (-1_234_567_890_123_456, "-037152-02-06T18:57:56.544Z"),
    (-4_000_000_000_000_000, "-124785-01-17T16:53:20.000Z"),
]
DATE_IDS = [text for _, text in JAVASCRIPT_DATES]


@pytest.mark.parametrize(("epoch_ms", "text"), JAVASCRIPT_DATES, ids=DATE_IDS)
def test_dates_outside_datetimes_years_read_as_js_dates_and_are_written_back_unchanged(
    epoch_ms: int, text: str
) -> None:
    stored = '{"until":{"__type":"Date","value":"' + text + '"},"n":1}'
    value = loads(stored)
    assert value == {"until": JsDate(epoch_ms), "n": 1}
    assert (value["until"].epoch_ms, value["until"].iso) == (epoch_ms, text)
    assert dumps(value) == stored


@pytest.mark.parametrize(("epoch_ms", "text"), JAVASCRIPT_DATES, ids=DATE_IDS)
def test_a_js_date_made_from_epoch_milliseconds_is_written_as_javascript_writes_it(epoch_ms: int, text: str) -> None:
    assert JsDate(epoch_ms).iso == text
    assert dumps([JsDate(epoch_ms)]) == '[{"__type":"Date","value":"' + text + '"}]'
    assert loads(dumps([JsDate(epoch_ms)])) == [JsDate(epoch_ms)]


@pytest.mark.parametrize(
    ("text", "epoch_ms"),
    [
        ("+010000-01-01T05:00:00.000+05:00", 253_402_300_800_000),
        ("+010000-01-01T00:00Z", 253_402_300_800_000),
        ("+010000-01-01T00:00:00.1234Z", 253_402_300_800_123),  # JavaScript drops digits past the ms
        ("-000001-12-31T23:59:59-01:30", -62_167_213_801_000),
    ],
)
def test_other_spellings_javascript_reads_keep_their_text(text: str, epoch_ms: int) -> None:
    stored = '{"__type":"Date","value":"' + text + '"}'
    value = loads(stored)
    assert (value.epoch_ms, value.iso) == (epoch_ms, text)
    assert dumps(value) == stored


def test_dates_in_datetimes_years_still_read_as_datetimes() -> None:
    assert type(loads('{"__type":"Date","value":"9999-12-31T23:59:59.999Z"}')) is datetime
    assert type(loads('{"__type":"Date","value":"0001-01-01T00:00:00.000Z"}')) is datetime
    # A year datetime holds spelled with six digits: a datetime, written back as JavaScript
    # writes that Date.
    six_digits = loads('{"__type":"Date","value":"+002024-01-01T00:00:00.000Z"}')
    assert six_digits == datetime(2024, 1, 1, tzinfo=UTC)
    assert dumps(six_digits) == '{"__type":"Date","value":"2024-01-01T00:00:00.000Z"}'
    in_its_offset = loads('{"__type":"Date","value":"+002024-01-01T05:30:00.5+05:30"}')
    assert in_its_offset == datetime(2024, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert in_its_offset.utcoffset() == timedelta(hours=5, minutes=30)


def test_the_calendar_agrees_with_datetime_where_datetime_reaches() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    rng = random.Random(16)
    first, end = -62_135_596_800_000, 253_402_300_800_000  # 0001-01-01, 10000-01-01
    for epoch_ms in [first, end - 1, 0, -1, *(rng.randrange(first, end) for _ in range(5000))]:
        moment = epoch + timedelta(milliseconds=epoch_ms)
        text = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert _js_iso(epoch_ms) == text
        assert parse_js_iso(text) == (moment.year, epoch_ms, 0)
    for _ in range(5000):  # and beyond it, reading undoes writing
        epoch_ms = rng.randrange(-8_640_000_000_000_000, 8_640_000_000_000_001)
        assert parse_js_iso(_js_iso(epoch_ms))[1] == epoch_ms


@pytest.mark.parametrize(
    ("argument", "error", "message"),
    [
        (0, ValueError, "years 1-9999; use an aware datetime"),
        (253_402_300_799_999, ValueError, "years 1-9999"),
        (-62_135_596_800_000, ValueError, "years 1-9999"),
        (8_640_000_000_000_001, ValueError, "outside JavaScript's range"),
        (-8_640_000_000_000_001, ValueError, "outside JavaScript's range"),
        (2.6e14, TypeError, "as an int, got float"),
        (True, TypeError, "as an int, got bool"),
    ],
)
def test_a_js_date_is_made_only_for_what_datetime_cannot_hold(
    argument: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        JsDate(argument)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-01-01T00:00:00.000Z", "years 1-9999"),
        ("-000000-01-01T00:00:00.000Z", "-000000 is not a year"),
        ("+010000-01-01", "not an ISO date-time with a timezone"),
        ("+010000-13-01T00:00:00.000Z", "no such day"),
        ("+010000-01-01T24:00:00.000Z", "no such time"),
        ("+275760-09-13T00:00:00.001Z", "outside JavaScript's range"),
        ("+０１００００-01-01T00:00:00.000Z", "not an ISO date-time"),  # digits, but not ASCII ones
    ],
)
def test_js_date_from_iso_refuses_what_is_not_a_javascript_date_beyond_datetime(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JsDate.from_iso(text)


def test_a_js_date_is_an_immutable_value_compared_by_instant() -> None:
    date = JsDate(253_402_300_800_000)
    same = JsDate.from_iso("+010000-01-01T05:00:00.000+05:00")
    later = JsDate(253_402_300_800_001)
    assert date == same
    assert hash(date) == hash(same)
    assert {date, same} == {date}
    assert date.iso != same.iso
    assert date < later
    assert later > same
    assert date <= same
    assert sorted([later, date]) == [date, later]
    assert date != 253_402_300_800_000
    with pytest.raises(TypeError):
        assert date < datetime(9999, 1, 1, tzinfo=UTC)  # type: ignore[operator]
    with pytest.raises(AttributeError, match="immutable"):
        date.epoch_ms = 0
    for clone in (pickle.loads(pickle.dumps(same)), copy.deepcopy(same), eval(repr(same), {"JsDate": JsDate})):
        assert (clone.epoch_ms, clone.iso) == (same.epoch_ms, same.iso)
    assert str(same) == "+010000-01-01T05:00:00.000+05:00"


def test_a_map_with_string_keys_is_written_back_as_a_map() -> None:
    stored = '{"ports":{"__type":"Map","value":[["http",80],["https",{"port":443}]]},"plain":{"a":1}}'
    value = loads(stored)
    assert value == {"ports": {"http": 80, "https": {"port": 443}}, "plain": {"a": 1}}
    assert type(value["ports"]) is JsMap
    assert type(value["plain"]) is dict
    assert dumps(value) == stored


def test_a_js_map_is_a_dict_written_as_a_map_and_plain_dicts_stay_objects() -> None:
    assert dumps({"m": JsMap(a=1), "d": {"a": 1}, "e": JsMap()}) == (
        '{"m":{"__type":"Map","value":[["a",1]]},"d":{"a":1},"e":{"__type":"Map","value":[]}}'
    )
    ports = JsMap(http=80)
    assert ports == {"http": 80}
    assert isinstance(ports, dict)
    assert repr(ports) == "JsMap({'http': 80})"
    for clone in (ports.copy(), pickle.loads(pickle.dumps(ports)), copy.deepcopy(ports)):
        assert type(clone) is JsMap
        assert clone == ports


def test_a_set_is_written_back_in_its_stored_order() -> None:
    stored = '{"__type":"Set","value":[3,1,2,"b","a"]}'  # a plain set would put 1, 2, 3 first
    value = loads(stored)
    assert value == {1, 2, 3, "a", "b"}
    assert type(value) is JsSet
    assert dumps(value) == stored


def test_js_set_members_added_later_follow_those_it_was_made_from() -> None:
    members = JsSet([3, 1, 2, 1])
    assert members.ordered() == [3, 1, 2]
    members.discard(1)
    members.add(7)
    assert members.ordered() == [3, 2, 7]
    assert dumps(members) == '{"__type":"Set","value":[3,2,7]}'
    assert repr(members) == "JsSet([3, 2, 7])"
    for clone in (members.copy(), pickle.loads(pickle.dumps(members)), copy.deepcopy(members)):
        assert type(clone) is JsSet
        assert clone.ordered() == [3, 2, 7]
    assert JsSet([1, True, 1.0]).ordered() == [1], "a set's equality: one member"


def test_pydantic_dumps_keep_the_javascript_values() -> None:
    # Inside a model's Any field, model_dump makes a dict subclass a plain dict (a Map
    # would be written back as an object) and refuses unknown types in JSON mode, unless
    # the type carries a __pydantic_serializer__: the hook jsvalues sets, checked here.
    until = JsDate(253_402_300_800_000)
    result = CheckpointNodeResult(status="completed", output={"m": JsMap(a=1), "s": JsSet([3, 1, 2]), "d": until})
    output = result.model_dump()["output"]
    assert type(output["m"]) is JsMap
    assert type(output["s"]) is JsSet
    assert output["d"] is until
    assert dumps(output) == (
        '{"m":{"__type":"Map","value":[["a",1]]},"s":{"__type":"Set","value":[3,1,2]},'
        '"d":{"__type":"Date","value":"+010000-01-01T00:00:00.000Z"}}'
    )
    assert result.model_dump(mode="json")["output"] == {"m": {"a": 1}, "s": [3, 1, 2], "d": until.iso}

    class Event(BaseModel):
        at: JsDate

    assert Event(at=until).model_dump_json() == '{"at":"+010000-01-01T00:00:00.000Z"}'
    with pytest.raises(ValueError, match="JsDate"):
        Event(at="+010000-01-01T00:00:00.000Z")


# --- nesting: a documented limit, never a RecursionError --------------------------------


def nested_lists(levels: int, leaf: Any = "leaf") -> Any:
    value: Any = leaf
    for _ in range(levels):
        value = [value]
    return value


def nested_dicts(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value


def nested_maps(maps: int) -> Any:
    value: Any = "leaf"
    for _ in range(maps):
        value = {1: value}  # each a Map tag: an object, its array of pairs, a pair
    return value


def nested_sets(levels: int) -> Any:
    value: Any = [{"leaf"}]  # a Set tag: an object holding an array
    for _ in range(levels):
        value = [value]
    return value


def on_a_deep_stack(frames: int, call: Any) -> Any:
    """``call()`` from ``frames`` frames further down the stack: the store may be called deep."""
    return call() if frames == 0 else on_a_deep_stack(frames - 1, call)


@pytest.mark.parametrize(
    ("build", "largest"),
    [
        (nested_lists, MAX_DEPTH),
        (nested_dicts, MAX_DEPTH),
        (nested_maps, (MAX_DEPTH - 2) // 3),  # the innermost Map's pairs end at level 3n
        (nested_sets, MAX_DEPTH - 3),  # a list, the Set's object, its array
    ],
    ids=["lists", "dicts", "maps", "sets"],
)
def test_values_nest_up_to_max_depth_and_one_level_more_is_refused(build: Any, largest: int) -> None:
    value = build(largest)
    text = on_a_deep_stack(300, lambda: dumps(value, field="metadata"))
    assert nesting_depth(text) <= MAX_DEPTH
    assert on_a_deep_stack(300, lambda: loads(text)) == value
    with pytest.raises(ValueError, match=rf"^metadata: nested deeper than {MAX_DEPTH} levels"):
        on_a_deep_stack(300, lambda: dumps(build(largest + 1), field="metadata"))
    with pytest.raises(ValueError, match=rf"^metadata: nested deeper than {MAX_DEPTH} levels"):
        dumps(build(50_000), field="metadata")


def test_a_value_that_contains_itself_is_refused_naming_where() -> None:
    looped: dict[str, Any] = {"ok": 1}
    looped["children"] = [{"parent": looped}]
    with pytest.raises(ValueError, match=r"^node_results\['a'\]\['children'\]\[0\]\['parent'\]: .*contains itself"):
        dumps({"a": looped}, field="node_results")
    itself: list[Any] = []
    itself.append(itself)
    with pytest.raises(ValueError, match=r"^pending_nodes\[0\]: .*contains itself"):
        dumps(itself, field="pending_nodes")


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,
        "[" * 5000,  # not even JSON: measured, not handed to a parser that recurses
        '{"a":' * 600 + "1" + "}" * 600,
        b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
    ],
    ids=["arrays", "unclosed", "objects", "bytes"],
)
def test_stored_json_nested_deeper_than_max_depth_is_corrupt(text: str | bytes) -> None:
    with pytest.raises(CheckpointCorruptionError, match=rf"in row 7: nested deeper than {MAX_DEPTH} levels"):
        on_a_deep_stack(300, lambda: loads(text, location="row 7"))


def test_stored_json_up_to_max_depth_is_read_whichever_parser_reads_it() -> None:
    # pydantic-core's parser stops at about 200 levels, the stdlib's reads the rest; the
    # revival of tags walks them all. Brackets inside a string do not nest.
    for levels in (150, 300, MAX_DEPTH):
        text = "[" * levels + '"]]{{"' + "]" * levels
        assert nesting_depth(text) == levels
        assert on_a_deep_stack(300, lambda text=text: loads(text)) == nested_lists(levels, "]]{{")
        tagged = '{"__type":"Set","value":[' + text[2:-2] + "]}"  # two levels for the tag
        revived = on_a_deep_stack(300, lambda tagged=tagged: loads(tagged))
        assert revived == [nested_lists(levels - 2, "]]{{")], "unhashable members come back as a list"
