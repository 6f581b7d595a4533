"""``S3Sender`` against the stack's S3 server: deterministic keys under the record time,
one object per payload however often it is sent, the body and metadata as sent, and
failures mapped to permanent or retryable."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from deploy.stack import s3 as stack_s3
from deploy.stack.endpoints import StackEndpoints
from sinks.destinations.model import Destination, S3Target, SecretValue
from sinks.destinations.references import ReferencePolicy
from sinks.destinations.secrets import SecretBox
from sinks.encoding import assemble, event_json
from sinks.senders.base import Payload, PermanentDeliveryError, RetryableDeliveryError
from sinks.senders.factory import build_sender
from sinks.senders.http import PinnedHttpClient
from sinks.senders.s3 import S3Sender, make_s3_client, read_object, write_object
from sinks.senders.s3_confinement import S3Policy
from tests.unit.http_receiver import closed_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.stack

# The stack's S3 server listens on 127.0.0.1: local-development mode.
LOCAL = S3Policy(allow_local=True)
CREATED = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
RECORD_TIME = datetime(2025, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
TIMEOUT_S = 5.0


def target(endpoint: str, bucket: str) -> S3Target:
    return S3Target(
        bucket=bucket,
        endpoint_url=endpoint,
        access_key_id=SecretValue(ref="env:AUDITLOG_DEST_SECRET_S3_KEY"),
        secret_access_key=SecretValue(ref="env:AUDITLOG_DEST_SECRET_S3"),
    )


def destination(s3: S3Target) -> Destination:
    return Destination(
        id="s3-dest", tenant_id="acme", target=s3, created_at=CREATED, updated_at=CREATED
    )


def events(first: int, count: int) -> list[bytes]:
    return [
        event_json({"event_id": f"e-{n}", "occurred_at": RECORD_TIME, "action": "recipe.stopped"})
        for n in range(first, first + count)
    ]


def payload(first: int = 42, count: int = 3) -> Payload:
    encoded = assemble(events(first, count), "ndjson", "gzip")
    return Payload(
        tenant_id="acme",
        destination_id="s3-dest",
        topic="audit.events",
        partition=7,
        first_offset=first,
        last_offset=first + count - 1,
        record_count=count,
        first_event_at=RECORD_TIME,
        body=encoded.body,
        content_type=encoded.content_type,
        content_encoding=encoded.content_encoding,
        file_extension=encoded.file_extension,
    )


@pytest.fixture(scope="module")
def secrets(stack_endpoints: StackEndpoints) -> SecretBox:
    """The stack's development keys, as the worker's environment would hold them."""
    keys = stack_endpoints.s3_keys
    return SecretBox(
        [],
        {
            "AUDITLOG_DEST_SECRET_S3_KEY": keys.access_key,
            "AUDITLOG_DEST_SECRET_S3": keys.secret_key,
        },
        references=ReferencePolicy(),
    )


@pytest.fixture(scope="module")
def bucket(stack_endpoints: StackEndpoints) -> Iterator[str]:
    """A fresh bucket for this module, emptied and deleted afterwards."""
    name = f"test-s3-sender-{uuid.uuid4().hex[:12]}"
    stack_s3.ensure_bucket(stack_endpoints.s3_endpoint, stack_endpoints.s3_keys, name)
    yield name
    admin = stack_s3.client(stack_endpoints.s3_endpoint, stack_endpoints.s3_keys)
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            admin.delete_object(Bucket=name, Key=item["Key"])
    admin.delete_bucket(Bucket=name)
    admin.close()


@pytest.fixture
def sender(stack_endpoints: StackEndpoints, bucket: str, secrets: SecretBox) -> Iterator[S3Sender]:
    s3 = target(stack_endpoints.s3_endpoint, bucket)
    built = S3Sender(
        destination(s3),
        make_s3_client(s3, secrets, tenant_id="acme", policy=LOCAL, timeout_s=TIMEOUT_S),
    )
    yield built
    built.close()


def _client(stack_endpoints: StackEndpoints, bucket: str, secrets: SecretBox) -> S3Client:
    """A client of the test's bucket with the sender's own settings (the caller closes it)."""
    return make_s3_client(
        target(stack_endpoints.s3_endpoint, bucket),
        secrets,
        tenant_id="acme",
        policy=LOCAL,
        timeout_s=5,
    )


def test_the_object_key_is_deterministic_under_the_record_time(
    sender: S3Sender, bucket: str
) -> None:
    receipt = sender.send(payload())
    key = (
        "auditlog/acme/s3-dest/2025/03/04/05/"
        "acme_s3-dest_7_00000000000000000042-00000000000000000044.ndjson.gz"
    )
    assert receipt.detail == f"s3://{bucket}/{key}"


def test_the_same_payload_twice_is_one_object(
    stack_endpoints: StackEndpoints, sender: S3Sender, bucket: str, secrets: SecretBox
) -> None:
    first = sender.send(payload(first=1000))
    again = sender.send(payload(first=1000))
    assert first == again
    client = _client(stack_endpoints, bucket, secrets)
    try:
        listed = client.list_objects_v2(Bucket=bucket, Prefix="auditlog/acme/s3-dest/2025/")
        keys = [item["Key"] for item in listed.get("Contents", [])]
    finally:
        client.close()
    name = "_00000000000000001000-00000000000000001002.ndjson.gz"
    assert sum(key.endswith(name) for key in keys) == 1


def test_the_body_round_trips_with_its_headers_and_metadata(
    stack_endpoints: StackEndpoints, sender: S3Sender, bucket: str, secrets: SecretBox
) -> None:
    sent = payload(first=2000, count=5)
    key = sender.send(sent).detail.removeprefix(f"s3://{bucket}/")
    client = _client(stack_endpoints, bucket, secrets)
    try:
        stored = client.get_object(Bucket=bucket, Key=key)
        body = stored["Body"].read()
    finally:
        client.close()
    assert body == sent.body
    assert [json.loads(line)["event_id"] for line in gzip.decompress(body).splitlines()] == [
        f"e-{n}" for n in range(2000, 2005)
    ]
    assert stored["ContentType"] == "application/x-ndjson"
    assert stored["ContentEncoding"] == "gzip"
    assert stored["Metadata"] == {
        "auditlog-tenant": "acme",
        "auditlog-destination": "s3-dest",
        "auditlog-topic": "audit.events",
        "auditlog-partition": "7",
        "auditlog-first-offset": "2000",
        "auditlog-last-offset": "2004",
        "auditlog-record-count": "5",
    }


def test_challenge_helpers_write_and_read(
    stack_endpoints: StackEndpoints, bucket: str, secrets: SecretBox
) -> None:
    client = _client(stack_endpoints, bucket, secrets)
    try:
        write_object(client, bucket, "auditlog/challenge.txt", b"token-123", "text/plain")
        assert read_object(client, bucket, "auditlog/challenge.txt") == b"token-123"
        assert read_object(client, bucket, "auditlog/challenge.txt", max_bytes=5) == b"token"
        assert read_object(client, bucket, "auditlog/no-such-key.txt") is None
    finally:
        client.close()


def test_a_missing_bucket_is_permanent(stack_endpoints: StackEndpoints, secrets: SecretBox) -> None:
    missing = f"test-missing-{uuid.uuid4().hex[:12]}"
    s3 = target(stack_endpoints.s3_endpoint, missing)
    sender = S3Sender(
        destination(s3),
        make_s3_client(s3, secrets, tenant_id="acme", policy=LOCAL, timeout_s=TIMEOUT_S),
    )
    try:
        with pytest.raises(PermanentDeliveryError, match=r"NoSuchBucket.*does not exist"):
            sender.send(payload())
    finally:
        sender.close()


def test_an_unreachable_endpoint_is_retryable(secrets: SecretBox) -> None:
    sock = closed_port()
    try:
        s3 = target(f"http://127.0.0.1:{sock.getsockname()[1]}", "test-unreachable")
        sender = S3Sender(
            destination(s3),
            make_s3_client(s3, secrets, tenant_id="acme", policy=LOCAL, timeout_s=2.0),
        )
        try:
            with pytest.raises(RetryableDeliveryError, match="Could not connect"):
                sender.send(payload())
        finally:
            sender.close()
    finally:
        sock.close()


def test_the_factory_builds_a_working_s3_sender(
    stack_endpoints: StackEndpoints, bucket: str, secrets: SecretBox
) -> None:
    with PinnedHttpClient(allow_local=False, timeout_s=1.0) as http:
        sender = build_sender(
            destination(target(stack_endpoints.s3_endpoint, bucket)),
            secrets,
            http=http,
            s3_timeout_s=TIMEOUT_S,
            s3_policy=LOCAL,
        )
        try:
            assert sender.send(payload(first=3000)).detail.startswith(f"s3://{bucket}/auditlog/")
        finally:
            sender.close()
