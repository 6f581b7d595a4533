"""Benchmark: ``auditlog verify`` of one account of ``--events`` (1M) events, end to end
and by part.

Builds the account's log fast, without a broker: the engine generates the events
(:func:`bench.viewer_dataset.generate_sql`, one account, occurred over the 365 days before
now, the account's retention set to 10 years first so the TTL removes none); they are read
back once in the order the stream gives them, which is taken as the Kafka order (leaf ``i``
is offset ``i`` of partition 0), hashed as the appender hashes, and the leaves inserted; a
checkpoint is signed every ``--checkpoint-every`` leaves and at the end, and one prune
statement. Not timed.

Then, timed:

- ``command``: ``python -m auditlog.cli verify --account A --keys keys.json`` as a child
  process (what an operator runs), wall time, its CPU time (``wait4``) and its own peak
  RSS (VmHWM: ``wait4``'s includes this process's, see :data:`_MEASURED_CLI`), exit code 0;
- ``command_window``: the same with ``--from``/``--to`` holding the last 30 days;
- ``parts``, in this process, on the same code: reading the leaves, checkpoints and
  statements (``read_log``); streaming the events without hashing them; hashing them
  (``event_leaf_hash``, the verifier's call); the tree over all leaves against every
  checkpoint; the signatures (checkpoints and statements) alone; and ``check_log`` over
  the streamed events (read + hash + tree + signatures: the command's path in process).

Prints one JSON object.

    python -m bench.integrity_verify [--events 1000000] [--clickhouse-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from auditlog.settings import AuditlogSettings
from bench.common import machine, private_clickhouse
from bench.viewer_dataset import DatasetSpec, generate_sql
from consumers.migrations import apply_pending
from consumers.retention import set_retention
from integrity import merkle
from integrity.checkpoint import Checkpoint, origin_for, sign, verify
from integrity.checkpoint_store import CheckpointStore
from integrity.checkpointer import CheckpointRow
from integrity.heads import LEAVES_TABLE
from integrity.keystore import KeyStore, public_document
from integrity.leaf import event_leaf_hash
from integrity.packed import PackedLeaves
from integrity.prune_statement import verify_statement
from integrity.prune_store import ClickHousePruneStore
from integrity.pruner import PrunePolicy, Pruner
from integrity.stored_log import read_log
from integrity.verification import Window, check_log, stored_events
from producers.generator.population import tenant_id

DATABASE = "bench_verify"
CHUNK_ROWS = 100_000
_LEAF_COLUMNS = ["tenant_id", "leaf_index", "partition", "kafka_offset", "event_id", "leaf_hash"]


def _load() -> float:
    """The 1-minute load average (the machine is shared: say how busy it was)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def build(client: Client, keys: KeyStore, events: int, checkpoint_every: int) -> dict[str, Any]:
    """Events, leaves, checkpoints and a prune statement of one account; how long each took."""
    spec = DatasetSpec(events=events, accounts=1, duplicate_every=0)
    account = tenant_id(0, spec.seed)
    apply_pending(client, database=DATABASE)
    set_retention(client, account, 3650, database=DATABASE)
    anchor_ms = _now_ms()
    began = time.perf_counter()
    for start in range(0, events, CHUNK_ROWS):
        rows = min(CHUNK_ROWS, events - start)
        source = f"SELECT number AS n FROM numbers({start}, {rows})"
        client.command(generate_sql(DATABASE, spec, anchor_ms, source))
    generate_s = time.perf_counter() - began
    began = time.perf_counter()
    frontier = merkle.Frontier.empty()
    checkpoints: list[CheckpointRow] = []
    batch: list[list[Any]] = []
    signers = keys.active_signers(_now_ms())
    for event_id, stored in stored_events(read_log(client, DATABASE, account)):
        leaf_hash = event_leaf_hash(stored.event)
        batch.append([account, frontier.size, 0, frontier.size, event_id, leaf_hash])
        frontier.append(leaf_hash)
        if frontier.size % checkpoint_every == 0 or frontier.size == events:
            now_ms = _now_ms()
            checkpoint = Checkpoint(origin_for(account), frontier.size, frontier.root(), now_ms)
            note = sign(checkpoint, signers)
            checkpoints.append(
                CheckpointRow(account, checkpoint.size, checkpoint.root, now_ms, note)
            )
        if len(batch) == CHUNK_ROWS:
            client.insert(f"{DATABASE}.{LEAVES_TABLE}", batch, column_names=_LEAF_COLUMNS)
            batch = []
    if batch:
        client.insert(f"{DATABASE}.{LEAVES_TABLE}", batch, column_names=_LEAF_COLUMNS)
    CheckpointStore(client, DATABASE).insert(checkpoints)
    ring = keys.ring()
    pruner = Pruner(
        ClickHousePruneStore(client, DATABASE), keys.active_signers, lambda: ring, PrunePolicy()
    )
    pruner.sign_due([account], _now_ms())
    if frontier.size != events:
        raise RuntimeError(f"{frontier.size} leaves of {events} events")
    return {
        "account": account,
        "generate_events_s": round(generate_s, 1),
        "hash_and_store_leaves_s": round(time.perf_counter() - began, 1),
        "checkpoints": len(checkpoints),
    }


# The child's own peak RSS: VmHWM of its memory after exec. ``wait4``'s ``ru_maxrss`` is
# not it on Linux: the maximum is kept across fork and exec, so a child forked from this
# process (which holds the whole data set it built) reports at least this process's RSS.
_MEASURED_CLI = """
import atexit, runpy, sys
def _peak(path=sys.argv[1]):
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            with open(path, "w") as out:
                out.write(line.split()[1])
atexit.register(_peak)
sys.argv = ["auditlog", *sys.argv[2:]]
runpy.run_module("auditlog.cli", run_name="__main__")
"""


def run_measured(environment: dict[str, str], *argv: str) -> dict[str, Any]:
    """``python -m auditlog.cli *argv`` in a child process: wall time, CPU time
    (``wait4``), its own peak RSS (VmHWM, see above), exit code, the end of its output."""
    with tempfile.TemporaryFile("w+") as output, tempfile.NamedTemporaryFile("r") as peak:
        began = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", _MEASURED_CLI, peak.name, *argv],
            env={**os.environ, **environment},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        _pid, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - began
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        output.seek(0)
        text = output.read()
        peak_kib = peak.read().strip()
    return {
        "exit_code": child.returncode,
        "seconds": round(seconds, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),  # the machine is shared: CPU time
        "peak_rss_mib": round(int(peak_kib) / 1024, 1) if peak_kib else None,
        "output": text.strip()[-400:],
    }


def run_command(environment: dict[str, str], *argv: str) -> dict[str, Any]:
    """``auditlog verify *argv`` (see :func:`run_measured`)."""
    return run_measured(environment, "verify", *argv)


def _timed(action: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    result = action()
    return result, time.perf_counter() - began


def parts(client: Client, keys: KeyStore, account: str, events: int) -> dict[str, Any]:
    """The verify path's parts, in this process."""
    ring = keys.ring()
    log, read_leaves_s = _timed(lambda: read_log(client, DATABASE, account))

    def stream() -> Iterator[Any]:
        return iter(stored_events(read_log(client, DATABASE, account)))

    streamed, read_events_s = _timed(lambda: sum(1 for _ in stream()))
    hash_s = 0.0
    for _event_id, stored in stream():
        began = time.perf_counter()
        event_leaf_hash(stored.event)
        hash_s += time.perf_counter() - began

    def signatures() -> dict[int, bytes]:
        roots = {}
        for note in log.notes:
            checkpoint = verify(note, ring, origin=origin_for(account))
            roots[checkpoint.size] = checkpoint.root
        for note in log.prune_notes:
            verify_statement(note, ring, account=account)
        return roots

    roots, signatures_s = _timed(signatures)

    def tree() -> int:
        frontier = merkle.Frontier.empty()
        for leaf_hash in PackedLeaves.of(log.leaves).hashes():
            frontier.append(leaf_hash)
            if frontier.size in roots and frontier.root() != roots[frontier.size]:
                raise RuntimeError(f"root at {frontier.size}")
        return frontier.size

    _size, tree_s = _timed(tree)
    report, check_s = _timed(lambda: check_log(read_log(client, DATABASE, account), ring))
    if not report.ok or streamed != events:
        raise RuntimeError(f"{streamed} events streamed; {[f.line() for f in report.findings]}")
    return {
        "read_leaves_and_notes_s": round(read_leaves_s, 2),
        "read_events_s": round(read_events_s, 2),
        "hash_events_s": round(hash_s, 2),
        "tree_s": round(tree_s, 2),
        "signatures_s": round(signatures_s, 3),
        "signed_notes": len(log.notes) + len(log.prune_notes),
        "read_and_check_log_s": round(read_leaves_s + check_s, 2),
        "read_and_check_log_events_per_s": round(events / (read_leaves_s + check_s)),
        "read_events_per_s": round(events / read_events_s),
        "hash_events_per_s": round(events / hash_s),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--checkpoint-every", type=int, default=100_000)
    parser.add_argument("--clickhouse-url", help="an existing gateway (default: start one)")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"events": args.events, "loadavg_1m_before": _load()}
    with (
        tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp,
        private_clickhouse(args.clickhouse_url) as url,
    ):
        keys = KeyStore(Path(tmp) / "keys")
        keys.generate("bench", _now_ms() - 60_000)
        keys_file = Path(tmp) / "keys.json"
        keys_file.write_text(json.dumps(public_document(keys.public_keys())))
        client = clickhouse_connect.get_client(dsn=url)
        try:
            client.command(f"DROP DATABASE IF EXISTS {DATABASE}")
            result["build"] = build(client, keys, args.events, args.checkpoint_every)
            account = result["build"]["account"]
            environment = AuditlogSettings(
                clickhouse_url=url, clickhouse_database=DATABASE
            ).environment()
            command = run_command(environment, "--account", account, "--keys", str(keys_file))
            command["events_per_s"] = round(args.events / command["seconds"])
            command["events_per_cpu_s"] = round(args.events / command["cpu_s"])
            result["command"] = command
            month_ago = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
            window = run_command(
                environment, "--account", account, "--keys", str(keys_file), "--from", month_ago
            )
            result["command_window_last_30_days"] = window
            result["parts"] = parts(client, keys, account, args.events)
            result["window"] = str(Window(datetime.fromisoformat(month_ago).replace(tzinfo=UTC)))
        finally:
            client.command(f"DROP DATABASE IF EXISTS {DATABASE}")
            client.close()
    result["loadavg_1m_after"] = _load()
    result["machine"] = machine()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
