"""Benchmark: events/s through the producer SDK into a real local Kafka broker.

Measures, in one run and one process pinned to one core (the broker runs beside it):

- ``validated``: ``AuditProducer.publish`` = pydantic validation + catalog rules + encode +
  produce, flushed at the end;
- ``bulk``: ``publish_datum`` on events validated beforehand (encode + produce);
- the cost per event of validation, of building the datum, and of encoding alone;
- ``ceiling_produce_only``: the Kafka client alone on pre-encoded values, one key, no
  headers (what is left for Python on top of the client's own work on that core);
- ``client_same_records``: the client alone on the records ``publish_datum`` builds (the
  same tenant keys and routing headers), the fair floor.

Each phase reports the CPU of the whole process per event (librdkafka's threads included)
beside its wall-clock rate, and ``cpu_over_*`` the ratio of each path to each floor.

Events come from the synthetic generator, made before the clock starts.

    python -m bench.producer_throughput [--events 200000] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from fastavro import schemaless_writer
from prometheus_client import CollectorRegistry

from bench.common import machine, private_kafka
from producers.config import ProducerConfig
from producers.generator import GeneratorConfig, generate
from producers.metrics import producer_metrics
from producers.producer import AuditProducer
from runtime.kafka_connection import KafkaConnection
from schemas import headers as h
from schemas.validation import EventValidator
from schemas.versions import current
from schemas.wire import SingleObjectEncoder

GAP_MS = 5.0


def _per_event_us(action: Callable[[Any], object], items: Sequence[Any]) -> float:
    """CPU time of this process per event (the machine is shared: not wall-clock)."""
    began = time.process_time()
    for item in items:
        action(item)
    return round((time.process_time() - began) / len(items) * 1e6, 2)


def _drain(
    producer: AuditProducer, publish: Callable[[Any], object], items: Sequence[Any]
) -> dict[str, Any]:
    began, cpu = time.perf_counter(), time.process_time()
    for item in items:
        publish(item)
    report = producer.flush()
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    if not report.ok or report.delivered != len(items):
        raise RuntimeError(f"delivery incomplete: {report}")
    return _rates(len(items), seconds, cpu)


def _rates(events: int, seconds: float, cpu_s: float) -> dict[str, Any]:
    """Wall-clock rate, and CPU of the whole process (librdkafka's threads included) per
    event: the rate one core could sustain is 1e6 / cpu_us_per_event."""
    return {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds),
        "cpu_us_per_event": round(cpu_s / events * 1e6, 2),
        "events_per_cpu_s": round(events / cpu_s),
    }


Record = tuple[bytes, bytes, list[tuple[str, str | bytes | None]] | None]


def _produce_only(config: ProducerConfig, records: Sequence[Record]) -> dict[str, Any]:
    """The client alone on pre-built records (value, key, headers): no Python work per
    event beyond ``produce``, no Python delivery callbacks."""
    client = Producer({**config.client_properties(), "delivery.report.only.error": True})
    client.produce(config.topic, b"warm-up")
    client.flush(30)
    began, cpu = time.perf_counter(), time.process_time()
    for value, key, headers in records:
        while True:
            try:
                client.produce(config.topic, value, key, headers=headers)
                break
            except BufferError:
                client.poll(0.005)
    if client.flush(60):
        raise RuntimeError("produce-only phase did not drain")
    return _rates(len(records), time.perf_counter() - began, time.process_time() - cpu)


def _same_records(encoder: SingleObjectEncoder, datums: Sequence[Any]) -> list[Record]:
    """What ``publish_datum`` hands the client: each event's key and routing headers."""
    schema = encoder.schema_ref.encode()
    return [
        (
            encoder.encode(d),
            d["tenant_id"].encode(),
            [
                (h.TENANT, d["tenant_id"].encode()),
                (h.ACTION, d["action"].encode()),
                (h.CATEGORY, d["category"].encode()),
                (h.EVENT_ID, d["event_id"].encode()),
                (h.SCHEMA, schema),
            ],
        )
        for d in datums
    ]


def run(bootstrap: str, events: int, compression: str) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(milliseconds=1.2 * GAP_MS * events + 60_000)
    generated = list(
        generate(
            GeneratorConfig(
                events=events, tenants=200, seed=1, start=start, mean_gap_ms=GAP_MS, diurnal=False
            )
        )
    )
    validator = EventValidator()
    topic = f"bench.producer.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=12)])[topic].result(timeout=30)

    validated = [validator.validate(e) for e in generated]
    datums = [e.to_avro() for e in validated]
    encoder = SingleObjectEncoder()
    parsed = current().parsed
    costs = {
        "model_validate_us": _per_event_us(validator.validate, generated),
        "model_to_datum_us": _per_event_us(lambda e: e.to_avro(), validated),
        "validate_datum_us": _per_event_us(validator.validate_datum, generated),
        "encode_us": _per_event_us(encoder.encode, datums),
        "encode_fastavro_us": _per_event_us(
            lambda d: schemaless_writer(io.BytesIO(), parsed, d), datums
        ),
        "encoded_bytes_mean": round(
            sum(len(encoder.encode(d)) for d in datums[:10_000]) / min(events, 10_000)
        ),
    }
    config = ProducerConfig(
        KafkaConnection(bootstrap), topic=topic, client_id="bench", compression=compression
    )
    result: dict[str, Any] = {
        "topic_partitions": 12,
        "compression": compression,
        "per_event": costs,
    }
    with AuditProducer(config, metrics=producer_metrics(CollectorRegistry())) as producer:
        producer.publish_datum(datums[0])  # connect and learn the metadata first
        producer.flush()
        result["validated"] = _drain(producer, producer.publish, generated)
        result["bulk"] = _drain(producer, producer.publish_datum, datums)
    result["ceiling_produce_only"] = _produce_only(
        config, [(encoder.encode(d), b"tenant", None) for d in datums]
    )
    # The fair floor: the same keys (200 tenants over 12 partitions, not one) and headers.
    result["client_same_records"] = _produce_only(config, _same_records(encoder, datums))
    result["validation_cost_ratio"] = round(
        result["bulk"]["events_per_s"] / result["validated"]["events_per_s"], 2
    )
    for name in ("ceiling_produce_only", "client_same_records"):
        floor = result[name]["cpu_us_per_event"]
        costs[f"{name}_us"] = floor
        result[f"cpu_over_{name}"] = {
            "validated": round(result["validated"]["cpu_us_per_event"] / floor, 2),
            "bulk": round(result["bulk"]["cpu_us_per_event"] / floor, 2),
        }
    admin.delete_topics([topic])[topic].result(timeout=30)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--all-cores", action="store_true", help="do not pin to one core")
    parser.add_argument("--compression", default="zstd", help="producer compression codec")
    args = parser.parse_args(argv)
    with private_kafka(args.bootstrap) as bootstrap:
        if not args.all_cores:
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        result = run(bootstrap, args.events, args.compression)
    result["cpu_affinity"] = sorted(os.sched_getaffinity(0))
    result["machine"] = machine()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
