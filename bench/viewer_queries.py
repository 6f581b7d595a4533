"""Benchmark: the viewer's queries on 10M generated events, as the engine answers them.

Starts a ClickHouse gateway (chdb) of its own on a cached data directory
(``<cache>/bench-viewer-v<N>/<key>/``, see :mod:`bench.viewer_dataset`; ``--reload``
builds it again; the cache is ``--cache-dir``, else ``$AUDITLOG_CACHE_DIR``, else
``.cache``), loads ``--events`` generated events across ``--accounts`` accounts into it
when it is not there yet (timed), and measures through clickhouse-connect, each client
its own, no viewer code:

- ``first_page``: one account's last 7 days, newest first, 100 rows, duplicates dropped;
  ``first_page_count``: its total (distinct events); ``first_page_and_count``: both, one
  after the other, as the viewer's list answers;
- ``by_actor``, ``by_action``, ``by_text``: the same filtered (text: case-insensitive
  substring of resource name or actor email); ``by_text_90d`` over 90 days;
- ``deep_page``: the keyset page after a cursor about 60 days back in a 90-day range;
- ``by_id``: one event of the account by id, no time bound;
- ``poll``: the page after an ingest watermark an hour back (pollers, ingest order);
- ``export``: every event of the largest account over 365 days, streamed as
  JSONEachRow (events/s);
- ``concurrent``: ``first_page`` from ``--clients`` threads at once, each with a client
  (and ``concurrent_8`` with 8, to see where it saturates);
- ``select_1``: the gateway's floor, ``SELECT 1``, serially.

Accounts: ranks 1, 2, 3, 5, 10, 20, 50, 100, 200, 500 and 1,000 by size (log-spaced
over the Zipf distribution, capped by ``--accounts``), each with ``--probes`` probes
(actor, action, term, cursor and event id sampled from its own events); every kind's
runs cycle through the probes, so percentiles mix large and small accounts; ``largest``
gives the largest account's p95 apart. Then (unless ``--no-experiments``) the choices:
deduplication (``LIMIT 1 BY`` / ``FINAL`` / none) and counting, keyset forms, and each
candidate skip index or projection added to the loaded table (and removed after), with
the kinds it is for measured before and after, and its cost at insert (see
:mod:`bench.viewer_indexes`); with ``--layouts``, the same rows merged to one part per
partition at three index granularities.

Prints one JSON object.

    python -m bench.viewer_queries                       # 10M events, 1,000 accounts
    python -m bench.viewer_queries --events 200000 --accounts 100 --runs 50   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from bench import viewer_indexes, viewer_paths, viewer_service, viewer_sql
from bench.common import REPO, machine
from bench.latency import run_concurrent, run_serial, summary
from bench.viewer_dataset import (
    DatasetSpec,
    Loaded,
    cache_dir,
    load,
    read_loaded,
    wait_for_merges,
)
from bench.viewer_sql import MAX_EVENT_AGE, Probe, Query
from deploy.stack import processes
from deploy.stack.clickhouse import engine_dir, start_clickhouse, stop_clickhouse
from viewer.query.reader import EventReader

DATABASE = "viewer_bench"
RANKS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)
TARGETS = {"first_page_p95_ms": 100, "concurrent_p95_ms": 300, "export_events_per_s": 100_000}


def connect(url: str) -> Client:
    """A client of its own for ``url`` (one per thread: clients are not thread-safe)."""
    host, port = url.removeprefix("http://").split(":")
    return clickhouse_connect.get_client(host=host, port=int(port), compress=False)


# -- the data set --------------------------------------------------------------------------


def prepare(url: str, data_dir: Path, spec: DatasetSpec) -> tuple[Loaded, dict[str, Any]]:
    """The loaded data set at ``url`` (loading it when ``data_dir`` has none), and what
    preparing it took."""
    client = connect(url)
    loaded = read_loaded(data_dir)
    facts: dict[str, Any] = {"cached": loaded is not None}
    if loaded is None:
        loaded = load(client, data_dir, spec, database=DATABASE)
        facts["load_s"] = loaded.load_s
        facts["load_events_per_s"] = round(loaded.rows / loaded.load_s)
    facts["merge_wait_s"] = wait_for_merges(client, DATABASE, timeout_s=300)
    viewer_indexes.drop_leftovers(client, DATABASE)
    parts = client.query(
        "SELECT count(), sum(rows), formatReadableSize(sum(bytes_on_disk)) FROM system.parts"
        " WHERE database = {db:String} AND table = 'events' AND active",
        parameters={"db": DATABASE},
    ).result_rows[0]
    facts |= {"parts": parts[0], "stored_rows": parts[1], "bytes_on_disk": parts[2]}
    distinct = sum(size for _, size in loaded.account_sizes)
    facts |= {"events": distinct, "duplicates_stored": int(parts[1]) - distinct}
    facts["load_s_first_time"] = loaded.load_s
    return loaded, facts


def probes(client: Client, loaded: Loaded, *, per_account: int) -> list[Probe]:
    """Probes of the accounts at :data:`RANKS`, interleaved (rank by rank, then again)."""
    anchor = _anchor(loaded)
    chosen = sorted({min(rank, len(loaded.account_sizes)) for rank in RANKS})
    found: list[Probe] = []
    for salt in range(per_account):
        for rank in chosen:
            tenant, size = loaded.account_sizes[rank - 1]
            found.append(
                viewer_sql.sample_probe(
                    client, DATABASE, tenant, size, anchor=anchor, salt=salt * 7919 + rank
                )
            )
    return found


def _anchor(loaded: Loaded) -> datetime:
    """The data set's "now", naive UTC (as clickhouse-connect returns DateTime64 'UTC')."""
    return datetime.fromtimestamp(loaded.anchor_ms / 1000, UTC).replace(tzinfo=None)


# -- measuring -----------------------------------------------------------------------------


def _measure(
    client: Client, samples: Sequence[Sequence[Query]], *, largest: str | None = None
) -> dict[str, Any]:
    """Run every sample (its queries one after the other) once, after a warm-up of the
    first few, timed; the summary, the engine's own share (the sum of ``elapsed_ns`` of
    the gateway's summaries: the chdb calls, without HTTP, the gateway's connection per
    request and the client), the mean rows returned by the first query, and for the
    largest account its p95 and what the engine plans to read for the first query
    (``EXPLAIN ESTIMATE``)."""
    returned: list[int] = []
    inside_ms: list[float] = []

    def call(queries: Sequence[Query]) -> Callable[[], object]:
        def run() -> None:
            inside = 0.0
            for n, (sql, params) in enumerate(queries):
                result = client.query(sql, parameters=params)
                if n == 0:
                    returned.append(len(result.result_rows))
                inside += int(result.summary.get("elapsed_ns", 0)) / 1e6
            inside_ms.append(inside)

        return run

    times = run_serial([call(q) for q in samples])
    warm = len(returned) - len(times)
    inside = summary(inside_ms[warm:])
    found = summary(times) | {
        "in_engine_p50_ms": inside["p50_ms"],
        "in_engine_p95_ms": inside["p95_ms"],
        "rows_returned_mean": round(sum(returned[warm:]) / len(times), 1),
    }
    own = [(ms, q) for ms, q in zip(times, samples, strict=True) if q[0][1]["tenant"] == largest]
    if own:
        found["largest_p95_ms"] = summary([ms for ms, _ in own])["p95_ms"]
        found["largest_plan"] = viewer_sql.estimate(client, own[0][1][0])
    return found


def _cycle(probes_: Sequence[Probe], runs: int) -> list[Probe]:
    return [probes_[i % len(probes_)] for i in range(runs)]


def kinds(
    client: Client, loaded: Loaded, probes_: Sequence[Probe], *, runs: int
) -> dict[str, Callable[[], dict[str, Any]]]:
    """Each query kind as a thunk measuring it over ``runs`` runs."""
    now = _anchor(loaded)
    week = now - timedelta(days=7)
    quarter = now - timedelta(days=90)
    hour_ago = now - timedelta(hours=1)
    cycle = _cycle(probes_, runs)
    largest = loaded.account_sizes[0][0]
    db = DATABASE

    def of(*builds: Callable[[Probe], Query]) -> Callable[[], dict[str, Any]]:
        samples = [[build(p) for build in builds] for p in cycle]
        return lambda: _measure(client, samples, largest=largest)

    def first_page(p: Probe) -> Query:
        return viewer_sql.page(db, p, since=week, until=now)

    def first_count(p: Probe) -> Query:
        return viewer_sql.count(db, p, since=week, until=now)

    return {
        "first_page": of(first_page),
        "first_page_count": of(first_count),
        "first_page_and_count": of(first_page, first_count),
        "by_actor": of(lambda p: viewer_sql.page(db, p, since=week, until=now, filter_="actor")),
        "by_actor_email": of(
            lambda p: viewer_sql.page(db, p, since=week, until=now, filter_="actor_email")
        ),
        "by_action": of(lambda p: viewer_sql.page(db, p, since=week, until=now, filter_="action")),
        "by_text": of(lambda p: viewer_sql.page(db, p, since=week, until=now, filter_="text")),
        "by_text_90d": of(
            lambda p: viewer_sql.page(db, p, since=quarter, until=now, filter_="text")
        ),
        "deep_page": of(lambda p: viewer_sql.keyset_page(db, p, since=quarter)),
        "by_id": of(lambda p: viewer_sql.by_id(db, p)),
        "poll": of(
            lambda p: viewer_sql.poll(db, p, ingested_after=hour_ago, max_age=MAX_EVENT_AGE)
        ),
    }


def concurrent(
    url: str, loaded: Loaded, probes_: Sequence[Probe], *, clients: int, runs_per_client: int
) -> dict[str, Any]:
    """``first_page`` from ``clients`` threads at once, each its own client."""
    now = _anchor(loaded)
    week = now - timedelta(days=7)
    own = [connect(url) for _ in range(clients)]
    for client in own:  # connect and warm every client before the clock starts
        client.query("SELECT 1")

    def call(query: Query) -> Callable[[Client], object]:
        return lambda client: client.query(query[0], parameters=query[1])

    def probe(c: int, i: int) -> Probe:
        return probes_[(c * 7 + i) % len(probes_)]

    plans = [
        [
            call(viewer_sql.page(DATABASE, probe(c, i), since=week, until=now))
            for i in range(runs_per_client)
        ]
        for c in range(clients)
    ]
    samples, wall_s = run_concurrent(own, plans)
    return summary(samples) | {
        "clients": clients,
        "queries_per_s": round(len(samples) / wall_s, 1),
    }


def export(url: str, loaded: Loaded, *, runs: int) -> dict[str, Any]:
    """The largest account's 365 days as JSONEachRow, streamed, ``runs`` times."""
    client = connect(url)
    now = _anchor(loaded)
    tenant = loaded.account_sizes[0][0]
    sql, params = viewer_sql.export(
        DATABASE, tenant, since=now - timedelta(days=366), until=now + timedelta(days=1)
    )
    rates: list[float] = []
    events = 0
    for _ in range(runs):
        began = time.perf_counter()
        events = 0
        with client.raw_stream(sql, parameters=params, fmt="JSONEachRow") as stream:
            for chunk in stream:
                events += chunk.count(b"\n")
        rates.append(events / (time.perf_counter() - began))
    rates.sort()
    return {
        "events": events,
        "runs": runs,
        "events_per_s_median": round(rates[len(rates) // 2]),
        "events_per_s_min": round(rates[0]),
        "format": "JSONEachRow",
    }


# -- the run -------------------------------------------------------------------------------


def _loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    spec = DatasetSpec(events=args.events, accounts=args.accounts, chunk_rows=args.chunk_rows)
    data_dir = cache_dir(args.cache_dir, spec)
    if args.reload and data_dir.exists():
        stop_clickhouse(data_dir)
        shutil.rmtree(data_dir)
    if read_loaded(data_dir) is None and engine_dir(data_dir).exists():
        stop_clickhouse(data_dir)  # an interrupted load: start again
        shutil.rmtree(engine_dir(data_dir))
    data_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"machine": machine(), "loadavg_1m_before": _loadavg()}
    port = processes.choose_port(0)
    began = time.perf_counter()
    start_clickhouse(data_dir=data_dir, port=port)
    result["gateway_start_s"] = round(time.perf_counter() - began, 2)
    url = f"http://127.0.0.1:{port}"
    try:
        loaded, facts = prepare(url, data_dir, spec)
        result["dataset"] = facts | {"spec": vars(spec), "data_dir": str(data_dir)}
        client = connect(url)
        found = probes(client, loaded, per_account=args.probes)
        result["accounts_probed"] = sorted({(p.events, p.tenant_id) for p in found}, reverse=True)
        engine: dict[str, Any] = {
            "select_1": summary(run_serial([lambda: client.query("SELECT 1")] * args.runs))
        }
        for name, measure in kinds(client, loaded, found, runs=args.runs).items():
            engine[name] = measure()
        for clients in sorted({min(8, args.clients), args.clients}):
            key = "concurrent" if clients == args.clients else f"concurrent_{clients}"
            engine[key] = concurrent(
                url, loaded, found, clients=clients, runs_per_client=args.concurrent_runs
            )
        engine["export"] = export(url, loaded, runs=args.export_runs)
        result["engine"] = engine
        if not args.no_viewer:
            result |= through_viewer(url, client, loaded, found, args)
        result["targets"] = _targets(result)
        result["comparison_p95_ms"] = _comparison(result)
        if not args.no_experiments:
            result["experiments"] = viewer_indexes.experiments(
                client, DATABASE, loaded, found, anchor=_anchor(loaded), runs=args.runs
            )
        if args.layouts:
            result["layouts"] = viewer_indexes.layouts(
                client, DATABASE, found, anchor=_anchor(loaded), runs=args.runs
            )
    finally:
        stop_clickhouse(data_dir)
    result["loadavg_1m_after"] = _loadavg()
    return result


def through_viewer(
    url: str, client: Client, loaded: Loaded, found: Sequence[Probe], args: argparse.Namespace
) -> dict[str, Any]:
    """The viewer's own SQL straight to the engine, then every kind through
    :class:`EventReader` in this process and (unless ``--no-http``) over HTTP."""
    window = viewer_paths.Window(_anchor(loaded).replace(tzinfo=UTC))
    largest = loaded.account_sizes[0][0]
    key_text = secrets.token_hex(32)
    key = key_text.encode()
    out: dict[str, Any] = {
        "engine_viewer_sql": viewer_paths.engine_viewer_sql(
            client, DATABASE, found, window=window, runs=args.runs, largest=largest
        )
        | {
            "export": viewer_paths.engine_viewer_export(
                client, DATABASE, largest, window=window, runs=args.export_runs
            )
        }
    }
    reader = EventReader(
        lambda: clickhouse_connect.get_client(
            host="127.0.0.1", port=int(url.rsplit(":", 1)[1]), autogenerate_session_id=False
        ),
        database=DATABASE,
        cursor_key=key,
        clock=lambda: window.now,
    )
    try:
        out["reader"] = viewer_paths.reader_kinds(
            reader, found, window=window, key=key, runs=args.runs, largest=largest
        ) | {
            "export": viewer_paths.reader_export(
                reader, largest, window=window, runs=args.export_runs
            )
        }
    finally:
        reader.close()
    if args.no_http:
        return out
    accounts = sorted({p.tenant_id for p in found})
    began = time.perf_counter()
    with viewer_service.running_service(url, DATABASE, accounts, cursor_key=key_text) as running:
        started_s = round(time.perf_counter() - began, 1)
        http = viewer_paths.HttpViewer(running.url, running.tokens)
        out["http"] = {"service_start_s": started_s} | viewer_paths.http_kinds(
            http, found, window=window, key=key, runs=args.runs, largest=largest
        )
        for clients in sorted({min(8, args.clients), args.clients}):
            name = "concurrent" if clients == args.clients else f"concurrent_{clients}"
            out["http"][name] = viewer_paths.http_concurrent(
                http,
                found,
                window=window,
                key=key,
                clients=clients,
                runs_per_client=args.concurrent_runs,
            )
        out["http"]["export"] = viewer_paths.http_export(
            http, largest, window=window, runs=args.export_runs
        )
    return out


def _p95(result: dict[str, Any], path: str, kind: str) -> float | None:
    found = result.get(path, {}).get(kind)
    return None if found is None else float(found["p95_ms"])


def _comparison(result: dict[str, Any]) -> dict[str, Any]:
    """p95 per kind: engine (our SQL: for the first page, the page and its count, as the
    reader runs them; for the filtered and deep pages the page alone, while the reader
    also counts), the viewer's SQL on the engine (first page: count and page), the reader,
    HTTP; and reader and HTTP over the engine (the viewer's SQL where measured)."""
    table: dict[str, Any] = {}
    for kind in (*viewer_paths.LIST_KINDS, "by_id"):
        engine_kind = "first_page_and_count" if kind == "first_page" else kind
        row: dict[str, float | None] = {
            "engine": _p95(result, "engine", engine_kind),
            "engine_viewer_sql": _p95(result, "engine_viewer_sql", kind),
            "reader": _p95(result, "reader", kind),
            "http": _p95(result, "http", kind),
        }
        base = row["engine_viewer_sql"] or row["engine"]
        for path in ("reader", "http"):
            measured = row[path]
            if base and measured is not None:
                row[f"{path}_over_engine"] = round(measured / base, 2)
        table[kind] = row
    return table


def _targets(result: dict[str, Any]) -> dict[str, Any]:
    engine = result["engine"]
    served = result.get("http", result.get("reader", engine))
    path = "http" if "http" in result else "reader" if "reader" in result else "engine"
    first = served["first_page"]["p95_ms"]
    under_load = served.get("concurrent", engine["concurrent"])["p95_ms"]
    rate = served["export"]["events_per_s_median"]
    engine_first = result.get("engine_viewer_sql", engine)["first_page"]["p95_ms"]
    if "engine_viewer_sql" not in result:
        engine_first = engine["first_page_and_count"]["p95_ms"]
    return {
        "measured_through": path,
        "first_page_p95_ms": {"target": 100, "measured": first, "met": first < 100},
        "concurrent_p95_ms": {"target": 300, "measured": under_load, "met": under_load < 300},
        "export_events_per_s": {"target": 100_000, "measured": rate, "met": rate >= 100_000},
        "first_page_within_2x_engine": {
            "engine_p95_ms": engine_first,
            "measured_p95_ms": first,
            "ratio": round(first / engine_first, 2),
            "met": first <= 2 * engine_first,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000, help="rows per INSERT")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("AUDITLOG_CACHE_DIR", REPO / ".cache")),
    )
    parser.add_argument("--reload", action="store_true", help="load again even if cached")
    parser.add_argument("--runs", type=int, default=300, help="runs per query kind")
    parser.add_argument("--probes", type=int, default=3, help="probes per account")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--concurrent-runs", type=int, default=20, help="queries per client")
    parser.add_argument("--export-runs", type=int, default=3)
    parser.add_argument("--no-experiments", action="store_true")
    parser.add_argument(
        "--layouts",
        action="store_true",
        help="also the table merged to one part per partition at granularities 8192/2048/1024 "
        "(copies: about 3 minutes and twice the disk for 10M events)",
    )
    parser.add_argument("--no-viewer", action="store_true", help="the engine only")
    parser.add_argument("--no-http", action="store_true", help="no auditlog serve (nor Kafka)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    result = run(args)
    result["total_s"] = round(time.perf_counter() - began, 1)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
