"""Benchmark: what the one-tenant-per-record check costs the writer, per record.

Generates ``--events`` events the way our producer publishes them (key = tenant,
``auditlog-tenant`` header first, single-object encoding) as confluent_kafka ``Message``
objects, before any clock starts, then times on this process's CPU clock, best of
``--repeats``:

- ``prepare_with_check``: :meth:`BatchInserter.prepare` of one batch of them, as the
  writer runs it (slicing the datums, then :func:`schemas.tenancy.disagreements`);
- ``prepare_without_check``: the same with the check replaced by one that finds nothing;
- ``check_fast_path``: :func:`schemas.tenancy.disagreements` alone (no Python call per
  record when the batch looks like our producer's);
- ``check_record_by_record``: the per-record path it falls back to.

Prints one JSON object with microseconds per record of each, and the machine. No broker or
engine is needed.

    python -m bench.tenant_check [--events 50000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from confluent_kafka import Message

from bench.common import machine
from consumers import inserter
from consumers.batches import Batch
from producers.generator import GeneratorConfig, generate
from schemas import headers as h
from schemas import tenancy
from schemas.validation import EventValidator
from schemas.wire import SingleObjectEncoder


def _records(events: int) -> list[Message]:
    config = GeneratorConfig(
        events=events, tenants=50, seed=3, start=datetime.now(UTC) - timedelta(days=3)
    )
    validator, encoder = EventValidator(), SingleObjectEncoder()
    records = []
    for offset, event in enumerate(generate(config)):
        datum = validator.validate(event).to_avro()
        tenant = str(datum["tenant_id"]).encode()
        headers: list[tuple[str, str | bytes | None]] = [
            (h.TENANT, tenant),
            (h.ACTION, str(datum["action"]).encode()),
            (h.CATEGORY, str(datum["category"]).encode()),
            (h.EVENT_ID, str(datum["event_id"]).encode()),
            (h.SCHEMA, encoder.schema_ref.encode()),
        ]
        records.append(
            Message(
                topic="audit.events",
                partition=0,
                offset=offset,
                key=tenant,
                value=encoder.encode(datum),
                headers=headers,
            )
        )
    return records


def _best_us_per_record(action: Callable[[], Any], records: int, repeats: int) -> float:
    action()  # warm up
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)
    return round(best / records * 1e6, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    records = _records(args.events)
    batch = Batch("audit.events", 0, tuple(records))
    datums = [bytes(r.value() or b"")[10:] for r in records]
    keys = [r.key() for r in records]
    prepare = inserter.BatchInserter(client=None, table="audit.events")  # type: ignore[arg-type]

    def time_it(action: Callable[[], Any]) -> float:
        return _best_us_per_record(action, len(records), args.repeats)

    result: dict[str, Any] = {
        "benchmark": "tenant_check",
        "events": len(records),
        "prepare_with_check_us": time_it(lambda: prepare.prepare(batch)),
        "check_fast_path_us": time_it(lambda: tenancy.disagreements(records, datums)),
        "check_record_by_record_us": time_it(lambda: tenancy._each(records, datums, keys)),
    }
    with mock.patch("consumers.inserter.disagreements", return_value=[]):
        result["prepare_without_check_us"] = time_it(lambda: prepare.prepare(batch))
    assert not tenancy.disagreements(records, datums), "the generated records all agree"
    result["machine"] = machine()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
