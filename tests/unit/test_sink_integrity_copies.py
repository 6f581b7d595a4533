"""The account's integrity records through the sinks: routed to every lane whatever its
filters (never transcoded; malformed ones nowhere), marked in their batch, sent as their
own items to webhooks and Splunk (sourcetype auditlog:integrity), and to S3 as a companion
object written before the events object."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from integrity.copy_records import CheckpointRecord, encode
from schemas.wire import Decoder
from sinks.delivery import payload_for
from sinks.destinations.model import (
    BatchLimits,
    Destination,
    Filters,
    S3Target,
    SecretValue,
    SplunkHecTarget,
    WebhookTarget,
)
from sinks.lane import Lane
from sinks.metrics import sink_metrics
from sinks.routing import Router
from sinks.senders.s3 import S3Sender
from sinks.senders.splunk_hec import hec_body, payload_events
from sinks.stats import SinkStats

AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
AT_MS = int(AT.timestamp() * 1000)
COPY = encode(CheckpointRecord("acme", "auditlog/acme\n1\nAAAA\ntime 1\n\n\u2014 k AAAA\n"))
COPY_HEADERS = [("auditlog-tenant", b"acme"), ("auditlog-record", b"integrity")]


def _destination(target: Any = None, **changes: Any) -> Destination:
    return Destination(
        id="d-1",
        tenant_id="acme",
        target=target
        or WebhookTarget(url="https://example.com/", signing_secret=SecretValue(ref="env:S")),
        created_at=AT,
        updated_at=AT,
        **changes,
    )


def _lane(destination: Destination | None = None) -> Lane:
    return Lane(destination or _destination(), 3, done_until=0, mode="live")


@dataclass
class _Message:
    at: int
    payload: bytes
    marks: list[tuple[str, bytes]] = field(default_factory=lambda: list(COPY_HEADERS))
    key_bytes: bytes = b"acme"
    time_ms: int = AT_MS + 1

    def offset(self) -> int:
        return self.at

    def partition(self) -> int:
        return 3

    def value(self) -> bytes:
        return self.payload

    def key(self) -> bytes:
        return self.key_bytes

    def headers(self) -> list[tuple[str, bytes]]:
        return self.marks

    def timestamp(self) -> tuple[int, int]:
        return (1, self.time_ms)


def _router() -> Router:
    return Router(None, Decoder(), sink_metrics(CollectorRegistry()), SinkStats())  # type: ignore[arg-type]


def test_an_integrity_record_goes_to_every_lane_filters_or_not_as_its_value() -> None:
    plain = _lane()
    filtered = _lane(_destination(filters=Filters(include_categories=frozenset({"auth"}))))
    _router().offer(_Message(5, COPY), 5, [plain, filtered], 0.0)  # type: ignore[arg-type]
    for lane in (plain, filtered):
        lane.flush_open()
        [batch] = lane.ready
        assert (batch.lines, batch.copies, batch.first_offset) == ([COPY], [0], 5)


def test_an_integrity_record_older_than_the_destination_is_skipped() -> None:
    lane = _lane()
    _router().offer(_Message(5, COPY, time_ms=AT_MS - 1), 5, [lane], 0.0)  # type: ignore[arg-type]
    assert lane.idle
    assert lane.done_until == 6


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (b"not json", b"acme"),
        (COPY + b"\n", b"acme"),  # would add a line to an NDJSON body
        (COPY, b"globex"),  # another account's record under this key
    ],
)
def test_a_malformed_integrity_record_goes_nowhere(value: bytes, key: bytes) -> None:
    lane = _lane()
    message = _Message(5, value, key_bytes=key)
    _router().offer(message, 5, [lane], 0.0)  # type: ignore[arg-type]
    assert lane.idle
    assert lane.done_until == 6


def test_copy_positions_survive_a_batch_closing_on_the_copy() -> None:
    lane = _lane(_destination(batch=BatchLimits(max_records=2)))
    lane.add(1, b'{"e":1}', AT_MS, AT_MS, 0.0)
    lane.add_copy(2, COPY, AT_MS, 0.0)  # closes the batch at max_records
    lane.add_copy(3, COPY, AT_MS, 0.0)
    lane.add(4, b'{"e":2}', AT_MS, AT_MS, 0.0)
    first, second = lane.ready
    assert (first.lines, first.copies) == ([b'{"e":1}', COPY], [1])
    assert (second.lines, second.copies) == ([COPY, b'{"e":2}'], [0])


def _batch(destination: Destination, lines: list[tuple[bytes, bool]]) -> Any:
    lane = _lane(destination)
    for offset, (line, copy) in enumerate(lines, 10):
        if copy:
            lane.add_copy(offset, line, AT_MS, 0.0)
        else:
            lane.add(offset, line, AT_MS, AT_MS, 0.0)
    lane.flush_open()
    return lane.ready[0]


EVENT = b'{"event_id":"e","occurred_at":"2026-11-25T10:00:00.000Z"}'


def test_webhooks_get_the_copy_records_in_stream_order_among_the_events() -> None:
    destination = _destination(format="ndjson", compression="none")
    batch = _batch(destination, [(EVENT, False), (COPY, True), (EVENT, False)])
    payload = payload_for(destination, "audit.events", 3, batch)
    assert payload.body == b"\n".join([EVENT, COPY, EVENT]) + b"\n"
    assert (payload.copy_positions, payload.copy_body, payload.record_count) == ((1,), None, 3)


def test_splunk_sends_copy_records_with_their_own_sourcetype() -> None:
    target = SplunkHecTarget(url="https://splunk.example/", token=SecretValue(ref="env:T"))
    destination = _destination(target, format="ndjson", compression="gzip")
    batch = _batch(destination, [(EVENT, False), (COPY, True)])
    payload = payload_for(destination, "audit.events", 3, batch)
    body = hec_body(target, payload_events(payload), frozenset(payload.copy_positions))
    event, copy = (json.loads(line) for line in body.splitlines())
    assert event["sourcetype"] == "auditlog:event"
    assert "time" in event
    assert copy["sourcetype"] == "auditlog:integrity"
    assert "time" not in copy
    assert json.dumps(copy["event"], separators=(",", ":")).encode() == COPY


class _FakeS3:
    def __init__(self) -> None:
        self.puts: list[dict[str, Any]] = []

    def put_object(self, **request: Any) -> None:
        self.puts.append(request)


def _s3() -> Destination:
    return _destination(S3Target(bucket="audit-bucket", endpoint_url="https://s3.test.invalid"))


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_s3_writes_the_companion_object_first_then_the_events_object(compression: str) -> None:
    destination = _s3().model_copy(update={"compression": compression})
    batch = _batch(destination, [(EVENT, False), (COPY, True), (EVENT, False), (COPY, True)])
    payload = payload_for(destination, "audit.events", 3, batch)
    assert payload.record_count == 2
    client = _FakeS3()
    S3Sender(destination, client).send(payload)  # type: ignore[arg-type]
    companion, events = client.puts
    gz = compression == "gzip"
    assert events["Key"].endswith(".ndjson.gz" if gz else ".ndjson")
    assert companion["Key"] == events["Key"].rsplit(".ndjson", 1)[0] + (
        ".integrity.ndjson.gz" if gz else ".integrity.ndjson"
    )
    unpack = gzip.decompress if gz else bytes
    assert unpack(companion["Body"]) == COPY + b"\n" + COPY + b"\n"
    assert unpack(events["Body"]) == EVENT + b"\n" + EVENT + b"\n"


def test_s3_a_batch_of_copy_records_only_writes_the_companion_object_alone() -> None:
    destination = _s3()
    payload = payload_for(destination, "audit.events", 3, _batch(destination, [(COPY, True)]))
    client = _FakeS3()
    receipt = S3Sender(destination, client).send(payload)  # type: ignore[arg-type]
    [companion] = client.puts
    assert companion["Key"].endswith(
        "_00000000000000000010-00000000000000000010.integrity.ndjson.gz"
    )
    assert receipt.detail.endswith(".integrity.ndjson.gz")


def test_s3_a_batch_without_copy_records_is_one_object_as_before() -> None:
    destination = _s3()
    payload = payload_for(destination, "audit.events", 3, _batch(destination, [(EVENT, False)]))
    client = _FakeS3()
    S3Sender(destination, client).send(payload)  # type: ignore[arg-type]
    [events] = client.puts
    assert events["Key"].endswith(".ndjson.gz")
