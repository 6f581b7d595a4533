"""The sink worker against the real broker, the S3-compatible server and local webhook
receivers."""

from __future__ import annotations

import threading
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
    drop_topics,
    new_bucket,
    publish,
    put_destinations,
    running_worker,
    s3_destination,
    s3_objects,
    sink_settings,
    tenant_events,
    tenants_in_one_partition,
    webhook_destination,
    webhook_receiver,
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.slow]

WAIT_S = 60.0
HOLD_S = 60.0  # the longest a test's endpoint keeps a request unanswered


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
    wait_until(
        lambda: sum(len(v) for v in s3_objects(stack, bucket).values()) >= count,
        WAIT_S,
        f"{count} events in s3://{bucket}",
    )
    return s3_objects(stack, bucket)


def test_faults_are_retried_and_duplicates_carry_the_same_key(
    sink: AuditlogSettings, monkeypatch: Any
) -> None:
    """500s, a 429 with Retry-After, a timeout (the receiver got it: a duplicate), an
    outage: every event arrives; a repeated body always carries the same idempotency key."""
    receiver = Receiver()

    def respond(_path: str, attempt: int) -> Reply:
        if attempt in (1, 2):
            return 500, {}
        if attempt == 3:
            return 429, {"Retry-After": "1"}
        if attempt == 4:
            # Answered once the worker gave up on it (past its 2 s request timeout) and
            # tried again: the receiver keeps this body, the worker sends it once more.
            with receiver.lock:
                receiver.lock.wait_for(lambda: receiver.attempts > 4, HOLD_S)
            return 200, {}
        if attempt in (5, 6, 7):
            return 503, {}
        return 200, {}

    receiver.respond = respond
    with webhook_receiver(receiver):
        hook = webhook_destination("acme", receiver.url + "/acme", max_records=100)
        put_destinations(sink, hook)
        ids = publish(sink, tenant_events("acme", 450))
        with running_worker(sink, monkeypatch):
            receiver.wait_for_ids(set(ids), "/acme")
        assert set(receiver.ids("/acme")) == set(ids)
        assert receiver.attempts >= 8
        by_key: dict[str, list[str]] = {}
        for request in receiver.requests:
            assert by_key.setdefault(request.idempotency_key, request.event_ids) == (
                request.event_ids
            ), "one idempotency key, one body"
        assert len(receiver.requests) > len(by_key), "the timed-out batch arrived twice"
        keyed = [i for events in by_key.values() for i in events]
        assert Counter(keyed) == Counter(ids), "a duplicate only ever repeats a whole batch"


class HeldEndpoint:
    """A failing endpoint the test answers: each request waits until the test fails it
    (:meth:`fail_and_await_retry`) or repairs the endpoint (:meth:`repair`)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.received = 0
        self.held = 0
        self._to_fail = 0
        self._repaired = False

    def respond(self) -> Reply:
        with self._changed:
            self.received += 1
            self.held += 1
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._to_fail > 0 or self._repaired, HOLD_S)
            self.held -= 1
            if self._repaired:
                return 200, {}
            self._to_fail = max(self._to_fail - 1, 0)
            return 500, {}

    def await_held(self) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.held > 0, WAIT_S), "no request came"

    def fail_and_await_retry(self) -> None:
        """Fail the request being held, then wait until the next attempt is held."""
        with self._changed:
            seen = self.received
            self._to_fail += 1
            self._changed.notify_all()
            retried = self._changed.wait_for(lambda: self.received > seen and self.held, WAIT_S)
        assert retried, "the failing destination was not retried"

    def repair(self) -> None:
        with self._changed:
            self._repaired = True
            self._changed.notify_all()


def test_a_failing_destination_does_not_hold_back_another_tenant(
    stack_endpoints: StackEndpoints, monkeypatch: Any
) -> None:
    """Two tenants in one partition: one's endpoint fails until it is repaired; the other
    receives its events meanwhile. The failing endpoint answers only when the test says
    so: each round of the healthy tenant is delivered while a request to the failing one
    is unanswered, after that one has failed once more, whatever the machine's speed.
    After the repair the failing one catches up on its own, with nothing lost."""
    settings = sink_settings(stack_endpoints, sink_request_timeout_s=HOLD_S)
    try:
        down_endpoint = HeldEndpoint()

        def respond(path: str, _attempt: int) -> Reply:
            return down_endpoint.respond() if path == "/down" else (200, {})

        down_tenant, up_tenant = tenants_in_one_partition(settings, 2)
        with webhook_receiver(Receiver(respond=respond)) as receiver:
            down = webhook_destination(down_tenant, receiver.url + "/down")
            up = webhook_destination(up_tenant, receiver.url + "/up", max_age_s=1.0)
            put_destinations(settings, down, up)
            with running_worker(settings, monkeypatch):
                try:
                    failing = publish(settings, tenant_events(down_tenant, 200))
                    down_endpoint.await_held()
                    for _ in range(3):  # several rounds while the other one keeps failing
                        flowing = publish(settings, tenant_events(up_tenant, 50))
                        receiver.wait_for_ids(set(flowing), "/up", timeout_s=WAIT_S)
                        assert down_endpoint.held == 1, "delivered while the other one's is not"
                        down_endpoint.fail_and_await_retry()
                    wait_until(
                        lambda: _failures_recorded(settings, down.id),
                        WAIT_S,
                        "the failures in the destination's health",
                    )
                finally:
                    down_endpoint.repair()  # nothing stays held, on failure too
                receiver.wait_for_ids(set(failing), "/down", timeout_s=WAIT_S)
        assert Counter(receiver.ids("/down")) == Counter(failing)
    finally:
        drop_topics(settings)


def _failures_recorded(settings: AuditlogSettings, destination_id: str) -> bool:
    health = destination_health(
        wiring.kafka_connection(settings), settings.sink_progress_topic, destination_id
    )
    return health.consecutive_failures > 0 and health.last_error is not None
