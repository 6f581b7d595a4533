"""Benchmark: the integrity appender beside the ClickHouse writer on the same backlog, and
``check_log`` over one large account.

Starts a broker and a ClickHouse gateway of its own, creates a topic of 12 partitions,
migrates a database and publishes ``--events`` generated events of 200 accounts (as
``bench.writer_throughput`` does: validated, then ``publish_datum``; not timed). Then, in
the same run, each in a consumer group of its own so each reads the whole backlog:

- ``read_discard``: a consumer that reads every record and drops it (the ceiling);
- ``writer``: :class:`consumers.writer.ClickHouseWriter` with its default settings, with
  this process's CPU time per event (librdkafka's threads included; ClickHouse's not);
- ``appender``: the integrity appender as ``auditlog integrity run`` builds it
  (:func:`auditlog.integrity_wiring.appender`, default batch and checkpoint settings, a
  signing key of the run's own), timed from ``run()`` to its idle exit less the idle wait,
  with the process's CPU time per event (librdkafka's threads included);
- ``appender_reference`` (unless ``--no-reference``): the same into a fresh database with
  the reference path (``read_record`` through fastavro, leaves by ``rfc8785``): what the
  appender cost before the fast path, in the same run.

Then ``--verify-events`` events of one account are published to a topic of their own,
written and appended into a database of their own, and the account's log is read
(:func:`integrity.stored_log.read_log`: leaves and notes; the events are streamed by what
follows) and checked (:func:`integrity.verification.check_log`, what ``auditlog verify``
runs: it reads the events as it checks them), each timed. ``auditlog verify`` of 1M events,
end to end with its peak RSS, is ``bench.integrity_verify``.

Prints one JSON object.

    python -m bench.integrity_throughput [--events 300000] [--verify-events 200000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import clickhouse_connect
from confluent_kafka import KafkaException
from prometheus_client import CollectorRegistry

from auditlog import integrity_wiring, wiring
from auditlog.settings import AuditlogSettings
from bench.common import machine, private_clickhouse, private_kafka, publish_backlog
from bench.writer_throughput import (
    _backlog,
    _create_topics,
    _measure_read_discard,
    _measure_writer,
    _warm_up,
)
from consumers.migrations import apply_pending
from integrity import reading
from integrity.keystore import KeyStore
from integrity.metrics import integrity_metrics
from integrity.stored_log import read_log
from integrity.verification import check_log
from producers.generator import GeneratorConfig, generate
from schemas.validation import EventValidator

PARTITIONS = 12
IDLE_S = 2.0


def _settings(bootstrap: str, url: str, database: str, topic: str) -> AuditlogSettings:
    return AuditlogSettings(
        kafka_bootstrap=bootstrap,
        clickhouse_url=url,
        clickhouse_database=database,
        events_topic=topic,
        integrity_group_id=f"bench-integrity-{uuid.uuid4().hex[:8]}",
    )


def _count(url: str, table: str) -> int:
    return int(clickhouse_connect.get_client(dsn=url).command(f"SELECT count() FROM {table}"))  # type: ignore[arg-type]


def _measure_appender(
    settings: AuditlogSettings, keys: KeyStore, events: int, *, reference: bool
) -> dict[str, Any]:
    appender = integrity_wiring.appender(
        settings,
        integrity_wiring.signers(keys),
        exit_when_idle_s=IDLE_S,
        metrics=integrity_metrics(CollectorRegistry()),
    )
    patches = []
    if reference:  # the path before the fast one: fastavro + rfc8785
        decoder = wiring.decoder(settings)
        appender._reader.read = lambda m: reading.read_record(m, decoder)  # type: ignore[method-assign,assignment]
        patches.append(mock.patch("integrity.leaf.fast_canonical_event", return_value=None))
    for patch in patches:
        patch.start()
    wiring.freeze_startup_heap()
    cpu = time.process_time()
    began = time.perf_counter()
    try:
        stats = appender.run()
    finally:
        for patch in patches:
            patch.stop()
    run_s = time.perf_counter() - began
    cpu_s = time.process_time() - cpu
    seconds = run_s - IDLE_S
    leaves = _count(settings.clickhouse_url, f"{settings.clickhouse_database}.integrity_leaves")
    if stats.appended != events or leaves < events:
        raise RuntimeError(f"appender appended {stats.appended}, stored {leaves} of {events}")
    return {
        "events_per_s": round(events / seconds),
        "seconds": round(seconds, 3),
        "run_s_incl_idle_exit": round(run_s, 3),
        "process_cpu_us_per_event": round(cpu_s / events * 1e6, 1),
        "batches": stats.batches,
        "checkpoints": stats.checkpoints,
        "stored_leaves": leaves,
        "path": "read_record + rfc8785 (reference)" if reference else "LeafReader + orjson",
    }


def _one_account(events: int) -> Iterator[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(days=2)
    config = GeneratorConfig(events=events, tenants=1, seed=23, start=start, diurnal=False)
    validator = EventValidator()
    return (validator.validate(event).to_avro() for event in generate(config))


def _prepare(bootstrap: str, url: str, suffix: str) -> tuple[str, str]:
    topic, database = f"bench.integrity.{suffix}", f"bench_integrity_{suffix}"
    _create_topics(bootstrap, (topic, PARTITIONS), (f"{topic}.dlq", 1))
    apply_pending(clickhouse_connect.get_client(dsn=url), database=database)
    return topic, database


def _verify(bootstrap: str, url: str, keys: KeyStore, events: int) -> dict[str, Any]:
    topic, database = _prepare(bootstrap, url, uuid.uuid4().hex[:8])
    datums = list(_one_account(events))
    account = str(datums[0]["tenant_id"])
    publish_backlog(
        bootstrap, topic, iter(datums), events=events, client_id="bench-verify", path="one account"
    )
    del datums
    _warm_up(bootstrap, topic)
    writer = _measure_writer(
        bootstrap,
        url,
        topic=topic,
        dead_letter_topic=f"{topic}.dlq",
        database=database,
        events=events,
        idle_s=IDLE_S,
        profile_path=None,
    )
    appender = _measure_appender(
        _settings(bootstrap, url, database, topic), keys, events, reference=False
    )
    client = clickhouse_connect.get_client(dsn=url)
    began = time.perf_counter()
    log = read_log(client, database, account)
    read_s = time.perf_counter() - began
    began = time.perf_counter()
    report = check_log(log, keys.ring())
    check_s = time.perf_counter() - began
    client.command(f"DROP DATABASE IF EXISTS {database}")
    return {
        "account_events": events,
        "leaves": report.leaves,
        "stored_events": report.events,
        "checkpoints": report.checkpoints,
        "verified": report.ok,
        "findings": len(report.findings),
        "read_log_s": round(read_s, 3),
        "check_log_s": round(check_s, 3),
        "check_events_per_s": round(events / check_s),
        "read_and_check_events_per_s": round(events / (read_s + check_s)),
        "writer_events_per_s": writer["events_per_s"],
        "appender_events_per_s": appender["events_per_s"],
    }


def run(bootstrap: str, url: str, args: argparse.Namespace, keys: KeyStore) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    topic, database = _prepare(bootstrap, url, suffix)
    result: dict[str, Any] = {"events": args.events, "topic_partitions": PARTITIONS}
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
    cpu = time.process_time()
    try:
        result["writer"] = _measure_writer(
            bootstrap,
            url,
            topic=topic,
            dead_letter_topic=f"{topic}.dlq",
            database=database,
            events=args.events,
            idle_s=IDLE_S,
            profile_path=None,
        )
    except KafkaException as exc:
        # On a loaded machine the writer's idle exit can time out asking for watermarks
        # after it stored every row: say so and still measure the appender.
        result["writer"] = {"failed": str(exc)}
    else:
        # The whole run's CPU (its idle exit and row count included: a few ms), as for the
        # appender below: this process, librdkafka's threads included.
        result["writer"]["process_cpu_us_per_event"] = round(
            (time.process_time() - cpu) / args.events * 1e6, 1
        )
    result["appender"] = _measure_appender(
        _settings(bootstrap, url, database, topic), keys, args.events, reference=False
    )
    if not args.no_reference:
        reference_db = f"{database}_reference"
        apply_pending(clickhouse_connect.get_client(dsn=url), database=reference_db)
        result["appender_reference"] = _measure_appender(
            _settings(bootstrap, url, reference_db, topic), keys, args.events, reference=True
        )
    if "failed" in result["writer"]:
        result["target"] = {"appender_at_least_writer": None}
    else:
        writer_rate = result["writer"]["events_per_s"]
        appender_rate = result["appender"]["events_per_s"]
        result["ratios"] = {
            "appender_over_writer": round(appender_rate / writer_rate, 2),
            "appender_over_read_discard": round(
                appender_rate / result["read_discard"]["events_per_s"], 2
            ),
        }
        if "appender_reference" in result:
            result["ratios"]["appender_over_reference"] = round(
                appender_rate / result["appender_reference"]["events_per_s"], 2
            )
            result["ratios"]["reference_over_writer"] = round(
                result["appender_reference"]["events_per_s"] / writer_rate, 2
            )
        result["ratios"]["appender_cpu_over_writer_cpu"] = round(
            result["appender"]["process_cpu_us_per_event"]
            / result["writer"]["process_cpu_us_per_event"],
            2,
        )
        result["target"] = {"appender_at_least_writer": appender_rate >= writer_rate}
    if args.verify_events > 0:
        result["verify"] = _verify(bootstrap, url, keys, args.verify_events)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--verify-events", type=int, default=200_000, help="0: no verify run")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference path")
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--clickhouse-url", help="an existing gateway (default: start one)")
    args = parser.parse_args(argv)
    loadavg_before = Path("/proc/loadavg").read_text().split()[0]
    with (
        tempfile.TemporaryDirectory(prefix="bench-integrity-keys-") as keys_dir,
        private_kafka(args.bootstrap) as bootstrap,
        private_clickhouse(args.clickhouse_url) as url,
    ):
        keys = KeyStore(Path(keys_dir))
        keys.generate("bench", time.time_ns() // 1_000_000 - 60_000)
        result = run(bootstrap, url, args, keys)
    result["machine"] = machine() | {
        "loadavg_1m_before": float(loadavg_before),
        "loadavg_1m_after": float(Path("/proc/loadavg").read_text().split()[0]),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
