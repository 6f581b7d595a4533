"""A large backlog published fast: a pool of events validated and encoded once, then sent
by the Kafka client directly, each copy with an event id of its own.

For runs of millions of events (the memory soaks), where generating and validating every
event would take longer than the run itself. Each record is what the SDK's bulk path sends
(key = tenant id, the five ``auditlog-*`` headers, single-object encoded value, zstd, the
SDK's producer settings); only the event id differs from the pooled event's: the 36
characters after the value's 10-byte header and the one-byte length (a canonical UUID), and
the ``auditlog-event-id`` header.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from producers.config import ProducerConfig
from producers.generator import GeneratorConfig, generate
from runtime.kafka_connection import KafkaConnection
from schemas import headers as h
from schemas.validation import EventValidator
from schemas.wire import SingleObjectEncoder

_ID_AT = 10 + 1  # single-object header, then the event id's length byte (36 -> 0x48)
_ID_LENGTH = 36


def event_pool(
    size: int, tenants: int = 200, seed: int = 11
) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """``size`` generated events, validated and encoded: (key, value, headers) each."""
    start = datetime.now(UTC) - timedelta(hours=2)
    config = GeneratorConfig(
        events=size, tenants=tenants, seed=seed, start=start, mean_gap_ms=1.0, diurnal=False
    )
    validator = EventValidator()
    encoder = SingleObjectEncoder()
    schema_ref = encoder.schema_ref.encode()
    pool = []
    for event in generate(config):
        datum = validator.validate(event).to_avro()
        value = encoder.encode(datum)
        if value[_ID_AT - 1] != _ID_LENGTH * 2 or len(str(datum["event_id"])) != _ID_LENGTH:
            raise ValueError("a pooled event's id is not a canonical UUID")
        tenant = str(datum["tenant_id"]).encode()
        headers = [
            (h.TENANT, tenant),
            (h.ACTION, str(datum["action"]).encode()),
            (h.CATEGORY, str(datum["category"]).encode()),
            (h.EVENT_ID, str(datum["event_id"]).encode()),
            (h.SCHEMA, schema_ref),
        ]
        pool.append((tenant, value, headers))
    return pool


def _event_id(n: int, run: int) -> bytes:
    """A canonical-UUID-shaped id, unique per (run, n)."""
    digits = f"{run:08x}{n:024x}"
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-8{digits[17:20]}-{digits[20:]}".encode()


def publish_pooled(
    bootstrap: str,
    topic: str,
    events: int,
    *,
    pool_size: int = 20_000,
    run: int = 1,
    client_id: str = "bench-pooled-backlog",
    pool: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] | None = None,
) -> dict[str, Any]:
    """Publish ``events`` records cycling through a pool of ``pool_size`` encoded events
    (``pool`` if given); raises unless every one was delivered. ``run`` tells the event
    ids of one call from another's."""
    pool = pool or event_pool(pool_size)
    pool_size = len(pool)
    config = ProducerConfig(KafkaConnection(bootstrap), topic=topic, client_id=client_id)
    producer = Producer(config.client_properties())
    failed: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failed.append(error)

    began = time.perf_counter()
    for n in range(events):
        key, value, headers = pool[n % pool_size]
        event_id = _event_id(n, run)
        value = value[:_ID_AT] + event_id + value[_ID_AT + _ID_LENGTH :]
        record_headers: list[tuple[str, str | bytes | None]] = [
            *headers[:3],
            (h.EVENT_ID, event_id),
            headers[4],
        ]
        while True:
            try:
                producer.produce(
                    topic, value=value, key=key, headers=record_headers, on_delivery=delivered
                )
                break
            except BufferError:
                producer.poll(0.05)
        if n % 1000 == 0:
            producer.poll(0)
    left = producer.flush(300)
    seconds = time.perf_counter() - began
    if left or failed:
        raise RuntimeError(
            f"pooled backlog: {left} undelivered, {len(failed)} failed: {failed[:3]}"
        )
    return {
        "events": events,
        "pool": pool_size,
        "seconds": round(seconds, 1),
        "events_per_s": round(events / seconds),
        "path": "pooled: validated + encoded once, event id rewritten, Producer.produce",
        "compression": config.compression,
    }
