"""The sink worker against the real broker, the S3-compatible server and local webhook
receivers."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import Producer

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from deploy.stack.endpoints import StackEndpoints
from schemas import headers as h
from schemas.validation import EventValidator
from schemas.wire import SingleObjectEncoder
from sinks.destinations.model import Filters
from sinks.progress import destination_health
from tests.stack.sink_support import (
    Receiver,
    Reply,
    new_bucket,
    publish,
    put_destinations,
    running_worker,
    s3_destination,
    s3_objects,
    tenant_events,
    tenants_in_one_partition,
    webhook_destination,
    webhook_receiver,
)
from tests.stack.writer_support import wait_for

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def test_each_tenant_reaches_its_destinations_and_no_other(
    sink: AuditlogSettings, stack_endpoints: StackEndpoints, monkeypatch: Any
) -> None:
    bucket = new_bucket(stack_endpoints)
    with webhook_receiver() as receiver:
        acme_hook = webhook_destination("acme", receiver.url + "/acme")
        acme_s3 = s3_destination("acme", bucket, stack_endpoints.s3_endpoint)
        globex_logins = webhook_destination(
            "globex",
            receiver.url + "/globex",
            filters=Filters(include_categories=frozenset({"account_security"})),
        )
        put_destinations(sink, acme_hook, acme_s3, globex_logins)
        acme = publish(sink, tenant_events("acme", 300))
        globex_stops = publish(sink, tenant_events("globex", 50))
        globex_logins_ids = publish(
            sink,
            tenant_events(
                "globex",
                40,
                action="user.login",
                resource={"type": "user", "id": "u-9"},
            ),
        )
        initech = publish(sink, tenant_events("initech", 30))
        with running_worker(sink, monkeypatch, stack_endpoints):
            receiver.wait_for_ids(set(acme), "/acme")
            receiver.wait_for_ids(set(globex_logins_ids), "/globex")
            objects = _wait_for_objects(stack_endpoints, bucket, len(acme))
        assert Counter(receiver.ids("/acme")) == Counter(acme)
        assert Counter(receiver.ids("/globex")) == Counter(globex_logins_ids)
        assert not set(receiver.ids()) & (set(globex_stops) | set(initech))
        in_s3 = [e["event_id"] for events in objects.values() for e in events]
        assert Counter(in_s3) == Counter(acme)
        for key in objects:
            assert key.startswith(f"auditlog/acme/{acme_s3.id}/20")
            assert key.endswith(".ndjson.gz")


def test_a_record_naming_two_tenants_reaches_no_destination(
    sink: AuditlogSettings, monkeypatch: Any
) -> None:
    """Records keyed (or labelled) for globex whose body is acme's, published by a client
    that is not our SDK: globex's destination must not receive acme's event."""
    with webhook_receiver() as receiver:
        put_destinations(sink, webhook_destination("globex", receiver.url + "/globex"))
        acme_datum = EventValidator().validate(tenant_events("acme", 1)[0]).to_avro()
        value = SingleObjectEncoder().encode(acme_datum)
        producer = Producer({"bootstrap.servers": sink.kafka_bootstrap})
        producer.produce(sink.events_topic, value=value, key=b"globex")
        producer.produce(
            sink.events_topic, value=value, key=b"globex", headers=[(h.TENANT, b"globex")]
        )
        assert producer.flush(30) == 0
        headed = publish(sink, tenant_events("globex", 1))
        forged_datum = EventValidator().validate(tenant_events("globex", 1)[0]).to_avro()
        value = SingleObjectEncoder().encode(forged_datum)
        producer.produce(
            sink.events_topic, value=value, key=b"globex", headers=[(h.TENANT, b"acme")]
        )
        assert producer.flush(30) == 0
        later = publish(sink, tenant_events("globex", 20))
        with running_worker(sink, monkeypatch) as worker:
            receiver.wait_for_ids(set(headed + later), "/globex")
        assert sorted(receiver.ids("/globex")) == sorted(headed + later)
        assert not {str(acme_datum["event_id"]), str(forged_datum["event_id"])} & set(
            receiver.ids()
        )
        assert worker.stats.tenant_mismatches == 3


def _wait_for_objects(
    stack: StackEndpoints, bucket: str, count: int
) -> dict[str, list[dict[str, Any]]]:
    wait_for(
        lambda: sum(len(v) for v in s3_objects(stack, bucket).values()) >= count,
        f"{count} events in s3://{bucket}",
        60,
    )
    return s3_objects(stack, bucket)


def test_faults_are_retried_and_duplicates_carry_the_same_key(
    sink: AuditlogSettings, monkeypatch: Any
) -> None:
    """500s, a 429 with Retry-After, a timeout (the receiver got it: a duplicate), an
    outage: every event arrives; a repeated body always carries the same idempotency key."""
    released = threading.Event()

    def respond(_path: str, attempt: int) -> Reply:
        if attempt in (1, 2):
            return 500, {}
        if attempt == 3:
            return 429, {"Retry-After": "1"}
        if attempt == 4:
            released.wait(3.0)  # past the 2 s request timeout; recorded anyway
            return 200, {}
        if attempt in (5, 6, 7):
            return 503, {}
        return 200, {}

    with webhook_receiver(Receiver(respond=respond)) as receiver:
        hook = webhook_destination("acme", receiver.url + "/acme", max_records=100)
        put_destinations(sink, hook)
        ids = publish(sink, tenant_events("acme", 450))
        with running_worker(sink, monkeypatch):
            receiver.wait_for_ids(set(ids), "/acme")
            released.set()
        assert set(receiver.ids("/acme")) == set(ids)
        assert receiver.attempts >= 8
        by_key: dict[str, list[str]] = {}
        for request in receiver.requests:
            assert by_key.setdefault(request.idempotency_key, request.event_ids) == (
                request.event_ids
            ), "one idempotency key, one body"
        keyed = [i for events in by_key.values() for i in events]
        assert Counter(keyed) == Counter(ids), "a duplicate only ever repeats a whole batch"


def test_a_failing_destination_does_not_hold_back_another_tenant(
    sink: AuditlogSettings, monkeypatch: Any
) -> None:
    """Two tenants in one partition: one's endpoint fails until it is repaired; the other
    receives its events within its batch interval meanwhile. After the repair the failing
    one catches up on its own, with nothing lost."""
    broken = threading.Event()
    broken.set()

    def respond(path: str, _attempt: int) -> Reply:
        return (500, {}) if path == "/down" and broken.is_set() else (200, {})

    down_tenant, up_tenant = tenants_in_one_partition(sink, 2)
    with webhook_receiver(Receiver(respond=respond)) as receiver:
        down = webhook_destination(down_tenant, receiver.url + "/down")
        up = webhook_destination(up_tenant, receiver.url + "/up", max_age_s=1.0)
        put_destinations(sink, down, up)
        with running_worker(sink, monkeypatch):
            failing = publish(sink, tenant_events(down_tenant, 200))
            for _ in range(3):  # several rounds while the other destination keeps failing
                sent_at = time.monotonic()
                flowing = publish(sink, tenant_events(up_tenant, 50))
                receiver.wait_for_ids(set(flowing), "/up", timeout_s=30)
                delay = max(r.received_at for r in receiver.requests if r.path == "/up") - sent_at
                # its batch interval (1 s) plus scheduling; never the failing one's backoff
                assert delay < 1.0 + 3.0, f"the healthy destination waited {delay:.1f} s"
            health = destination_health(
                wiring.kafka_connection(sink), sink.sink_progress_topic, down.id
            )
            assert health.consecutive_failures > 0
            assert health.last_error is not None
            broken.clear()
            receiver.wait_for_ids(set(failing), "/down", timeout_s=60)
        assert Counter(receiver.ids("/down")) == Counter(failing)
