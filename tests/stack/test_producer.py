"""The producer SDK against the real broker: every event arrives once, keyed and ordered
by tenant; a full queue pushes back instead of losing events; a stopped broker surfaces
delivery failures to the caller."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import CollectorRegistry

from deploy.stack import kafka, processes
from deploy.stack.endpoints import StackEndpoints
from producers.config import ProducerConfig
from producers.delivery import DeliveryError, DeliveryResult, PublishTimeoutError
from producers.metrics import producer_metrics
from producers.producer import AuditProducer
from runtime.kafka_connection import KafkaConnection
from schemas import headers as h
from schemas.wire import Decoder
from tests.events import valid_event
from tests.unit.http_receiver import closed_port

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0


def _create_topic(bootstrap: str, partitions: int = 6) -> str:
    name = f"test.producer.{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions)])[name].result(timeout=30)
    return name


@pytest.fixture
def topic(stack_endpoints: StackEndpoints) -> Iterator[str]:
    name = _create_topic(stack_endpoints.kafka_bootstrap)
    yield name
    admin = AdminClient({"bootstrap.servers": stack_endpoints.kafka_bootstrap})
    admin.delete_topics([name])[name].result(timeout=30)


Record = tuple[bytes, dict[str, bytes], bytes, int]


def _consume_all(bootstrap: str, topic: str, count: int) -> list[Record]:
    """(key, headers, value, partition) of ``count`` records, in per-partition order."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records: list[Record] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(records) < count and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                assert msg.error() is None, msg.error()
                key, value, partition = msg.key(), msg.value(), msg.partition()
                assert isinstance(key, bytes)
                assert isinstance(value, bytes)
                assert partition is not None
                records.append((key, h.header_map(msg.headers()), value, partition))
    finally:
        consumer.close()
    assert len(records) == count, f"consumed {len(records)} of {count}"
    return records


def test_every_event_arrives_once_keyed_and_in_order_per_tenant(
    stack_endpoints: StackEndpoints, topic: str
) -> None:
    tenants = [f"tenant-{i}" for i in range(17)]
    published: dict[str, list[str]] = defaultdict(list)
    results: list[DeliveryResult] = []
    config = ProducerConfig(KafkaConnection(stack_endpoints.kafka_bootstrap), topic=topic)
    with AuditProducer(config, on_delivery=results.append) as producer:
        for seq in range(3000):
            tenant = tenants[seq % len(tenants)] if seq % 5 else tenants[0]  # skewed
            event_id = producer.publish(valid_event(tenant_id=tenant, details={"seq": str(seq)}))
            published[tenant].append(event_id)
    assert len(results) == 3000
    assert all(r.ok for r in results)

    decoder = Decoder()
    seen: dict[str, list[str]] = defaultdict(list)
    partition_of: dict[str, set[int]] = defaultdict(set)
    for key, headers, value, partition in _consume_all(
        stack_endpoints.kafka_bootstrap, topic, 3000
    ):
        event = decoder.decode(value)
        tenant = key.decode()
        assert event["tenant_id"] == tenant == headers[h.TENANT].decode()
        assert headers[h.EVENT_ID].decode() == str(event["event_id"])
        assert headers[h.ACTION] == b"recipe.stopped"
        assert headers[h.CATEGORY] == b"recipes"
        assert headers[h.SCHEMA].startswith(b"fp:")
        seen[tenant].append(str(event["event_id"]))
        partition_of[tenant].add(partition)

    all_ids = [i for ids in seen.values() for i in ids]
    assert len(set(all_ids)) == 3000
    assert seen == published  # same ids per tenant, in publish order
    assert all(len(parts) == 1 for parts in partition_of.values())


def test_a_full_queue_pushes_back_and_loses_nothing(
    stack_endpoints: StackEndpoints, topic: str
) -> None:
    registry = CollectorRegistry()
    metrics = producer_metrics(registry)
    config = ProducerConfig(
        KafkaConnection(stack_endpoints.kafka_bootstrap),
        topic=topic,
        queue_max_events=20,
        linger_ms=50,
        publish_timeout_s=30,
    )
    with AuditProducer(config, metrics=metrics) as producer:
        ids = {producer.publish(valid_event(details={"n": str(n)})) for n in range(2000)}
        report = producer.flush()
    assert report.ok
    assert report.delivered == 2000
    assert (
        registry.get_sample_value("auditlog_producer_queue_full_waits_total", {"topic": topic}) or 0
    ) > 0
    assert registry.get_sample_value("auditlog_producer_published_total", {"topic": topic}) == 2000
    consumed = _consume_all(stack_endpoints.kafka_bootstrap, topic, 2000)
    assert {r[1][h.EVENT_ID].decode() for r in consumed} == ids


def test_publish_times_out_when_nothing_drains_the_queue() -> None:
    with closed_port() as refusing:  # bound without listening: nothing can answer there
        _publish_until_the_queue_times_out(f"127.0.0.1:{refusing.getsockname()[1]}")


def _publish_until_the_queue_times_out(bootstrap: str) -> None:
    config = ProducerConfig(
        KafkaConnection(bootstrap),
        topic="audit.events",
        queue_max_events=5,
        publish_timeout_s=0.5,
        delivery_timeout_s=2,
    )
    producer = AuditProducer(config, metrics=producer_metrics(CollectorRegistry()))
    queued = [producer.publish(valid_event()) for _ in range(5)]
    with pytest.raises(PublishTimeoutError, match="queue stayed full"):
        producer.publish(valid_event())
    with pytest.raises(DeliveryError) as exc:
        producer.close()
    assert sorted(r.event_id for r in exc.value.report.failed) == sorted(queued)


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A broker of this test's own, so the test may stop it."""
    data_dir = tmp_path / "kafka"
    broker = processes.choose_port(0)
    ports = kafka.KafkaPorts(broker=broker, controller=processes.choose_port(0, taken=[broker]))
    kafka.start_kafka(data_dir=data_dir, cache_dir=REPO / ".cache", ports=ports)
    yield ports.bootstrap, data_dir
    kafka.stop_kafka(data_dir)


def test_a_stopped_broker_surfaces_delivery_failures(private_broker: tuple[str, Path]) -> None:
    bootstrap, data_dir = private_broker
    topic = _create_topic(bootstrap, partitions=2)
    failures: list[DeliveryResult] = []
    config = ProducerConfig(KafkaConnection(bootstrap), topic=topic, delivery_timeout_s=3)
    producer = AuditProducer(config, metrics=producer_metrics(CollectorRegistry()))
    producer.publish(valid_event())
    assert producer.flush().delivered == 1

    kafka.stop_kafka(data_dir)
    lost = [producer.publish(valid_event(), on_delivery=failures.append) for _ in range(10)]
    with pytest.raises(DeliveryError, match="10 events failed") as exc:
        producer.close()
    assert sorted(r.event_id for r in exc.value.report.failed) == sorted(lost)
    assert sorted(r.event_id for r in failures) == sorted(lost)
    assert all(r.error for r in failures)


def test_produce_command_sends_valid_lines_and_reports_the_rest(
    stack_endpoints: StackEndpoints, topic: str, tmp_path: Path
) -> None:
    good = [valid_event(event_id=str(uuid.uuid4())) for _ in range(3)]
    lines = [
        json.dumps(good[0]),
        "{not json",
        json.dumps(good[1]),
        "",
        json.dumps(valid_event(action="recipe.teleported")),
        json.dumps(good[2]),
    ]
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(lines) + "\n")
    env = {
        **os.environ,
        "AUDITLOG_KAFKA_BOOTSTRAP": stack_endpoints.kafka_bootstrap,
        "AUDITLOG_EVENTS_TOPIC": topic,
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "auditlog.cli", "produce", *args, str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    dry = run("--dry-run")
    assert dry.returncode == 3, dry.stderr
    assert dry.stdout.strip() == "valid: 3, rejected: 2, failed: 0"

    done = run()
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip() == "sent: 3, rejected: 2, failed: 0"
    assert "line 2: not valid JSON" in done.stderr
    assert "line 5: invalid audit event: action" in done.stderr
    consumed = _consume_all(stack_endpoints.kafka_bootstrap, topic, 3)
    assert {r[1][h.EVENT_ID].decode() for r in consumed} == {e["event_id"] for e in good}


def test_generate_command_publishes_valid_activity(
    stack_endpoints: StackEndpoints, topic: str
) -> None:
    env = {
        **os.environ,
        "AUDITLOG_KAFKA_BOOTSTRAP": stack_endpoints.kafka_bootstrap,
        "AUDITLOG_EVENTS_TOPIC": topic,
    }
    done = subprocess.run(
        [sys.executable, "-m", "auditlog.cli", "generate", "--events", "800", "--tenants", "9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "sent: 800, failed: 0"
    records = _consume_all(stack_endpoints.kafka_bootstrap, topic, 800)
    decoder = Decoder()
    events = [decoder.decode(value) for _, _, value, _ in records]
    assert len({str(e["event_id"]) for e in events}) == 800
    assert {e["tenant_id"] for e in events} == {key.decode() for key, _, _, _ in records}
