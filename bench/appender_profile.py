"""Benchmark: where the integrity appender's CPU goes per record, stage by stage, in process.

``--events`` generated events of 200 accounts (validated, single-object encoded, keyed and
with the headers ``publish_datum`` sets) are made into ``confluent_kafka.Message`` objects
of 12 partitions (by account), then timed in CPU time of this process (best of
``--rounds``), per record:

- ``read``: :meth:`integrity.reading.LeafReader.read` (decode, tenant check, canonical
  leaf data, SHA-256);
- ``append``: :meth:`integrity.appending.PartitionLog.append` of every leaf (frontier
  update, leaf row) and :meth:`~integrity.appending.PartitionLog.take` per partition;
- ``store``: :meth:`integrity.heads.LogStore.store` of those batches into a ClickHouse
  gateway of its own (this process's CPU: building and serialising the insert; the
  gateway's is not counted);
- ``process``: the appender's own per-record loop (``IntegrityAppender._process`` with a
  stand-in consumer: read, append, metrics, and the store when a batch is full) over every
  record, stores included, as the real loop runs it.

With ``--profile PATH`` the ``process`` stage of the last round runs under cProfile (its
stats dumped to PATH; the top functions by own time are printed in the JSON). Consuming
from Kafka is not in it (``bench.integrity_throughput`` measures the whole process).

    python -m bench.appender_profile [--events 20000] [--rounds 3] [--profile PATH]

Instructions instead of CPU time (stable on a shared machine): ``--once STAGE`` runs the
stages up to STAGE once each; under ``valgrind --tool=callgrind`` the difference between
``--once read`` and ``--once none`` (and so on) is the stage's instructions, e.g.

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python -m bench.appender_profile --events 2000 --once read --clickhouse-url URL
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
from confluent_kafka import Message, TopicPartition
from prometheus_client import CollectorRegistry

from bench.common import machine, private_clickhouse
from consumers.migrations import apply_pending
from integrity.appender import IntegrityAppender
from integrity.appender_config import AppenderConfig
from integrity.appending import Batch, PartitionLog
from integrity.checkpoint_store import CheckpointStore
from integrity.heads import LogStore
from integrity.metrics import integrity_metrics
from integrity.reading import Leaf, LeafReader
from producers.generator import GeneratorConfig, generate
from runtime.kafka_connection import KafkaConnection
from schemas import headers as h
from schemas.validation import EventValidator
from schemas.wire import Decoder, SingleObjectEncoder

TOPIC = "audit.events"
PARTITIONS = 12
TENANTS = 200


def _messages(events: int) -> list[Message]:
    start = datetime.now(UTC) - timedelta(days=1)
    config = GeneratorConfig(events=events, tenants=TENANTS, seed=11, start=start, diurnal=False)
    validator, encoder = EventValidator(), SingleObjectEncoder()
    offsets = [0] * PARTITIONS
    found = []
    for event in generate(config):
        datum = validator.validate(event).to_avro()
        tenant = str(datum["tenant_id"]).encode()
        partition = zlib.crc32(tenant) % PARTITIONS
        headers: list[tuple[str, str | bytes | None]] = [
            (h.TENANT, tenant),
            (h.ACTION, str(datum["action"]).encode()),
            (h.CATEGORY, str(datum["category"]).encode()),
            (h.EVENT_ID, str(datum["event_id"]).encode()),
        ]
        found.append(
            Message(
                topic=TOPIC,
                partition=partition,
                offset=offsets[partition],
                key=tenant,
                value=encoder.encode(datum),
                headers=headers,
            )
        )
        offsets[partition] += 1
    found.sort(key=lambda m: (m.partition(), m.offset()))
    return found


class _Consumer:
    """What the appender's store-and-commit asks of a consumer, answered at once."""

    def commit(self, **_kwargs: Any) -> None:
        return None

    def get_watermark_offsets(self, _tp: TopicPartition, cached: bool = False) -> tuple[int, int]:
        return 0, 0


def _best(rounds: int, action: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        action()
        best = min(best, time.process_time() - began)
    return best


def _batches(leaves: list[tuple[int, Leaf]]) -> list[Batch]:
    logs: dict[int, PartitionLog] = {}
    for partition, leaf in leaves:
        log = logs.get(partition)
        if log is None:
            log = logs[partition] = PartitionLog(TOPIC, partition)
        if not log.knows(leaf.tenant_id):
            log.start_new([leaf.tenant_id])
        log.append(leaf.tenant_id, leaf.offset, leaf.event_id, leaf.leaf_hash, 0.0)
    return [b for b in (log.take() for log in logs.values()) if b is not None]


def _new_appender(client: Any, database: str, decoder: Decoder) -> IntegrityAppender:
    config = AppenderConfig(
        kafka=KafkaConnection(bootstrap="127.0.0.1:1"), topic=TOPIC, database=database
    )
    appender = IntegrityAppender(
        config,
        LogStore(client, database),
        CheckpointStore(client, database),
        lambda _now: [],
        decoder=decoder,
        metrics=integrity_metrics(CollectorRegistry()),
        consumer=_Consumer(),  # type: ignore[arg-type]
    )
    appender._logs = {p: PartitionLog(TOPIC, p) for p in range(PARTITIONS)}
    return appender


def run_once(url: str, events: int, upto: str) -> dict[str, Any]:
    """Each stage up to ``upto`` once, untimed (``none``: only the setup, ``process``: the
    setup and the appender's loop): for instruction counts, run under
    ``valgrind --tool=callgrind`` and subtract the run before (the setup is the same)."""
    messages = _messages(events)
    client = clickhouse_connect.get_client(dsn=url)
    database = f"bench_profile_{uuid.uuid4().hex[:8]}"
    apply_pending(client, database=database)
    decoder = Decoder()
    reader = LeafReader(decoder)
    if upto == "process":
        appender = _new_appender(client, database, decoder)
        appender._process(messages, 0.0)
        appender._flush(lambda _log: True)
        return {"events": events, "upto": upto, "appended": appender.stats.appended}
    if upto == "none":
        return {"events": events, "upto": upto}
    read: list[Any] = [(m.partition(), reader.read(m)) for m in messages]
    if upto == "read":
        return {"events": events, "upto": upto}
    batches = _batches(read)
    if upto == "append":
        return {"events": events, "upto": upto}
    store = LogStore(client, database)
    for batch in batches:
        store.store(batch)
    return {"events": events, "upto": upto, "batches": len(batches)}


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    messages = _messages(args.events)
    n = len(messages)
    decoder = Decoder()
    reader = LeafReader(decoder)
    read: list[Any] = []

    def do_read() -> None:
        read[:] = [(m.partition(), reader.read(m)) for m in messages]

    stages: dict[str, float] = {"read": _best(args.rounds, do_read)}
    assert all(isinstance(leaf, Leaf) for _, leaf in read)
    batches: list[Batch] = []
    stages["append"] = _best(args.rounds, lambda: batches.__setitem__(slice(None), _batches(read)))
    client = clickhouse_connect.get_client(dsn=url)

    def fresh_database() -> str:
        database = f"bench_profile_{uuid.uuid4().hex[:8]}"
        apply_pending(client, database=database)
        return database

    stores = [LogStore(client, fresh_database()) for _ in range(args.rounds)]

    def store_all(store: LogStore) -> float:
        began = time.process_time()
        for batch in batches:
            store.store(batch)
        return time.process_time() - began

    stages["store"] = min(store_all(s) for s in stores)

    profile = cProfile.Profile() if args.profile else None
    best = float("inf")
    for i in range(args.rounds):
        appender = _new_appender(client, fresh_database(), decoder)
        last = profile if i == args.rounds - 1 else None
        began = time.process_time()
        if last is not None:
            last.enable()
        appender._process(messages, 0.0)
        appender._flush(lambda _log: True)
        if last is not None:
            last.disable()
        best = min(best, time.process_time() - began)
        if appender.stats.appended != n:
            raise RuntimeError(f"appended {appender.stats.appended} of {n}")
    stages["process"] = best
    result: dict[str, Any] = {
        "events": n,
        "rounds": args.rounds,
        "cpu_us_per_event": {k: round(v / n * 1e6, 2) for k, v in stages.items()},
    }
    if profile is not None:
        profile.dump_stats(args.profile)
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
        result["profile_top_tottime"] = out.getvalue().splitlines()[-32:]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help="cProfile the last process round into this file")
    parser.add_argument(
        "--once",
        choices=("none", "read", "append", "store", "process"),
        help="run the stages up to this one once, untimed (for callgrind; see run_once)",
    )
    parser.add_argument("--clickhouse-url", help="an existing gateway (default: start one)")
    args = parser.parse_args(argv)
    loadavg_before = float(Path("/proc/loadavg").read_text().split()[0])
    with private_clickhouse(args.clickhouse_url) as url:
        result = run_once(url, args.events, args.once) if args.once else run(url, args)
    result["machine"] = machine() | {
        "loadavg_1m_before": loadavg_before,
        "loadavg_1m_after": float(Path("/proc/loadavg").read_text().split()[0]),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
