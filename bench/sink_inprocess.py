"""Benchmark: one sink worker's own CPU and memory per event, in process, without a broker
or a destination.

A real :class:`sinks.worker.SinkWorker` (routing, lanes, dispatch, delivery threads that
encode each batch: NDJSON, gzip) is fed by a consumer that hands out ``--events`` records
of 12 partitions, made as they are handed out from a pool of generated, validated events
encoded once (one tenant's records in one partition, as the producer keys them), to one
webhook destination per tenant whose sender drops the payload. Nothing else runs in the
process, so its CPU time (user + system, ``getrusage``) is the worker's: the loop thread's
(``thread_time``) and the delivery threads' (the rest). The resident size is sampled at
each tenth of the events consumed, with the peak and the end.

Same-run comparisons of two versions of the code: run two copies side by side (each
``PYTHONPATH`` a checkout), so both see the same load.

    python -m bench.sink_inprocess [--events 200000] [--tenants 200] [--max-age-s 5]
    python -m bench.sink_inprocess --profile sink.prof  # the loop thread, cProfile
    python -m bench.sink_inprocess --prebuilt  # records built before: the loop only routes
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from confluent_kafka import TIMESTAMP_CREATE_TIME, Message, TopicPartition
from prometheus_client import CollectorRegistry

from bench.common import machine
from producers.generator import GeneratorConfig, generate
from runtime.compacted_table import Change
from runtime.group_consumer import GroupConsumer
from runtime.health import HealthState
from runtime.kafka_connection import KafkaConnection
from schemas.headers import ACTION, CATEGORY, EVENT_ID, TENANT
from schemas.validation import EventValidator
from schemas.wire import Decoder, SingleObjectEncoder
from sinks.destinations.model import BatchLimits, Destination, SecretValue, WebhookTarget
from sinks.destinations.store import DestinationCatalog
from sinks.metrics import sink_metrics
from sinks.progress import ProgressStore
from sinks.reader import PartitionReader
from sinks.senders.base import Payload, Receipt, Sender
from sinks.worker import SinkConfig, SinkWorker

TOPIC = "bench.sink.inprocess"
PARTITIONS = 12
POOL = 20_000


class _Table:
    """A compacted topic that holds ``rows`` and never changes."""

    def __init__(self, rows: dict[bytes, bytes]) -> None:
        self._rows = rows

    def load(self, timeout_s: float = 0.0) -> dict[bytes, bytes]:
        return dict(self._rows)

    def changes(self, timeout_s: float = 0.0) -> list[Change]:
        return []

    def read_to_end(self, apply: Any, *, timeout_s: float = 0.0) -> None:
        pass

    def close(self) -> None:
        pass


class _Writer:
    def put(self, key: bytes, value: bytes | None) -> None:
        pass

    def flush(self, timeout_s: float = 0.0) -> None:
        pass

    def close(self, timeout_s: float = 0.0) -> None:
        pass


class _Dropping:
    """A sender that drops what it gets (the payload is encoded by then)."""

    def send(self, payload: Payload) -> Receipt:
        return Receipt(f"dropped {len(payload.body)} bytes")

    def close(self) -> None:
        pass


class _Feed:
    """The group consumer: every partition assigned at the first ``consume``, then the
    records of :func:`_records` in order (none while paused: all partitions are paused
    and resumed together here)."""

    def __init__(self, records: Iterator[Message], ends: list[int]) -> None:
        self._records = records
        self._ends = ends
        self._on_assign: Any = None
        self.consumed = 0
        self.assigned = False
        self.paused = False  # the worker holds the group back (its memory budget)

    def subscribe(
        self, topics: list[str], on_assign: Any = None, on_revoke: Any = None, on_lost: Any = None
    ) -> None:
        self._on_assign = on_assign

    def memberid(self) -> str:
        return "bench"

    def consume(self, num_messages: int = 1, timeout: float = 0.0) -> list[Message]:
        if not self.assigned:
            self.assigned = True
            self._on_assign(self, [TopicPartition(TOPIC, p) for p in range(PARTITIONS)])
        out = []
        if not self.paused:
            out = [m for _, m in zip(range(num_messages), self._records, strict=False)]
        self.consumed += len(out)
        if not out:
            time.sleep(timeout)
        return out

    def committed(self, partitions: list[TopicPartition], timeout: float = 0.0) -> Any:
        return [TopicPartition(TOPIC, tp.partition, 0) for tp in partitions]

    def get_watermark_offsets(
        self, tp: TopicPartition, timeout: float = 0.0, cached: bool = False
    ) -> tuple[int, int]:
        return 0, self._ends[tp.partition]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused = True

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused = False

    def commit(self, offsets: Any = None, asynchronous: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


def _pool(tenants: int, count: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(hours=2)
    config = GeneratorConfig(
        events=count, tenants=tenants, seed=11, start=start, mean_gap_ms=1.0, diurnal=False
    )
    validator = EventValidator()
    return [validator.validate(event).to_avro() for event in generate(config)]


def _records(pool: list[dict[str, Any]], events: int, ends: list[int]) -> Iterator[Message]:
    """``events`` records: the pool's events (encoded once, fresh event ids) round after
    round, each record made as it is handed out (as a consumer makes its ``Message``), so
    the feed holds none; ``ends`` is filled with each partition's end offset first."""
    encoder = SingleObjectEncoder()
    tenants = sorted({str(d["tenant_id"]) for d in pool})
    partition_of = {tenant: n % PARTITIONS for n, tenant in enumerate(tenants)}
    prepared = []
    for datum in pool:
        datum["event_id"] = str(uuid.uuid4())
        tenant = str(datum["tenant_id"])
        key = tenant.encode()
        headers = [
            (TENANT, key),
            (ACTION, str(datum["action"]).encode()),
            (CATEGORY, str(datum["category"]).encode()),
            (EVENT_ID, datum["event_id"].encode()),
        ]
        prepared.append((partition_of[tenant], key, encoder.encode(datum), headers))
    rounds, rest = divmod(events, len(prepared))
    for n, (partition, _, _, _) in enumerate(prepared):
        ends[partition] += rounds + (1 if n < rest else 0)
    offsets = [0] * PARTITIONS
    at_ms = int(time.time() * 1000)
    for i in range(events):
        partition, key, value, headers = prepared[i % len(prepared)]
        yield Message(
            topic=TOPIC,
            partition=partition,
            offset=offsets[partition],
            key=key,
            value=value,
            headers=headers,
            error=None,
            timestamp=(TIMESTAMP_CREATE_TIME, at_ms),
        )
        offsets[partition] += 1


def _rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(args: argparse.Namespace) -> dict[str, Any]:
    pool = _pool(args.tenants, min(args.events, POOL))
    tenants = sorted({str(d["tenant_id"]) for d in pool})
    created = datetime.now(UTC) - timedelta(days=1)
    batch = BatchLimits(max_age_s=args.max_age_s)
    destinations = [
        Destination(
            id=f"wh-{n:04d}",
            tenant_id=tenant,
            target=WebhookTarget(
                url="https://example.com/hook", signing_secret=SecretValue(ref="env:UNUSED")
            ),
            batch=batch,
            created_at=created,
            updated_at=created,
        )
        for n, tenant in enumerate(tenants)
    ]
    catalog = DestinationCatalog(
        _Table({d.id.encode(): d.model_dump_json().encode() for d in destinations})
    )
    ends = [0] * PARTITIONS
    records = _records(pool, args.events, ends)
    if args.prebuilt:  # every record built before the run: the loop thread only routes
        records = iter(list(records))
    feed = _Feed(records, ends)

    def no_readers(partition: int, start: int) -> PartitionReader:
        raise RuntimeError("no lane falls behind here")

    def dropping(destination: Destination) -> Sender:
        return _Dropping()

    worker = SinkWorker(
        SinkConfig(KafkaConnection("bench:9092"), topic=TOPIC, exit_when_idle_s=0.5),
        catalog=catalog,
        progress=ProgressStore(_Table({}), _Writer()),
        senders=dropping,
        readers=no_readers,
        decoder=Decoder(),
        metrics=sink_metrics(CollectorRegistry()),
        health=HealthState("bench"),
        auto_pause=lambda *_: None,
        consumer=cast(GroupConsumer, feed),  # the methods the worker calls
        executor=ThreadPoolExecutor(16, "bench-delivery"),
        clock=time.monotonic,
        wall_clock=lambda: datetime.now(UTC),
    )
    profile = cProfile.Profile() if args.profile else None
    loop_cpu = [0.0]
    failure: list[BaseException] = []

    def loop() -> None:
        try:
            if profile is not None:
                profile.enable()
            worker.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            failure.append(exc)
        finally:
            if profile is not None:
                profile.disable()
            loop_cpu[0] = time.thread_time()

    rss_start = rss_peak = _rss_mib()
    rss_at: dict[str, float] = {}
    cpu_began, began = _cpu_s(), time.perf_counter()
    thread = threading.Thread(target=loop, name="sink-worker")
    thread.start()
    while thread.is_alive():
        thread.join(0.05)
        rss = _rss_mib()
        rss_peak = max(rss_peak, rss)
        tenth = min(10, feed.consumed * 10 // max(args.events, 1))
        if tenth and f"{tenth * 10}%" not in rss_at:
            rss_at[f"{tenth * 10}%"] = round(rss, 1)
    seconds = time.perf_counter() - began
    cpu_s = _cpu_s() - cpu_began
    if failure:
        raise failure[0]
    stats = worker.stats
    result: dict[str, Any] = {
        "events": args.events,
        "tenants": len(tenants),
        "partitions": PARTITIONS,
        "batch": batch.model_dump(),
        "delivered": stats.delivered_records,
        "batches": stats.batches,
        "closed_early": stats.closed_early,
        "group_holds": stats.group_holds,
        "seconds": round(seconds, 2),
        "process_cpu_us_per_event": round(cpu_s / args.events * 1e6, 2),
        "loop_thread_cpu_us_per_event": round(loop_cpu[0] / args.events * 1e6, 2),
        "delivery_threads_cpu_us_per_event": round((cpu_s - loop_cpu[0]) / args.events * 1e6, 2),
        "rss_mib": {
            "at_start": round(rss_start, 1),
            "peak": round(rss_peak, 1),
            "by_consumed": rss_at,
            "end": round(_rss_mib(), 1),
        },
        "prebuilt": args.prebuilt,
        "note": f"the events repeat every {len(pool)} records (encoded once, before the run)",
    }
    if profile is not None:
        profile.dump_stats(args.profile)
        result["profile"] = args.profile
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--max-age-s", type=float, default=5.0, help="the batches' max_age_s")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the loop thread into FILE")
    parser.add_argument(
        "--prebuilt",
        action="store_true",
        help="build every record before the run (else as handed out, on the loop thread; "
        "memory grows with --events)",
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    result = run(args)
    result["machine"] = machine() | {
        "loadavg_1m_before": round(load_before[0], 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
