"""Benchmark: Native-format inserts through clickhouse-connect into the ClickHouse gateway.

Inserts ``--rows`` rows of a 10-column audit-event table in batches of ``--batch-rows``
(one ``client.insert`` each) and prints one JSON object: rows, seconds, rows_per_s, the
gateway start time when it started one, and the machine. Column data is built before the
clock starts; the time covers encoding, HTTP, the gateway and the engine.

    python -m bench.clickhouse_insert                # a gateway of its own in a temp dir
    python -m bench.clickhouse_insert --url http://127.0.0.1:18123   # an existing one
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import clickhouse_connect

from bench.common import machine, private_clickhouse

COLUMNS = [
    ("tenant", "LowCardinality(String)"),
    ("seq", "UInt64"),
    ("event_id", "UUID"),
    ("at", "DateTime64(3, 'UTC')"),
    ("action", "LowCardinality(String)"),
    ("actor", "String"),
    ("resource", "String"),
    ("ip", "IPv4"),
    ("ok", "Bool"),
    ("details", "String"),
]


def _template(rows: int) -> list[list[Any]]:
    """One batch of column data; only ``seq`` changes between batches."""
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return [
        [f"tenant-{n % 50}" for n in range(rows)],
        list(range(rows)),
        [uuid.UUID(int=n + 1) for n in range(rows)],
        [at + timedelta(milliseconds=n) for n in range(rows)],
        [f"resource.{('create', 'read', 'update', 'delete')[n % 4]}" for n in range(rows)],
        [f"user-{n % 1000}@example.com" for n in range(rows)],
        [f"projects/{n % 300}/documents/{n}" for n in range(rows)],
        [f"10.0.{(n >> 8) % 256}.{n % 256}" for n in range(rows)],
        [n % 17 != 0 for n in range(rows)],
        [f'{{"request_id":"r{n}","user_agent":"bench/1.0"}}' for n in range(rows)],
    ]


def run(url: str, *, rows: int, batch_rows: int, compress: bool) -> dict[str, Any]:
    """Insert ``rows`` rows at ``url``; the measurement as a dict."""
    parts = urllib.parse.urlsplit(url)
    client = clickhouse_connect.get_client(host=parts.hostname, port=parts.port, compress=compress)
    database = f"bench_{uuid.uuid4().hex[:8]}"
    client.command(f"CREATE DATABASE {database}")
    table = f"{database}.events"
    client.command(
        f"CREATE TABLE {table} ({', '.join(f'{name} {kind}' for name, kind in COLUMNS)}) "
        "ENGINE = MergeTree ORDER BY (tenant, at, seq) TTL toDateTime(at) + INTERVAL 365 DAY"
    )
    names = [name for name, _ in COLUMNS]
    batch = _template(batch_rows)
    elapsed_s = 0.0
    for start in range(0, rows, batch_rows):
        count = min(batch_rows, rows - start)
        data = [column[:count] for column in batch]
        data[1] = list(range(start, start + count))
        began = time.perf_counter()
        client.insert(table, data, column_names=names, column_oriented=True)
        elapsed_s += time.perf_counter() - began
    stored = client.command(f"SELECT count() FROM {table}")
    client.command(f"DROP DATABASE {database}")
    return {
        "rows": rows,
        "stored_rows": stored,
        "batch_rows": batch_rows,
        "columns": len(COLUMNS),
        "format": "Native",
        "compression": "lz4" if compress else None,
        "seconds": round(elapsed_s, 3),
        "rows_per_s": round(rows / elapsed_s),
        "engine_version": client.server_version,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", help="an existing gateway or ClickHouse server")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--no-compress", action="store_true", help="send bodies uncompressed")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}
    began = time.perf_counter()
    with private_clickhouse(args.url) as url:
        if args.url is None:
            result["gateway_start_s"] = round(time.perf_counter() - began, 3)
        result |= run(
            url, rows=args.rows, batch_rows=args.batch_rows, compress=not args.no_compress
        )
    result["machine"] = machine() | {"clickhouse_connect": clickhouse_connect.__version__}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
