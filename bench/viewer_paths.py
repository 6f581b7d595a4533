"""The viewer's query kinds through the viewer's own code: :class:`EventReader` in this
process, and the HTTP API of a running ``auditlog serve``.

Each kind is the API request the seed product's clients send (``from``/``to``, the list
filters, ``page[size]=100``, ``page[after]`` for the deep page), parsed by the viewer's
own parameter parser; its engine counterpart is in :mod:`bench.viewer_sql` (the same
window, account and values from the same :class:`Probe`). A reader's list page runs
three queries (the account's retention, the total, the page of 101 rows); the engine's
``first_page_and_count`` runs the last two.

The deep page's cursor is signed here with the key the reader (and the server, through
``AUDITLOG_VIEWER_CURSOR_KEY``) uses, at the probe's cursor: the page a client reaches
after paging back about 60 days.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from clickhouse_connect.driver.client import Client

from bench.latency import run_concurrent, run_serial, summary
from bench.viewer_sql import Probe
from viewer.query import cursor
from viewer.query import sql as viewer_sql_module
from viewer.query.params import EventFilters, parse_export_query, parse_list_query
from viewer.query.reader import EventReader, epoch_ms

PAGE_SIZE = "100"


@dataclass(frozen=True)
class Window:
    """The data set's "now" (aware UTC) and the ranges the kinds read."""

    now: datetime

    @property
    def week(self) -> datetime:
        return self.now - timedelta(days=7)

    @property
    def quarter(self) -> datetime:
        return self.now - timedelta(days=90)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def list_items(kind: str, probe: Probe, window: Window, key: bytes) -> list[tuple[str, str]]:
    """The query string of ``kind`` for ``probe`` (``(name, value)`` pairs)."""
    since = window.quarter if kind in ("by_text_90d", "deep_page") else window.week
    items = [("from", _iso(since)), ("to", _iso(window.now)), ("page[size]", PAGE_SIZE)]
    extra: dict[str, list[tuple[str, str]]] = {
        "first_page": [],
        "by_actor": [("users_ids[]", probe.actor_id)],
        "by_actor_email": [("actor_emails[]", probe.actor_email)],
        "by_action": [("include_event_types[]", probe.action)],
        "by_text": [("q", probe.term)],
        "by_text_90d": [("q", probe.term)],
        "deep_page": [],
    }
    items += extra[kind]
    if kind == "deep_page":
        query = parse_list_query(items)
        bound_to = cursor.binding(
            probe.tenant_id, "newest", query.since, query.until, query.filters
        )
        at = probe.cursor_at.replace(tzinfo=UTC)
        # The first page pinned its `to` (before now) as the range's end, and counted the
        # range (the total is carried, not counted again: its value does not matter here).
        position = cursor.Position(
            "newest", epoch_ms(window.now), probe.events, epoch_ms(at), probe.cursor_id
        )
        items.append(("page[after]", cursor.encode(key, bound_to, position)))
    return items


LIST_KINDS = (
    "first_page",
    "by_actor",
    "by_actor_email",
    "by_action",
    "by_text",
    "by_text_90d",
    "deep_page",
)


def _cycle(probes: Sequence[Probe], runs: int) -> list[Probe]:
    return [probes[i % len(probes)] for i in range(runs)]


def _with_largest(samples: Sequence[float], cycle: Sequence[Probe], largest: str) -> dict[str, Any]:
    found = summary(samples)
    own = [ms for ms, p in zip(samples, cycle, strict=True) if p.tenant_id == largest]
    if own:
        found["largest_p95_ms"] = summary(own)["p95_ms"]
    return found


# -- in process ------------------------------------------------------------------------------


def reader_kinds(
    reader: EventReader,
    probes: Sequence[Probe],
    *,
    window: Window,
    key: bytes,
    runs: int,
    largest: str,
) -> dict[str, Any]:
    """Every kind through ``reader`` (this thread's client), ``runs`` runs each."""
    cycle = _cycle(probes, runs)
    found: dict[str, Any] = {}
    for kind in LIST_KINDS:
        queries = [(p.tenant_id, parse_list_query(list_items(kind, p, window, key))) for p in cycle]
        calls: list[Callable[[], object]] = [
            lambda a=account, q=query: reader.page(a, q)  # type: ignore[misc]
            for account, query in queries
        ]
        found[kind] = _with_largest(run_serial(calls), cycle, largest)
    by_id: list[Callable[[], object]] = [
        lambda p=p: reader.event(p.tenant_id, str(p.event_id))  # type: ignore[misc]
        for p in cycle
    ]
    found["by_id"] = _with_largest(run_serial(by_id), cycle, largest)
    first = next(p for p in probes if p.tenant_id == largest)
    page = reader.page(largest, parse_list_query(list_items("first_page", first, window, key)))
    found["largest_first_page"] = {"records": len(page.data), "total": page.total}
    return found


def reader_export(reader: EventReader, tenant: str, *, window: Window, runs: int) -> dict[str, Any]:
    """The account's year as NDJSON through ``reader.export``, ``runs`` times."""
    query = parse_export_query(
        [
            ("from", _iso(window.now - timedelta(days=366))),
            ("to", _iso(window.now + timedelta(days=1))),
        ]
    )
    return _rates(lambda: _count_lines(reader.export(tenant, query)), runs)


def _count_lines(stream: Any) -> int:
    lines = 0
    try:
        for chunk in stream:
            lines += chunk.count(b"\n") if isinstance(chunk, bytes) else len(chunk)
    finally:
        stream.close()
    return lines


def _rates(export: Callable[[], int], runs: int) -> dict[str, Any]:
    rates: list[float] = []
    events = 0
    for _ in range(runs):
        began = time.perf_counter()
        events = export()
        rates.append(events / (time.perf_counter() - began))
    rates.sort()
    return {
        "events": events,
        "runs": runs,
        "events_per_s_median": round(rates[len(rates) // 2]),
        "events_per_s_min": round(rates[0]),
    }


# -- over HTTP -------------------------------------------------------------------------------


class HttpViewer:
    """Requests to a running viewer, one keep-alive connection per thread; ``tokens``
    holds a bearer token (an Admin's) per account."""

    def __init__(self, url: str, tokens: dict[str, str]) -> None:
        self.url = url
        self.tokens = tokens
        self._local = threading.local()

    def client(self) -> httpx.Client:
        found: httpx.Client | None = getattr(self._local, "client", None)
        if found is None:
            found = httpx.Client(base_url=self.url, timeout=120.0)
            self._local.client = found
        return found

    def get(self, account: str, path: str, items: Sequence[tuple[str, str]] = ()) -> bytes:
        """The body of a 200 answer; raises on any other status."""
        query = f"?{urlencode(items)}" if items else ""
        answer = self.client().get(
            path + query, headers={"Authorization": f"Bearer {self.tokens[account]}"}
        )
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:300]}")
        return answer.content

    def export_lines(self, account: str, items: Sequence[tuple[str, str]]) -> int:
        lines = 0
        headers = {"Authorization": f"Bearer {self.tokens[account]}"}
        path = f"/api/activity_logs/export?{urlencode(items)}"
        with self.client().stream("GET", path, headers=headers) as answer:
            if answer.status_code != 200:
                raise RuntimeError(f"export: {answer.status_code}")
            for chunk in answer.iter_raw():
                lines += chunk.count(b"\n")
        return lines


def http_kinds(
    viewer: HttpViewer,
    probes: Sequence[Probe],
    *,
    window: Window,
    key: bytes,
    runs: int,
    largest: str,
) -> dict[str, Any]:
    """Every kind through the HTTP API, ``runs`` runs each, one connection."""
    cycle = _cycle(probes, runs)
    found: dict[str, Any] = {}

    def request(kind: str, p: Probe) -> Callable[[], object]:
        items = list_items(kind, p, window, key)
        return lambda: viewer.get(p.tenant_id, "/api/activity_logs", items)

    for kind in LIST_KINDS:
        calls = [request(kind, p) for p in cycle]
        found[kind] = _with_largest(run_serial(calls), cycle, largest)
    by_id: list[Callable[[], object]] = [
        lambda p=p: viewer.get(p.tenant_id, f"/api/activity_logs/{p.event_id}")  # type: ignore[misc]
        for p in cycle
    ]
    found["by_id"] = _with_largest(run_serial(by_id), cycle, largest)
    first = next(p for p in probes if p.tenant_id == largest)
    answer = json.loads(
        viewer.get(largest, "/api/activity_logs", list_items("first_page", first, window, key))
    )
    found["largest_first_page"] = {"records": len(answer["data"]), "total": answer["total"]}
    return found


def http_concurrent(
    viewer: HttpViewer,
    probes: Sequence[Probe],
    *,
    window: Window,
    key: bytes,
    clients: int,
    runs_per_client: int,
) -> dict[str, Any]:
    """``first_page`` over HTTP from ``clients`` threads at once, each its connection."""
    workers = list(range(clients))

    def call(p: Probe) -> Callable[[int], object]:
        items = list_items("first_page", p, window, key)
        return lambda _worker: viewer.get(p.tenant_id, "/api/activity_logs", items)

    plans = [
        [call(probes[(c * 7 + i) % len(probes)]) for i in range(runs_per_client)]
        for c in range(clients)
    ]
    samples, wall_s = run_concurrent(workers, plans)
    return summary(samples) | {"clients": clients, "queries_per_s": round(len(samples) / wall_s, 1)}


def http_export(viewer: HttpViewer, tenant: str, *, window: Window, runs: int) -> dict[str, Any]:
    """The account's year as NDJSON from ``/api/activity_logs/export``, ``runs`` times."""
    items = [
        ("from", _iso(window.now - timedelta(days=366))),
        ("to", _iso(window.now + timedelta(days=1))),
    ]
    return _rates(lambda: viewer.export_lines(tenant, items), runs)


# -- the viewer's own SQL, straight to the engine ---------------------------------------------


def engine_viewer_sql(
    client: Client,
    database: str,
    probes: Sequence[Probe],
    *,
    window: Window,
    runs: int,
    largest: str,
) -> dict[str, Any]:
    """The reader's own statements for a first page (``viewer.query.sql``: its total, then
    its page of 101 rows), run through ``client`` without the reader: the engine's time
    for exactly the viewer's query."""
    cycle = _cycle(probes, runs)
    floor_ms, ceil_ms = epoch_ms(window.week), epoch_ms(window.now)

    def first_page(p: Probe) -> Callable[[], object]:
        where = viewer_sql_module.conditions(p.tenant_id, floor_ms, ceil_ms, EventFilters())
        count = viewer_sql_module.count(database, where)
        page = viewer_sql_module.newest_page(database, where, int(PAGE_SIZE) + 1)

        def run() -> None:
            client.query(count, parameters=where.params)
            client.query(page, parameters=where.params)

        return run

    return {"first_page": _with_largest(run_serial([first_page(p) for p in cycle]), cycle, largest)}


def engine_viewer_export(
    client: Client, database: str, tenant: str, *, window: Window, runs: int
) -> dict[str, Any]:
    """The reader's NDJSON export statement (``export_ndjson``, read as TSVRaw) for the
    account's year, streamed through ``client`` without the reader."""
    where = viewer_sql_module.conditions(
        tenant,
        epoch_ms(window.now - timedelta(days=365)),
        epoch_ms(window.now) + 1,
        EventFilters(),
    )
    sql = viewer_sql_module.export_ndjson(database, where)

    def export() -> int:
        lines = 0
        with client.raw_stream(sql, parameters=where.params, fmt="TSVRaw") as stream:
            for chunk in stream:
                lines += chunk.count(b"\n")
        return lines

    return _rates(export, runs)
