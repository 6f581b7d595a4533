"""Benchmark: the resident size of a long-running process over a large backlog.

Starts a broker and a ClickHouse gateway of its own (or uses given ones), creates a topic
of 12 partitions, migrates a database, and publishes ``--events`` records (10M by default)
from a pool of encoded events (:mod:`bench.pooled_backlog`: fast, the same records as the
SDK's bulk path but for their event ids). Then runs each chosen process as production runs
it, a command of its own (``auditlog consume``, ``auditlog integrity run``; all of them at
once, each in its group) with ``--exit-when-idle``, against the whole backlog (the worst
backlog: everything is there from the start), and samples its resident size
(``/proc/<pid>/statm``) and the rows it has stored (``count()`` of its table) every
``--sample-s`` seconds.

Reports per process: the resident size at 10%, 20% .. 100% of the rows, its peak (the
kernel's ``VmHWM``, read at each sample), its size at the end (the last sample before it
exits), its CPU time per event (user + system, from ``/proc``, the process alone), and the
settings that bound its buffers. Prints one JSON object.

    python -m bench.memory_soak [--events 10000000] [--processes writer,appender]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import clickhouse_connect
from confluent_kafka.admin import AdminClient, NewTopic

from bench.common import REPO, machine, private_clickhouse, private_kafka
from bench.pooled_backlog import event_pool, publish_pooled
from bench.process_cpu import process_cpu_s, rss_bytes
from consumers.migrations import apply_pending
from consumers.writer_config import WriterConfig
from integrity.keystore import KeyStore
from runtime.kafka_connection import KafkaConnection

PARTITIONS = 12
MIB = 1024 * 1024


def _create_topics(bootstrap: str, *topics: tuple[str, int]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(n, p) for n, p in topics]).values():
        future.result(timeout=30)


def _peak_kib(pid: int) -> int | None:
    """The kernel's high-water mark of ``pid``'s resident size (``VmHWM``), KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


@dataclass
class Soaked:
    """One process under watch: its command, how to count its rows, what was sampled."""

    name: str
    argv: list[str]
    env: dict[str, str]
    rows: Callable[[], int]
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (s, rows, rss)
    peak_kib: int = 0
    cpu_s: float = 0.0
    rows_after_exit: int | None = None
    process: subprocess.Popen[bytes] | None = None

    def sample(self, now_s: float) -> bool:
        """Record one sample; False once the process has exited."""
        assert self.process is not None
        if self.process.poll() is not None:
            self.rows_after_exit = self.rows()
            return False
        try:
            rss = rss_bytes(self.process.pid)
            self.cpu_s = process_cpu_s(self.process.pid)
            self.peak_kib = max(self.peak_kib, _peak_kib(self.process.pid) or 0)
        except (FileNotFoundError, ProcessLookupError):
            return False
        if not rss:  # exiting: its memory already released
            return True
        self.samples.append((now_s, self.rows(), rss))
        return True

    def report(self, events: int) -> dict[str, Any]:
        samples = self.samples
        at: dict[str, float | None] = {}
        for tenth in range(1, 11):
            reached = [rss for _s, done, rss in samples if done >= events * tenth / 10]
            at[f"{tenth * 10}%"] = round(reached[0] / MIB, 1) if reached else None
        first_rows = next((s for s in samples if s[1] > 0), None)
        last_s = samples[-1][0] if samples else 0.0
        stored = self.rows()
        return {
            "stored_rows": stored,
            "seconds": round(last_s, 1),
            "events_per_s": round(stored / last_s) if last_s else None,
            "rss_mib_at_rows": at,
            "rss_mib_first_rows": round(first_rows[2] / MIB, 1) if first_rows else None,
            "rss_mib_end": round(samples[-1][2] / MIB, 1) if samples else None,
            "rss_mib_peak_sampled": round(max(s[2] for s in samples) / MIB, 1) if samples else None,
            "rss_mib_peak_vmhwm": round(self.peak_kib / 1024, 1),
            "cpu_s": round(self.cpu_s, 1),
            "cpu_us_per_event": round(self.cpu_s * 1e6 / events, 2),
            "samples": len(samples),
            "rows_at_last_sample": samples[-1][1] if samples else None,
            "rows_after_exit": self.rows_after_exit,
        }


def soak(watched: list[Soaked], *, sample_s: float, timeout_s: float, logs: Path) -> None:
    """Run every command of ``watched`` at once until all exit, sampling each one's
    resident size and rows every ``sample_s`` seconds."""
    files = []
    try:
        for one in watched:
            out = (logs / f"{one.name}.log").open("wb")
            files.append(out)
            one.process = subprocess.Popen(
                one.argv, env=one.env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
            )
        began = time.monotonic()
        running = list(watched)
        while running:
            now = time.monotonic() - began
            if now > timeout_s:
                raise RuntimeError(f"{[o.name for o in running]} still running after {timeout_s} s")
            running = [one for one in running if one.sample(now)]
            time.sleep(sample_s)
    finally:
        for one in watched:
            if one.process is not None:
                if one.process.poll() is None:
                    one.process.terminate()
                one.process.wait(timeout=60)
        for out in files:
            out.close()
    for one in watched:
        assert one.process is not None
        if one.process.returncode != 0:
            raise RuntimeError(f"{one.name} exited {one.process.returncode}; see {logs}")


def _writer_bounds(bootstrap: str) -> dict[str, Any]:
    config = WriterConfig(KafkaConnection(bootstrap))
    properties = config.consumer_properties()
    return {
        "batch_max_records": config.batch_max_records,
        "batch_max_bytes": config.batch_max_bytes,
        "buffered_max_records": config.buffered_max_records,
        **{
            k: properties.get(k)
            for k in (
                "fetch.max.bytes",
                "max.partition.fetch.bytes",
                "queued.max.messages.kbytes",
                "queued.min.messages",
            )
        },
    }


def run(bootstrap: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    topic, dlq = f"bench.soak.{suffix}", f"bench.soak.{suffix}.dlq"
    database = f"bench_soak_{suffix}"
    _create_topics(bootstrap, (topic, PARTITIONS), (dlq, 1))
    client = clickhouse_connect.get_client(dsn=url)
    apply_pending(client, database=database)
    result: dict[str, Any] = {"events": args.events, "topic_partitions": PARTITIONS}
    pool = event_pool(20_000)
    head = args.events if args.head_start is None else min(args.head_start, args.events)
    result["backlog"] = publish_pooled(bootstrap, topic, head, pool=pool)
    rest: dict[str, Any] = {}
    publisher = threading.Thread(
        target=lambda: rest.update(
            publish_pooled(bootstrap, topic, args.events - head, pool=pool, run=2)
        ),
        name="publisher",
    )
    base_env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "AUDITLOG_KAFKA_BOOTSTRAP": bootstrap,
        "AUDITLOG_CLICKHOUSE_URL": url,
        "AUDITLOG_CLICKHOUSE_DATABASE": database,
        "AUDITLOG_EVENTS_TOPIC": topic,
        "AUDITLOG_DEAD_LETTER_TOPIC": dlq,
        "AUDITLOG_METRICS_PORT": "0",
        "AUDITLOG_LOG_LEVEL": "WARNING",
    }
    cli = [sys.executable, "-m", "auditlog.cli"]
    logs = Path(tempfile.mkdtemp(prefix="bench-soak-logs-"))
    idle = str(args.idle_s)

    def count(table: str) -> Callable[[], int]:
        return lambda: int(client.command(f"SELECT count() FROM {database}.{table}"))  # type: ignore[arg-type]

    watched = []
    if "writer" in args.processes:
        watched.append(
            Soaked(
                "writer",
                [*cli, "consume", "--exit-when-idle", idle],
                {**base_env, "AUDITLOG_WRITER_GROUP_ID": f"bench-soak-writer-{suffix}"},
                count("events"),
            )
        )
    if "appender" in args.processes:
        keys_dir = Path(tempfile.mkdtemp(prefix="bench-soak-keys-"))
        KeyStore(keys_dir).generate("bench", time.time_ns() // 1_000_000 - 60_000)
        watched.append(
            Soaked(
                "appender",
                [*cli, "integrity", "run", "--exit-when-idle", idle],
                {
                    **base_env,
                    "AUDITLOG_INTEGRITY_KEYS_DIR": str(keys_dir),
                    "AUDITLOG_INTEGRITY_GROUP_ID": f"bench-soak-appender-{suffix}",
                },
                count("integrity_leaves"),
            )
        )
    result["concurrently"] = [one.name for one in watched]
    if head < args.events:
        publisher.start()
    try:
        soak(watched, sample_s=args.sample_s, timeout_s=args.timeout_s, logs=logs)
    finally:
        if publisher.is_alive():
            publisher.join()
    result["published_while_running"] = rest or None
    for one in watched:
        result[one.name] = one.report(args.events)
    if "writer" in result:
        result["writer"]["bounds"] = _writer_bounds(bootstrap)
    result["logs"] = str(logs)
    client.command(f"DROP DATABASE IF EXISTS {database}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--processes",
        type=lambda text: text.split(","),
        default=["writer"],
        help="comma-separated: writer, appender",
    )
    parser.add_argument(
        "--head-start",
        type=int,
        metavar="EVENTS",
        help="publish only this many before starting the processes, the rest while they "
        "run (default: everything before)",
    )
    parser.add_argument("--sample-s", type=float, default=1.0)
    parser.add_argument("--idle-s", type=float, default=5.0)
    parser.add_argument("--timeout-s", type=float, default=3600.0)
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--clickhouse-url", help="an existing gateway (default: start one)")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with private_kafka(args.bootstrap) as bootstrap, private_clickhouse(args.clickhouse_url) as url:
        result = run(bootstrap, url, args)
    result["machine"] = machine() | {
        "loadavg_1m_before": round(load_before, 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
