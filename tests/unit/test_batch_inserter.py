"""Preparing a batch: raw datums of the current schema as they are, the rest upcast or
set aside as poison, offsets kept in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consumers.batches import Batch
from consumers.inserter import BatchInserter
from schemas.validation import EventValidator
from schemas.versions import bundled
from schemas.wire import Decoder, SingleObjectEncoder
from tests.events import valid_event

_DATUM = EventValidator().validate(valid_event()).to_avro()
_CURRENT = SingleObjectEncoder().encode(_DATUM)


@dataclass(frozen=True)
class _Message:
    at: int
    payload: bytes | None

    def offset(self) -> int:
        return self.at

    def value(self) -> bytes | None:
        return self.payload

    def key(self) -> bytes:
        return b"acme"

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)


def _prepare(*values: bytes | None) -> Any:
    records = tuple(_Message(100 + i, v) for i, v in enumerate(values))
    inserter = BatchInserter(client=None, table="audit.events")  # type: ignore[arg-type]
    return inserter.prepare(Batch("audit.events", 2, records))


def _older_value() -> bytes:
    oldest = bundled()[0]
    fields = {f["name"] for f in oldest.schema["fields"]}
    datum = {k: v for k, v in _DATUM.items() if k in fields}
    datum["request"] = {k: v for k, v in _DATUM["request"].items() if k != "session_id"}
    return SingleObjectEncoder(oldest).encode(datum)


def test_current_values_go_in_raw_without_their_header() -> None:
    prepared = _prepare(_CURRENT, _CURRENT)
    assert prepared.datums == [_CURRENT[10:], _CURRENT[10:]]
    assert [r.offset() for r in prepared.records] == [100, 101]
    assert prepared.poison == []


def test_older_versions_are_upcast_and_bad_values_set_aside_in_offset_order() -> None:
    unknown = b"\xc3\x01" + b"\x00" * 8 + _CURRENT[10:]
    prepared = _prepare(_CURRENT, None, _older_value(), b"plain text", unknown, _CURRENT)
    assert [r.offset() for r in prepared.records] == [100, 102, 105]
    assert prepared.datums[0] == prepared.datums[2] == _CURRENT[10:]
    upcast = Decoder().decode(_CURRENT[:10] + prepared.datums[1])
    assert upcast["request"]["session_id"] is None
    assert [(p.offset, p.reason) for p in prepared.poison] == [
        (101, "not-framed"),
        (103, "not-framed"),
        (104, "unknown-schema"),
    ]


@dataclass(frozen=True)
class _Marked(_Message):
    marks: tuple[tuple[str, bytes], ...] = ()

    def headers(self) -> list[tuple[str, bytes]]:  # type: ignore[override]
        return list(self.marks)


def test_integrity_records_are_neither_rows_nor_poison() -> None:
    copy = (("auditlog-tenant", b"acme"), ("auditlog-record", b"integrity"))
    records = (
        _Marked(100, _CURRENT, (("auditlog-tenant", b"acme"),)),
        _Marked(101, b'{"type":"auditlog.leaves"}', copy),
        _Marked(102, _CURRENT, copy),  # an event mislabelled: not stored either
        _Marked(103, _CURRENT, (("auditlog-tenant", b"acme"),)),
        _Marked(104, b"junk", (("auditlog-record", b"other"),)),  # not ours: an ordinary record
    )
    inserter = BatchInserter(client=None, table="audit.events")  # type: ignore[arg-type]
    prepared = inserter.prepare(Batch("audit.events", 2, records))
    assert [r.offset() for r in prepared.records] == [100, 103]
    assert [p.offset for p in prepared.poison] == [104]


def test_a_batch_of_integrity_records_only_prepares_nothing() -> None:
    copy = (("auditlog-record", b"integrity"),)
    records = (_Marked(7, b"{}", copy), _Marked(8, b"{}", copy))
    inserter = BatchInserter(client=None, table="audit.events")  # type: ignore[arg-type]
    prepared = inserter.prepare(Batch("audit.events", 2, records))
    assert (prepared.records, prepared.datums, prepared.poison) == ([], [], [])
