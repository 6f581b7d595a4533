"""Benchmark: what the integrity records' header check costs ordinary events, beside the
per-record work it is added to, in one process (CPU time, best of ``--rounds``).

Integrity records (docs/integrity.md, "Streamed copies") carry the header
``auditlog-record: integrity``; every event is checked for it once:

- the writer: :func:`schemas.headers.any_integrity` over a batch's records in
  :meth:`consumers.inserter.BatchInserter.prepare` (``writer_check_us``), beside the whole
  ``prepare`` (``writer_prepare_us``, the check included);
- the sink loop: ``INTEGRITY_HEADER in headers`` in :meth:`sinks.routing.Router.offer`
  (``sink_check_us``; the headers are read once there and reused for the tenant check),
  beside the whole ``offer`` of the record to one lane (``sink_offer_us``).

Events are real ``confluent_kafka.Message`` objects with the five headers the SDK sets.
No broker. Prints one JSON object.

    python -m bench.integrity_header_check [--events 50000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from confluent_kafka import Message
from prometheus_client import CollectorRegistry

from consumers.batches import Batch
from consumers.inserter import BatchInserter
from schemas import headers as h
from schemas.validation import EventValidator
from schemas.wire import Decoder, SingleObjectEncoder
from sinks.destinations.model import BatchLimits, Destination, SecretValue, WebhookTarget
from sinks.lane import Lane
from sinks.metrics import sink_metrics
from sinks.routing import Router
from sinks.stats import SinkStats
from tests.events import valid_event

BATCH = 5_000


def _messages(count: int) -> list[Message]:
    encoder, datum = SingleObjectEncoder(), EventValidator().validate(valid_event()).to_avro()
    tenant = str(datum["tenant_id"]).encode()
    out = []
    for i in range(count):
        datum["event_id"] = uuid.UUID(int=i + 1)
        headers: list[tuple[str, str | bytes | None]] = [
            (h.TENANT, tenant),
            (h.ACTION, str(datum["action"]).encode()),
            (h.CATEGORY, str(datum["category"]).encode()),
            (h.EVENT_ID, str(datum["event_id"]).encode()),
            (h.SCHEMA, encoder.schema_ref.encode()),
        ]
        out.append(
            Message(
                topic="audit.events",
                partition=0,
                offset=i,
                key=tenant,
                value=encoder.encode(datum),
                headers=headers,
                timestamp=(1, 2_000_000_000_000),
            )
        )
    return out


def _best_us(rounds: int, count: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return round(best / count * 1e6, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    messages = _messages(args.events)
    batches = [
        Batch("audit.events", 0, tuple(messages[i : i + BATCH]))
        for i in range(0, len(messages), BATCH)
    ]
    inserter = BatchInserter(client=None, table="audit.events")  # type: ignore[arg-type]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    destination = Destination(
        id="wh-bench",
        tenant_id=messages[0].key().decode(),  # type: ignore[union-attr]
        target=WebhookTarget(url="https://example.com/", signing_secret=SecretValue(ref="env:S")),
        batch=BatchLimits(max_records=10_000),
        created_at=at,
        updated_at=at,
    )

    def offer_all() -> None:
        router = Router(None, Decoder(), sink_metrics(CollectorRegistry()), SinkStats())  # type: ignore[arg-type]
        lane = Lane(destination, 0, done_until=0, mode="live")
        for offset, message in enumerate(messages):
            router.offer(message, offset, [lane], 0.0)
            lane.ready.clear()

    def sink_checks() -> None:
        for message in messages:
            headers = message.headers()
            _ = headers and h.INTEGRITY_HEADER in headers

    count, rounds = args.events, args.rounds
    result = {
        "events": count,
        "rounds": rounds,
        "writer_prepare_us": _best_us(rounds, count, lambda: list(map(inserter.prepare, batches))),
        "writer_check_us": _best_us(
            rounds, count, lambda: [h.any_integrity(b.records) for b in batches]
        ),
        "sink_offer_us": _best_us(rounds, count, offer_all),
        "sink_check_us": _best_us(rounds, count, sink_checks),
    }
    result["writer_check_share_of_prepare"] = round(
        result["writer_check_us"] / result["writer_prepare_us"], 3
    )
    result["sink_check_share_of_offer"] = round(
        result["sink_check_us"] / result["sink_offer_us"], 3
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
