"""A worker confines what the destination store says, however a destination got there:
written straight into the store (bypassing ``destinations add``), a reference to the
operator's own keys is refused and an S3 endpoint on a local address is refused when the
worker sends, with nothing sent and the reason in the destination's health."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from deploy.stack.endpoints import StackEndpoints
from sinks.destinations.model import Destination, SecretValue
from sinks.progress import destination_health
from tests.stack.sink_support import (
    Receiver,
    Reply,
    drop_topics,
    new_bucket,
    publish,
    put_destinations,
    running_worker,
    s3_destination,
    s3_objects,
    sink_settings,
    tenant_events,
    webhook_destination,
    webhook_receiver,
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.slow]

OPERATORS_KEY = "the-operators-fernet-key-never-sent"


def _last_error(settings: AuditlogSettings, destination_id: str) -> str:
    found = destination_health(
        wiring.kafka_connection(settings), settings.sink_progress_topic, destination_id
    ).last_error
    return found[1] if found else ""


def _with_target(destination: Destination, **changes: Any) -> Destination:
    """``destination`` with target fields changed, as a store could hold it (no checks)."""
    return destination.model_copy(update={"target": destination.target.model_copy(update=changes)})


def test_references_to_the_operators_keys_are_refused_by_the_worker(
    sink: AuditlogSettings, stack_endpoints: StackEndpoints, monkeypatch: Any
) -> None:
    # The worker's environment holds the operator's keys; here the AWS ones would even
    # open the stack's S3 server, so a worker that read them would write.
    keys = stack_endpoints.s3_keys
    monkeypatch.setenv("AUDITLOG_SECRETS_KEY", OPERATORS_KEY)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys.secret_key)
    posted: list[str] = []
    lock = threading.Lock()

    def respond(path: str, _attempt: int) -> Reply:
        with lock:
            posted.append(path)
        return 200, {}

    bucket = new_bucket(stack_endpoints)
    with webhook_receiver(Receiver(respond=respond)) as receiver:
        stolen_key = _with_target(
            webhook_destination("acme", receiver.url + "/stolen"),
            signing_secret=SecretValue(ref="env:AUDITLOG_SECRETS_KEY"),
        )
        stolen_aws = _with_target(
            s3_destination("acme", bucket, stack_endpoints.s3_endpoint),
            access_key_id=SecretValue(ref="env:AWS_ACCESS_KEY_ID"),
            secret_access_key=SecretValue(ref="env:AWS_SECRET_ACCESS_KEY"),
        )
        allowed = webhook_destination("globex", receiver.url + "/globex")
        put_destinations(sink, stolen_key, stolen_aws, allowed)
        with running_worker(sink, monkeypatch):
            publish(sink, tenant_events("acme", 20))
            globex = publish(sink, tenant_events("globex", 20))
            receiver.wait_for_ids(set(globex), "/globex")  # the worker delivers meanwhile
            wait_until(
                lambda: (
                    "env:AUDITLOG_SECRETS_KEY" in _last_error(sink, stolen_key.id)
                    and "env:AWS_" in _last_error(sink, stolen_aws.id)
                ),
                60,
                "both refusals in the destinations' health",
            )

    key_error = _last_error(sink, stolen_key.id)
    assert "secret reference env:AUDITLOG_SECRETS_KEY is refused" in key_error
    assert OPERATORS_KEY not in key_error
    aws_error = _last_error(sink, stolen_aws.id)
    assert "is refused: AWS_* variables are the worker's own" in aws_error
    assert keys.secret_key not in aws_error
    with lock:
        assert "/stolen" not in posted, "nothing is sent with the operator's key"
    assert s3_objects(stack_endpoints, bucket) == {}


def test_an_s3_endpoint_on_a_local_address_is_refused_when_the_worker_sends(
    stack_endpoints: StackEndpoints, monkeypatch: Any
) -> None:
    """Outside local-development mode the stack's S3 server (http, 127.0.0.1) is no place
    for a tenant's events, even though the destination reached the store and holds valid
    keys for it."""
    settings = sink_settings(stack_endpoints, sink_allow_local=False)
    try:
        bucket = new_bucket(stack_endpoints)
        inside = s3_destination("acme", bucket, stack_endpoints.s3_endpoint)
        put_destinations(settings, inside)
        with running_worker(settings, monkeypatch, stack_endpoints):
            publish(settings, tenant_events("acme", 20))
            wait_until(
                lambda: "must use https" in _last_error(settings, inside.id),
                60,
                "the refusal in the destination's health",
            )
        assert s3_objects(stack_endpoints, bucket) == {}
    finally:
        drop_topics(settings)
