"""The JsonPlus serializer: tagged values, the original's wire format, and refusals."""

from __future__ import annotations

import enum
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from obsku_checkpoint_sqlite import CheckpointCorruptionError
from obsku_checkpoint_sqlite.jsonplus import MAX_DEPTH, dumps, loads, nesting_depth

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
    assert type(revived["tags"]) is set
    assert type(revived["raw"]) is bytes
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
