"""The smoke flow ``auditlog demo`` runs until the pipeline exists: produce and consume
through the broker, insert and select through ClickHouse, put and get through S3.

Each step returns what it observed, so the demo can print it and tests can check it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import clickhouse_connect
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from deploy.stack.endpoints import StackEndpoints

SMOKE_TOPIC = "demo.smoke"
TENANTS = ("acme", "globex", "initech", "umbrella")


@dataclass(frozen=True)
class SmokeReport:
    run_id: str
    produced: int
    consumed: int
    rows_per_tenant: dict[str, int]
    s3_object: str
    seconds: float


def ensure_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    """Create ``topic`` unless it exists; blocks until the broker confirms."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=10).topics:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions)])
    try:
        futures[topic].result(timeout=30)
    except KafkaException as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise


def produce(bootstrap: str, topic: str, run_id: str, count: int) -> int:
    """Write ``count`` JSON messages keyed by tenant; returns how many were acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    acked = 0

    def on_delivery(err: object, _msg: object) -> None:
        nonlocal acked
        if err is None:
            acked += 1

    for seq in range(count):
        tenant = TENANTS[seq % len(TENANTS)]
        value = json.dumps({"run": run_id, "tenant": tenant, "seq": seq}).encode()
        producer.produce(topic, key=tenant.encode(), value=value, on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(30)
    if remaining:
        raise RuntimeError(f"{remaining} smoke messages were not delivered within 30 s")
    return acked


def consume(bootstrap: str, topic: str, run_id: str, expected: int) -> list[dict[str, object]]:
    """Read this run's messages with a fresh consumer group, commit, and return them."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"demo-smoke-{run_id}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    found: list[dict[str, object]] = []
    deadline = time.monotonic() + 60
    try:
        while len(found) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=1.0):
                if msg.error():
                    raise KafkaException(msg.error())
                record = json.loads(msg.value() or b"{}")
                if record.get("run") == run_id:
                    found.append(record)
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return found


def store(clickhouse_url: str, run_id: str, records: list[dict[str, object]]) -> dict[str, int]:
    """Insert the records into ``demo.smoke`` (TTL table) and count them back per tenant."""
    client = clickhouse_connect.get_client(dsn=clickhouse_url)
    try:
        client.command("CREATE DATABASE IF NOT EXISTS demo")
        client.command(
            "CREATE TABLE IF NOT EXISTS demo.smoke (run String, tenant LowCardinality(String), "
            "seq UInt32, stored_at DateTime DEFAULT now()) ENGINE = MergeTree "
            "ORDER BY (run, tenant, seq) TTL stored_at + INTERVAL 7 DAY"
        )
        rows = [[run_id, str(r["tenant"]), int(str(r["seq"]))] for r in records]
        client.insert("demo.smoke", rows, column_names=["run", "tenant", "seq"])
        result = client.query(
            "SELECT tenant, count() FROM demo.smoke WHERE run = {run:String} "
            "GROUP BY tenant ORDER BY tenant",
            parameters={"run": run_id},
        )
        return {str(tenant): int(n) for tenant, n in result.result_rows}
    finally:
        client.close()


def put_and_get(s3_endpoint: str, bucket: str, key: str, body: bytes) -> bytes:
    """Write an object to the S3 endpoint and read it back."""
    import boto3  # noqa: PLC0415 - boto3 is part of the local extra only

    from deploy.stack.s3 import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY  # noqa: PLC0415

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=LOCAL_ACCESS_KEY,
        aws_secret_access_key=LOCAL_SECRET_KEY,
    )
    client.put_object(Bucket=bucket, Key=key, Body=body)
    data: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def run(endpoints: StackEndpoints, bucket: str, count: int = 4000) -> SmokeReport:
    """The whole smoke flow; raises if any step loses or invents a message."""
    started = time.monotonic()
    run_id = uuid.uuid4().hex[:12]
    ensure_topic(endpoints.kafka_bootstrap, SMOKE_TOPIC)
    produced = produce(endpoints.kafka_bootstrap, SMOKE_TOPIC, run_id, count)
    records = consume(endpoints.kafka_bootstrap, SMOKE_TOPIC, run_id, produced)
    per_tenant = store(endpoints.clickhouse_url, run_id, records)
    expected = Counter(TENANTS[seq % len(TENANTS)] for seq in range(count))
    if per_tenant != dict(sorted(expected.items())):
        raise RuntimeError(f"ClickHouse holds {per_tenant}, expected {dict(expected)}")
    key = f"demo/{run_id}.json"
    body = json.dumps({"run": run_id, "rows_per_tenant": per_tenant}).encode()
    if put_and_get(endpoints.s3_endpoint, bucket, key, body) != body:
        raise RuntimeError(f"s3://{bucket}/{key} did not read back as written")
    return SmokeReport(
        run_id=run_id,
        produced=produced,
        consumed=len(records),
        rows_per_tenant=per_tenant,
        s3_object=f"s3://{bucket}/{key}",
        seconds=time.monotonic() - started,
    )
