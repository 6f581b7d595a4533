"""Benchmark: how many bytes an event takes on the wire, in Kafka and in ClickHouse.

Starts a broker and a ClickHouse gateway of its own (temporary directories, stopped at the
end), creates a topic of 12 partitions, migrates a database, publishes ``--events``
generated events (``producers.generator``: ``--tenants`` Zipf-sized accounts, one event
every ``--gap-ms`` of simulated time; validated, then the SDK's bulk path, zstd as the
producer sends them), and writes them with the ClickHouse writer
(:class:`consumers.writer.ClickHouseWriter`, default batch settings) into
``<db>.events``. Then it measures:

- ``kafka``: the record bytes a consumer reads (key + value + headers, uncompressed), and
  the bytes the broker keeps on disk for the topic (the partitions' ``.log`` segment
  files: zstd record batches with their headers; the index files are left out);
- ``clickhouse``: ``system.parts`` of the events table (active parts: rows, compressed and
  uncompressed column bytes, bytes on disk including marks and indexes) as the writer left
  it and again after ``OPTIMIZE TABLE ... FINAL`` (one part per partition, as settled
  months end up), and ``system.columns`` per column, largest first;
- ``integrity_leaves``: the integrity log's one row per event, made from the stored events
  by SQL (tenant, leaf index, partition, offset, event id, a 32-byte SHA-256 as leaf hash,
  which does not compress), measured the same way: it is kept after the events' TTL.

Prints one JSON object.

    python -m bench.storage_footprint [--events 1000000] [--tenants 200] [--gap-ms 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import CollectorRegistry

from bench.common import REPO, machine, private_clickhouse, publish_backlog
from consumers.dead_letter_budget import DeadLetterBudget, DeadLetterLimit
from consumers.dead_letter_publisher import DeadLetterPublisher
from consumers.metrics import writer_metrics
from consumers.migrations import apply_pending
from consumers.telemetry import Telemetry
from consumers.writer import ClickHouseWriter
from consumers.writer_config import WriterConfig
from deploy.stack import kafka, processes
from producers.generator import GeneratorConfig, generate
from runtime.health import HealthState
from runtime.kafka_connection import KafkaConnection
from schemas.validation import EventValidator

PARTITIONS = 12


def _backlog(events: int, tenants: int, gap_ms: float) -> Iterator[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(milliseconds=1.2 * gap_ms * events + 60_000)
    config = GeneratorConfig(
        events=events, tenants=tenants, seed=17, start=start, mean_gap_ms=gap_ms, diurnal=False
    )
    validator = EventValidator()
    return (validator.validate(event).to_avro() for event in generate(config))


def _record_bytes(bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    """What a consumer reads: key, value and header bytes, summed over every record."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-bytes-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    read = keys = values = headers = 0
    deadline = time.monotonic() + 600
    try:
        while read < events and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=50_000, timeout=0.2):
                if message.error() is not None:
                    continue
                read += 1
                keys += len(message.key() or b"")
                values += len(message.value() or b"")
                raw = message.headers() or []
                pairs = list(raw.items()) if isinstance(raw, dict) else raw
                headers += sum(len(name) + len(value or b"") for name, value in pairs)
    finally:
        consumer.close()
    if read != events:
        raise RuntimeError(f"read {read} of {events} records")
    return {
        "key_bytes_mean": round(keys / events, 1),
        "value_bytes_mean": round(values / events, 1),
        "header_bytes_mean": round(headers / events, 1),
        "record_bytes_mean": round((keys + values + headers) / events, 1),
    }


def _segment_bytes(data_dir: Path, topic: str) -> int:
    """Bytes of the topic's ``.log`` segment files (record batches as stored)."""
    return sum(
        path.stat().st_size
        for partition in range(PARTITIONS)
        for path in (data_dir / "data" / f"{topic}-{partition}").glob("*.log")
    )


def _write(bootstrap: str, url: str, topic: str, database: str, events: int) -> float:
    """Drain the topic into ``<database>.events`` with the writer; the seconds it took."""
    config = WriterConfig(
        kafka=KafkaConnection(bootstrap),
        topic=topic,
        group_id=f"bench-footprint-{uuid.uuid4().hex[:8]}",
        table=f"{database}.events",
        progress_table=f"{database}.writer_progress",
        exit_when_idle_s=5.0,
    )
    observer = Telemetry(
        writer_metrics(CollectorRegistry()), HealthState(config.group_id), topic, config.table
    )
    dead_letters = DeadLetterPublisher(KafkaConnection(bootstrap), f"{topic}.dlq")
    writer = ClickHouseWriter(
        config,
        clickhouse_connect.get_client(dsn=url),
        dead_letters=dead_letters,
        budget=DeadLetterBudget(DeadLetterLimit(), topic, f"{topic}.dlq"),
        observer=observer,
    )
    began = time.perf_counter()
    try:
        writer.run()
    finally:
        dead_letters.close()
    return time.perf_counter() - began


def _parts(client: Client, database: str, table: str, events: int) -> dict[str, Any]:
    row = client.query(
        "SELECT count(), sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes), "
        "sum(bytes_on_disk) FROM system.parts "
        "WHERE database = {db:String} AND table = {t:String} AND active",
        parameters={"db": database, "t": table},
    ).result_rows[0]
    parts, rows, compressed, uncompressed, on_disk = (int(v) for v in row)
    if rows != events:
        raise RuntimeError(f"{database}.{table} holds {rows} rows, expected {events}")
    return {
        "parts": parts,
        "rows": rows,
        "compressed_bytes": compressed,
        "uncompressed_bytes": uncompressed,
        "bytes_on_disk": on_disk,
        "ratio": round(uncompressed / compressed, 2),
        "compressed_bytes_per_event": round(compressed / rows, 1),
        "uncompressed_bytes_per_event": round(uncompressed / rows, 1),
        "on_disk_bytes_per_event": round(on_disk / rows, 1),
    }


def _columns(client: Client, database: str, table: str, rows: int) -> list[dict[str, Any]]:
    result = client.query(
        "SELECT name, data_compressed_bytes, data_uncompressed_bytes FROM system.columns "
        "WHERE database = {db:String} AND table = {t:String} "
        "ORDER BY data_compressed_bytes DESC",
        parameters={"db": database, "t": table},
    )
    return [
        {
            "column": name,
            "compressed_bytes_per_event": round(int(compressed) / rows, 1),
            "uncompressed_bytes_per_event": round(int(uncompressed) / rows, 1),
        }
        for name, compressed, uncompressed in result.result_rows
    ]


def _leaves(client: Client, database: str) -> None:
    """One integrity leaf per stored event, shaped as the appender writes them."""
    client.command(
        f"INSERT INTO {database}.integrity_leaves (tenant_id, leaf_index, partition, "
        "kafka_offset, event_id, leaf_hash, leaf_version) "
        "SELECT tenant_id, row_number() OVER (PARTITION BY tenant_id ORDER BY occurred_at) - 1, "
        f"cityHash64(tenant_id) % {PARTITIONS}, "
        f"row_number() OVER (PARTITION BY cityHash64(tenant_id) % {PARTITIONS} "
        "ORDER BY occurred_at), "
        "event_id, SHA256(toString(event_id)), 1 "
        f"FROM {database}.events",
        settings={"max_insert_block_size": 1_000_000},
    )


def run(bootstrap: str, kafka_dir: Path, url: str, args: argparse.Namespace) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    topic, database = f"bench.footprint.{suffix}", f"bench_footprint_{suffix}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    created = admin.create_topics([NewTopic(topic, PARTITIONS), NewTopic(f"{topic}.dlq", 1)])
    for future in created.values():
        future.result(timeout=30)
    client = clickhouse_connect.get_client(dsn=url)
    apply_pending(client, database=database)
    result: dict[str, Any] = {
        "events": args.events,
        "tenants": args.tenants,
        "gap_ms": args.gap_ms,
        "topic_partitions": PARTITIONS,
    }
    result["backlog"] = publish_backlog(
        bootstrap,
        topic,
        _backlog(args.events, args.tenants, args.gap_ms),
        events=args.events,
        client_id="bench-footprint",
        path="generate + validate + to_avro + publish_datum",
    )
    segments = _segment_bytes(kafka_dir, topic)
    records = _record_bytes(bootstrap, topic, args.events)
    result["kafka"] = records | {
        "segment_bytes": segments,
        "segment_bytes_per_event": round(segments / args.events, 1),
        "ratio": round(records["record_bytes_mean"] / (segments / args.events), 2),
    }
    result["writer_seconds"] = round(_write(bootstrap, url, topic, database, args.events), 1)
    events_table: dict[str, Any] = {"as_written": _parts(client, database, "events", args.events)}
    client.command(f"OPTIMIZE TABLE {database}.events FINAL")
    events_table["merged"] = _parts(client, database, "events", args.events)
    events_table["columns_merged"] = _columns(client, database, "events", args.events)
    result["clickhouse_events"] = events_table
    _leaves(client, database)
    client.command(f"OPTIMIZE TABLE {database}.integrity_leaves FINAL")
    result["clickhouse_integrity_leaves"] = _parts(
        client, database, "integrity_leaves", args.events
    )
    result["engine_version"] = client.server_version
    client.command(f"DROP DATABASE {database}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--gap-ms", type=float, default=1.0)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as tmp, private_clickhouse() as url:
        kafka_dir = Path(tmp)
        ports = kafka.KafkaPorts(processes.choose_port(0), processes.choose_port(0))
        kafka.start_kafka(
            data_dir=kafka_dir,
            cache_dir=Path(os.environ.get("AUDITLOG_CACHE_DIR", REPO / ".cache")),
            ports=ports,
        )
        try:
            result = run(ports.bootstrap, kafka_dir, url, args)
        finally:
            kafka.stop_kafka(kafka_dir)
    result["total_s"] = round(time.perf_counter() - began, 1)
    result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["machine"] = machine()
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
