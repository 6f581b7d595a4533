"""Pause, resume, replay, automatic pause and a killed worker: the sink against the real
broker, the S3-compatible server and a local webhook receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from prometheus_client import CollectorRegistry

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from deploy.stack.endpoints import StackEndpoints
from schemas.headers import ACTION
from sinks.destinations.replay import find_replay_offsets
from sinks.progress import destination_health
from tests.stack.sink_support import (
    PARTITIONS,
    Receiver,
    Reply,
    drop_topics,
    new_bucket,
    publish,
    put_destinations,
    running_worker,
    s3_destination,
    s3_objects,
    secret_environment,
    sink_env,
    sink_settings,
    sink_until_idle,
    tenant_events,
    update_destination,
    webhook_destination,
    webhook_receiver,
)
from tests.waiting import wait_until
from tests.withholding_proxy import Request, WithholdingProxy

pytestmark = [pytest.mark.stack, pytest.mark.slow]

WAIT_S = 60.0


_update = update_destination


def test_pause_keeps_events_and_resume_delivers_them_once(
    sink: AuditlogSettings, monkeypatch: Any
) -> None:
    with webhook_receiver() as receiver:
        hook = webhook_destination("acme", receiver.url + "/acme")
        # A second destination of the tenant stays active: once it has the events published
        # during the pause, the worker has routed them past the paused one. Its batches
        # close later than the paused one's would (2 s against 0.5 s).
        witness = webhook_destination("acme", receiver.url + "/witness", max_age_s=2.0)
        put_destinations(sink, hook, witness)
        with running_worker(sink, monkeypatch):
            before = publish(sink, tenant_events("acme", 100))
            receiver.wait_for_ids(set(before), "/acme")
            _update(sink, hook.id, state="paused", state_reason="maintenance")
            # The worker records where the paused destination stopped.
            wait_until(
                lambda: any(
                    not p.in_sync
                    for p in destination_health(
                        wiring.kafka_connection(sink), sink.sink_progress_topic, hook.id
                    ).partitions
                ),
                WAIT_S,
                "the pause to reach the worker",
            )
            during = publish(sink, tenant_events("acme", 120))
            receiver.wait_for_ids(set(during), "/witness")
            assert not set(receiver.ids("/acme")) & set(during)
            _update(sink, hook.id, state="active", state_reason="")
            receiver.wait_for_ids(set(during), "/acme")
        assert Counter(receiver.ids("/acme")) == Counter(before + during)
        assert Counter(receiver.ids("/witness")) == Counter(before + during)


def test_replay_resends_a_destinations_events(sink: AuditlogSettings, monkeypatch: Any) -> None:
    with webhook_receiver() as receiver:
        hook = webhook_destination("acme", receiver.url + "/acme")
        put_destinations(sink, hook)
        since = datetime.now(UTC) - timedelta(seconds=1)
        with running_worker(sink, monkeypatch):
            ids = publish(sink, tenant_events("acme", 150))
            other = publish(sink, tenant_events("globex", 40))
            receiver.wait_for_ids(set(ids), "/acme")
            start = find_replay_offsets(wiring.kafka_connection(sink), sink.events_topic, since)
            _update(sink, hook.id, replay=start.request())
            wait_until(lambda: len(receiver.ids("/acme")) >= 2 * len(ids), WAIT_S, "the replay")
        assert Counter(receiver.ids("/acme")) == Counter(ids * 2)
        assert not set(receiver.ids()) & set(other)


def test_a_destination_failing_too_long_is_paused_and_that_is_published(
    stack_endpoints: StackEndpoints, monkeypatch: Any
) -> None:
    settings = sink_settings(stack_endpoints, sink_auto_pause_after_s=3.0, sink_park_after_s=1.0)
    registry = CollectorRegistry()
    try:

        def respond(_path: str, _attempt: int) -> Reply:
            return 503, {"Retry-After": "1"}

        with webhook_receiver(Receiver(respond=respond)) as receiver:
            hook = webhook_destination("acme", receiver.url + "/acme")
            put_destinations(settings, hook)
            with running_worker(settings, monkeypatch, registry=registry):
                publish(settings, tenant_events("acme", 10))
                store = wiring.destination_store(settings)
                try:
                    wait_until(
                        lambda: (
                            (found := store.get(hook.id)) is not None and found.state == "paused"
                        ),
                        WAIT_S,
                        "the automatic pause",
                    )
                    paused = store.get(hook.id)
                finally:
                    store.close()
        assert paused is not None
        assert "503" in paused.state_reason
        actions = _actions_of(settings, "acme")
        assert "audit_stream.destination_auto_paused" in actions
        # What the alerts AuditlogSinkDestinationParked and ...AutoPaused watch.
        labels = {"destination": hook.id}
        assert registry.get_sample_value("auditlog_sink_lanes_parked_total", labels)
        paused_total = "auditlog_sink_destinations_auto_paused_total"
        assert registry.get_sample_value(paused_total, labels) == 1
    finally:
        drop_topics(settings)


def _actions_of(settings: AuditlogSettings, tenant: str) -> list[str]:
    """The actions of ``tenant``'s events, reading the events topic up to its end."""
    topic = settings.events_topic
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"check-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in range(PARTITIONS)
        }
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        read_to = dict.fromkeys(ends, 0)
        actions: list[str] = []

        def read_more() -> bool:
            for message in consumer.consume(100, timeout=0.5):
                assert message.error() is None, message.error()
                partition, offset = message.partition(), message.offset()
                assert partition is not None
                assert offset is not None
                read_to[partition] = offset + 1
                if message.key() == tenant.encode():
                    action = dict(message.headers() or ()).get(ACTION)
                    assert isinstance(action, bytes)
                    actions.append(action.decode())
            return all(read_to[p] >= end for p, end in ends.items())

        wait_until(read_more, WAIT_S, f"the end of {topic}")
    finally:
        consumer.close()
    return actions


def test_sigkill_between_upload_and_progress_leaves_each_event_in_exactly_one_object(
    sink: AuditlogSettings, stack_endpoints: StackEndpoints
) -> None:
    """``auditlog sink`` killed with SIGKILL after S3 stored an object and before the worker
    heard so; restarted, it forms that batch again and writes the same key: every event is
    in exactly one S3 object.

    The destination reaches S3 through a proxy that answers five uploads and holds the
    answer to the sixth, so the kill lands at that point whatever the machine's speed."""
    bucket = new_bucket(stack_endpoints)

    def upload(request: Request) -> bool:
        return request.method == "PUT" and request.target.startswith(f"/{bucket}/auditlog/")

    def events_in_s3() -> list[str]:
        objects = s3_objects(stack_endpoints, bucket)
        return [e["event_id"] for events in objects.values() for e in events]

    with WithholdingProxy(stack_endpoints.s3_endpoint, upload, let_through=5) as proxy:
        destination = s3_destination("acme", bucket, proxy.url, max_records=40, max_age_s=0.3)
        put_destinations(sink, destination)
        ids = publish(sink, tenant_events("acme", 2000))
        env = {**os.environ, **sink_env(sink), **secret_environment(stack_endpoints)}
        first = subprocess.Popen(
            [sys.executable, "-m", "auditlog.cli", "sink"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            proxy.wait_withheld(first, WAIT_S)  # the sixth upload landed
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(30)
        stored = events_in_s3()
        assert len(set(stored)) == len(stored), "each object a batch of its own"
        assert 0 < len(stored) < len(ids), "killed in the middle of the run"

        proxy.release()
        second = sink_until_idle(env, idle_s=3, timeout_s=180)
    assert second.returncode == 0, second.stderr[-2000:]
    assert Counter(events_in_s3()) == Counter(ids)
