"""A batch's shape: taken from a destination, announced in the progress record (old
records still read), and what a batch is encoded and keyed with."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest

from sinks.batch_shape import BatchShape
from sinks.delivery import payload_for
from sinks.destinations.model import (
    Destination,
    Filters,
    S3Target,
    SecretValue,
    WebhookTarget,
)
from sinks.lane import Lane
from sinks.progress import LaneProgress
from sinks.senders.s3_objects import object_key

AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
AT_MS = int(AT.timestamp() * 1000)
LOGINS = Filters(include_actions=frozenset({"user.login", "user.logout"}))


def _s3(**changes: object) -> Destination:
    destination = Destination(
        id="s3-test",
        tenant_id="acme",
        target=S3Target(bucket="audit-bucket", prefix_template="audit/{tenant_id}"),
        filters=LOGINS,
        created_at=AT,
        updated_at=AT,
        revision=4,
    )
    return destination.model_copy(update=changes)


def test_the_shape_of_a_destination() -> None:
    shape = BatchShape.of(_s3())
    assert shape == BatchShape(LOGINS, "ndjson", "gzip", "audit/{tenant_id}", 4)
    assert shape.revision == 4
    assert shape == BatchShape.of(_s3(revision=5)), "a revision alone changes no shape"
    assert shape != BatchShape.of(_s3(compression="none"))
    webhook = _s3(
        target=WebhookTarget(url="https://example.com/", signing_secret=SecretValue(ref="env:S"))
    )
    assert BatchShape.of(webhook).prefix_template is None


def test_the_progress_record_carries_the_announced_shape() -> None:
    shape = BatchShape.of(_s3())
    record = LaneProgress("s3-test", 3, 10, announced_first=10, announced_last=19)
    record = record.replace(announced_shape=shape)
    raw = record.to_json()
    stored = json.loads(raw)["announced_shape"]
    assert set(stored.pop("filters")["include_actions"]) == {"user.login", "user.logout"}
    assert stored == {
        "format": "ndjson",
        "compression": "gzip",
        "prefix_template": "audit/{tenant_id}",
        "revision": 4,
    }
    back = LaneProgress.from_json(raw)
    assert back.announced_shape == shape
    assert back.announced_shape is not None
    assert back.announced_shape.revision == 4
    assert back == record


def test_a_progress_record_of_an_older_release_still_reads() -> None:
    old = (
        b'{"destination_id":"wh-1","partition":2,"next_offset":7,"stream":"live",'
        b'"in_sync":true,"announced_first":7,"announced_last":9,"updated_at":null}'
    )
    record = LaneProgress.from_json(old)
    assert (record.announced_first, record.announced_last, record.announced_shape) == (7, 9, None)


@pytest.mark.parametrize(
    "shape",
    [
        {"format": "parquet", "compression": "gzip"},
        {"format": "ndjson"},
        {"format": "ndjson", "compression": "gzip", "filters": {"include_actions": 3}},
        "not a mapping",
    ],
)
def test_an_unreadable_shape_is_left_out_not_fatal(shape: object) -> None:
    raw = json.dumps(
        {"destination_id": "wh-1", "partition": 2, "next_offset": 7, "announced_shape": shape}
    ).encode()
    assert LaneProgress.from_json(raw).announced_shape is None


def test_a_batch_is_encoded_and_keyed_with_its_own_shape() -> None:
    """Formed under one shape, sent after the destination changed format, compression and
    prefix: the body and the S3 key are those of the batch's shape."""
    formed = _s3()
    lane = Lane(formed, 3, done_until=40, mode="live")
    lane.add(40, b'{"n":1}', AT_MS, 1, 0.0)
    lane.add(41, b'{"n":2}', AT_MS, 1, 0.0)
    lane.flush_open()
    batch = lane.next_batch(0.0)
    assert batch is not None
    now = _s3(
        format="json_array",
        compression="none",
        target=S3Target(bucket="audit-bucket", prefix_template="elsewhere"),
        revision=6,
    )
    payload = payload_for(now, "audit.events", 3, batch)
    assert gzip.decompress(payload.body) == b'{"n":1}\n{"n":2}\n'
    assert (payload.content_type, payload.content_encoding) == ("application/x-ndjson", "gzip")
    assert isinstance(now.target, S3Target)
    assert object_key(now.target, payload) == (
        "audit/acme/2026/11/25/10/acme_s3-test_3_00000000000000000040-00000000000000000041.ndjson.gz"
    )
