"""Benchmark: checkpoint lag, the time from an event's publish to the first stored signed
checkpoint that covers it, per account, with the appender against a steady stream.

Starts a broker and a ClickHouse gateway of its own (or uses ``--bootstrap`` /
``--clickhouse-url``), creates a topic of 12 partitions, migrates a database, generates a
signing key, and starts ``auditlog integrity run`` as a child process (its settings from
the environment; the checkpoint interval ``--interval-s``, 60 s by default as in
production). Then one producer publishes ``--rate`` generated events a second of
``--tenants`` accounts (through ``publish_datum``, paced against the clock) for
``--seconds`` (once a first event of another account is a stored leaf: the appender has
started), noting each event's publish time (the wall clock when
``publish_datum`` was called), and waits until the stored checkpoints cover every event
(or ``--interval-s`` x 3, at least a minute, after the last publish), then stops the
appender (SIGTERM; what it signs on the way out is not counted: a checkpoint counts only
when its time is before the stop).

An event's lag is the ``time`` of the first checkpoint of its account whose ``size`` is
greater than the event's leaf index (``integrity_checkpoints.time`` is the wall clock of
the signature, taken right before the insert) less its publish time. Printed as one JSON
object: p50/p99/max over all events, the same per account, the appender's CPU time
(user + system of the child, ``wait4``) per event and the machine's load.

    python -m bench.checkpoint_lag [--seconds 200] [--rate 500] [--tenants 50] [--interval-s 60]
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
from prometheus_client import CollectorRegistry

from bench.common import machine, private_clickhouse, private_kafka
from bench.latency import percentile
from bench.writer_throughput import _create_topics
from consumers.migrations import apply_pending
from integrity.keystore import KeyStore
from producers.config import ProducerConfig
from producers.generator import GeneratorConfig, generate
from producers.metrics import producer_metrics
from producers.producer import AuditProducer
from runtime.kafka_connection import KafkaConnection
from schemas.validation import EventValidator

PARTITIONS = 12


def _datums(events: int, tenants: int, seed: int = 31) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(hours=1)
    config = GeneratorConfig(
        events=events, tenants=tenants, seed=seed, start=start, mean_gap_ms=1.0, diurnal=False
    )
    validator = EventValidator()
    return [validator.validate(event).to_avro() for event in generate(config)]


def _publish(
    bootstrap: str, topic: str, datums: list[dict[str, Any]], rate: float
) -> dict[str, float]:
    """Publish ``datums`` at ``rate`` a second; each event id's publish time (epoch ms)."""
    config = ProducerConfig(KafkaConnection(bootstrap), topic=topic, client_id="bench-lag")
    producer = AuditProducer(config, metrics=producer_metrics(CollectorRegistry()))
    published: dict[str, float] = {}
    began = time.perf_counter()
    try:
        for i, datum in enumerate(datums):
            wait = began + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            published[str(datum["event_id"])] = time.time() * 1000
            producer.publish_datum(datum)
    finally:
        report = producer.close()
    if report.delivered != len(datums):
        raise RuntimeError(f"not every event was delivered: {report}")
    return published


def _covered(client: Any, database: str, expected: dict[str, int]) -> bool:
    rows = client.query(
        f"SELECT tenant_id, max(size) FROM {database}.integrity_checkpoints GROUP BY tenant_id"
    ).result_rows
    signed = {str(t): int(s) for t, s in rows}
    return all(signed.get(t, 0) >= n for t, n in expected.items())


def _lags(
    client: Any, database: str, published: dict[str, float], stopped_ms: float
) -> dict[str, list[float]]:
    checkpoints: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for tenant, size, time_ms in client.query(
        f"SELECT tenant_id, size, toUnixTimestamp64Milli(time) "
        f"FROM {database}.integrity_checkpoints ORDER BY tenant_id, time, size"
    ).result_rows:
        if time_ms < stopped_ms:
            checkpoints[str(tenant)].append((int(size), float(time_ms)))
    # Sizes grow with time in one log; the first checkpoint past an index is found by size.
    sizes = {t: [s for s, _ in rows] for t, rows in checkpoints.items()}
    lags: dict[str, list[float]] = defaultdict(list)
    for name, index, event_id in client.query(
        f"SELECT tenant_id, leaf_index, toString(event_id) FROM {database}.integrity_leaves FINAL"
    ).result_rows:
        tenant = str(name)
        at = bisect.bisect_right(sizes.get(tenant, []), int(index))
        if at == len(sizes.get(tenant, [])):
            raise RuntimeError(f"leaf {index} of {tenant} is in no checkpoint before the stop")
        if str(event_id) in published:  # not the warm-up event
            lags[tenant].append(checkpoints[tenant][at][1] - published[str(event_id)])
    return lags


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_s": round(percentile(ordered, 0.50) / 1000, 2),
        "p99_s": round(percentile(ordered, 0.99) / 1000, 2),
        "max_s": round(ordered[-1] / 1000, 2),
        "events": len(ordered),
    }


def run(bootstrap: str, url: str, args: argparse.Namespace, keys_dir: Path) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    topic, database = f"bench.lag.{suffix}", f"bench_lag_{suffix}"
    _create_topics(bootstrap, (topic, PARTITIONS))
    client = clickhouse_connect.get_client(dsn=url)
    apply_pending(client, database=database)
    events = round(args.rate * args.seconds)
    datums = _datums(events, args.tenants)
    expected: dict[str, int] = defaultdict(int)
    for datum in datums:
        expected[str(datum["tenant_id"])] += 1
    env = {
        **os.environ,
        "AUDITLOG_KAFKA_BOOTSTRAP": bootstrap,
        "AUDITLOG_CLICKHOUSE_URL": url,
        "AUDITLOG_CLICKHOUSE_DATABASE": database,
        "AUDITLOG_EVENTS_TOPIC": topic,
        "AUDITLOG_INTEGRITY_GROUP_ID": f"bench-lag-{suffix}",
        "AUDITLOG_INTEGRITY_CHECKPOINT_INTERVAL_S": str(args.interval_s),
        "AUDITLOG_INTEGRITY_KEYS_DIR": str(keys_dir),
        "AUDITLOG_METRICS_PORT": "0",
    }
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "auditlog.cli", "integrity", "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            # One event of an account of its own, stored as a leaf: the appender has joined,
            # loaded its partitions and committed once (a new broker's group coordinator
            # and offsets topic take a while to load the first time).
            warm_up = _datums(1, 1, seed=32)
            warm_up[0]["tenant_id"] = "bench-lag-warm-up"
            _publish(bootstrap, topic, warm_up, args.rate)
            deadline = time.monotonic() + 180
            leaves = f"SELECT count() FROM {database}.integrity_leaves"
            while not client.command(leaves):
                if time.monotonic() > deadline or child.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"the appender did not start: {log.read()[-3000:]!r}")
                time.sleep(0.5)
            began = time.time()
            published = _publish(bootstrap, topic, datums, args.rate)
            publish_s = time.time() - began
            deadline = time.monotonic() + max(3 * args.interval_s, 60.0)
            while not _covered(client, database, expected):
                if time.monotonic() > deadline or child.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"not covered in time: {log.read()[-3000:]!r}")
                time.sleep(1.0)
        finally:
            stopped_ms = time.time() * 1000
            child.send_signal(signal.SIGTERM)
            _pid, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
    lags = _lags(client, database, published, stopped_ms)
    client.command(f"DROP DATABASE IF EXISTS {database}")
    every = [lag for samples in lags.values() for lag in samples]
    per_account = {tenant: _summary(samples) for tenant, samples in sorted(lags.items())}
    worst = max(per_account.values(), key=lambda s: s["p99_s"])
    return {
        "events": events,
        "tenants": args.tenants,
        "rate_per_s": args.rate,
        "publish_s": round(publish_s, 1),
        "interval_s": args.interval_s,
        "lag": _summary(every),
        "worst_account_p99_s": worst["p99_s"],
        "target": {"p99_under_70_s": _summary(every)["p99_s"] < 70},
        "appender": {
            "exit_code": child.returncode,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "cpu_us_per_event_idle_included": round(
                (usage.ru_utime + usage.ru_stime) / events * 1e6, 1
            ),
            "max_rss_mib": round(usage.ru_maxrss / 1024, 1),
        },
        "per_account": per_account,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=200.0, help="how long to publish")
    parser.add_argument("--rate", type=float, default=500.0, help="events a second")
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--interval-s", type=float, default=60.0, help="checkpoint interval")
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--clickhouse-url", help="an existing gateway (default: start one)")
    args = parser.parse_args(argv)
    loadavg_before = float(Path("/proc/loadavg").read_text().split()[0])
    with (
        tempfile.TemporaryDirectory(prefix="bench-lag-keys-") as keys_dir,
        private_kafka(args.bootstrap) as bootstrap,
        private_clickhouse(args.clickhouse_url) as url,
    ):
        KeyStore(Path(keys_dir)).generate("bench", time.time_ns() // 1_000_000 - 60_000)
        result = run(bootstrap, url, args, Path(keys_dir))
    result["machine"] = machine() | {
        "loadavg_1m_before": loadavg_before,
        "loadavg_1m_after": float(Path("/proc/loadavg").read_text().split()[0]),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
