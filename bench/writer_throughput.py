"""Benchmark: the ClickHouse writer draining a Kafka backlog, beside the usual way and the
ceiling, and its freshness under a steady live load.

Starts a broker and a ClickHouse gateway of its own (temporary directories, stopped at the
end), creates a topic of 12 partitions (and a dead-letter topic), migrates a database, and
publishes a backlog of ``--events`` generated events through the SDK's bulk path (validated
first, then ``publish_datum``; timed, but not part of any result). Then, in the same run,
each in a consumer group of its own so each reads the whole backlog:

- ``writer``: :class:`consumers.writer.ClickHouseWriter` with its default batch settings
  into ``<db>.events``; timed from ``run()`` until the last row of the backlog landed
  (its observer sees every inserted batch);
- ``per_record_writer``: the usual way, a plain consumer that decodes every record in
  Python (``schemas.wire.Decoder.decode``), turns batches of ``--batch-rows`` (or what
  arrived within the flush interval) into columns, ``client.insert``\\s them into a copy of
  the table and commits after each insert; timed from ``subscribe`` to the last commit;
- ``read_discard``: a consumer that reads every record and drops it (the ceiling).

Freshness: a producer process publishes at ``--live-rate`` events/s for ``--live-seconds``
into a fresh topic, every event stamped with the time it is sent, while the writer
(default settings) writes it into a fresh database; p50/p99 of ``ingested_at -
occurred_at`` (``ingested_at`` is the server's ``now64(3)`` at insert) over every row.

Prints one JSON object.

    python -m bench.writer_throughput [--events 1000000] [--live-rate 20000]
    python -m bench.writer_throughput --bootstrap HOST:PORT --clickhouse-url URL
    python -m bench.writer_throughput --profile-writer writer.prof   # cProfile the writer
    python -m bench.writer_throughput --without-migration 0004 --no-per-record \\
        --live-seconds 0    # what 0004's skip indexes cost the writer, same run
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import multiprocessing
import multiprocessing.synchronize
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import CollectorRegistry

from auditlog import wiring
from bench.common import (
    FIELDS,
    decoded_columns,
    machine,
    private_clickhouse_process,
    private_kafka,
    publish_at_rate,
    publish_backlog,
)
from bench.pooled_backlog import publish_pooled
from bench.process_cpu import CpuMeter
from consumers.batches import Batch
from consumers.dead_letter_budget import DeadLetterBudget, DeadLetterLimit
from consumers.dead_letter_publisher import DeadLetterPublisher
from consumers.inserter import Inserted
from consumers.metrics import writer_metrics
from consumers.migrations import apply_pending
from consumers.migrations.runner import load_migrations
from consumers.telemetry import Telemetry
from consumers.writer import ClickHouseWriter
from consumers.writer_config import WriterConfig
from producers.config import ProducerConfig
from producers.generator import GeneratorConfig, generate
from producers.metrics import producer_metrics
from producers.producer import AuditProducer
from runtime.health import HealthState
from runtime.kafka_connection import KafkaConnection
from schemas.validation import EventValidator
from schemas.wire import Decoder

PARTITIONS = 12
TENANTS = 200
GAP_MS = 1.0
POLL_S = 0.2
LIVE_POOL = 50_000


# -- setting up --------------------------------------------------------------------------


def _create_topics(bootstrap: str, *topics: tuple[str, int]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions) for name, partitions in topics])
    for future in futures.values():
        future.result(timeout=30)


def _count(client: Client, table: str) -> int:
    return int(client.command(f"SELECT count() FROM {table}"))  # type: ignore[arg-type]


def _backlog(events: int) -> Iterator[dict[str, Any]]:
    """``events`` generated events, validated, as datums (made while publishing: timed)."""
    start = datetime.now(UTC) - timedelta(milliseconds=1.2 * GAP_MS * events + 60_000)
    config = GeneratorConfig(
        events=events, tenants=TENANTS, seed=11, start=start, mean_gap_ms=GAP_MS, diurnal=False
    )
    validator = EventValidator()
    return (validator.validate(event).to_avro() for event in generate(config))


class _Timed(Telemetry):
    """The production telemetry (metrics into a registry of its own, health state), plus
    when the writer was assigned, first consumed, and had written ``target_rows``."""

    def __init__(self, topic: str, table: str, group_id: str, target_rows: int) -> None:
        super().__init__(writer_metrics(CollectorRegistry()), HealthState(group_id), topic, table)
        self.target_rows = target_rows
        self.rows = self.batches = 0
        self.insert_s = 0.0
        self.assigned_at = self.first_record_at = self.done_at = 0.0
        self.is_assigned = threading.Event()

    def assigned(self, partitions: Sequence[TopicPartition], member_id: str | None) -> None:
        super().assigned(partitions, member_id)
        if partitions and not self.assigned_at:
            self.assigned_at = time.perf_counter()
            self.is_assigned.set()

    def consumed(self, count: int) -> None:
        super().consumed(count)
        if not self.first_record_at:
            self.first_record_at = time.perf_counter()

    def written(self, batch: Batch, inserted: Inserted, seconds: float) -> None:
        super().written(batch, inserted, seconds)
        self.rows += inserted.rows
        self.batches += 1
        self.insert_s += seconds
        if not self.done_at and self.rows >= self.target_rows:
            self.done_at = time.perf_counter()


def _writer(
    bootstrap: str,
    url: str,
    *,
    topic: str,
    dead_letter_topic: str,
    database: str,
    group_id: str,
    exit_when_idle_s: float | None,
    target_rows: int,
) -> tuple[ClickHouseWriter, _Timed, DeadLetterPublisher]:
    """Our writer with its default batch settings, pointed at ``database``."""
    config = WriterConfig(
        kafka=KafkaConnection(bootstrap),
        topic=topic,
        group_id=group_id,
        table=f"{database}.events",
        progress_table=f"{database}.writer_progress",
        exit_when_idle_s=exit_when_idle_s,
    )
    observer = _Timed(topic, config.table, group_id, target_rows)
    dead_letters = DeadLetterPublisher(KafkaConnection(bootstrap), dead_letter_topic)
    writer = ClickHouseWriter(
        config,
        clickhouse_connect.get_client(dsn=url),
        dead_letters=dead_letters,
        budget=DeadLetterBudget(DeadLetterLimit(), topic, dead_letter_topic),
        observer=observer,
    )
    return writer, observer, dead_letters


def _consumer(bootstrap: str, topic: str, group_id: str) -> Consumer:
    """A plain consumer with the writer's client settings, offsets stored on consume."""
    properties = WriterConfig(KafkaConnection(bootstrap), topic=topic, group_id=group_id)
    return Consumer({**properties.consumer_properties(), "enable.auto.offset.store": True})


def _check(message: Message) -> bool:
    """True for a record; raises on a fatal error, ignores the others."""
    error = message.error()
    if error is None:
        return True
    if error.fatal():
        raise KafkaException(error)
    if error.code() != KafkaError._PARTITION_EOF:
        print(f"consumer error: {error.str()}", file=sys.stderr)
    return False


def _warm_up(bootstrap: str, topic: str) -> float:
    """Join a group, read one record and commit it, so the broker's offsets topic and group
    coordinator exist before the first measured consumer starts; the seconds it took."""
    consumer = _consumer(bootstrap, topic, f"bench-warm-up-{uuid.uuid4().hex[:8]}")
    began = time.perf_counter()
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            message = consumer.poll(POLL_S)
            if message is not None and _check(message):
                consumer.commit(message=message, asynchronous=False)
                return time.perf_counter() - began
        raise RuntimeError("warm-up consumer read nothing in 120 s")
    finally:
        consumer.close()


# -- the three consumers -----------------------------------------------------------------


def _measure_writer(
    bootstrap: str,
    url: str,
    *,
    topic: str,
    dead_letter_topic: str,
    database: str,
    events: int,
    idle_s: float,
    profile_path: str | None,
    engine_pid: int | None = None,
    gc_young: int = wiring.YOUNG_COLLECTION_EVERY,
) -> dict[str, Any]:
    writer, timed, dead_letters = _writer(
        bootstrap,
        url,
        topic=topic,
        dead_letter_topic=dead_letter_topic,
        database=database,
        group_id=f"bench-writer-{uuid.uuid4().hex[:8]}",
        exit_when_idle_s=idle_s,
        target_rows=events,
    )
    # On the loop thread's CPU clock: time waiting for the engine is not the writer's cost.
    profiler = cProfile.Profile(time.thread_time) if profile_path else None
    wiring.freeze_startup_heap()  # as `auditlog consume` does
    threshold = gc.get_threshold()
    wiring.collect_young_less_often(gc_young)
    cpu = CpuMeter(engine_pid)
    collecting = _GcTimer()
    gc.callbacks.append(collecting)
    began = time.perf_counter()
    cpu.start()
    loop_began = time.thread_time()
    if profiler is not None:
        profiler.enable()
    try:
        stats = writer.run()
    finally:
        dead_letters.close()
    loop_s = time.thread_time() - loop_began
    cpu.stop()
    gc.callbacks.remove(collecting)
    gc.set_threshold(*threshold)
    if profiler is not None and profile_path:
        profiler.disable()
        profiler.dump_stats(profile_path)
    ended = time.perf_counter()
    if not timed.done_at:
        raise RuntimeError(f"writer exited after {timed.rows} of {events} rows: {stats}")
    seconds = timed.done_at - began
    return {
        "events_per_s": round(events / seconds),
        "seconds": round(seconds, 3),
        "assigned_s": round(timed.assigned_at - began, 3),
        "first_record_s": round(timed.first_record_at - began, 3),
        "insert_s": round(timed.insert_s, 3),
        "batches": timed.batches,
        "mean_batch_rows": round(timed.rows / timed.batches),
        "dead_lettered": stats.dead_lettered,
        "retries": stats.retries,
        "run_s_incl_idle_exit": round(ended - began, 3),
        "stored_rows": _count(clickhouse_connect.get_client(dsn=url), f"{database}.events"),
        "profiled": profiler is not None,
        # The whole run() (idle exit included): this process (the writer's loop and its
        # Kafka client's threads) and the gateway process (the engine), apart.
        "cpu_s": round(cpu.own_s, 3),
        "engine_cpu_s": round(cpu.engine_s, 3) if cpu.engine_s is not None else None,
        **cpu.per_event_us(events),
        # The writer's loop thread alone (its Python, the client's consume calls); the
        # rest of own_cpu is the Kafka client's threads (fetching, decompressing).
        "loop_thread_cpu_us_per_event": round(loop_s * 1e6 / events, 2),
        "gc_young_every": gc_young,
        "gc_s": round(collecting.seconds, 3),
        "gc_collections": collecting.collections,
    }


class _GcTimer:
    """A ``gc.callbacks`` entry adding up the CPU time of the collecting thread (the
    writer's loop) spent collecting."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._began = 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.thread_time()
        else:
            self.seconds += time.thread_time() - self._began
            self.collections += 1


def _measure_per_record(
    bootstrap: str,
    url: str,
    *,
    topic: str,
    table: str,
    events: int,
    batch_rows: int,
    flush_interval_s: float,
) -> dict[str, Any]:
    """Decode every record in Python, insert columns per batch, commit after each insert."""
    client = clickhouse_connect.get_client(dsn=url)
    consumer = _consumer(bootstrap, topic, f"bench-per-record-{uuid.uuid4().hex[:8]}")
    decoder = Decoder()
    decode_s = insert_s = 0.0
    stored = batches = 0
    records: list[dict[str, Any]] = []
    batch_began = first_record_at = 0.0
    began = time.perf_counter()
    consumer.subscribe([topic])
    try:
        while stored < events:
            messages = consumer.consume(num_messages=batch_rows - len(records), timeout=POLL_S)
            now = time.perf_counter()
            if messages and not records:
                batch_began = now
                first_record_at = first_record_at or now
            for message in messages:
                if _check(message):
                    records.append(decoder.decode(message.value()))  # type: ignore[arg-type]
            decode_s += time.perf_counter() - now
            if records and (
                len(records) >= batch_rows or time.perf_counter() - batch_began >= flush_interval_s
            ):
                insert_began = time.perf_counter()
                client.insert(
                    table, decoded_columns(records), column_names=FIELDS, column_oriented=True
                )
                consumer.commit(asynchronous=False)
                insert_s += time.perf_counter() - insert_began
                stored += len(records)
                batches += 1
                records = []
        seconds = time.perf_counter() - began
    finally:
        consumer.close()
    return {
        "events_per_s": round(events / seconds),
        "seconds": round(seconds, 3),
        "first_record_s": round(first_record_at - began, 3),
        "consume_and_decode_s": round(decode_s, 3),
        "columns_insert_commit_s": round(insert_s, 3),
        "batches": batches,
        "stored_rows": _count(client, table),
    }


def _measure_read_discard(bootstrap: str, *, topic: str, events: int) -> dict[str, Any]:
    consumer = _consumer(bootstrap, topic, f"bench-discard-{uuid.uuid4().hex[:8]}")
    read = 0
    first_record_at = 0.0
    cpu = CpuMeter().start()
    loop_began = time.thread_time()
    began = time.perf_counter()
    consumer.subscribe([topic])
    try:
        while read < events:
            messages = consumer.consume(num_messages=50_000, timeout=POLL_S)
            if messages and not first_record_at:
                first_record_at = time.perf_counter()
            read += sum(1 for message in messages if _check(message))
        seconds = time.perf_counter() - began
    finally:
        consumer.close()
    loop_s = time.thread_time() - loop_began
    cpu.stop()
    return {
        "events_per_s": round(events / seconds),
        "seconds": round(seconds, 3),
        "first_record_s": round(first_record_at - began, 3),
        "cpu_s": round(cpu.own_s, 3),
        "own_cpu_us_per_event": cpu.per_event_us(events)["own_cpu_us_per_event"],
        "loop_thread_cpu_us_per_event": round(loop_s * 1e6 / events, 2),
    }


# -- freshness ---------------------------------------------------------------------------


def _live_producer(
    bootstrap: str,
    topic: str,
    rate: float,
    duration_s: float,
    go: multiprocessing.synchronize.Event,
    out: multiprocessing.Queue[Any],
) -> None:
    """(A process of its own.) Publish at ``rate`` for ``duration_s`` once ``go`` is set,
    every event stamped with the time it is sent; put the outcome on ``out``."""
    start = datetime.now(UTC) - timedelta(hours=2)
    config = GeneratorConfig(
        events=LIVE_POOL, tenants=TENANTS, seed=5, start=start, mean_gap_ms=GAP_MS, diurnal=False
    )
    validator = EventValidator()
    pool = [validator.validate(event).to_avro() for event in generate(config)]
    producer = AuditProducer(
        ProducerConfig(KafkaConnection(bootstrap), topic=topic, client_id="bench-live"),
        metrics=producer_metrics(CollectorRegistry()),
    )
    out.put("ready")
    go.wait()
    sent, seconds = publish_at_rate(producer, pool, rate, duration_s)
    report = producer.close()
    out.put({"sent": sent, "seconds": seconds, "delivered": report.delivered})


def _measure_freshness(
    bootstrap: str,
    url: str,
    *,
    dead_letter_topic: str,
    rate: float,
    duration_s: float,
) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    topic, database = f"bench.live.{suffix}", f"bench_live_{suffix}"
    _create_topics(bootstrap, (topic, PARTITIONS))
    client = clickhouse_connect.get_client(dsn=url)
    apply_pending(client, database=database)
    table = f"{database}.events"
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    out: multiprocessing.Queue[Any] = context.Queue()
    producer = context.Process(
        target=_live_producer, args=(bootstrap, topic, rate, duration_s, go, out), daemon=True
    )
    producer.start()
    writer, timed, dead_letters = _writer(
        bootstrap,
        url,
        topic=topic,
        dead_letter_topic=dead_letter_topic,
        database=database,
        group_id=f"bench-live-{suffix}",
        exit_when_idle_s=None,
        target_rows=int(rate * duration_s),
    )
    failure: list[BaseException] = []

    def run_writer() -> None:
        try:
            writer.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            failure.append(exc)

    thread = threading.Thread(target=run_writer, name="writer")
    try:
        if out.get(timeout=300) != "ready":
            raise RuntimeError("live producer did not start")
        thread.start()
        _wait(timed.is_assigned.is_set, "assignment", failure)
        time.sleep(1.0)  # let the progress check resume the partitions
        go.set()
        outcome: dict[str, Any] = out.get(timeout=duration_s + 120)
        _wait(lambda: _count(client, table) >= outcome["sent"], "the live rows", failure)
        writer.stop()
        thread.join(timeout=60)
    finally:
        writer.stop()
        if producer.is_alive():
            producer.terminate()
        producer.join(timeout=30)
        if thread.is_alive():
            thread.join(timeout=60)
        dead_letters.close()
    if failure:
        raise failure[0]
    row = client.query(
        "SELECT count(), quantiles(0.5, 0.99)(dateDiff('millisecond', occurred_at, ingested_at)),"
        f" max(dateDiff('millisecond', occurred_at, ingested_at)) FROM {table}"
    ).result_rows[0]
    stored, (p50, p99), worst = row
    client.command(f"DROP DATABASE IF EXISTS {database}")
    return {
        "target_rate": rate,
        "achieved_rate": round(outcome["sent"] / outcome["seconds"]),
        "sent": outcome["sent"],
        "delivered": outcome["delivered"],
        "seconds": round(outcome["seconds"], 1),
        "stored_rows": stored,
        "p50_ms": round(p50),
        "p99_ms": round(p99),
        "max_ms": worst,
        "writer_batches": timed.batches,
        "writer_mean_batch_rows": round(timed.rows / max(timed.batches, 1)),
        "writer_insert_s": round(timed.insert_s, 3),
        "measure": "ingested_at (server now64(3) at insert) - occurred_at (stamped at send)",
    }


def _wait(
    condition: Callable[[], bool], what: str, failure: list[BaseException], timeout_s: float = 120
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if failure:
            raise failure[0]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _compare_migrations(
    bootstrap: str,
    url: str,
    args: argparse.Namespace,
    *,
    topic: str,
    dead_letter_topic: str,
) -> dict[str, Any]:
    """The writer on the same backlog into a database with every migration and into one
    without ``args.without_migration`` (e.g. 0004, the viewer's skip indexes),
    ``args.rounds`` rounds in ABBA order, each run into a fresh database (the writer's
    dedup tokens would skip a second insert of the same batches) and a consumer group of
    its own."""
    skipped = {int(version) for version in args.without_migration}
    reduced = [m for m in load_migrations() if m.version not in skipped]
    client = clickhouse_connect.get_client(dsn=url)
    runs: dict[str, list[dict[str, Any]]] = {"all": [], "without": []}
    for round_ in range(args.rounds):
        order = ("all", "without") if round_ % 2 == 0 else ("without", "all")
        for which in order:
            database = f"bench_writer_{uuid.uuid4().hex[:8]}"
            apply_pending(client, database=database, migrations=None if which == "all" else reduced)
            runs[which].append(
                _measure_writer(
                    bootstrap,
                    url,
                    topic=topic,
                    dead_letter_topic=dead_letter_topic,
                    database=database,
                    events=args.events,
                    idle_s=args.idle_s,
                    profile_path=None,
                )
            )
            client.command(f"DROP DATABASE IF EXISTS {database}")

    def median(which: str, key: str) -> float:
        values = sorted(run[key] for run in runs[which])
        return float(values[len(values) // 2])

    return {
        "without_migrations": sorted(skipped),
        "rounds": args.rounds,
        "all_migrations": {
            "events_per_s": [run["events_per_s"] for run in runs["all"]],
            "insert_s": [run["insert_s"] for run in runs["all"]],
        },
        "without": {
            "events_per_s": [run["events_per_s"] for run in runs["without"]],
            "insert_s": [run["insert_s"] for run in runs["without"]],
        },
        "events_per_s_all_over_without": round(
            median("all", "events_per_s") / median("without", "events_per_s"), 3
        ),
        "insert_s_all_over_without": round(
            median("all", "insert_s") / median("without", "insert_s"), 3
        ),
    }


# -- the run -----------------------------------------------------------------------------


def run(
    bootstrap: str, url: str, args: argparse.Namespace, engine_pid: int | None = None
) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    topic, dead_letter_topic = f"bench.writer.{suffix}", f"bench.writer.{suffix}.dlq"
    database = f"bench_writer_{suffix}"
    _create_topics(bootstrap, (topic, PARTITIONS), (dead_letter_topic, 1))
    client = clickhouse_connect.get_client(dsn=url)
    apply_pending(client, database=database)
    per_record_table = f"{database}.events_per_record"
    client.command(f"CREATE TABLE {per_record_table} AS {database}.events")
    defaults = WriterConfig(KafkaConnection(bootstrap))
    result: dict[str, Any] = {
        "events": args.events,
        "topic_partitions": PARTITIONS,
        "settings": {
            "writer": {
                "batch_max_records": defaults.batch_max_records,
                "batch_max_bytes": defaults.batch_max_bytes,
                "flush_interval_s": defaults.flush_interval_s,
                "exit_when_idle_s": args.idle_s,
                "insert": "raw Avro datums, one FORMAT Avro block per partition batch",
            },
            "per_record_writer": {
                "batch_rows": args.batch_rows,
                "flush_interval_s": defaults.flush_interval_s,
                "insert": "Decoder.decode per record, clickhouse-connect insert (Native)",
            },
            "consumer": {
                k: v
                for k, v in defaults.consumer_properties().items()
                if k in ("fetch.max.bytes", "max.partition.fetch.bytes", "isolation.level")
            },
            "clickhouse": "chdb gateway (deploy/stack/clickhouse_gateway.py), not a server",
        },
    }
    if args.pooled_backlog:
        result["backlog"] = publish_pooled(bootstrap, topic, args.events)
    else:
        result["backlog"] = publish_backlog(
            bootstrap,
            topic,
            _backlog(args.events),
            events=args.events,
            client_id="bench-backlog",
            path="generate + validate + to_avro + publish_datum, one process",
        )
    result["group_warm_up_s"] = round(_warm_up(bootstrap, topic), 3)
    result["read_discard"] = _measure_read_discard(bootstrap, topic=topic, events=args.events)
    result["writer"] = _measure_writer(
        bootstrap,
        url,
        topic=topic,
        dead_letter_topic=dead_letter_topic,
        database=database,
        events=args.events,
        idle_s=args.idle_s,
        profile_path=args.profile_writer,
        engine_pid=engine_pid,
    )
    for young in args.compare_gc_young:
        other = f"{database}_gc{young}"
        apply_pending(client, database=other)
        result[f"writer_gc_young_{young}"] = _measure_writer(
            bootstrap,
            url,
            topic=topic,
            dead_letter_topic=dead_letter_topic,
            database=other,
            events=args.events,
            idle_s=args.idle_s,
            profile_path=None,
            engine_pid=engine_pid,
            gc_young=young,
        )
        client.command(f"DROP DATABASE IF EXISTS {other}")
    if args.no_per_record:
        result["per_record_writer"] = {"events_per_s": None, "skipped": True}
    else:
        result["per_record_writer"] = _measure_per_record(
            bootstrap,
            url,
            topic=topic,
            table=per_record_table,
            events=args.events,
            batch_rows=args.batch_rows,
            flush_interval_s=defaults.flush_interval_s,
        )
    if args.without_migration:
        result["migrations_compared"] = _compare_migrations(
            bootstrap, url, args, topic=topic, dead_letter_topic=dead_letter_topic
        )
    writer_rate = result["writer"]["events_per_s"]
    per_record_rate = result["per_record_writer"]["events_per_s"]
    result["ratios"] = {
        "writer_over_per_record": round(writer_rate / per_record_rate, 2)
        if per_record_rate
        else None,
        "writer_over_read_discard": round(writer_rate / result["read_discard"]["events_per_s"], 2),
    }
    writer_us = result["writer"]["own_cpu_us_per_event"]
    read_us = result["read_discard"]["own_cpu_us_per_event"]
    result["ratios"]["writer_cpu_over_read_cpu"] = round(writer_us / read_us, 2)
    result["target"] = {
        "events_per_s": 200_000,
        "over_per_record": 4.0,
        "met": writer_rate >= 200_000 and (result["ratios"]["writer_over_per_record"] or 0) >= 4.0,
        # issue 17: the writer process's own CPU, whatever the engine costs.
        "writer_cpu_us_per_event": 6.0,
        "writer_cpu_over_read_cpu": 2.0,
        "cpu_met": writer_us <= 6.0 and writer_us < 2.0 * read_us,
    }
    if args.live_seconds > 0:
        result["freshness"] = _measure_freshness(
            bootstrap,
            url,
            dead_letter_topic=dead_letter_topic,
            rate=args.live_rate,
            duration_s=args.live_seconds,
        )
    result["engine_version"] = client.server_version
    client.command(f"DROP DATABASE IF EXISTS {database}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=50_000, help="per-record writer")
    parser.add_argument("--idle-s", type=float, default=2.0, help="writer exit_when_idle_s")
    parser.add_argument("--live-rate", type=float, default=20_000.0)
    parser.add_argument("--live-seconds", type=float, default=20.0, help="0: no freshness run")
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--clickhouse-url", help="an existing gateway (default: start one)")
    parser.add_argument("--profile-writer", metavar="FILE", help="cProfile the writer run")
    parser.add_argument(
        "--without-migration",
        action="append",
        default=[],
        metavar="NNNN",
        help="also run the writer into databases with all migrations and without this one "
        "(repeatable), --rounds times each, and report the ratio",
    )
    parser.add_argument("--rounds", type=int, default=2, help="with --without-migration")
    parser.add_argument("--no-per-record", action="store_true", help="skip the per-record writer")
    parser.add_argument(
        "--compare-gc-young",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="also run the writer with the collector's young threshold at N (700: CPython's "
        "default), into a database of its own, after the main run (repeatable)",
    )
    parser.add_argument(
        "--pooled-backlog",
        action="store_true",
        help="publish the backlog from a pool of 20k encoded events (bench.pooled_backlog): "
        "faster to make, the same records but for their event ids",
    )
    args = parser.parse_args(argv)
    with (
        private_kafka(args.bootstrap) as bootstrap,
        private_clickhouse_process(args.clickhouse_url) as (url, engine_pid),
    ):
        result = run(bootstrap, url, args, engine_pid)
    result["machine"] = machine() | {"clickhouse_connect": clickhouse_connect.__version__}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
