"""The S3 sender without a server: object keys, the request it signs and sends (answered
by a botocore ``before-send`` hook, so nothing leaves the process), assumed-role
credentials, and how S3's answers map to permanent or retryable errors."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.stub import Stubber

from sinks.destinations.model import Destination, S3Target, SecretValue
from sinks.destinations.references import ReferencePolicy
from sinks.destinations.secrets import SecretBox
from sinks.senders.base import Payload, PermanentDeliveryError, RetryableDeliveryError
from sinks.senders.s3 import S3Sender, delivery_error, make_s3_client
from sinks.senders.s3_confinement import S3Policy
from sinks.senders.s3_objects import object_key

SECRETS = SecretBox(
    [],
    {"AUDITLOG_DEST_SECRET_K": "AKIDLOCAL", "AUDITLOG_DEST_SECRET_S": "local-secret"},
    references=ReferencePolicy(),
)
NO_SECRETS = SecretBox([], {}, references=ReferencePolicy())
# No request leaves the process here (a before-send hook answers): the default policy.
POLICY = S3Policy()
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
ENDPOINT = "https://s3.test.invalid"


def payload(**changes: Any) -> Payload:
    base = Payload(
        tenant_id="acme",
        destination_id="s3-dest",
        topic="audit.events",
        partition=7,
        first_offset=42,
        last_offset=44,
        record_count=3,
        first_event_at=datetime(2025, 3, 4, 23, 59, 59, tzinfo=UTC),
        body=b'{"a":1}\n',
        content_type="application/x-ndjson",
        content_encoding=None,
        file_extension="ndjson",
    )
    return replace(base, **changes)


def keyed_target(**changes: Any) -> S3Target:
    return S3Target(
        bucket="audit-bucket",
        endpoint_url=ENDPOINT,
        access_key_id=SecretValue(ref="env:AUDITLOG_DEST_SECRET_K"),
        secret_access_key=SecretValue(ref="env:AUDITLOG_DEST_SECRET_S"),
        **changes,
    )


def destination(target: S3Target) -> Destination:
    return Destination(
        id="s3-dest", tenant_id="acme", target=target, created_at=NOW, updated_at=NOW
    )


# Keys


def test_the_key_is_prefix_record_hour_and_source_position() -> None:
    assert object_key(keyed_target(), payload()) == (
        "auditlog/acme/s3-dest/2025/03/04/23/acme_s3-dest_7_00000000000000000042-00000000000000000044.ndjson"
    )


def test_the_time_parts_are_utc_record_time() -> None:
    east = timezone(timedelta(hours=3))
    at = datetime(2025, 3, 5, 1, 30, tzinfo=east)  # 2025-03-04 22:30 UTC
    key = object_key(keyed_target(), payload(first_event_at=at))
    assert "/2025/03/04/22/" in key
    naive = object_key(keyed_target(), payload(first_event_at=datetime(2025, 1, 2, 3, 4)))
    assert "/2025/01/02/03/" in naive


def test_the_same_payload_always_has_the_same_key() -> None:
    assert object_key(keyed_target(), payload()) == object_key(keyed_target(), payload())
    assert object_key(keyed_target(), payload()) != object_key(
        keyed_target(), payload(first_offset=43)
    )


def test_batches_that_start_at_one_offset_and_end_at_another_have_their_own_objects() -> None:
    # A replay's last batch [42, 44] must not replace a live batch [42, 90] (and the events
    # it held beyond 44).
    live = object_key(keyed_target(), payload(last_offset=90, record_count=49))
    replayed = object_key(keyed_target(), payload())
    assert live != replayed
    assert live.endswith("_00000000000000000042-00000000000000000090.ndjson")


def test_a_replay_batch_has_an_object_of_its_own() -> None:
    # Even with exactly a live batch's range (the destination's filters may have changed
    # between the two), a replay's batch never replaces the live batch's object.
    live = object_key(keyed_target(), payload())
    replayed = object_key(keyed_target(), payload(replay_id="5b1c"))
    assert replayed == live.replace(".ndjson", "_replay-5b1c.ndjson")


@pytest.mark.parametrize(
    ("template", "prefix"),
    [
        ("exports/{tenant_id}", "exports/acme/"),
        ("{destination_id}/x", "s3-dest/x/"),
        ("", ""),
        ("audit/", "audit/"),
    ],
)
def test_prefix_templates(template: str, prefix: str) -> None:
    key = object_key(keyed_target(prefix_template=template), payload())
    name = "acme_s3-dest_7_00000000000000000042-00000000000000000044.ndjson"
    assert key == f"{prefix}2025/03/04/23/{name}"


@pytest.mark.parametrize(
    ("tenant", "segment"),
    [
        ("acme", "acme"),
        ("acme.io:eu@x-1", "acme.io:eu@x-1"),
        ("a/b", "a%2Fb"),
        ("../../etc", "%2E%2E%2F%2E%2E%2Fetc"),
        ("..", "%2E%2E"),
        ("_x", "_x"),
        ("a%2Fb", "a%252Fb"),
        ("Zoë", "Zo%C3%AB"),
    ],
)
def test_tenant_ids_cannot_leave_their_segment(tenant: str, segment: str) -> None:
    key = object_key(keyed_target(), payload(tenant_id=tenant))
    assert key.startswith(f"auditlog/{segment}/s3-dest/2025/")
    assert key.endswith(f"/{segment}_s3-dest_7_00000000000000000042-00000000000000000044.ndjson")
    assert ".." not in key.split("/")


# The request


@dataclass
class _Raw:
    body: bytes = b""

    def stream(self, **_kw: Any) -> Iterator[bytes]:
        yield self.body


@dataclass
class FakeS3:
    """Answers every request the client sends, after signing, and keeps them."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    sent: list[AWSPreparedRequest] = field(default_factory=list)

    def __call__(self, request: AWSPreparedRequest, **_kw: Any) -> AWSResponse:
        self.sent.append(request)
        headers: Any = self.headers  # botocore takes any mapping here
        return AWSResponse(request.url, self.status, headers, _Raw(self.body))


def header_dict(request: AWSPreparedRequest) -> dict[str, str]:
    """The request's headers, names lower-cased (botocore keeps some values as bytes)."""
    found: dict[str, str] = {}
    for name, value in request.headers.items():
        raw: Any = value
        found[name.lower()] = raw.decode() if isinstance(raw, bytes) else str(raw)
    return found


def attach(client: Any, fake: FakeS3) -> None:
    client.meta.events.register("before-send.s3", fake)


def test_one_put_with_md5_types_encryption_and_metadata() -> None:
    target = keyed_target(server_side_encryption="aws:kms", kms_key_id="alias/audit")
    client = make_s3_client(target, SECRETS, tenant_id="acme", policy=POLICY, timeout_s=1.0)
    fake = FakeS3()
    attach(client, fake)
    sender = S3Sender(destination(target), client)
    sent = payload(body=b"\x1f\x8bgz", content_encoding="gzip", file_extension="ndjson.gz")

    receipt = sender.send(sent)
    sender.close()

    assert receipt.detail.startswith("s3://audit-bucket/auditlog/acme/")
    [request] = fake.sent
    assert request.method == "PUT"
    assert request.url.startswith(f"{ENDPOINT}/audit-bucket/auditlog/acme/")  # path style
    headers = header_dict(request)
    md5 = base64.b64encode(hashlib.md5(sent.body).digest()).decode()
    assert headers["content-md5"] == md5
    assert headers["content-type"] == "application/x-ndjson"
    assert headers["content-encoding"] == "gzip"
    assert headers["x-amz-server-side-encryption"] == "aws:kms"
    assert headers["x-amz-server-side-encryption-aws-kms-key-id"] == "alias/audit"
    assert headers["x-amz-meta-auditlog-first-offset"] == "42"
    assert headers["x-amz-meta-auditlog-record-count"] == "3"
    assert "Credential=AKIDLOCAL/" in headers["authorization"]


def test_the_role_is_assumed_with_the_tenants_external_id_and_reassumed_near_expiry() -> None:
    sts = boto3.client(
        "sts", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    target = S3Target(
        bucket="audit-bucket",
        region="eu-west-1",
        endpoint_url=ENDPOINT,
        role_arn="arn:aws:iam::123456789012:role/auditlog-writer",
    )
    expected = {
        "RoleArn": "arn:aws:iam::123456789012:role/auditlog-writer",
        "RoleSessionName": "auditlog-sink",
        "DurationSeconds": 3600,
        "ExternalId": "auditlog:acme",  # the service's, for the destination's tenant
    }

    def issued(n: int, expires_in: timedelta) -> dict[str, Any]:
        return {
            "Credentials": {
                "AccessKeyId": f"ASIAROLEEXAMPLE{n}",
                "SecretAccessKey": f"role-secret-{n}",
                "SessionToken": f"role-token-{n}",
                "Expiration": datetime.now(UTC) + expires_in,
            }
        }

    with Stubber(sts) as stub:
        # The first credentials expire in 2 minutes: botocore assumes the role again
        # before using them a second time; the second ones last an hour.
        stub.add_response("assume_role", issued(1, timedelta(minutes=2)), expected)
        stub.add_response("assume_role", issued(2, timedelta(hours=1)), expected)
        client = make_s3_client(
            target, NO_SECRETS, tenant_id="acme", policy=POLICY, timeout_s=1.0, sts=sts
        )
        fake = FakeS3()
        attach(client, fake)
        sender = S3Sender(destination(target), client)
        for _ in range(3):
            sender.send(payload())
        stub.assert_no_pending_responses()
        sender.close()

    auth = [header_dict(r) for r in fake.sent]
    assert "Credential=ASIAROLEEXAMPLE1/" in auth[0]["authorization"]
    assert auth[0]["x-amz-security-token"] == "role-token-1"
    assert "Credential=ASIAROLEEXAMPLE2/" in auth[1]["authorization"]
    assert auth[1]["x-amz-security-token"] == "role-token-2"
    assert "Credential=ASIAROLEEXAMPLE2/" in auth[2]["authorization"]


def test_a_role_that_cannot_be_assumed_is_permanent() -> None:
    sts = boto3.client(
        "sts", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    target = S3Target(
        bucket="audit-bucket", endpoint_url=ENDPOINT, role_arn="arn:aws:iam::1:role/r"
    )
    with Stubber(sts) as stub:
        stub.add_client_error("assume_role", "AccessDenied", "not authorized", 403)
        client = make_s3_client(
            target, NO_SECRETS, tenant_id="acme", policy=POLICY, timeout_s=1.0, sts=sts
        )
        attach(client, FakeS3())
        with pytest.raises(PermanentDeliveryError, match="cannot assume the destination's role"):
            S3Sender(destination(target), client).send(payload())
        client.close()


def test_half_a_key_pair_or_an_unreadable_secret_is_permanent() -> None:
    half = S3Target(
        bucket="audit-bucket", access_key_id=SecretValue(ref="env:AUDITLOG_DEST_SECRET_K")
    )
    with pytest.raises(PermanentDeliveryError, match="both access_key_id and secret_access_key"):
        make_s3_client(half, SECRETS, tenant_id="acme", policy=POLICY, timeout_s=1.0)
    with pytest.raises(PermanentDeliveryError, match="access key id cannot be read"):
        make_s3_client(keyed_target(), NO_SECRETS, tenant_id="acme", policy=POLICY, timeout_s=1.0)


# What S3 answers mean


def _error(code: str, message: str = "details") -> bytes:
    return (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
        f"<Message>{message}</Message><RequestId>r1</RequestId></Error>"
    ).encode()


@pytest.mark.parametrize(
    ("status", "code", "kind", "words"),
    [
        (404, "NoSuchBucket", PermanentDeliveryError, "create it"),
        (403, "AccessDenied", PermanentDeliveryError, "s3:PutObject on arn:aws:s3:::audit-bucket"),
        (403, "InvalidAccessKeyId", PermanentDeliveryError, "check the destination's access_key"),
        (403, "SignatureDoesNotMatch", PermanentDeliveryError, "secret_access_key"),
        (400, "KMS.NotFoundException", PermanentDeliveryError, "kms_key_id"),
        (400, "KMS.DisabledException", PermanentDeliveryError, "the key is enabled"),
        (400, "AuthorizationHeaderMalformed", PermanentDeliveryError, "another region"),
        (400, "EntityTooLarge", PermanentDeliveryError, "batch max_bytes"),
        (400, "InvalidArgument", PermanentDeliveryError, "InvalidArgument"),
        (503, "SlowDown", RetryableDeliveryError, "SlowDown"),
        (500, "InternalError", RetryableDeliveryError, "InternalError"),
        (400, "RequestTimeout", RetryableDeliveryError, "RequestTimeout"),
        (400, "BadDigest", RetryableDeliveryError, "BadDigest"),
        (502, "", RetryableDeliveryError, "502"),
    ],
)
def test_s3_answers_map_to_permanent_or_retryable(
    status: int, code: str, kind: type[Exception], words: str
) -> None:
    client = make_s3_client(keyed_target(), SECRETS, tenant_id="acme", policy=POLICY, timeout_s=1.0)
    attach(client, FakeS3(status=status, body=_error(code) if code else b""))
    with pytest.raises(kind) as caught:
        S3Sender(destination(keyed_target()), client).send(payload())
    client.close()
    assert words in str(caught.value)
    assert "local-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (EndpointConnectionError(endpoint_url=ENDPOINT), RetryableDeliveryError),
        (ConnectionClosedError(endpoint_url=ENDPOINT), RetryableDeliveryError),
        (ReadTimeoutError(endpoint_url=ENDPOINT), RetryableDeliveryError),
        (NoCredentialsError(), PermanentDeliveryError),
    ],
)
def test_transport_failures(error: Exception, kind: type[Exception]) -> None:
    assert isinstance(error, Exception)
    mapped = delivery_error(error, "audit-bucket", "k")  # type: ignore[arg-type]
    assert isinstance(mapped, kind)
    assert "s3://audit-bucket/k" in str(mapped)


def test_destinations_with_the_same_connection_settings_share_one_client() -> None:
    from sinks.senders.factory import S3ClientCache  # noqa: PLC0415

    cache = S3ClientCache(POLICY)
    first = cache.client(keyed_target(), SECRETS, tenant_id="acme", timeout_s=1.0)
    again = cache.client(
        keyed_target(prefix_template="other/{tenant_id}"), SECRETS, tenant_id="acme", timeout_s=1.0
    )
    other = cache.client(keyed_target(region="eu-west-1"), SECRETS, tenant_id="acme", timeout_s=1.0)
    assert first is again, "the bucket prefix is not a connection setting"
    assert other is not first
    destination = Destination(
        id="s3-shared",
        tenant_id="acme",
        target=keyed_target(),
        created_at=NOW,
        updated_at=NOW,
    )
    S3Sender(destination, first, owns_client=False).close()
    assert cache.client(keyed_target(), SECRETS, tenant_id="acme", timeout_s=1.0) is first
    cache.close()
