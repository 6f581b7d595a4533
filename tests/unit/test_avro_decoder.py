"""The generated Avro reader reads what fastavro reads, and refuses what is not a datum."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.avro_decoder import AvroReadError, generate_reader, without_logical_types
from schemas.validation import EventValidator
from schemas.versions import current
from schemas.wire import SingleObjectEncoder
from tests.events import valid_event, valid_events

# Every type the generator handles, named types used again by name, unions either way round.
SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Everything",
    "namespace": "test",
    "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "small", "type": "int"},
        {"name": "big", "type": "long"},
        {"name": "ratio", "type": "float"},
        {"name": "precise", "type": "double"},
        {"name": "blob", "type": "bytes"},
        {"name": "text", "type": "string"},
        {"name": "nothing", "type": "null"},
        {
            "name": "colour",
            "type": {"type": "enum", "name": "Colour", "symbols": ["red", "green", "blue"]},
        },
        {"name": "again", "type": "test.Colour"},
        {"name": "digest", "type": {"type": "fixed", "name": "Digest", "size": 4}},
        {"name": "maybe", "type": ["null", "string"]},
        {"name": "maybe_after", "type": ["string", "null"]},
        {"name": "any", "type": ["null", "long", "string", "test.Digest"]},
        {
            "name": "point",
            "type": {
                "type": "record",
                "name": "Point",
                "fields": [
                    {"name": "x", "type": "long"},
                    {"name": "label", "type": ["null", "string"]},
                ],
            },
        },
        {"name": "points", "type": {"type": "array", "items": "test.Point"}},
        {"name": "tags", "type": {"type": "map", "values": "string"}},
        {"name": "nested", "type": {"type": "map", "values": {"type": "array", "items": "long"}}},
    ],
}
PARSED = parse_schema(SCHEMA)
EVENT_SCHEMA = parse_schema(without_logical_types(current().parsed))
READ = generate_reader(PARSED)

_longs = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_text = st.text(max_size=80)
_point = st.fixed_dictionaries({"x": _longs, "label": st.none() | _text})
_datums = st.fixed_dictionaries(
    {
        "flag": st.booleans(),
        "small": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "big": _longs,
        "ratio": st.floats(width=32, allow_nan=False),
        "precise": st.floats(allow_nan=False),
        "blob": st.binary(max_size=100),
        "text": _text,
        "nothing": st.none(),
        "colour": st.sampled_from(["red", "green", "blue"]),
        "again": st.sampled_from(["red", "green", "blue"]),
        "digest": st.binary(min_size=4, max_size=4),
        "maybe": st.none() | _text,
        "maybe_after": st.none() | _text,
        "any": st.none() | _longs | _text,
        "point": _point,
        "points": st.lists(_point, max_size=5),
        "tags": st.dictionaries(_text, _text, max_size=5),
        "nested": st.dictionaries(_text, st.lists(_longs, max_size=4), max_size=3),
    }
)


def _write(schema: Any, datum: Any) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, schema, datum)
    return out.getvalue()


def _fastavro(schema: Any, value: bytes) -> Any:
    return schemaless_reader(io.BytesIO(value), schema, None)


@settings(max_examples=300, deadline=None)
@given(_datums)
def test_reads_what_fastavro_reads(datum: dict[str, Any]) -> None:
    value = _write(PARSED, datum)
    read, end = READ(value, 0)
    assert end == len(value)
    assert read == _fastavro(PARSED, value)


def test_reads_at_an_offset_and_returns_where_the_datum_ended() -> None:
    schema = parse_schema(
        {"type": "record", "name": "R", "fields": [{"name": "s", "type": "string"}]}
    )
    value = b"HEAD" + _write(schema, {"s": "x" * 200}) + b"tail"  # a two-byte length
    datum, end = generate_reader(schema)(value, 4)
    assert datum == {"s": "x" * 200}
    assert value[end:] == b"tail"


def test_blocks_with_a_negative_count_carry_their_size() -> None:
    schema = parse_schema({"type": "array", "items": "long"})
    # Avro lets a block announce -count followed by its size in bytes: [1, 2] then end.
    assert generate_reader(schema)(b"\x03\x04\x02\x04\x00", 0) == ([1, 2], 5)


@settings(max_examples=200, deadline=None)
@given(valid_events())
def test_reads_audit_events_as_fastavro_does_with_logical_types_stripped(
    event: dict[str, Any],
) -> None:
    schema = EVENT_SCHEMA
    value = SingleObjectEncoder().encode(EventValidator().validate(event).to_avro())
    datum, end = generate_reader(schema)(value, 10)
    assert end == len(value)
    assert datum == schemaless_reader(io.BytesIO(value[10:]), schema, None)


def test_every_truncation_of_an_event_is_refused() -> None:
    encoder = SingleObjectEncoder()
    schema = EVENT_SCHEMA
    read = generate_reader(schema)
    value = encoder.encode(EventValidator().validate(valid_event()).to_avro())
    for cut in range(10, len(value)):
        with pytest.raises(AvroReadError):
            read(value[:cut], 10)


@pytest.mark.parametrize(
    ("schema", "value", "message"),
    [
        ("boolean", b"\x02", "KeyError"),
        ({"type": "enum", "name": "E", "symbols": ["a", "b"]}, b"\x04", "KeyError"),
        ({"type": "enum", "name": "E", "symbols": ["a", "b"]}, b"\x01", "KeyError"),  # -1
        (["null", "string"], b"\x04", "out of range"),
        (["null", "long", "string"], b"\x06", "out of range"),
        ("string", b"\x04\xff\xfe", "UnicodeDecodeError"),
        ("string", b"\x03", "negative length"),
        ("string", b"\x81\x01", "negative length"),  # a two-byte negative length
        ("bytes", b"\x80\x02ab", "announced"),  # 128 bytes announced, 2 there
        ("long", b"\xff" * 11, "longer than 10 bytes"),
        ("long", b"\xff\xff", "truncated"),
        ({"type": "array", "items": "long"}, b"\xfe\xff\xff\x07\x02", "items announced"),
        ({"type": "map", "values": "long"}, b"\x02\x02a", "IndexError"),
        ({"type": "fixed", "name": "F", "size": 8}, b"1234", "truncated"),
        ("double", b"\x00" * 7, "truncated"),
        ("float", b"\x00" * 3, "truncated"),
        ("string", b"", "IndexError"),
    ],
)
def test_refuses_bytes_that_are_not_a_datum(schema: Any, value: bytes, message: str) -> None:
    read = generate_reader(parse_schema(schema))
    with pytest.raises(AvroReadError, match=message):
        read(value, 0)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_datum_or_an_avro_read_error(value: bytes) -> None:
    try:
        _datum, end = READ(value, 0)
    except AvroReadError:
        return
    assert end <= len(value)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {
                "type": "record",
                "name": "Node",
                "fields": [{"name": "next", "type": ["null", "Node"]}],
            },
            "recursive",
        ),
        ({"type": "array", "items": "null"}, "may take no bytes"),
        ({"type": "enum", "name": "Big", "symbols": [f"s{i}" for i in range(65)]}, "too many"),
    ],
)
def test_schemas_it_does_not_generate_are_refused(schema: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_reader(parse_schema(schema))
