"""The appender's fast reader gives exactly :func:`read_record`'s answers: leaves, and the
skip reasons of records that are no leaf."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from integrity.reading import Leaf, LeafReader, Skipped, read_record
from producers.generator import GeneratorConfig, generate
from schemas import headers as h
from schemas.validation import EventValidator
from schemas.versions import SchemaVersion, bundled
from schemas.wire import Decoder, SingleObjectEncoder


def _message(value: bytes, tenant: str | bytes, offset: int = 7) -> Message:
    key = tenant.encode() if isinstance(tenant, str) else tenant
    return Message(
        topic="audit.events",
        partition=0,
        offset=offset,
        key=key,
        value=value,
        headers=[(h.TENANT, key)],
    )


def _datum(**overrides: Any) -> dict[str, Any]:
    config = GeneratorConfig(events=1, tenants=1, seed=5, start=datetime.now(UTC) - timedelta(1))
    datum = EventValidator().validate(next(iter(generate(config)))).to_avro()
    datum.update(overrides)
    return datum


def _same(message: Message) -> Leaf | Skipped:
    decoder = Decoder()
    expected = read_record(message, decoder)
    assert LeafReader(decoder).read(message) == expected
    return expected


def test_generated_events_give_the_same_leaves() -> None:
    config = GeneratorConfig(events=300, tenants=5, seed=9, start=datetime.now(UTC) - timedelta(1))
    validator, encoder = EventValidator(), SingleObjectEncoder()
    for offset, event in enumerate(generate(config)):
        datum = validator.validate(event).to_avro()
        assert isinstance(_same(_message(encoder.encode(datum), datum["tenant_id"], offset)), Leaf)


def test_every_bundled_schema_version_gives_the_same_leaf() -> None:
    for version in bundled():
        encoder = SingleObjectEncoder(version)
        datum = _datum()
        fields = {f["name"] for f in version.schema["fields"]}
        datum = {k: v for k, v in datum.items() if k in fields}
        assert isinstance(_same(_message(encoder.encode(datum), datum["tenant_id"])), Leaf)


@pytest.mark.parametrize(
    "overrides",
    [
        {"event_id": "7C7E0EE6-6B14-44FE-923C-7F90FA095CB5"},  # upper case: a leaf
        {"event_id": "7c7e0ee66b1444fe923c7f90fa095cb5"},  # what uuid.UUID reads, no hyphens
        {"event_id": "not-a-uuid"},
        {"occurred_at": -1},
        {"occurred_at": 0},
        {"occurred_at": 253_402_300_799_999},
        {"occurred_at": 253_402_300_800_000},
        {"details": {"clé": "x", "\ue000": "a", "\U0001f600": "b"}},
        {"details": {"a": ""}, "source": ""},
        {"changes": [{"field": "f", "before": None, "after": None}]},
    ],
)
def test_edge_values_give_the_same_answer(overrides: dict[str, Any]) -> None:
    datum = _datum(**overrides)
    _same(_message(SingleObjectEncoder().encode(datum), datum["tenant_id"]))


def test_records_that_are_no_leaf_are_skipped_alike() -> None:
    datum = _datum()
    value = SingleObjectEncoder().encode(datum)
    assert _same(_message(value, "someone-else")).reason == "tenant-mismatch"  # type: ignore[union-attr]
    assert _same(_message(value[:-3], datum["tenant_id"])).reason == "corrupt-datum"  # type: ignore[union-attr]
    assert _same(_message(value + b"\x00", datum["tenant_id"])).reason == "corrupt-datum"  # type: ignore[union-attr]
    assert _same(_message(b"{}", datum["tenant_id"])).reason == "not-framed"  # type: ignore[union-attr]
    unknown = value[:2] + bytes(8) + value[10:]
    assert _same(_message(unknown, datum["tenant_id"])).reason == "unknown-schema"  # type: ignore[union-attr]


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    key=st.text(st.characters(exclude_categories=["Cs"]), max_size=6),
)
def test_any_text_gives_the_same_leaf(text: str, key: str) -> None:
    datum = _datum(
        details={key: text},
        changes=[{"field": text, "before": None, "after": text}],
        source=text,
    )
    datum["resource"] = {**datum["resource"], "name": text}
    _same(_message(SingleObjectEncoder().encode(datum), datum["tenant_id"]))


def test_version_list_is_not_empty() -> None:
    assert all(isinstance(v, SchemaVersion) for v in bundled())
