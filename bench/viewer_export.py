"""Viewer exports: NDJSON and CSV events/s and memory, with page latencies, on the engine.

Run against a running gateway or server (``--url``); creates a database of its own, fills
it with ``--rows`` events (one big account holding ``--export-share`` of them, the rest
spread over ``--accounts``), then prints one JSON object: export events/s (NDJSON, CSV)
with the process's peak RSS before and after, and p50/p95 of first page, filtered
pages, a deep page and event-by-id. Not a test: numbers depend on the machine.

    python -m bench.viewer_export --url http://127.0.0.1:8123 --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from consumers.migrations import apply_pending
from schemas.versions import current
from viewer.query.params import parse_export_query, parse_list_query
from viewer.query.reader import EventReader

COLUMNS = [f["name"] for f in current().schema["fields"]]
ACTIONS = ("recipe.stopped", "recipe.started", "recipe.updated", "user.login", "connection.created")


def _rows(n: int, tenant: Any, now: datetime, rng: random.Random) -> list[list[Any]]:
    rows = []
    for i in range(n):
        t = tenant(i)
        rows.append(
            [
                uuid.UUID(int=rng.getrandbits(128), version=4),
                t,
                now - timedelta(seconds=rng.randrange(90 * 86400)),
                ACTIONS[i % 5],
                "recipes",
                ("user", f"u-{i % 50}", "Ann Example", f"user{i % 50}@acme.io"),
                ("recipe", f"r-{i % 500}", f"Recipe number {i % 500}"),
                ("w-1", "Main", "prod"),
                ("203.0.113.7", "Mozilla/5.0", f"req-{i}", f"s-{i % 100}"),
                ("success", None),
                {"trigger": "manual", "job_id": str(i)},
                [("state", "running", "stopped")],
                "recipes-service",
            ]
        )
    return rows


def _pcts(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 1),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--export-share", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    url: str = args.url

    def factory() -> Client:
        return clickhouse_connect.get_client(dsn=url, autogenerate_session_id=False)

    client = factory()
    database = f"bench_viewer_{uuid.uuid4().hex[:8]}"
    apply_pending(client, database=database)
    now = datetime.now(UTC)
    rng = random.Random(1)
    big = int(args.rows * args.export_share)
    started = time.perf_counter()
    for offset in range(0, args.rows, 100_000):
        n = min(100_000, args.rows - offset)
        client.insert(
            f"{database}.events",
            _rows(
                n,
                lambda i, o=offset: "big" if o + i < big else f"acct-{(o + i) % args.accounts}",
                now,
                rng,
            ),
            column_names=COLUMNS,
        )
    client.command(f"OPTIMIZE TABLE {database}.events FINAL")
    load_s = time.perf_counter() - started
    reader = EventReader(factory, database=database, cursor_key=b"b" * 32)
    out: dict[str, Any] = {
        "rows": args.rows,
        "export_account_rows": big,
        "load_s": round(load_s, 1),
    }
    for fmt in ("ndjson", "csv"):
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        stream = reader.export("big", parse_export_query([("format", fmt)]))
        size = sum(len(chunk) for chunk in stream)
        elapsed = time.perf_counter() - started
        out[f"export_{fmt}"] = {
            "events": stream.count,
            "bytes": size,
            "seconds": round(elapsed, 2),
            "events_per_s": round(stream.count / elapsed),
            "peak_rss_mb_before": rss_before // 1024,
            "peak_rss_mb_after": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        }
    week = (now - timedelta(days=7)).isoformat()
    cases = {
        "first_page_7d": [("from", week)],
        "by_actor_7d": [("from", week), ("users_ids[]", "u-7")],
        "by_action_7d": [("from", week), ("include_event_types[]", "recipe.stopped")],
        "by_text_7d": [("from", week), ("q", "NUMBER 42")],
        "ingest_order": [("order", "ingested")],
    }
    accounts = [f"acct-{i}" for i in range(args.accounts)]
    for name, items in cases.items():
        samples = []
        for i in range(args.repeat):
            t = time.perf_counter()
            reader.page(accounts[i % len(accounts)], parse_list_query(items))
            samples.append(time.perf_counter() - t)
        out[name] = _pcts(samples)
    for account in ("big", accounts[0]):
        samples = []
        query = parse_list_query(
            [("from", (now - timedelta(days=90)).isoformat()), ("page[limit]", "1000")]
        )
        page = reader.page(account, query)
        for _ in range(min(args.repeat, 10)):
            if page.next_cursor is None:
                break
            t = time.perf_counter()
            page = reader.page(
                account,
                parse_list_query(
                    [
                        ("from", (now - timedelta(days=90)).isoformat()),
                        ("page[limit]", "1000"),
                        ("page[after]", page.next_cursor),
                    ]
                ),
            )
            samples.append(time.perf_counter() - t)
        if samples:
            out[f"deep_pages_90d_{'big' if account == 'big' else 'small'}"] = _pcts(samples)
    ids = [
        (str(t), str(e))
        for t, e in client.query(
            f"SELECT tenant_id, event_id FROM {database}.events ORDER BY rand() LIMIT {args.repeat}"
        ).result_rows
    ]
    samples = []
    for tenant, event_id in ids:
        t = time.perf_counter()
        assert reader.event(tenant, event_id) is not None
        samples.append(time.perf_counter() - t)
    out["event_by_id"] = _pcts(samples)
    client.command(f"DROP DATABASE {database}")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
