"""The sink across restarts, against the real broker, the S3-compatible server and a local
webhook receiver: a batch announced before a stop is re-formed exactly whatever changed in
its destination meanwhile, and ``auditlog sink --exit-when-idle`` ends while destinations
keep failing, saying which, and loses nothing of theirs."""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter
from typing import Any

import pytest

from auditlog import wiring
from auditlog.commands.sink import EXIT_BEHIND
from auditlog.settings import AuditlogSettings
from deploy.stack import s3
from deploy.stack.endpoints import StackEndpoints
from sinks.destinations.model import BatchLimits, Filters, SecretValue, WebhookTarget
from sinks.progress import LaneProgress, destination_health
from sinks.signing import idempotency_key
from tests.stack.sink_support import (
    Received,
    Receiver,
    Reply,
    publish,
    publish_placed,
    put_destinations,
    running_worker,
    s3_destination,
    s3_objects,
    secret_environment,
    sink_env,
    sink_until_idle,
    tenant_events,
    tenants_in_one_partition,
    update_destination,
    webhook_destination,
    webhook_receiver,
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.slow]

LOGIN = "user.login"


def _announced(settings: AuditlogSettings, destination_id: str) -> LaneProgress | None:
    """The progress record of the destination's announced batch (None: none announced)."""
    health = destination_health(
        wiring.kafka_connection(settings), settings.sink_progress_topic, destination_id
    )
    found = [p for p in health.partitions if p.announced_last is not None]
    return found[0] if found else None


def _failed_once(settings: AuditlogSettings, destination_id: str) -> bool:
    record = _announced(settings, destination_id)
    return record is not None and record.consecutive_failures > 0


def test_an_announced_batch_is_re_formed_exactly_after_its_destination_changed(
    sink: AuditlogSettings, stack_endpoints: StackEndpoints, monkeypatch: Any
) -> None:
    """A webhook (answering 500) and an S3 destination (its bucket missing) each get a batch
    announced and not delivered; the worker stops. Both destinations then change twice
    (revision 1 -> 3): lower batch limits, a filter that drops logins, another format and
    compression, another S3 prefix. After the restart each receives the announced batch
    exactly as announced (same records, body, idempotency key, S3 key), the events after it
    in the new shape, and every event once."""
    endpoint = stack_endpoints.s3_endpoint
    bucket = f"sink-{uuid.uuid4().hex[:12]}"  # created only after the first run
    broken = threading.Event()
    broken.set()

    def respond(_path: str, _attempt: int) -> Reply:
        return (500, {}) if broken.is_set() else (200, {})

    with webhook_receiver(Receiver(respond=respond)) as receiver:
        hook = webhook_destination("acme", receiver.url + "/acme", max_records=25)
        bucket_destination = s3_destination("acme", bucket, endpoint, max_records=25)
        put_destinations(sink, hook, bucket_destination)
        events = tenant_events("acme", 60)
        for n, event in enumerate(events):
            if n % 2:
                event.update(action=LOGIN, resource={"type": "user", "id": f"u-{n}"})
        placed = publish_placed(sink, events)
        with running_worker(sink, monkeypatch, stack_endpoints):
            wait_until(lambda: bool(receiver.refused), 60, "the webhook batch sent and refused")
            wait_until(
                lambda: _failed_once(sink, bucket_destination.id), 60, "the S3 batch attempted"
            )
        sent = receiver.refused[0]
        announced = {d.id: _announced(sink, d.id) for d in (hook, bucket_destination)}

        for destination in (hook, bucket_destination):
            update_destination(sink, destination.id, batch=BatchLimits(max_records=4))
            update_destination(
                sink,
                destination.id,
                filters=Filters(exclude_actions=frozenset({LOGIN})),
                format="json_array",
                compression="gzip" if destination is hook else "none",
            )
        update_destination(
            sink,
            bucket_destination.id,
            target=bucket_destination.target.model_copy(update={"prefix_template": "moved"}),
        )
        s3.ensure_bucket(endpoint, stack_endpoints.s3_keys, bucket)
        broken.clear()

        expected: dict[str, list[str]] = {}
        for destination in (hook, bucket_destination):
            record = announced[destination.id]
            assert record is not None
            assert record.announced_first is not None
            assert record.announced_last is not None
            assert record.announced_shape is not None
            assert record.announced_shape.revision == 1
            first, last = record.announced_first, record.announced_last
            in_batch = [i for i, _p, offset in placed if first <= offset <= last]
            assert len(in_batch) == 25, "announced under max_records=25"
            later = [
                i
                for (i, _p, offset), event in zip(placed, events, strict=True)
                if offset > last and event["action"] != LOGIN
            ]
            expected[destination.id] = in_batch + later
        with running_worker(sink, monkeypatch, stack_endpoints):
            receiver.wait_for_ids(set(expected[hook.id]), "/acme")
            wait_until(
                lambda: (
                    set(_s3_ids(stack_endpoints, bucket)) >= set(expected[bucket_destination.id])
                ),
                60,
                "the S3 objects",
            )

    hook_record = announced[hook.id]
    assert hook_record is not None
    assert sent.idempotency_key == idempotency_key(
        "acme",
        hook.id,
        topic=sink.events_topic,
        partition=hook_record.partition,
        first=hook_record.announced_first or 0,
        last=hook_record.announced_last or 0,
    )
    again = [r for r in receiver.requests if r.idempotency_key == sent.idempotency_key]
    assert again, "the announced batch arrives under its idempotency key"
    assert all(r.body == sent.body for r in again), "byte for byte as it was first sent"
    _each_once_by_key(receiver.requests, expected[hook.id])
    assert set(receiver.ids("/acme")) == set(expected[hook.id])

    objects = s3_objects(stack_endpoints, bucket)
    s3_record = announced[bucket_destination.id]
    assert s3_record is not None
    name = (
        f"acme_{bucket_destination.id}_{s3_record.partition}_{s3_record.announced_first:020d}"
        f"-{s3_record.announced_last:020d}.ndjson.gz"
    )
    [announced_key] = [k for k in objects if k.endswith(name)]
    assert announced_key.startswith(f"auditlog/acme/{bucket_destination.id}/")
    in_batch = expected[bucket_destination.id][:25]
    assert [e["event_id"] for e in objects[announced_key]] == in_batch
    others = [k for k in objects if k != announced_key]
    assert others, "events after the announced batch"
    assert all(k.startswith("moved/") and k.endswith(".json") for k in others)
    assert Counter(_s3_ids(stack_endpoints, bucket)) == Counter(expected[bucket_destination.id])


def _s3_ids(stack: StackEndpoints, bucket: str) -> list[str]:
    try:
        objects = s3_objects(stack, bucket)
    except Exception:  # noqa: BLE001 - the bucket does not exist yet
        return []
    return [e["event_id"] for events in objects.values() for e in events]


def _each_once_by_key(requests: list[Received], expected: list[str]) -> None:
    """A receiver that drops repeated idempotency keys holds each event once."""
    by_key: dict[str, list[str]] = {}
    for request in requests:
        assert by_key.setdefault(request.idempotency_key, request.event_ids) == request.event_ids
    assert Counter(i for ids in by_key.values() for i in ids) == Counter(expected)


def test_exit_when_idle_ends_while_destinations_fail_and_says_which(
    sink: AuditlogSettings,
) -> None:
    """Three tenants' destinations: one answers, one answers 500, one's signing secret no
    longer opens. ``auditlog sink --exit-when-idle 2`` delivers to the first, exits with
    the code for destinations behind, and names the other two with their errors. Repaired,
    the next run delivers their events, none lost."""
    up_tenant, down_tenant, gone_tenant = tenants_in_one_partition(sink, 3)
    repaired = threading.Event()

    def respond(path: str, _attempt: int) -> Reply:
        return (500, {}) if path == "/down" and not repaired.is_set() else (200, {})

    with webhook_receiver(Receiver(respond=respond)) as receiver:
        up = webhook_destination(up_tenant, receiver.url + "/up")
        down = webhook_destination(down_tenant, receiver.url + "/down")
        gone_target = WebhookTarget(
            url=receiver.url + "/gone",
            signing_secret=SecretValue(ref="env:AUDITLOG_DEST_SECRET_SINK_TEST_GONE"),
        )
        gone = webhook_destination(gone_tenant, gone_target.url).model_copy(
            update={"target": gone_target}
        )
        put_destinations(sink, up, down, gone)
        ids = {
            tenant: publish(sink, tenant_events(tenant, 30))
            for tenant in (up_tenant, down_tenant, gone_tenant)
        }
        env = {**os.environ, **sink_env(sink), **secret_environment()}
        env.pop("AUDITLOG_DEST_SECRET_SINK_TEST_GONE", None)

        first = sink_until_idle(env)
        assert first.returncode == EXIT_BEHIND, first.stderr[-3000:]
        assert Counter(receiver.ids("/up")) == Counter(ids[up_tenant])
        behind = [line for line in first.stdout.splitlines() if line.startswith("behind:")]
        assert len(behind) == 2, first.stdout
        assert any(down.id in line and "HTTP 500" in line for line in behind), behind
        assert any(gone.id in line and "cannot be read" in line for line in behind), behind
        assert not any(up.id in line for line in behind)

        repaired.set()
        env["AUDITLOG_DEST_SECRET_SINK_TEST_GONE"] = secret_environment()[
            "AUDITLOG_DEST_SECRET_SINK_TEST_SECRET"
        ]
        second = sink_until_idle(env)
        assert second.returncode == 0, second.stdout + second.stderr[-3000:]
        assert "behind:" not in second.stdout
    assert Counter(receiver.ids("/up")) == Counter(ids[up_tenant]), "nothing sent twice"
    assert set(receiver.ids("/down")) == set(ids[down_tenant])
    _each_once_by_key([r for r in receiver.requests if r.path == "/down"], ids[down_tenant])
    assert Counter(receiver.ids("/gone")) == Counter(ids[gone_tenant])
