"""The S3 ownership challenge: the object written, the digest kept, the token checked."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from sinks.destinations import ownership
from sinks.destinations.model import Destination, S3Target, SecretValue, WebhookTarget

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def _s3(**target: Any) -> Destination:
    return Destination(
        id="s3-archive",
        tenant_id="acme",
        target=S3Target(bucket="customer-bucket", **target),
        state="pending_verification",
        created_at=NOW,
        updated_at=NOW,
    )


class Bucket:
    """What the client was asked to write (the requests are stubbed: no server); the
    stack tests write the challenge to a real one."""

    def __init__(self, client: S3Client, stub: Stubber) -> None:
        self.client, self.stub = client, stub
        self.writes: list[dict[str, Any]] = []
        client.meta.events.register("before-parameter-build.s3.PutObject", self._record)

    def _record(self, params: dict[str, Any], **_kwargs: Any) -> None:
        self.writes.append(dict(params))


@pytest.fixture
def s3() -> Iterator[Bucket]:
    client: S3Client = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stub:
        yield Bucket(client, stub)
        stub.assert_no_pending_responses()


def test_the_challenge_key_is_under_the_rendered_prefix() -> None:
    assert (
        ownership.challenge_key(_s3())
        == "auditlog/acme/s3-archive/auditlog-ownership-challenge-s3-archive.txt"
    )
    assert (
        ownership.challenge_key(_s3(prefix_template=""))
        == "auditlog-ownership-challenge-s3-archive.txt"
    )


def test_only_the_digest_of_the_token_is_kept() -> None:
    challenge = ownership.new_challenge(_s3(), token="tok-123")
    assert challenge.ownership.token_sha256 == hashlib.sha256(b"tok-123").hexdigest()
    assert "tok-123" not in challenge.ownership.model_dump_json()
    assert ownership.read_token(challenge.body) == "tok-123"
    assert b"auditlog destinations verify s3-archive" in challenge.body


def test_tokens_are_random_and_long() -> None:
    first = ownership.new_challenge(_s3())
    second = ownership.new_challenge(_s3())
    assert first.ownership.token_sha256 != second.ownership.token_sha256
    assert len(ownership.read_token(first.body)) >= 40


def test_issue_writes_the_object_and_keeps_the_destination_pending(s3: Bucket) -> None:
    destination = _s3(server_side_encryption="AES256").model_copy(update={"state": "active"})
    s3.stub.add_response("put_object", {"ETag": '"e"'})
    issued = ownership.issue(s3.client, destination)

    assert issued.state == "pending_verification"
    assert not issued.deliverable
    assert issued.ownership is not None
    [written] = s3.writes
    assert written["Bucket"] == "customer-bucket"
    assert written["Key"] == issued.ownership.challenge_key
    assert written["ServerSideEncryption"] == "AES256"
    token = ownership.read_token(written["Body"])
    assert ownership.token_digest(token) == issued.ownership.token_sha256


def test_a_paused_destination_stays_paused_through_issue_and_verify(s3: Bucket) -> None:
    s3.stub.add_response("put_object", {"ETag": '"e"'})
    issued = ownership.issue(s3.client, _s3().model_copy(update={"state": "paused"}))
    assert issued.state == "paused"
    assert issued.ownership is not None
    [written] = s3.writes
    verified = ownership.verify(issued, ownership.read_token(written["Body"]), now=NOW)
    assert verified.state == "paused"
    assert ownership.is_verified(verified)


def test_a_missing_bucket_is_a_write_error_naming_the_object(s3: Bucket) -> None:
    destination = _s3().model_copy(update={"target": S3Target(bucket="no-such-bucket")})
    s3.stub.add_client_error(
        "put_object", "NoSuchBucket", "The specified bucket does not exist", 404
    )
    with pytest.raises(ownership.ChallengeWriteError, match="s3://no-such-bucket/auditlog/acme"):
        ownership.issue(s3.client, destination)


def test_verify_with_the_right_token_activates() -> None:
    challenge = ownership.new_challenge(_s3(), token="right-token")
    pending = _s3().model_copy(update={"ownership": challenge.ownership})
    assert not ownership.is_verified(pending)

    verified = ownership.verify(pending, " right-token\n", now=NOW)

    assert verified.state == "active"
    assert verified.deliverable
    assert verified.ownership is not None
    assert verified.ownership.verified_at == NOW
    assert ownership.is_verified(verified)


def test_verify_refuses_a_wrong_token_a_second_verify_and_other_kinds() -> None:
    challenge = ownership.new_challenge(_s3(), token="right-token")
    pending = _s3().model_copy(update={"ownership": challenge.ownership})
    with pytest.raises(ownership.OwnershipError, match="does not match"):
        ownership.verify(pending, "wrong-token", now=NOW)
    verified = ownership.verify(pending, "right-token", now=NOW)
    with pytest.raises(ownership.OwnershipError, match="verified already"):
        ownership.verify(verified, "right-token", now=NOW)
    with pytest.raises(ownership.OwnershipError, match="no ownership challenge"):
        ownership.verify(_s3(), "right-token", now=NOW)
    webhook = Destination(
        id="hook-1",
        tenant_id="acme",
        target=WebhookTarget(url="https://x.example.com", signing_secret=SecretValue(ref="env:S")),
        created_at=NOW,
        updated_at=NOW,
    )
    with pytest.raises(ownership.OwnershipError, match="for S3"):
        ownership.challenge_key(webhook)
