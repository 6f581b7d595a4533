"""Partner destinations' batches: split per account for S3, each account's objects under its
own prefix inside the partner's, named deterministically."""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import orjson
import pytest

from sinks.batch_shape import BatchShape
from sinks.delivery import account_parts, payload_for
from sinks.destinations.auto_pause import AutoPauser
from sinks.destinations.model import Destination, S3Target, SecretValue, WebhookTarget
from sinks.destinations.store import DestinationStore
from sinks.lane import Batch
from sinks.senders.base import RetryableDeliveryError
from sinks.senders.s3 import S3Sender, make_s3_client
from sinks.senders.s3_objects import metadata, object_key
from tests.unit.test_s3_sender import POLICY, SECRETS, FakeS3, attach, keyed_target

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
TARGET = S3Target(
    bucket="partner-bucket",
    access_key_id=SecretValue(ref="env:AUDITLOG_DEST_SECRET_K"),
    secret_access_key=SecretValue(ref="env:AUDITLOG_DEST_SECRET_S"),
)


def _line(account: str, at: str, n: int) -> bytes:
    return orjson.dumps({"event_id": f"e-{n}", "tenant_id": account, "occurred_at": at})


def _destination(target: S3Target | WebhookTarget = TARGET) -> Destination:
    return Destination.model_validate(
        {"id": "s3-p1", "partner_id": "p1", "target": target, "created_at": NOW, "updated_at": NOW}
    )


def _batch(destination: Destination, lines: list[bytes]) -> Batch:
    return Batch(
        first_offset=10,
        last_offset=10 + len(lines) - 1,
        lines=lines,
        first_event_at=NOW,
        size_bytes=sum(map(len, lines)),
        shape=BatchShape.of(destination),
    )


LINES = [
    _line("a2", "2026-11-25T08:00:00.000Z", 0),
    _line("a1", "2026-11-25T07:59:59.999Z", 1),
    _line("a2", "2026-11-25T09:00:00.000Z", 2),
]


def test_a_batch_splits_per_account_keeping_each_accounts_order() -> None:
    destination = _destination()
    batch = _batch(destination, LINES)
    parts = account_parts(batch, batch.lines, [])
    assert [p.account_id for p in parts] == ["a1", "a2"]
    assert [p.record_count for p in parts] == [1, 2]
    a2 = gzip.decompress(parts[1].body).splitlines()
    assert a2 == [LINES[0], LINES[2]]
    assert parts[0].first_event_at == datetime(2026, 11, 25, 7, 59, 59, 999000, tzinfo=UTC)
    assert account_parts(batch, batch.lines, []) == parts  # deterministic
    assert all(p.copy_body is None for p in parts)


def _copy(account: str, first: int) -> bytes:
    return orjson.dumps({"type": "auditlog.leaves", "tenant_id": account, "first": first})


def test_each_accounts_integrity_records_go_to_its_own_companion_object() -> None:
    destination = _destination()
    lines = [LINES[0], _copy("a2", 0), LINES[1], _copy("a3", 5), _copy("a2", 1)]
    batch = _batch(destination, lines)
    batch.copies.extend([1, 3, 4])
    payload = payload_for(destination, "audit.events", 3, batch)
    parts = {p.account_id: p for p in payload.parts}
    assert sorted(parts) == ["a1", "a2", "a3"]
    assert gzip.decompress(parts["a2"].body).splitlines() == [LINES[0]]
    assert gzip.decompress(parts["a2"].copy_body or b"").splitlines() == [lines[1], lines[4]]
    assert parts["a1"].copy_body is None
    # an account with integrity records only: no events, its companion object alone
    assert parts["a3"].record_count == 0
    assert gzip.decompress(parts["a3"].copy_body or b"").splitlines() == [lines[3]]
    assert parts["a3"].first_event_at == NOW


def test_each_accounts_object_sits_under_its_own_prefix_in_the_partners() -> None:
    destination = _destination()
    payload = payload_for(destination, "audit.events", 3, _batch(destination, LINES))
    assert payload.tenant_id == "p1"
    keys = [object_key(TARGET, payload.part(part)) for part in payload.parts]
    assert keys == [
        "auditlog/p1/s3-p1/a1/2026/11/25/07/a1_s3-p1_3_00000000000000000010-00000000000000000012"
        ".ndjson.gz",
        "auditlog/p1/s3-p1/a2/2026/11/25/08/a2_s3-p1_3_00000000000000000010-00000000000000000012"
        ".ndjson.gz",
    ]
    meta = metadata(payload.part(payload.parts[0]))
    assert meta["auditlog-tenant"] == "a1"
    assert meta["auditlog-partner"] == "p1"
    assert meta["auditlog-record-count"] == "1"


@pytest.mark.parametrize("account", ["../x", "a/b", "..", "%2e"])
def test_a_hostile_account_id_stays_in_its_segment(account: str) -> None:
    destination = _destination()
    lines = [_line(account, "2026-11-25T08:00:00.000Z", 0)]
    payload = payload_for(destination, "audit.events", 0, _batch(destination, lines))
    [part] = payload.parts
    key = object_key(TARGET, payload.part(part))
    segments = key.split("/")
    assert segments[:3] == ["auditlog", "p1", "s3-p1"]
    assert ".." not in segments
    assert "/" not in segments[3]
    assert len(segments) == 9


def test_webhook_payloads_of_a_partner_carry_every_event_with_its_account() -> None:
    hook = WebhookTarget(url="https://8.8.8.8/in", signing_secret=SecretValue(ref="env:X"))
    destination = _destination(hook)
    payload = payload_for(destination, "audit.events", 0, _batch(destination, LINES))
    assert payload.parts == ()
    events = [orjson.loads(line) for line in gzip.decompress(payload.body).splitlines()]
    assert [e["tenant_id"] for e in events] == ["a2", "a1", "a2"]


class _Store:
    def __init__(self, destination: Destination) -> None:
        self.destination = destination

    def get(self, _destination_id: str) -> Destination:
        return self.destination

    def put(self, destination: Destination, *, expected_revision: int) -> None:
        self.destination = destination


def test_an_automatic_pause_of_a_partner_destination_tells_the_partner_and_its_accounts() -> None:
    hook = WebhookTarget(url="https://8.8.8.8/in", signing_secret=SecretValue(ref="env:X"))
    destination = Destination.model_validate(
        {
            "id": "hook-p1",
            "partner_id": "p1",
            "target": hook,
            "accounts": {"exclude_accounts": ["a3"]},
            "created_at": NOW,
            "updated_at": NOW,
        }
    )
    store = _Store(destination)
    published: list[Mapping[str, Any]] = []

    def publish(event: Mapping[str, Any]) -> str:
        published.append(event)
        return "event-id"

    pause = AutoPauser(
        cast(DestinationStore, store), publish, lambda partner: frozenset({"a2", "a1", "a3"})
    )
    pause(destination, "HTTP 500", NOW)
    assert store.destination.state == "paused"
    assert [e["tenant_id"] for e in published] == ["p1", "a1", "a2"]
    assert published[1]["details"]["partner_account_id"] == "p1"


def test_the_s3_sender_writes_every_accounts_object_of_a_partner_batch() -> None:
    target = keyed_target()
    client = make_s3_client(target, SECRETS, tenant_id="p1", policy=POLICY, timeout_s=1.0)
    fake = FakeS3()
    attach(client, fake)
    destination = _destination(target)
    sender = S3Sender(destination, client)
    payload = payload_for(destination, "audit.events", 3, _batch(destination, LINES))
    receipt = sender.send(payload)
    sender.close()
    paths = sorted(request.url.split("/audit-bucket/", 1)[1] for request in fake.sent)
    assert [path.split("/")[3] for path in paths] == ["a1", "a2"]
    assert receipt.detail.startswith("2 objects in s3://audit-bucket")


def test_the_s3_sender_writes_each_accounts_companion_object_beside_its_events() -> None:
    target = keyed_target()
    client = make_s3_client(target, SECRETS, tenant_id="p1", policy=POLICY, timeout_s=1.0)
    fake = FakeS3()
    attach(client, fake)
    destination = _destination(target)
    sender = S3Sender(destination, client)
    batch = _batch(destination, [LINES[0], _copy("a2", 0), LINES[1], _copy("a3", 1)])
    batch.copies.extend([1, 3])
    sender.send(payload_for(destination, "audit.events", 3, batch))
    sender.close()
    paths = sorted(request.url.split("/audit-bucket/", 1)[1] for request in fake.sent)
    names = [(path.split("/")[3], path.rsplit("/", 1)[1].split(".", 1)[1]) for path in paths]
    assert names == [
        ("a1", "ndjson.gz"),
        ("a2", "integrity.ndjson.gz"),
        ("a2", "ndjson.gz"),
        ("a3", "integrity.ndjson.gz"),  # integrity records only: no events object
    ]


def test_one_failed_object_fails_the_batch() -> None:
    target = keyed_target()
    client = make_s3_client(target, SECRETS, tenant_id="p1", policy=POLICY, timeout_s=1.0)
    fake = FakeS3(status=503, body=b"<Error><Code>SlowDown</Code></Error>")
    attach(client, fake)
    destination = _destination(target)
    sender = S3Sender(destination, client)
    payload = payload_for(destination, "audit.events", 3, _batch(destination, LINES))
    with pytest.raises(RetryableDeliveryError):
        sender.send(payload)
    sender.close()
