"""What only a real S3 server can answer, against the stack's MinIO: Object Lock keeping a
checkpoint's version through an overwrite and refusing its deletion, a body that does not
match its Content-MD5 refused, a conditional write refused over an existing object, and a
policy that denies the worker's key reported by the destination as permanent, in the
server's words."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from auditlog.cli import main
from deploy.stack import s3, s3_admin
from deploy.stack.endpoints import S3Keys, StackEndpoints
from deploy.stack.local_stack import CHECKPOINT_BUCKET
from sinks.destinations.model import Destination, S3Target, SecretValue
from sinks.destinations.references import ReferencePolicy
from sinks.destinations.secrets import SecretBox
from sinks.senders.base import PermanentDeliveryError, RetryableDeliveryError
from sinks.senders.s3 import make_s3_client, read_object, write_object
from sinks.senders.s3_confinement import S3Policy
from tests.stack.sink_support import (
    drop_topics,
    new_bucket,
    publish,
    put_destinations,
    running_worker,
    s3_destination,
    s3_objects,
    sink_env,
    sink_settings,
    tenant_events,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.stack

LOCAL = S3Policy(allow_local=True)
KEY_REF = "AUDITLOG_DEST_SECRET_S3_SERVER_KEY"
SECRET_REF = "AUDITLOG_DEST_SECRET_S3_SERVER_SECRET"


def _error(exc: ClientError) -> tuple[str, int]:
    return (
        str(exc.response.get("Error", {}).get("Code")),
        int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)),
    )


@pytest.fixture
def admin_keys(stack_endpoints: StackEndpoints) -> S3Keys:
    if stack_endpoints.s3_admin is None:
        pytest.skip("the S3 server's administrator keys are not known (external stack)")
    return stack_endpoints.s3_admin


@pytest.fixture
def checkpoints(admin_keys: S3Keys, stack_endpoints: StackEndpoints) -> Iterator[Any]:
    """A client of the stack's Object Lock bucket with the administrator's keys: what it
    cannot do, nobody can."""
    client = s3.client(stack_endpoints.s3_endpoint, admin_keys)
    yield client
    client.close()


def test_a_locked_checkpoint_survives_an_overwrite_and_refuses_deletion(checkpoints: Any) -> None:
    key = f"checkpoints/{uuid.uuid4().hex}"
    first = checkpoints.put_object(Bucket=CHECKPOINT_BUCKET, Key=key, Body=b"tree size 10")
    checkpoints.put_object(Bucket=CHECKPOINT_BUCKET, Key=key, Body=b"rewritten")
    version = first["VersionId"]

    kept = checkpoints.get_object(Bucket=CHECKPOINT_BUCKET, Key=key, VersionId=version)
    assert kept["Body"].read() == b"tree size 10"
    assert kept["ObjectLockMode"] == "COMPLIANCE"
    assert kept["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(hours=23)

    with pytest.raises(ClientError) as deleted:
        checkpoints.delete_object(Bucket=CHECKPOINT_BUCKET, Key=key, VersionId=version)
    # MinIO: InvalidRequest "Object is WORM protected"; AWS S3: AccessDenied.
    assert _error(deleted.value) in (("InvalidRequest", 400), ("AccessDenied", 403))
    with pytest.raises(ClientError) as shortened:
        checkpoints.put_object_retention(
            Bucket=CHECKPOINT_BUCKET,
            Key=key,
            VersionId=version,
            Retention={
                "Mode": "COMPLIANCE",
                "RetainUntilDate": datetime.now(UTC) + timedelta(hours=1),
            },
        )
    assert _error(shortened.value)[1] in (400, 403)
    again = checkpoints.get_object(Bucket=CHECKPOINT_BUCKET, Key=key, VersionId=version)
    assert again["Body"].read() == b"tree size 10"


def test_a_conditional_write_does_not_replace_an_existing_object(checkpoints: Any) -> None:
    key = f"checkpoints/{uuid.uuid4().hex}"
    checkpoints.put_object(Bucket=CHECKPOINT_BUCKET, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        checkpoints.put_object(Bucket=CHECKPOINT_BUCKET, Key=key, Body=b"second", IfNoneMatch="*")
    assert _error(refused.value) == ("PreconditionFailed", 412)
    assert checkpoints.get_object(Bucket=CHECKPOINT_BUCKET, Key=key)["Body"].read() == b"first"


def _secrets(keys: S3Keys) -> SecretBox:
    return SecretBox(
        [], {KEY_REF: keys.access_key, SECRET_REF: keys.secret_key}, references=ReferencePolicy()
    )


def _target(stack: StackEndpoints, bucket: str) -> S3Target:
    return S3Target(
        bucket=bucket,
        endpoint_url=stack.s3_endpoint,
        access_key_id=SecretValue(ref=f"env:{KEY_REF}"),
        secret_access_key=SecretValue(ref=f"env:{SECRET_REF}"),
    )


def test_a_body_that_does_not_match_its_content_md5_is_refused_and_sent_again(
    stack_endpoints: StackEndpoints,
) -> None:
    """The sink's own PUT, its body changed after its Content-MD5 was computed (as a
    corrupting hop would): the server refuses it, and the sender says to send it again."""
    bucket = new_bucket(stack_endpoints)
    client = make_s3_client(
        _target(stack_endpoints, bucket),
        _secrets(stack_endpoints.s3_keys),
        tenant_id="acme",
        policy=LOCAL,
        timeout_s=5.0,
    )

    def corrupt(request: Any, **_kwargs: Any) -> None:
        request.data = b"corrupted on the way"  # the signature covers this body, MD5 does not

    client.meta.events.register("before-sign.s3.PutObject", corrupt)
    try:
        with pytest.raises(RetryableDeliveryError, match=r"BadDigest: The Content-Md5"):
            write_object(client, bucket, "batch.ndjson", b"the batch as sent", "text/plain")
        assert read_object(client, bucket, "batch.ndjson") is None
    finally:
        client.close()


@pytest.fixture
def denied_keys(stack_endpoints: StackEndpoints, admin_keys: S3Keys) -> tuple[str, S3Keys]:
    """A bucket, and a user of its own whose policy denies it PutObject there (MinIO decides
    its users' requests by their IAM policies, so that is where the denial goes)."""
    bucket = new_bucket(stack_endpoints)
    name = f"deny-put-{bucket}"
    s3_admin.add_policy(
        stack_endpoints.s3_endpoint,
        admin_keys,
        name,
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]},
                {
                    "Effect": "Deny",
                    "Action": ["s3:PutObject"],
                    "Resource": [f"arn:aws:s3:::{bucket}/*"],
                },
            ],
        },
    )
    keys = s3.new_keys(f"worker-{uuid.uuid4().hex[:10]}")
    s3_admin.ensure_user(stack_endpoints.s3_endpoint, admin_keys, keys, policies=[name])
    return bucket, keys


def test_a_denied_write_is_permanent_in_the_servers_words(
    stack_endpoints: StackEndpoints, denied_keys: tuple[str, S3Keys]
) -> None:
    bucket, keys = denied_keys
    client = make_s3_client(
        _target(stack_endpoints, bucket),
        _secrets(keys),
        tenant_id="acme",
        policy=LOCAL,
        timeout_s=5,
    )
    try:
        with pytest.raises(PermanentDeliveryError) as refused:
            write_object(client, bucket, "batch.ndjson", b"{}", "application/x-ndjson")
    finally:
        client.close()
    assert str(refused.value) == (
        f"S3 write to s3://{bucket}/batch.ndjson failed (AccessDenied: Access Denied.): "
        f"allow s3:PutObject on arn:aws:s3:::{bucket}/* to the worker's credentials (and "
        "kms:GenerateDataKey on the key, with SSE-KMS)"
    )


def test_a_worker_parks_a_denied_destination_at_once_and_show_says_why(
    stack_endpoints: StackEndpoints,
    denied_keys: tuple[str, S3Keys],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Parked with the first refusal, long before a failing destination would be (park
    after 10 minutes here): the worker took the server's answer for permanent, and
    ``destinations show`` gives the server's message."""
    bucket, keys = denied_keys
    settings = sink_settings(stack_endpoints, sink_park_after_s=600.0)
    try:
        denied = _denied_destination(s3_destination("acme", bucket, stack_endpoints.s3_endpoint))
        put_destinations(settings, denied)
        monkeypatch.setenv(KEY_REF, keys.access_key)
        monkeypatch.setenv(SECRET_REF, keys.secret_key)
        with running_worker(settings, monkeypatch) as worker:
            publish(settings, tenant_events("acme", 10))
            wait_until(lambda: worker.stats.parked > 0, 60, "the destination parked")
        assert s3_objects(stack_endpoints, bucket) == {}

        for name, value in sink_env(settings).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        assert main(["destinations", "show", denied.id]) == 0
        shown = capsys.readouterr().out
    finally:
        drop_topics(settings)
    assert "(AccessDenied: Access Denied.): allow s3:PutObject" in shown
    assert "partitions behind the group (parked or paused): none" not in shown


def _denied_destination(destination: Destination) -> Destination:
    """``destination`` with the denied user's key references."""
    target = destination.target.model_copy(
        update={
            "access_key_id": SecretValue(ref=f"env:{KEY_REF}"),
            "secret_access_key": SecretValue(ref=f"env:{SECRET_REF}"),
        }
    )
    return destination.model_copy(update={"target": target})
