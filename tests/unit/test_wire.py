"""Both wire framings round-trip; the compiled encoder writes what fastavro writes; bad
values are refused with a stable reason."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro import schemaless_writer
from fastavro.utils import generate_many
from hypothesis import given, settings

from schemas.avro_encoder import compile_encoder, write_long
from schemas.validation import EventValidator
from schemas.versions import bundled, current
from schemas.wire import (
    Decoder,
    RegistryEncoder,
    SingleObjectEncoder,
    WireError,
    parse_frame,
)
from tests.events import valid_event, valid_events


def _datum(**overrides: Any) -> dict[str, Any]:
    return EventValidator().validate(valid_event(**overrides)).to_avro()


def test_fingerprints_follow_the_avro_spec() -> None:
    # The spec's test vector: CRC-64-AVRO of the schema "null" is 7195948357588979594.
    from fastavro.schema import fingerprint  # noqa: PLC0415

    assert int.from_bytes(
        bytes.fromhex(fingerprint('"null"', "CRC-64-AVRO")), "little", signed=True
    ) == (7195948357588979594)


def test_single_object_encoding_layout_and_round_trip() -> None:
    datum = _datum()
    value = SingleObjectEncoder().encode(datum)
    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == current().fingerprint
    frame = parse_frame(value)
    assert frame.kind == "single-object"
    assert frame.schema_ref == f"fp:{current().fingerprint_hex}"
    decoded = Decoder().decode(value)
    assert str(decoded["event_id"]) == datum["event_id"]
    assert decoded["action"] == "recipe.stopped"


def test_registry_framing_round_trip() -> None:
    registry = SchemaRegistryClient.new_client({"url": "mock://wire-test"})
    encoder = RegistryEncoder(registry, "audit.events-value")
    value = encoder.encode(_datum())
    assert value[0] == 0
    schema_id = int.from_bytes(value[1:5], "big")
    assert encoder.schema_ref == f"sr:{schema_id}"
    assert Decoder(registry=registry).decode(value)["tenant_id"] == "acme"
    # The same schema registered again keeps its id.
    assert RegistryEncoder(registry, "audit.events-value").schema_ref == encoder.schema_ref


def test_registry_framing_without_a_registry_is_an_unknown_schema() -> None:
    registry = SchemaRegistryClient.new_client({"url": "mock://wire-test-2"})
    value = RegistryEncoder(registry, "audit.events-value").encode(_datum())
    with pytest.raises(WireError) as exc:
        Decoder().decode(value)
    assert exc.value.reason == "unknown-schema"
    assert "AUDITLOG_SCHEMA_REGISTRY_URL" in str(exc.value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "not-framed"),
        (b'{"tenant_id": "acme"}', "not-framed"),
        (b"\xc3\x01\x00\x00", "not-framed"),
        (b"\xc3\x01" + b"\x11" * 8 + b"\x02", "unknown-schema"),
        (b"\xc3\x01" + current().fingerprint + b"\xff\xff\xff", "corrupt-datum"),
    ],
)
def test_bad_values_are_refused_with_a_reason(value: bytes, reason: str) -> None:
    with pytest.raises(WireError) as exc:
        Decoder().decode(value)
    assert exc.value.reason == reason


def test_trailing_bytes_are_corrupt() -> None:
    value = SingleObjectEncoder().encode(_datum()) + b"\x00"
    with pytest.raises(WireError, match="trailing"):
        Decoder().decode(value)


def _fastavro_bytes(schema: Any, datum: Any) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, schema, datum)
    return out.getvalue()


@pytest.mark.parametrize("generated", [True, False], ids=["generated", "closures"])
@pytest.mark.parametrize("version", bundled(), ids=lambda v: f"v{v.version}")
def test_compiled_encoder_matches_fastavro_on_generated_datums(
    version: Any, generated: bool
) -> None:
    encode = compile_encoder(version.parsed, generated=generated)
    random.seed(7)
    for datum in generate_many(version.parsed, 300):
        assert encode(datum) == _fastavro_bytes(version.parsed, datum)


@settings(max_examples=150)
@given(valid_events())
def test_compiled_encoder_matches_fastavro_on_valid_events(data: dict[str, Any]) -> None:
    datum = EventValidator().validate(data).to_avro()
    expected = _fastavro_bytes(current().parsed, datum)
    assert compile_encoder(current().parsed)(datum) == expected
    assert compile_encoder(current().parsed, generated=False)(datum) == expected


@pytest.mark.parametrize("number", [0, 1, -1, 63, -64, 64, 2**31, -(2**63), 2**63 - 1])
def test_zigzag_varints_match_fastavro(number: int) -> None:
    buf = bytearray()
    write_long(buf, number)
    assert bytes(buf) == _fastavro_bytes("long", number)


def test_encoder_errors_name_the_field() -> None:
    datum = _datum()
    datum["actor"] = {**datum["actor"], "type": "robot"}
    with pytest.raises(ValueError, match=r"Actor\.type") as exc:
        SingleObjectEncoder().encode(datum)
    assert "robot" in str(exc.value)
    datum = _datum()
    datum["tenant_id"] = 42
    with pytest.raises(TypeError, match=r"AuditEvent\.tenant_id"):
        SingleObjectEncoder().encode(datum)
