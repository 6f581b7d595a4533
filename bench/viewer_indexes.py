"""What the viewer's query choices cost and buy, measured on the loaded table.

- The skip indexes the migrations create (:data:`MIGRATED`), each measured with and
  without (the query setting ``ignore_data_skipping_indices``), same run, same data.
- Query forms, same data: deduplication (``FINAL``, the default / ``LIMIT 1 BY`` / none /
  none with lazy materialisation / keys only / bounded) on the first page, counting
  (``LIMIT 1 BY`` / ``uniqExact`` / ``FINAL``), keyset cursors (tuple / expanded; FINAL /
  LIMIT 1 BY), text search (``positionCaseInsensitiveUTF8`` / ``lower(x) LIKE``).
- :data:`CANDIDATES`: skip indexes and projections, each added to the loaded table with
  ``ALTER TABLE ... ADD`` and ``MATERIALIZE`` (timed, mutations waited for), the query
  kinds it is for measured before and after in the same run, then dropped again. Their
  names start with ``bench_``; :func:`drop_leftovers` removes any left by an interrupted
  run, so the cached table stays the migrations' table.
- Their cost at insert: the same rows (a sample of the table, held in a ``Memory``
  table) inserted ``INSERT ... SELECT`` into a fresh copy of the events table with and
  without each candidate, best of three, plus a copy without any skip index (what the
  migrations' own five indexes cost).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from bench import viewer_sql
from bench.latency import summary, timed_ms
from bench.viewer_dataset import Loaded, wait_for_merges
from bench.viewer_sql import MAX_EVENT_AGE, Probe, Query

PREFIX = "bench_"
INSERT_SAMPLE_ROWS = 500_000


@dataclass(frozen=True)
class Candidate:
    """A skip index or projection: its ``ALTER TABLE`` clauses and the kinds it is for."""

    name: str
    add: tuple[str, ...]
    drop: tuple[str, ...]
    kinds: tuple[str, ...]
    why: str


MIGRATED: dict[str, tuple[str, ...]] = {
    "idx_event_id": ("by_id",),
    "idx_ingested_at": ("poll",),
    "idx_actor_email": ("by_actor_email",),
    "idx_actor_id": ("by_actor",),
    "idx_action": ("by_action",),
}
"""Skip indexes the migrations create (0002, 0004), and the kinds they are for: measured
with the index and with it ignored (``ignore_data_skipping_indices``), same run."""

CANDIDATES = (
    Candidate(
        "text_ngrambf",
        (
            "ADD INDEX bench_name_ngram lower(ifNull(resource.name, ''))"
            " TYPE ngrambf_v1(3, 8192, 3, 0) GRANULARITY 1",
            "ADD INDEX bench_email_ngram lower(ifNull(actor.email, ''))"
            " TYPE ngrambf_v1(3, 8192, 3, 0) GRANULARITY 1",
        ),
        ("DROP INDEX IF EXISTS bench_name_ngram", "DROP INDEX IF EXISTS bench_email_ngram"),
        ("by_text_like", "by_text_like_90d"),
        "substring search; usable by lower(ifNull(x, '')) LIKE '%term%' only",
    ),
    Candidate(
        "ingest_projection",
        (
            # A ReplacingMergeTree refuses projections unless merges rebuild them.
            "MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'",
            "ADD PROJECTION bench_by_ingest (SELECT * ORDER BY tenant_id, ingested_at)",
        ),
        (
            "DROP PROJECTION IF EXISTS bench_by_ingest",
            "RESET SETTING deduplicate_merge_projection_mode",
        ),
        ("poll",),
        "a second copy of the table ordered for pollers",
    ),
)
"""Choices the migrations do not make: added for the measurement, then dropped."""


def drop_leftovers(client: Client, database: str) -> None:
    """Drop every ``bench_*`` skip index and projection of ``<database>.events``."""
    indexes = client.query(
        "SELECT name FROM system.data_skipping_indices WHERE database = {db:String}"
        " AND table = 'events' AND startsWith(name, {prefix:String})",
        parameters={"db": database, "prefix": PREFIX},
    ).result_rows
    projections = client.query(
        "SELECT name FROM system.projections WHERE database = {db:String}"
        " AND table = 'events' AND startsWith(name, {prefix:String})",
        parameters={"db": database, "prefix": PREFIX},
    ).result_rows
    for (name,) in indexes:
        client.command(f"ALTER TABLE {database}.events DROP INDEX {name}")
    for (name,) in projections:
        client.command(f"ALTER TABLE {database}.events DROP PROJECTION {name}")


def _timed(
    client: Client, queries: Sequence[Query], settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """p50/p95/p99 of ``queries`` (after three untimed), the engine's own p50 (the
    gateway's ``elapsed_ns``), and what the engine plans to read for the first query
    (the largest account's, as the probes are ordered)."""
    inside_ms: list[float] = []

    def run(query: Query) -> None:
        result = client.query(query[0], parameters=query[1], settings=settings)
        inside_ms.append(int(result.summary.get("elapsed_ns", 0)) / 1e6)

    for query in queries[:3]:
        run(query)
    del inside_ms[:]
    samples = [timed_ms(lambda q=query: run(q)) for query in queries]  # type: ignore[misc]
    found = summary(samples)
    return {
        "p50_ms": found["p50_ms"],
        "p95_ms": found["p95_ms"],
        "p99_ms": found["p99_ms"],
        "in_engine_p50_ms": summary(inside_ms)["p50_ms"],
        "largest_plan": viewer_sql.estimate(client, queries[0], settings),
    }


def _queries(
    database: str, anchor: datetime, probes: Sequence[Probe], runs: int
) -> dict[str, list[Query]]:
    """Every query form the experiments compare, ``runs`` of each over ``probes``."""
    week = anchor - timedelta(days=7)
    quarter = anchor - timedelta(days=90)
    hour_ago = anchor - timedelta(hours=1)
    cycle = [probes[i % len(probes)] for i in range(runs)]
    db = database
    forms: dict[str, Callable[[Probe], Query]] = {
        "first_page": lambda p: viewer_sql.page(db, p, since=week, until=anchor),
        "first_page_limit_by": lambda p: viewer_sql.page(
            db, p, since=week, until=anchor, dedupe="limit_by"
        ),
        "first_page_no_dedupe": lambda p: viewer_sql.page(
            db, p, since=week, until=anchor, dedupe="none"
        ),
        "first_page_no_dedupe_lazy": lambda p: viewer_sql.page(
            db, p, since=week, until=anchor, dedupe="none_lazy"
        ),
        "first_page_keys_only": lambda p: viewer_sql.page(
            db, p, since=week, until=anchor, dedupe="keys"
        ),
        "first_page_bounded": lambda p: viewer_sql.page(
            db, p, since=week, until=anchor, dedupe="bounded"
        ),
        "count_limit_by": lambda p: viewer_sql.count(
            db, p, since=week, until=anchor, how="limit_by"
        ),
        "count_uniq": lambda p: viewer_sql.count(db, p, since=week, until=anchor, how="uniq"),
        "count_final": lambda p: viewer_sql.count(db, p, since=week, until=anchor, how="final"),
        "deep_page_expanded": lambda p: viewer_sql.keyset_page(db, p, since=quarter),
        "deep_page_tuple": lambda p: viewer_sql.keyset_page(db, p, since=quarter, form="tuple"),
        "deep_page_limit_by": lambda p: viewer_sql.keyset_page(
            db, p, since=quarter, dedupe="limit_by"
        ),
        "by_text": lambda p: viewer_sql.page(db, p, since=week, until=anchor, filter_="text"),
        "by_text_like": lambda p: viewer_sql.page(
            db, p, since=week, until=anchor, filter_="text_like"
        ),
        "by_text_90d": lambda p: viewer_sql.page(
            db, p, since=quarter, until=anchor, filter_="text"
        ),
        "by_text_like_90d": lambda p: viewer_sql.page(
            db, p, since=quarter, until=anchor, filter_="text_like"
        ),
        "by_id": lambda p: viewer_sql.by_id(db, p),
        "by_actor": lambda p: viewer_sql.page(db, p, since=week, until=anchor, filter_="actor"),
        "by_actor_email": lambda p: viewer_sql.page(
            db, p, since=week, until=anchor, filter_="actor_email"
        ),
        "by_action": lambda p: viewer_sql.page(db, p, since=week, until=anchor, filter_="action"),
        "poll": lambda p: viewer_sql.poll(db, p, ingested_after=hour_ago, max_age=MAX_EVENT_AGE),
    }
    return {name: [build(p) for p in cycle] for name, build in forms.items()}


def _alter(client: Client, database: str, clauses: Sequence[str]) -> None:
    for clause in clauses:
        client.command(f"ALTER TABLE {database}.events {clause}", settings={"mutations_sync": 2})


def _materialize(candidate: Candidate) -> tuple[str, ...]:
    found = []
    for clause in candidate.add:
        if not clause.startswith("ADD "):
            continue
        words = clause.split()
        kind, name = words[1], words[2]  # ADD INDEX name ... / ADD PROJECTION name ...
        found.append(f"MATERIALIZE {kind} {name}")
    return tuple(found)


def experiments(
    client: Client,
    database: str,
    loaded: Loaded,
    probes: Sequence[Probe],
    *,
    anchor: datetime,
    runs: int,
) -> dict[str, Any]:
    """Query forms side by side, then each candidate before/after and at insert."""
    queries = _queries(database, anchor, probes, runs)
    forms = {name: _timed(client, batch) for name, batch in queries.items()}
    found: dict[str, Any] = {"query_forms": forms, "migrated_indexes": {}, "candidates": {}}
    present = _index_sizes(client, database)
    for index, kinds in MIGRATED.items():
        if index not in present:
            continue
        ignored = {"ignore_data_skipping_indices": index}
        found["migrated_indexes"][index] = {
            "size": present[index],
            "without": {kind: _timed(client, queries[kind], ignored) for kind in kinds},
            "with": {kind: _timed(client, queries[kind]) for kind in kinds},
        }
    for candidate in CANDIDATES:
        before = {kind: _timed(client, queries[kind]) for kind in candidate.kinds}
        began = time.perf_counter()
        try:
            _alter(client, database, candidate.add)
            _alter(client, database, _materialize(candidate))
        except DatabaseError as ex:
            _alter(client, database, candidate.drop)
            found["candidates"][candidate.name] = {"add": list(candidate.add), "error": str(ex)}
            continue
        wait_for_merges(client, database, timeout_s=600)
        materialize_s = round(time.perf_counter() - began, 1)
        size = _size(client, database, candidate)
        after = {kind: _timed(client, queries[kind]) for kind in candidate.kinds}
        _alter(client, database, candidate.drop)
        found["candidates"][candidate.name] = {
            "why": candidate.why,
            "add": list(candidate.add),
            "materialize_s": materialize_s,
            "size": size,
            "before": before,
            "after": after,
        }
    found["insert_cost"] = insert_cost(client, database, loaded)
    return found


def _index_sizes(client: Client, database: str) -> dict[str, str]:
    """Every skip index of ``<database>.events`` and its compressed size."""
    rows = client.query(
        "SELECT name, formatReadableSize(data_compressed_bytes)"
        " FROM system.data_skipping_indices WHERE database = {db:String} AND table = 'events'",
        parameters={"db": database},
    ).result_rows
    return {str(name): str(size) for name, size in rows}


def _size(client: Client, database: str, candidate: Candidate) -> str:
    """The on-disk size of the candidate's indexes or projection parts."""
    if any(clause.startswith("ADD PROJECTION") for clause in candidate.add):
        sql = (
            "SELECT formatReadableSize(sum(bytes_on_disk)) FROM system.projection_parts"
            " WHERE database = {db:String} AND table = 'events' AND active"
        )
    else:
        sql = (
            "SELECT formatReadableSize(sum(data_compressed_bytes))"
            " FROM system.data_skipping_indices WHERE database = {db:String}"
            " AND table = 'events' AND startsWith(name, 'bench_')"
        )
    return str(client.command(sql, parameters={"db": database}))


def insert_cost(client: Client, database: str, loaded: Loaded) -> dict[str, Any]:
    """Rows/s of ``INSERT ... SELECT`` of the same sample into a copy of the events
    table: as migrated, without 0004's indexes, without any skip index, and with each
    candidate added."""
    sample = f"{database}.bench_insert_sample"
    client.command(f"DROP TABLE IF EXISTS {sample}")
    client.command(
        f"CREATE TABLE {sample} ENGINE = Memory AS SELECT * FROM {database}.events"
        f" WHERE sipHash64(event_id) % {max(1, loaded.rows // INSERT_SAMPLE_ROWS)} = 0"
        f" LIMIT {INSERT_SAMPLE_ROWS}"
    )
    rows = int(client.command(f"SELECT count() FROM {sample}"))  # type: ignore[arg-type]
    existing = [
        name
        for (name,) in client.query(
            "SELECT name FROM system.data_skipping_indices WHERE database = {db:String}"
            " AND table = 'events'",
            parameters={"db": database},
        ).result_rows
    ]
    in_0004 = ("idx_event_id", "idx_ingested_at", "idx_actor_email")
    variants: dict[str, tuple[str, ...]] = {
        "migrated": (),
        "without_0004": tuple(f"DROP INDEX {name}" for name in in_0004 if name in existing),
        "no_skip_indexes": tuple(f"DROP INDEX {name}" for name in existing),
    } | {c.name: c.add for c in CANDIDATES}
    found: dict[str, Any] = {"rows": rows}
    for name, clauses in variants.items():
        best_s = float("inf")
        for _ in range(3):
            copy = f"{database}.bench_insert_copy"
            client.command(f"DROP TABLE IF EXISTS {copy}")
            client.command(f"CREATE TABLE {copy} AS {database}.events")
            for clause in clauses:
                client.command(f"ALTER TABLE {copy} {clause}")
            began = time.perf_counter()
            client.command(f"INSERT INTO {copy} SELECT * FROM {sample}")
            best_s = min(best_s, time.perf_counter() - began)
            client.command(f"DROP TABLE {copy}")
        found[name] = {"rows_per_s": round(rows / best_s), "seconds": round(best_s, 3)}
    base = found["migrated"]["rows_per_s"]
    for name in variants:
        found[name]["vs_migrated"] = round(found[name]["rows_per_s"] / base, 3)
    client.command(f"DROP TABLE {sample}")
    return found


LAYOUT_FORMS = (
    "first_page",
    "first_page_limit_by",
    "count_uniq",
    "deep_page_expanded",
    "by_text_90d",
)
LAYOUT_GRANULARITIES = (8192, 2048, 1024)


def layouts(
    client: Client,
    database: str,
    probes: Sequence[Probe],
    *,
    anchor: datetime,
    runs: int,
) -> dict[str, Any]:
    """The same rows in other layouts: copies of ``<database>.events`` (its DDL, with
    ``index_granularity`` of :data:`LAYOUT_GRANULARITIES`) filled by ``INSERT ... SELECT``
    and merged to one part per partition (``OPTIMIZE ... FINAL``, which also drops the
    duplicates), each timed; then :data:`LAYOUT_FORMS` on the table as loaded and on each
    copy, same run. Each copy lives in a database of its own (``<database>_g<N>``, dropped
    at the end) so the query builders apply unchanged."""
    ddl = str(client.command(f"SHOW CREATE TABLE {database}.events"))
    ddl = ddl.replace("\\n", "\n").replace("\\'", "'")
    found: dict[str, Any] = {
        "as_loaded": {
            name: _timed(client, batch)
            for name, batch in _queries(database, anchor, probes, runs).items()
            if name in LAYOUT_FORMS
        }
    }
    for granularity in LAYOUT_GRANULARITIES:
        copy = f"{database}_g{granularity}"
        client.command(f"DROP DATABASE IF EXISTS {copy}")
        client.command(f"CREATE DATABASE {copy}")
        table = ddl.replace(f"{database}.events", f"{copy}.events").replace(
            "index_granularity = 8192", f"index_granularity = {granularity}"
        )
        if "index_granularity" not in table:
            table = table.replace("SETTINGS ", f"SETTINGS index_granularity = {granularity}, ", 1)
        client.command(table)
        began = time.perf_counter()
        client.command(f"INSERT INTO {copy}.events SELECT * FROM {database}.events")
        insert_s = time.perf_counter() - began
        began = time.perf_counter()
        client.command(f"OPTIMIZE TABLE {copy}.events FINAL")
        optimize_s = time.perf_counter() - began
        parts = client.command(
            "SELECT count() FROM system.parts WHERE database = {db:String}"
            " AND table = 'events' AND active",
            parameters={"db": copy},
        )
        found[f"merged_g{granularity}"] = {
            "insert_s": round(insert_s, 1),
            "optimize_s": round(optimize_s, 1),
            "parts": parts,
        } | {
            name: _timed(client, batch)
            for name, batch in _queries(copy, anchor, probes, runs).items()
            if name in LAYOUT_FORMS
        }
        client.command(f"DROP DATABASE {copy}")
    return found
