"""A record names one tenant: key, ``auditlog-tenant`` header and body agree, or it is
refused, by the batch check of the writer (fast path and per-record path alike) and by the
sinks' per-record check."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest
from confluent_kafka import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.batches import Batch
from consumers.inserter import BatchInserter
from schemas import headers as h
from schemas.tenancy import (
    _each,
    _zigzag_varint,
    body_tenant,
    disagreements,
    tenant_disagreement,
)
from schemas.validation import EventValidator
from schemas.wire import SingleObjectEncoder
from tests.events import valid_event

_VALIDATOR = EventValidator()
_ENCODER = SingleObjectEncoder()


def _value(tenant: str, event_id: str | None = None) -> bytes:
    event = valid_event(tenant_id=tenant, event_id=event_id or str(uuid.uuid4()))
    return _ENCODER.encode(_VALIDATOR.validate(event).to_avro())


Headers = list[tuple[str, str | bytes | None]]


def _headers(tenant: bytes | None) -> Headers:
    return [
        (h.TENANT, tenant),
        (h.ACTION, b"user.login"),
        (h.CATEGORY, b"user_access"),
        (h.EVENT_ID, b"e"),
        (h.SCHEMA, b"fp:00"),
    ]


def _record(
    offset: int,
    *,
    body: str = "acme",
    key: bytes | None = b"acme",
    headers: Headers | str | None = "same",
) -> Message:
    return Message(
        topic="audit.events",
        partition=0,
        offset=offset,
        key=key,
        value=_value(body),
        headers=_headers(key) if headers == "same" else cast(Headers | None, headers),
    )


def _datum(record: Message) -> bytes:
    value = record.value()
    assert isinstance(value, bytes)
    return value[10:]


def _check(*records: Message) -> list[tuple[int, str]]:
    return disagreements(records, [_datum(r) for r in records])


def test_records_that_agree_pass_on_the_fast_path() -> None:
    assert _check(*(_record(i) for i in range(50))) == []


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (_record(1, body="globex"), "the key names tenant 'acme', the body's tenant_id 'globex'"),
        (_record(1, key=b"globex"), "the key names tenant 'globex', the body's tenant_id 'acme'"),
        (
            _record(1, headers=_headers(b"globex")),
            "the key and body name tenant 'acme', the auditlog-tenant header 'globex'",
        ),
        (
            _record(1, headers=[*_headers(b"acme"), (h.TENANT, b"globex")]),
            "the auditlog-tenant header 'globex'",
        ),
        (
            _record(1, headers=[(h.ACTION, b"x"), (h.TENANT, b"globex")]),
            "the auditlog-tenant header 'globex'",
        ),
        (_record(1, headers=_headers(None)), "the auditlog-tenant header (none)"),
        (_record(1, key=None, headers=None), "the record has no key"),
        (_record(1, key=b"acm"), "the key names tenant 'acm'"),
        (_record(1, key=b"acme\n"), "the key names tenant 'acme\\n'"),
        (_record(1, key=b"a" * 5000), "the key names tenant 'aaaa"),
    ],
)
def test_a_record_naming_two_tenants_is_refused(record: Message, why: str) -> None:
    good = [_record(0), _record(2)]
    found = _check(good[0], record, good[1])
    assert [position for position, _ in found] == [1]
    assert why in found[0][1]


def test_records_without_headers_need_only_key_and_body_to_agree() -> None:
    assert _check(_record(0, headers=None), _record(1, headers=[])) == []
    assert [p for p, _ in _check(_record(0, headers=None, body="globex"))] == [0]


def test_an_event_id_of_another_length_is_read_on_the_slow_path() -> None:
    odd = Message(
        topic="t", partition=0, offset=0, key=b"acme", value=b"", headers=_headers(b"acme")
    )
    datum = bytearray(_value("acme")[10:])
    assert body_tenant(bytes(datum)) == b"acme"
    assert disagreements([odd], [b"\x02x" + bytes(datum[37:])]) == []
    assert [p for p, _ in disagreements([odd], [b"\x02x" + b"\x0aglobe"])] == [0]


def test_an_unreadable_body_is_left_to_the_decoder() -> None:
    """A datum too short to hold a tenant is corrupt: the insert refuses it and it is
    dead-lettered as corrupt-datum, not as a tenant mismatch."""
    assert body_tenant(b"\x48" + b"x" * 36 + b"\x7f") is None  # negative length
    assert body_tenant(b"\x48" + b"x" * 10) is None  # truncated
    assert disagreements([_record(0)], [b"\x48" + b"x" * 10]) == []


def test_the_sinks_check_reads_decoded_values() -> None:
    assert tenant_disagreement(b"acme", [b"acme"], "acme") is None
    assert tenant_disagreement(b"acme", [], "acme") is None
    assert tenant_disagreement(b"acme", [b"acme"], "globex") is not None


_TENANTS = st.sampled_from([b"acme", b"globex", b"acme\n", b"", b"x" * 70, None])
_HEADERS = st.one_of(
    st.none(),
    st.just("same"),
    st.lists(st.tuples(st.sampled_from([h.TENANT, h.ACTION]), _TENANTS), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["acme", "globex", "x" * 70]), _TENANTS, _HEADERS),
        min_size=1,
        max_size=8,
    )
)
def test_the_fast_path_finds_exactly_what_the_record_by_record_path_finds(
    specs: list[tuple[str, bytes | None, Any]],
) -> None:
    records = [
        _record(i, body=body, key=key, headers=headers)
        for i, (body, key, headers) in enumerate(specs)
    ]
    datums = [_datum(r) for r in records]
    assert disagreements(records, datums) == _each(records, datums, [r.key() for r in records])


def test_the_writer_dead_letters_strangers_and_inserts_the_rest() -> None:
    records = (_record(100), _record(101, body="globex"), _record(102, key=b"globex"))
    inserter = BatchInserter(client=None, table="audit.events")  # type: ignore[arg-type]
    prepared = inserter.prepare(Batch("audit.events", 0, records))
    assert [r.offset() for r in prepared.records] == [100]
    assert [(p.offset, p.reason) for p in prepared.poison] == [
        (101, "tenant-mismatch"),
        (102, "tenant-mismatch"),
    ]
    assert prepared.poison[0].key == b"acme"
    assert "globex" in prepared.poison[0].detail


def test_an_oversized_body_tenant_is_read_and_refused() -> None:
    """ClickHouse stores a 5,000-byte tenant_id (a LowCardinality String takes it), so the
    check must read it rather than leave it to the insert."""
    long_tenant = b"x" * 5000
    datum = b"\x48" + b"e" * 36 + _zigzag_varint(len(long_tenant)) + long_tenant + b"rest"
    assert body_tenant(datum) == long_tenant
    found = disagreements([_record(0)], [datum])
    assert [position for position, _ in found] == [0]
    assert "the body's tenant_id 'xxxx" in found[0][1]
