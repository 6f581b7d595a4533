"""Benchmark: ``auditlog verify --webhook-dir`` of a streamed copy of one account of
``--events`` events (a webhook receiver's saved payloads: gzip NDJSON files, each a
batch's events followed by its ``auditlog.leaves`` records and, every
``--checkpoint-every`` events, a signed checkpoint).

Built first, not timed: the events (``sinks.encoding.event_json`` of generated events),
their leaf hashes, the records (:mod:`integrity.copy_records`) over a real tree, signed with
a fresh key. Then timed: the command as a child process (what a customer runs), wall time,
its CPU time and its own peak RSS (:func:`bench.integrity_verify.run_measured`), exit
code 0.

Prints one JSON object.

    python -m bench.integrity_verify_copy [--events 1000000] [--batch 2000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import machine
from bench.integrity_verify import run_measured
from integrity import merkle
from integrity.checkpoint import Checkpoint, origin_for, sign
from integrity.copy_records import CheckpointRecord, encode, leaves_records
from integrity.keys import SigningKey
from integrity.keystore import public_document
from integrity.leaf import event_leaf_hash
from sinks.encoding import event_json

ACCOUNT = "acct-bench"
START = datetime(2026, 11, 1, tzinfo=UTC)


def _event(number: int) -> dict[str, Any]:
    at = START + timedelta(milliseconds=number * 37)
    return {
        "event_id": str(uuid.UUID(int=number + 1)),
        "tenant_id": ACCOUNT,
        "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
        "action": "recipe.stopped",
        "category": "recipes",
        "actor": {"type": "user", "id": f"u-{number % 997}", "name": "Ann Lee"},
        "resource": {"type": "recipe", "id": f"r-{number % 4999}", "name": "Onboard hires"},
        "workspace": {"id": "w-1", "name": "Main", "environment": "prod"},
        "request": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "request_id": "q-1"},
        "outcome": {"status": "success"},
        "details": {"reason": "manual", "ticket": f"T-{number}"},
        "source": "recipes-service",
    }


def build(directory: Path, key: SigningKey, events: int, batch: int, every: int) -> dict[str, Any]:
    """The copy's files; how long building took and how big it is."""
    began = time.perf_counter()
    tree = merkle.Frontier.empty()
    size = 0
    for number, start in enumerate(range(0, events, batch)):
        made = [_event(n) for n in range(start, min(start + batch, events))]
        hashes = [event_leaf_hash(event) for event in made]
        lines = [event_json(event) for event in made]
        lines += [encode(record) for record in leaves_records(ACCOUNT, tree, hashes)]
        for leaf_hash in hashes:
            tree.append(leaf_hash)
        if tree.size % every < batch or tree.size == events:
            time_ms = int((START + timedelta(days=1)).timestamp() * 1000) + tree.size
            checkpoint = Checkpoint(origin_for(ACCOUNT), tree.size, tree.root(), time_ms)
            lines.append(encode(CheckpointRecord(ACCOUNT, sign(checkpoint, [key]))))
        body = gzip.compress(b"".join(line + b"\n" for line in lines), compresslevel=1)
        (directory / f"{number:08d}.ndjson.gz").write_bytes(body)
        size += len(body)
    return {"build_s": round(time.perf_counter() - began, 1), "copy_bytes_gzip": size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--checkpoint-every", type=int, default=100_000)
    args = parser.parse_args(argv)
    load = float(Path("/proc/loadavg").read_text().split()[0])
    result: dict[str, Any] = {"events": args.events, "loadavg_1m_before": load}
    with tempfile.TemporaryDirectory(prefix="bench-verify-copy-") as tmp:
        key = SigningKey("bench", Ed25519PrivateKey.generate())
        keys_file = Path(tmp) / "keys.json"
        keys_file.write_text(json.dumps(public_document([key.verifier()])))
        copy = Path(tmp) / "copy"
        copy.mkdir()
        result["build"] = build(copy, key, args.events, args.batch, args.checkpoint_every)
        command = run_measured(
            {"AUDITLOG_LOG_LEVEL": "WARNING"},
            "verify",
            "--webhook-dir",
            str(copy),
            "--keys",
            str(keys_file),
        )
        command["events_per_s"] = round(args.events / command["seconds"])
        command["events_per_cpu_s"] = round(args.events / command["cpu_s"])
        result["command"] = command
    result["machine"] = machine()
    print(json.dumps(result))
    return 0 if command["exit_code"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
