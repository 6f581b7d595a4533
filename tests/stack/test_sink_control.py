"""Pause, resume, replay, automatic pause and a killed worker: the sink against the real
broker, the S3-compatible server and a local webhook receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Consumer

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from deploy.stack.endpoints import StackEndpoints
from schemas.headers import ACTION
from sinks.destinations.replay import find_replay_offsets
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
    secret_environment,
    sink_env,
    sink_settings,
    tenant_events,
    update_destination,
    webhook_destination,
    webhook_receiver,
)
from tests.stack.writer_support import wait_for

pytestmark = [pytest.mark.stack, pytest.mark.slow]


_update = update_destination


def test_pause_keeps_events_and_resume_delivers_them_once(
    sink: AuditlogSettings, monkeypatch: Any
) -> None:
    with webhook_receiver() as receiver:
        hook = webhook_destination("acme", receiver.url + "/acme")
        put_destinations(sink, hook)
        with running_worker(sink, monkeypatch):
            before = publish(sink, tenant_events("acme", 100))
            receiver.wait_for_ids(set(before), "/acme")
            _update(sink, hook.id, state="paused", state_reason="maintenance")
            # The worker records where the paused destination stopped.
            wait_for(
                lambda: any(
                    not p.in_sync
                    for p in destination_health(
                        wiring.kafka_connection(sink), sink.sink_progress_topic, hook.id
                    ).partitions
                ),
                "the pause to reach the worker",
                30,
            )
            during = publish(sink, tenant_events("acme", 120))
            time.sleep(2.0)  # an observation window longer than the batch interval (0.5 s)
            assert not set(receiver.ids("/acme")) & set(during)
            _update(sink, hook.id, state="active", state_reason="")
            receiver.wait_for_ids(set(during), "/acme")
        assert Counter(receiver.ids("/acme")) == Counter(before + during)


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
            wait_for(lambda: len(receiver.ids("/acme")) >= 2 * len(ids), "the replay", 60)
        assert Counter(receiver.ids("/acme")) == Counter(ids * 2)
        assert not set(receiver.ids()) & set(other)


def test_a_destination_failing_too_long_is_paused_and_that_is_published(
    stack_endpoints: StackEndpoints, monkeypatch: Any
) -> None:
    settings = sink_settings(stack_endpoints, sink_auto_pause_after_s=3.0, sink_park_after_s=1.0)
    try:

        def respond(_path: str, _attempt: int) -> Reply:
            return 503, {"Retry-After": "1"}

        with webhook_receiver(Receiver(respond=respond)) as receiver:
            hook = webhook_destination("acme", receiver.url + "/acme")
            put_destinations(settings, hook)
            with running_worker(settings, monkeypatch):
                publish(settings, tenant_events("acme", 10))
                store = wiring.destination_store(settings)
                try:
                    wait_for(
                        lambda: (
                            (found := store.get(hook.id)) is not None and found.state == "paused"
                        ),
                        "the automatic pause",
                        60,
                    )
                    paused = store.get(hook.id)
                finally:
                    store.close()
        assert paused is not None
        assert "503" in paused.state_reason
        actions = _actions_of(settings, "acme")
        assert "audit_stream.destination_auto_paused" in actions
    finally:
        drop_topics(settings)


def _actions_of(settings: AuditlogSettings, tenant: str) -> list[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"check-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([settings.events_topic])
    actions: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error():
            if actions and message is None:
                break
            continue
        if message.key() == tenant.encode():
            action = dict(message.headers() or ()).get(ACTION)
            assert isinstance(action, bytes)
            actions.append(action.decode())
    consumer.close()
    return actions


def test_sigkill_mid_upload_leaves_each_event_in_exactly_one_object(
    sink: AuditlogSettings, stack_endpoints: StackEndpoints
) -> None:
    """``auditlog sink`` killed with SIGKILL while it uploads, then restarted: every event
    is in exactly one S3 object (replayed batches overwrite the same keys)."""
    bucket = new_bucket(stack_endpoints)
    destination = s3_destination(
        "acme", bucket, stack_endpoints.s3_endpoint, max_records=40, max_age_s=0.3
    )
    put_destinations(sink, destination)
    ids = publish(sink, tenant_events("acme", 2000))
    env = {**os.environ, **sink_env(sink), **secret_environment(stack_endpoints)}

    def events_in_s3() -> list[str]:
        objects = s3_objects(stack_endpoints, bucket)
        return [e["event_id"] for events in objects.values() for e in events]

    first = subprocess.Popen(
        [sys.executable, "-m", "auditlog.cli", "sink"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(events_in_s3()) >= 200, "the first uploads", 60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert len(set(events_in_s3())) < len(ids), "killed before the end"
    second = subprocess.run(
        [sys.executable, "-m", "auditlog.cli", "sink", "--exit-when-idle", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert Counter(events_in_s3()) == Counter(ids)
