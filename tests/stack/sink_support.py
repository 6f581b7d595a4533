"""Shared pieces of the sink tests: topics of their own, destinations, a local webhook
receiver with programmable faults, a worker on a thread, S3 objects read back."""

from __future__ import annotations

import contextlib
import gzip
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import CollectorRegistry

from auditlog import sink_wiring, wiring
from auditlog.settings import AuditlogSettings
from deploy.stack import s3
from deploy.stack.endpoints import StackEndpoints
from producers.producer import AuditProducer
from runtime.health import HealthState
from sinks.destinations.model import (
    BatchLimits,
    Destination,
    Filters,
    S3Target,
    SecretValue,
    WebhookTarget,
)
from sinks.signing import IDEMPOTENCY_HEADER, verify
from sinks.worker import SinkWorker
from tests.events import valid_event

PARTITIONS = 4
WEBHOOK_SECRET = "test-webhook-secret"


def sink_settings(endpoints: StackEndpoints, **overrides: Any) -> AuditlogSettings:
    """Settings with topics and a group of this test's own (the topics are created)."""
    suffix = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "kafka_bootstrap": endpoints.kafka_bootstrap,
        "s3_endpoint": endpoints.s3_endpoint,
        "events_topic": f"test.sink.{suffix}",
        "dead_letter_topic": f"test.sink.{suffix}.dlq",
        "destinations_topic": f"test.sink.{suffix}.destinations",
        "sink_progress_topic": f"test.sink.{suffix}.progress",
        "sink_group_id": f"sink-{suffix}",
        "sink_allow_local": True,
        "sink_retry_max_s": 1.0,
        "sink_park_after_s": 2.0,
        "sink_request_timeout_s": 2.0,
        "metrics_port": 0,
    }
    values.update(overrides)
    settings = AuditlogSettings(**values)
    admin = AdminClient(wiring.kafka_connection(settings).properties())
    topics = [
        NewTopic(settings.events_topic, PARTITIONS),
        NewTopic(settings.dead_letter_topic, 1),
        *(
            NewTopic(name, 1, config={"cleanup.policy": "compact"})
            for name in (settings.destinations_topic, settings.sink_progress_topic)
        ),
    ]
    for future in admin.create_topics(topics).values():
        future.result(timeout=30)
    return settings


def sink_env(settings: AuditlogSettings) -> dict[str, str]:
    """The ``AUDITLOG_*`` variables that point ``auditlog sink`` at these settings."""
    names = (
        "kafka_bootstrap",
        "events_topic",
        "dead_letter_topic",
        "destinations_topic",
        "sink_progress_topic",
        "sink_group_id",
        "sink_allow_local",
        "sink_retry_max_s",
        "sink_park_after_s",
        "sink_request_timeout_s",
        "metrics_port",
    )
    return {f"AUDITLOG_{name.upper()}": str(getattr(settings, name)) for name in names}


def drop_topics(settings: AuditlogSettings) -> None:
    admin = AdminClient(wiring.kafka_connection(settings).properties())
    names = [
        settings.events_topic,
        settings.dead_letter_topic,
        settings.destinations_topic,
        settings.sink_progress_topic,
    ]
    for future in admin.delete_topics(names).values():
        future.result(timeout=30)


def publish(settings: AuditlogSettings, events: list[dict[str, Any]]) -> list[str]:
    """Publish events through the SDK (validated); returns their ids in order."""
    return [event_id for event_id, _partition, _offset in publish_placed(settings, events)]


def publish_placed(
    settings: AuditlogSettings, events: list[dict[str, Any]]
) -> list[tuple[str, int, int]]:
    """Publish events through the SDK (validated); returns their ids, partitions and
    offsets in order."""
    with AuditProducer(
        wiring.producer_config(settings, client_id="sink-test"),
        validator=wiring.validator(settings),
    ) as producer:
        futures = [producer.publish_future(event) for event in events]
        producer.flush(30)
        placed = []
        for future in futures:
            result = future.result(timeout=30)
            assert result.partition is not None
            assert result.offset is not None
            placed.append((result.event_id, result.partition, result.offset))
        return placed


def tenants_in_one_partition(settings: AuditlogSettings, count: int) -> list[str]:
    """``count`` tenant ids whose events land in the same partition (found by publishing
    one probe event each)."""
    by_partition: dict[int, list[str]] = {}
    with AuditProducer(
        wiring.producer_config(settings, client_id="sink-test-probe"),
        validator=wiring.validator(settings),
    ) as producer:
        for n in range(64):
            tenant = f"tenant-{n}"
            result = producer.publish_future(tenant_events(tenant, 1)[0]).result(timeout=30)
            assert result.partition is not None
            found = by_partition.setdefault(result.partition, [])
            found.append(tenant)
            if len(found) == count:
                return found
    raise AssertionError("no partition got enough tenants")


def tenant_events(tenant: str, count: int, **overrides: Any) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        valid_event(
            tenant_id=tenant,
            occurred_at=(now - timedelta(seconds=count - i)).isoformat(),
            details={"n": str(i)},
            **overrides,
        )
        for i in range(count)
    ]


def _now() -> datetime:
    """Destinations receive events published from their creation on."""
    return datetime.now(UTC)


def webhook_destination(
    tenant: str, url: str, *, max_age_s: float = 0.5, **fields: Any
) -> Destination:
    return Destination(
        id=f"wh-{uuid.uuid4().hex[:8]}",
        tenant_id=tenant,
        target=WebhookTarget(
            url=url, signing_secret=SecretValue(ref="env:AUDITLOG_DEST_SECRET_SINK_TEST_SECRET")
        ),
        batch=BatchLimits(max_records=fields.pop("max_records", 200), max_age_s=max_age_s),
        compression=fields.pop("compression", "none"),
        created_at=fields.pop("created_at", _now()),
        updated_at=_now(),
        filters=fields.pop("filters", Filters()),
        **fields,
    )


def s3_destination(tenant: str, bucket: str, endpoint: str, **fields: Any) -> Destination:
    return Destination(
        id=f"s3-{uuid.uuid4().hex[:8]}",
        tenant_id=tenant,
        target=S3Target(
            bucket=bucket,
            endpoint_url=endpoint,
            access_key_id=SecretValue(ref="env:AUDITLOG_DEST_SECRET_SINK_TEST_S3_KEY"),
            secret_access_key=SecretValue(ref="env:AUDITLOG_DEST_SECRET_SINK_TEST_S3_SECRET"),
        ),
        batch=BatchLimits(
            max_records=fields.pop("max_records", 500), max_age_s=fields.pop("max_age_s", 0.5)
        ),
        created_at=_now(),
        updated_at=_now(),
        **fields,
    )


def put_destinations(settings: AuditlogSettings, *destinations: Destination) -> None:
    store = wiring.destination_store(settings)
    try:
        for destination in destinations:
            store.put(destination)
    finally:
        store.close()


def update_destination(
    settings: AuditlogSettings, destination_id: str, **changes: Any
) -> Destination:
    """Change a stored destination as ``destinations update`` does (next revision)."""
    store = wiring.destination_store(settings)
    try:
        current = store.get(destination_id)
        assert current is not None
        changed = current.model_copy(
            update={**changes, "revision": current.revision + 1, "updated_at": datetime.now(UTC)}
        )
        store.put(changed)
        return changed
    finally:
        store.close()


def secret_environment(endpoints: StackEndpoints | None = None) -> dict[str, str]:
    """The destinations' secrets, named under the default reference prefix (the S3 keys:
    the stack's development user's, when ``endpoints`` are given)."""
    found = {"AUDITLOG_DEST_SECRET_SINK_TEST_SECRET": WEBHOOK_SECRET}
    if endpoints is not None:
        found["AUDITLOG_DEST_SECRET_SINK_TEST_S3_KEY"] = endpoints.s3_keys.access_key
        found["AUDITLOG_DEST_SECRET_SINK_TEST_S3_SECRET"] = endpoints.s3_keys.secret_key
    return found


# -- a webhook receiver ------------------------------------------------------------------

Reply = tuple[int, dict[str, str]]


@dataclass
class Received:
    path: str
    idempotency_key: str
    event_ids: list[str]
    tenants: set[str]
    body: bytes = b""  # as it came (compressed, if it was)
    items: list[dict[str, Any]] = field(default_factory=list)  # events and integrity records


@dataclass
class Receiver:
    """Records signed POSTs; ``respond`` decides each answer (default 200). ``refused``:
    the POSTs answered with anything else. ``lock`` is notified on every attempt and every
    recorded request: wait on it, never sleep."""

    respond: Callable[[str, int], Reply] = lambda _path, _n: (200, {})
    requests: list[Received] = field(default_factory=list)
    refused: list[Received] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def ids(self, path: str | None = None) -> list[str]:
        with self.lock:
            return [i for r in self.requests if path in (None, r.path) for i in r.event_ids]

    def wait_for_ids(self, expected: set[str], path: str, timeout_s: float = 60) -> None:
        with self.lock:
            ok = self.lock.wait_for(
                lambda: (
                    expected <= {i for r in self.requests if r.path == path for i in r.event_ids}
                ),
                timeout_s,
            )
        if not ok:
            missing = expected - set(self.ids(path))
            raise AssertionError(f"{path}: {len(missing)} of {len(expected)} events not received")


@contextlib.contextmanager
def webhook_receiver(receiver: Receiver | None = None) -> Iterator[Receiver]:
    state = receiver or Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                state.attempts += 1
                attempt = state.attempts
                state.lock.notify_all()
            status, headers = state.respond(self.path, attempt)
            if status == 200:
                verify(body, dict(self.headers.items()), WEBHOOK_SECRET.encode())
            plain = (
                gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
            )
            events = _events(plain)
            received = Received(
                self.path,
                self.headers[IDEMPOTENCY_HEADER],
                [e["event_id"] for e in events if "type" not in e],  # integrity records aside
                {e["tenant_id"] for e in events},
                body,
                events,
            )
            with state.lock:
                (state.requests if status == 200 else state.refused).append(received)
                state.lock.notify_all()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = False  # server_close joins the request threads
    server.block_on_close = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def _events(body: bytes) -> list[dict[str, Any]]:
    """The events of a body in NDJSON or a JSON array (uncompressed)."""
    if body.startswith(b"["):
        events: list[dict[str, Any]] = json.loads(body)
        return events
    return [json.loads(line) for line in body.splitlines() if line.strip()]


# -- a worker on a thread ----------------------------------------------------------------


@contextlib.contextmanager
def running_worker(
    settings: AuditlogSettings,
    monkeypatch: Any,
    s3_stack: StackEndpoints | None = None,
    registry: CollectorRegistry | None = None,
    **overrides: Any,
) -> Iterator[SinkWorker]:
    """A sink worker running on a thread until the block ends (then stopped, joined);
    ``s3_stack``: the stack whose S3 keys the S3 destinations reference; ``registry``: where
    its metrics go (a registry of its own by default)."""
    for name, value in secret_environment(s3_stack).items():
        monkeypatch.setenv(name, value)
    with sink_wiring.sink_worker(
        settings,
        HealthState(settings.sink_group_id),
        exit_when_idle_s=None,
        registry=CollectorRegistry() if registry is None else registry,
    ) as worker:
        failure: list[BaseException] = []

        def run() -> None:
            try:
                worker.run()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                failure.append(exc)

        thread = threading.Thread(target=run, name="sink-worker")
        thread.start()
        try:
            yield worker
        finally:
            worker.stop()
            thread.join(60)
            assert not thread.is_alive(), "the worker did not stop"
        if failure:
            raise failure[0]


# -- S3 ----------------------------------------------------------------------------------


def new_bucket(stack: StackEndpoints) -> str:
    bucket = f"sink-{uuid.uuid4().hex[:12]}"
    s3.ensure_bucket(stack.s3_endpoint, stack.s3_keys, bucket)
    return bucket


def s3_objects(stack: StackEndpoints, bucket: str) -> dict[str, list[dict[str, Any]]]:
    """Every object of ``bucket`` and the events it holds."""
    client = s3.client(stack.s3_endpoint, stack.s3_keys)
    found: dict[str, list[dict[str, Any]]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            if item["Key"].endswith(".gz"):
                body = gzip.decompress(body)
            found[item["Key"]] = _events(body)
    return found


def sink_until_idle(
    env: dict[str, str], *, idle_s: float = 2, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """``auditlog sink --exit-when-idle IDLE_S`` with ``env``; bounded: a run that does not
    end within ``timeout_s`` fails the test."""
    return subprocess.run(
        [sys.executable, "-m", "auditlog.cli", "sink", "--exit-when-idle", str(idle_s)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
