"""Raw datums framed as one Avro object-container block: fastavro reads back exactly the
events encoded; framing is deterministic; values split by writer schema in first-seen
order; unframed values are set aside; older schema versions upcast to the current one."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from consumers.avro_block import (
    AVRO_MAGIC,
    DEFAULT_SYNC,
    bundled_schema_json,
    frame_block,
    header_schema_json,
    is_current,
    split_by_schema,
    top_level_fields,
    upcast,
)
from schemas.validation import EventValidator
from schemas.versions import bundled, current
from schemas.wire import Decoder, RegistryEncoder, SingleObjectEncoder, WireError
from tests.events import valid_event


def _datum(n: int, **overrides: Any) -> dict[str, Any]:
    event = valid_event(
        tenant_id=f"t{n % 3}",
        action="recipe.updated",
        resource={"type": "recipe", "id": f"r-{n}"},
        changes=[{"field": "name", "before": f"old {n}", "after": None}],
        details={"n": str(n)},
        **overrides,
    )
    return EventValidator().validate(event).to_avro()


def _read(block: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    reader = fastavro.reader(io.BytesIO(block))
    records = [record for record in reader if isinstance(record, dict)]
    return reader.metadata, records


def test_block_reads_back_as_the_encoded_events() -> None:
    datums = [_datum(n) for n in range(200)]
    values = [SingleObjectEncoder().encode(d) for d in datums]
    (group,) = split_by_schema(values).groups
    block = frame_block(bundled_schema_json(group.frame), group.datums)
    assert block.startswith(AVRO_MAGIC)
    assert block.endswith(DEFAULT_SYNC)
    metadata, records = _read(block)
    assert metadata["avro.codec"] == "null"
    assert json.loads(metadata["avro.schema"])["name"] == "AuditEvent"
    decoder = Decoder()
    assert records == [decoder.decode(v) for v in values]
    assert [str(r["event_id"]) for r in records] == [d["event_id"] for d in datums]
    assert records[7]["changes"] == [{"field": "name", "before": "old 7", "after": None}]


def test_framing_is_deterministic_and_depends_on_the_data() -> None:
    values = [SingleObjectEncoder().encode(_datum(n)) for n in range(10)]
    schema = bundled_schema_json(split_by_schema(values).groups[0].frame)
    once = frame_block(schema, split_by_schema(values).groups[0].datums)
    again = frame_block(schema, [bytes(d) for d in split_by_schema(values).groups[0].datums])
    assert once == again
    assert frame_block(schema, split_by_schema(values[1:]).groups[0].datums) != once
    other_sync = frame_block(schema, split_by_schema(values).groups[0].datums, sync=b"\x01" * 16)
    assert other_sync != once
    assert _read(other_sync)[1] == _read(once)[1]


def test_mixed_versions_split_by_schema_in_first_seen_order() -> None:
    v1, v2 = bundled()[0], bundled()[1]
    old, new = SingleObjectEncoder(v1), SingleObjectEncoder(v2)
    values = [
        new.encode(_datum(0)),
        old.encode(_datum(1)),
        new.encode(_datum(2)),
        old.encode(_datum(3)),
        new.encode(_datum(4)),
    ]
    split = split_by_schema(values)
    assert [g.schema_ref for g in split.groups] == [
        f"fp:{v2.fingerprint_hex}",
        f"fp:{v1.fingerprint_hex}",
    ]
    assert [g.positions for g in split.groups] == [[0, 2, 4], [1, 3]]
    assert split.datum_count == 5
    assert split.unframed == ()
    for group, version in zip(split.groups, (v2, v1), strict=True):
        _, records = _read(frame_block(bundled_schema_json(group.frame), group.datums))
        expected = [Decoder(reader=version).decode(values[p]) for p in group.positions]
        assert records == expected
    assert is_current(split.groups[0].frame)
    assert not is_current(split.groups[1].frame)
    v1_fields = top_level_fields(bundled_schema_json(split.groups[1].frame))
    assert "changes" not in v1_fields
    assert top_level_fields(bundled_schema_json(split.groups[0].frame))[-2:] == (
        "changes",
        "source",
    )


def test_unframed_values_are_set_aside_not_raised() -> None:
    good = SingleObjectEncoder().encode(_datum(0))
    split = split_by_schema([b"", good, b"{json}", b"\xc3\x01\x00", good])
    assert [g.positions for g in split.groups] == [[1, 4]]
    assert [index for index, _ in split.unframed] == [0, 2, 3]
    assert {error.reason for _, error in split.unframed} == {"not-framed"}


def test_empty_input_is_rejected() -> None:
    schema = bundled_schema_json(
        split_by_schema([SingleObjectEncoder().encode(_datum(0))]).groups[0].frame
    )
    with pytest.raises(ValueError, match="no datums"):
        frame_block(schema, [])
    with pytest.raises(ValueError, match="16 bytes"):
        frame_block(schema, [b"\x00"], sync=b"short")
    with pytest.raises(ValueError, match="empty"):
        frame_block(" ", [b"\x00"])
    assert split_by_schema([]).groups == ()


def test_registry_framed_values_frame_with_the_registry_schema() -> None:
    registry = SchemaRegistryClient.new_client({"url": "mock://avro-block-test"})
    encoder = RegistryEncoder(registry, "audit.events-value")
    values = [encoder.encode(_datum(n)) for n in range(20)]
    values.insert(5, SingleObjectEncoder().encode(_datum(99)))
    split = split_by_schema(values)
    assert [g.frame.kind for g in split.groups] == ["registry", "single-object"]
    registry_group = split.groups[0]
    assert registry_group.positions == [0, 1, 2, 3, 4, *range(6, 21)]
    with pytest.raises(WireError) as unknown:
        bundled_schema_json(registry_group.frame)
    assert unknown.value.reason == "unknown-schema"
    assert registry_group.frame.schema_id is not None
    schema_text = registry.get_schema(registry_group.frame.schema_id).schema_str
    assert schema_text
    block = frame_block(header_schema_json(json.loads(schema_text)), registry_group.datums)
    _, records = _read(block)
    assert [str(r["event_id"]) for r in records] == [
        str(Decoder(registry=registry).decode(values[p])["event_id"])
        for p in registry_group.positions
    ]


def test_header_schema_drops_docs_and_defaults_only() -> None:
    text = header_schema_json(current().schema)
    assert '"doc"' not in text
    assert '"default"' not in text
    assert '"logicalType":"uuid"' in text
    assert '"logicalType":"timestamp-millis"' in text
    parsed = fastavro.parse_schema(json.loads(text))
    assert fastavro.schema.to_parsing_canonical_form(parsed) == current().canonical


def test_upcast_rewrites_old_datums_in_the_current_schema() -> None:
    v1 = bundled()[0]
    values = [SingleObjectEncoder(v1).encode(_datum(n)) for n in range(5)]
    values[2] = values[2][:30]  # a truncated datum
    (group,) = split_by_schema(values).groups
    result = upcast(group)
    assert [position for position, _ in result.failed] == [2]
    assert result.failed[0][1].reason == "corrupt-datum"
    assert result.group is not None
    assert result.group.positions == [0, 1, 3, 4]
    assert is_current(result.group.frame)
    _, records = _read(frame_block(bundled_schema_json(result.group.frame), result.group.datums))
    assert [r["changes"] for r in records] == [[]] * 4
    assert [r["request"]["session_id"] for r in records] == [None] * 4
    assert [r["details"] for r in records] == [{"n": str(n)} for n in (0, 1, 3, 4)]
