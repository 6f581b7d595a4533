"""Benchmark: one sink worker draining the same backlog to a partner destination over every
account (``--tenants``, default 1,000, all managed by one partner) and, in the same run, to
one account destination per account, both S3 (MinIO).

Starts a broker and a MinIO server of its own (or uses ``--bootstrap``/``--s3-endpoint``),
writes the accounts topic (every account managed by partner ``p-bench``, with its partner
history), publishes ``--events`` generated events of the accounts (Zipf-sized, the pool of
:mod:`bench.sink_throughput`), then runs two scenarios, each with a destination topic,
progress topic and consumer group of its own, so each reads the whole backlog:

- ``account``: one S3 destination per account (the sink benchmark's ``s3`` scenario);
- ``partner``: one partner S3 destination of ``p-bench`` (one object per account per
  batch, under the account's prefix).

Each reports the rate (``events_per_s``, first record to last delivery; ``routed_per_s``,
the worker loop's rate), the CPU per event of the worker's process and of its loop thread,
and the S3 objects and lines read back; ``ratios`` compares the two (partner over account).
The backlog was published after the accounts were written and long before the run, so no
record waits for membership (the watermark is past them): the run measures the routing
and delivery cost, not the grace.

Prints one JSON object.

    python -m bench.partner_throughput [--events 100000] [--tenants 1000] [--max-age-s 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from accounts.changes import next_record
from accounts.record import encode_record
from auditlog.settings import AuditlogSettings
from bench.common import machine, private_kafka, private_s3, publish_backlog
from bench.sink_throughput import (
    S3_KEY_ENV,
    S3_SECRET_ENV,
    _create_topics,
    _delete_topics,
    _drain_backlog,
    _fresh_ids,
    _pool,
    _put,
    _s3_destination,
    _s3_keys,
    _s3_objects,
    _scenario_topics,
    _settings,
    _tenants,
    _worker,
)
from deploy.stack import s3
from deploy.stack.endpoints import S3Keys
from runtime.compacted_table import TableWriter
from runtime.kafka_connection import KafkaConnection
from sinks.destinations.model import BatchLimits, Destination

PARTNER = "p-bench"
POOL = 50_000


def _write_accounts(bootstrap: str, topic: str, accounts: list[str]) -> float:
    """Every account managed by :data:`PARTNER` (as ``auditlog accounts set-partner``
    writes it); returns the seconds it took."""
    began = time.perf_counter()
    writer = TableWriter(KafkaConnection(bootstrap), topic, client_id="bench-partner-accounts")
    now = datetime.now(UTC)
    try:
        for account in accounts:
            record = next_record(
                None, account, updated_at=now, updated_by="bench", partner_id=PARTNER
            )
            assert record is not None
            writer.put(account.encode(), encode_record(record))
        writer.flush(60)
    finally:
        writer.close()
    return time.perf_counter() - began


def _scenario(
    name: str,
    bootstrap: str,
    s3_endpoint: str,
    topic: str,
    accounts_topic: str,
    tenants: list[str],
    created: datetime,
    args: argparse.Namespace,
) -> dict[str, Any]:
    base = _settings(bootstrap, s3_endpoint, topic, f"partner-{name}")
    settings = AuditlogSettings(
        **{**base.model_dump(), "accounts_topic": accounts_topic, "sink_partner_grace_s": 2.0}
    )
    batch = BatchLimits(max_age_s=args.max_age_s)
    bucket = f"bench-partner-{uuid.uuid4().hex[:12]}"
    s3.ensure_bucket(s3_endpoint, _s3_keys(), bucket)
    if name == "account":
        destinations = [
            _s3_destination(i, tenant, bucket, s3_endpoint, created, batch)
            for i, tenant in enumerate(tenants)
        ]
    else:
        one = _s3_destination(0, PARTNER, bucket, s3_endpoint, created, batch)
        destinations = [
            Destination.model_validate(
                {**one.model_dump(), "tenant_id": None, "partner_id": PARTNER}
            )
        ]
    put_s = _put(settings, destinations)
    with _worker(settings, idle_s=args.idle_s, profile=False, timeline=False) as run:
        run.start()
        result = _drain_backlog(
            run, args.events, max_age_s=batch.max_age_s, timeout_s=args.timeout_s
        )
    objects = lines = 0
    for _, body in _s3_objects(s3_endpoint, bucket):
        objects += 1
        lines += body.count(b"\n")
    result["received"] = {"events": lines, "objects": objects}
    result["destinations"] = len(destinations)
    result["put_destinations_s"] = round(put_s, 2)
    _delete_topics(bootstrap, _scenario_topics(settings))
    return result


def run(
    bootstrap: str, s3_endpoint: str, s3_keys: S3Keys, args: argparse.Namespace
) -> dict[str, Any]:
    os.environ[S3_KEY_ENV] = s3_keys.access_key
    os.environ[S3_SECRET_ENV] = s3_keys.secret_key
    created = datetime.now(UTC) - timedelta(minutes=1)
    topic = f"bench.partner.{uuid.uuid4().hex[:8]}"
    accounts_topic = f"{topic}.accounts"
    _create_topics(bootstrap, topics=[topic], compacted=[accounts_topic])
    pool = _pool(min(args.events, POOL), args.tenants, seed=17)
    tenants = _tenants(pool)
    result: dict[str, Any] = {
        "events": args.events,
        "accounts": len(tenants),
        "partner_id": PARTNER,
        "batch_max_age_s": args.max_age_s,
        "write_accounts_s": round(_write_accounts(bootstrap, accounts_topic, tenants), 2),
    }
    result["backlog"] = publish_backlog(
        bootstrap,
        topic,
        _fresh_ids(pool, args.events),
        events=args.events,
        client_id="bench-partner-backlog",
        path=f"a pool of {len(pool)} validated events, publish_datum, fresh event ids",
    )
    for name in ("account", "partner"):
        result[name] = _scenario(
            name, bootstrap, s3_endpoint, topic, accounts_topic, tenants, created, args
        )
    account, partner = result["account"], result["partner"]
    result["ratios"] = {
        "partner_over_account_events_per_s": round(
            partner["events_per_s"] / max(account["events_per_s"], 1), 3
        ),
        "partner_over_account_routed_per_s": round(
            (partner["routed_per_s"] or 0) / max(account["routed_per_s"] or 0, 1), 3
        ),
        "partner_over_account_process_cpu_per_event": round(
            partner["process_cpu_us_per_event"] / max(account["process_cpu_us_per_event"], 0.1),
            3,
        ),
    }
    _delete_topics(bootstrap, [topic, accounts_topic])
    return result


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=100_000, help="backlog size")
    parser.add_argument("--tenants", type=int, default=1_000, help="accounts of the partner")
    parser.add_argument("--max-age-s", type=float, default=5.0, help="batch max_age_s")
    parser.add_argument("--idle-s", type=float, default=10.0, help="worker exit_when_idle_s")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="per scenario")
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--s3-endpoint", help="an existing S3 endpoint (default: start MinIO)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    began = time.perf_counter()
    load_before = os.getloadavg()
    with (
        private_kafka(args.bootstrap) as bootstrap,
        private_s3(args.s3_endpoint) as (endpoint, keys),
    ):
        result = run(bootstrap, endpoint, keys, args)
    result["total_s"] = round(time.perf_counter() - began, 1)
    result["machine"] = machine() | {
        "loadavg_1m_before": round(load_before[0], 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
