"""What every benchmark shares: the machine description and services of its own."""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from deploy.stack import kafka, minio_binary, processes, s3
from deploy.stack.clickhouse import start_clickhouse, stop_clickhouse
from deploy.stack.endpoints import S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV, S3Keys
from producers.config import ProducerConfig
from producers.metrics import producer_metrics
from producers.producer import AuditProducer
from runtime.kafka_connection import KafkaConnection
from schemas.versions import current

REPO = Path(__file__).resolve().parents[1]


def machine() -> dict[str, Any]:
    """The machine a result was measured on."""
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


@contextlib.contextmanager
def private_kafka(bootstrap: str | None = None) -> Iterator[str]:
    """``bootstrap`` if given, else a broker of the benchmark's own in a temporary
    directory, stopped on exit."""
    if bootstrap:
        yield bootstrap
        return
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as tmp:
        data_dir = Path(tmp)
        ports = kafka.KafkaPorts(processes.choose_port(0), processes.choose_port(0))
        kafka.start_kafka(data_dir=data_dir, cache_dir=REPO / ".cache", ports=ports)
        try:
            yield ports.bootstrap
        finally:
            kafka.stop_kafka(data_dir)


@contextlib.contextmanager
def private_clickhouse(url: str | None = None) -> Iterator[str]:
    """``url`` if given, else a ClickHouse gateway (chdb) of the benchmark's own in a
    temporary directory, stopped on exit; yields its HTTP URL."""
    with private_clickhouse_process(url) as (found, _pid):
        yield found


@contextlib.contextmanager
def private_clickhouse_process(url: str | None = None) -> Iterator[tuple[str, int | None]]:
    """:func:`private_clickhouse`, also yielding the gateway's pid (None for ``url``), so
    the engine's CPU time can be read apart from the client's."""
    if url:
        yield url, None
        return
    with tempfile.TemporaryDirectory(prefix="bench-clickhouse-") as tmp:
        data_dir = Path(tmp)
        port = processes.choose_port(0)
        record = start_clickhouse(data_dir=data_dir, port=port)
        try:
            yield f"http://127.0.0.1:{port}", record.pid
        finally:
            stop_clickhouse(data_dir)


@contextlib.contextmanager
def private_s3(endpoint: str | None = None) -> Iterator[tuple[str, S3Keys]]:
    """``endpoint`` if given (with the keys ``auditlog stack up`` exports), else a MinIO
    server of the benchmark's own (a process, in a temporary directory; its root keys),
    stopped on exit; yields its URL and keys."""
    if endpoint:
        yield endpoint, S3Keys(os.environ[S3_ACCESS_KEY_ENV], os.environ[S3_SECRET_KEY_ENV])
        return
    binary = minio_binary.ensure_minio(REPO / ".cache")
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        data_dir = Path(tmp)
        port = processes.choose_port(0)
        root, _user = s3.stack_keys(data_dir)
        s3.start_s3(data_dir=data_dir, binary=binary, port=port, root=root)
        try:
            yield f"http://127.0.0.1:{port}", root
        finally:
            s3.stop_s3(data_dir)


# The Avro schema's top-level fields: the events table's columns of the same names.
FIELDS = tuple(field["name"] for field in current().schema["fields"])
_TUPLES = frozenset({"actor", "resource", "workspace", "request", "outcome"})


def decoded_columns(records: list[dict[str, Any]]) -> list[list[Any]]:
    """Decoded events as column data for ``client.insert(..., column_names=FIELDS,
    column_oriented=True)``: the usual per-record way the benchmarks compare against."""
    columns: list[list[Any]] = []
    for name in FIELDS:
        if name in _TUPLES:
            columns.append([tuple(r[name].values()) for r in records])
        elif name == "changes":
            columns.append([[tuple(c.values()) for c in r[name]] for r in records])
        else:
            columns.append([r[name] for r in records])
    return columns


def publish_at_rate(
    producer: AuditProducer, pool: Sequence[dict[str, Any]], rate: float, duration_s: float
) -> tuple[int, float]:
    """Publish datums from ``pool`` (round robin, each with a fresh ``event_id`` and
    ``occurred_at`` = now) at ``rate`` events/s for ``duration_s``; returns (sent, seconds)."""
    sent = 0
    began = time.monotonic()
    while (elapsed := time.monotonic() - began) < duration_s:
        due = int(elapsed * rate) + 1
        while sent < due:
            datum = pool[sent % len(pool)]
            datum["event_id"] = str(uuid.uuid4())
            datum["occurred_at"] = time.time_ns() // 1_000_000
            producer.publish_datum(datum)
            sent += 1
        time.sleep(0.001)
    return sent, time.monotonic() - began


def publish_backlog(
    bootstrap: str,
    topic: str,
    datums: Iterable[dict[str, Any]],
    *,
    events: int,
    client_id: str,
    path: str,
) -> dict[str, Any]:
    """Publish ``datums`` (``events`` of them) through the SDK's bulk path
    (``publish_datum``), timed with whatever produces them; raises unless every one was
    delivered. ``path`` says how they were made, for the result."""
    config = ProducerConfig(KafkaConnection(bootstrap), topic=topic, client_id=client_id)
    began = time.perf_counter()
    producer = AuditProducer(config, metrics=producer_metrics(CollectorRegistry()))
    try:
        for datum in datums:
            producer.publish_datum(datum)
    finally:
        report = producer.close()
    seconds = time.perf_counter() - began
    if report.delivered != events:
        raise RuntimeError(f"backlog incomplete: {report}")
    return {
        "events": events,
        "seconds": round(seconds, 1),
        "events_per_s": round(events / seconds),
        "path": path,
        "compression": config.compression,
    }
