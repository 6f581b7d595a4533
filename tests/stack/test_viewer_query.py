"""The viewer's query layer against the real engine: retention, duplicates, paging while
events arrive, ingest-order polling, tenant isolation, exports. Each test has a database
of its own made with the migrations runner (merges stopped), rows inserted directly."""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.migrations import apply_pending
from deploy.stack.endpoints import StackEndpoints
from schemas.versions import current
from tests.stack.stored_rows import stop_background_merges, stored_rows
from viewer.query import sql
from viewer.query.export import csv_header, encoded_rows
from viewer.query.params import (
    BadParameter,
    EventFilters,
    parse_export_query,
    parse_list_query,
)
from viewer.query.reader import EventReader, Page

pytestmark = pytest.mark.stack

COLUMNS = [f["name"] for f in current().schema["fields"]]
KEY = b"test-cursor-key-of-at-least-32-bytes"
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Ev:
    """One event as the test builds it (and as the Python reference filters it)."""

    tenant: str
    occurred_at: datetime
    action: str = "recipe.stopped"
    category: str = "recipes"
    actor_id: str = "u-1"
    actor_email: str | None = "ann@acme.io"
    resource_type: str = "recipe"
    resource_id: str = "r-1"
    resource_name: str | None = "Payroll sync"
    workspace_id: str | None = "w-1"
    environment: str | None = "prod"
    ip: str | None = "203.0.113.7"
    status: str = "success"
    details: dict[str, str] = field(default_factory=dict)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def row(self) -> list[Any]:
        return [
            self.event_id,
            self.tenant,
            self.occurred_at,
            self.action,
            self.category,
            ("user", self.actor_id, "Ann", self.actor_email),
            (self.resource_type, self.resource_id, self.resource_name),
            (self.workspace_id, None, self.environment),
            (self.ip, "curl/8", None, None),
            (self.status, None if self.status == "success" else "denied"),
            self.details,
            [("state", "running", "stopped")],
            "test",
        ]


@pytest.fixture(scope="module")
def url(stack_endpoints: StackEndpoints) -> str:
    return stack_endpoints.clickhouse_url


def _client(url: str) -> Client:
    return clickhouse_connect.get_client(dsn=url, autogenerate_session_id=False)


def _database(client: Client) -> str:
    name = f"viewer_{uuid.uuid4().hex[:10]}"
    apply_pending(client, database=name)
    stop_background_merges(client, f"{name}.events")
    return name


@pytest.fixture
def client(url: str) -> Client:
    return _client(url)


@pytest.fixture
def database(client: Client) -> Iterator[str]:
    name = _database(client)
    yield name
    client.command(f"DROP DATABASE IF EXISTS {name}")


def _insert(client: Client, database: str, events: list[Ev], **extra: list[Any]) -> None:
    """Insert; ``extra`` adds columns (ingested_at, retention_days) per row. Insert
    deduplication off, so a block stored again is stored again."""
    rows = [e.row() + [values[i] for values in extra.values()] for i, e in enumerate(events)]
    client.insert(
        f"{database}.events",
        rows,
        column_names=COLUMNS + list(extra),
        settings={"insert_deduplicate": 0},
    )


def _reader(url: str, database: str, **kw: Any) -> EventReader:
    return EventReader(lambda: _client(url), database=database, cursor_key=KEY, **kw)


def _all_pages(
    reader: EventReader,
    account: str,
    items: list[tuple[str, str]],
    between: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, Any]], list[Page]]:
    pages: list[Page] = []
    after: str | None = None
    while True:
        query = parse_list_query(items + ([("page[after]", after)] if after else []))
        page = reader.page(account, query)
        pages.append(page)
        if between is not None and page.next_cursor is not None:
            between(len(pages))
        after = page.next_cursor
        if after is None:
            return [r for p in pages for r in p.data], pages


def _ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in records]


def _export(reader: EventReader, account: str, items: list[tuple[str, str]]) -> bytes:
    stream = reader.export(account, parse_export_query(items))
    try:
        return b"".join(stream)
    finally:
        stream.close()


def test_retention_bounds_every_read(client: Client, url: str, database: str) -> None:
    client.command(
        f"INSERT INTO {database}.tenant_retention (tenant_id, retention_days) VALUES ('short', 30)"
    )
    recent = Ev("short", NOW - timedelta(days=10))
    old = Ev("short", NOW - timedelta(days=40))
    # Stored with the 365 days it had before the change: the TTL keeps it for months.
    _insert(client, database, [recent, old], retention_days=[365, 365])
    other = Ev("default", NOW - timedelta(days=40))
    _insert(client, database, [other])
    assert stored_rows(client, f"{database}.events").rows == 3
    reader = _reader(url, database)

    page = reader.page("short", parse_list_query([]))
    assert (_ids(page.data), page.total) == ([str(recent.event_id)], 1)
    ranged = reader.page(
        "short", parse_list_query([("from", (NOW - timedelta(days=60)).isoformat())])
    )
    assert _ids(ranged.data) == [str(recent.event_id)]
    assert reader.event("short", str(old.event_id)) is None
    assert reader.event("short", str(recent.event_id)) is not None
    assert str(old.event_id) not in _export(reader, "short", []).decode()
    assert str(old.event_id) not in _export(reader, "short", [("format", "csv")]).decode()
    # Ingest order too.
    polled = reader.page("short", parse_list_query([("order", "ingested")]))
    assert str(old.event_id) not in _ids(polled.data)
    # A tenant on the default keeps its 40-day-old event.
    assert _ids(reader.page("default", parse_list_query([])).data) == [str(other.event_id)]


def test_an_event_stored_twice_is_shown_and_counted_once(
    client: Client, url: str, database: str
) -> None:
    events = [Ev("dup", NOW - timedelta(hours=n)) for n in range(5)]
    _insert(client, database, events)
    _insert(client, database, events[1:3])  # stored again, not merged
    # Stored again after a retention change: another retention_class, another partition,
    # which no merge ever joins (the page's FINAL still does).
    _insert(client, database, events[3:4], retention_days=[30])
    assert stored_rows(client, f"{database}.events").rows == 8
    reader = _reader(url, database, ingest_lag_s=0)
    records, pages = _all_pages(reader, "dup", [("page[size]", "2")])
    assert sorted(_ids(records)) == sorted(str(e.event_id) for e in events)
    assert {p.total for p in pages} == {5}
    newest_copy = {
        str(event_id): str(ingested_ms)
        for event_id, ingested_ms in client.query(
            "SELECT toString(event_id), formatDateTime(max(ingested_at), "
            f"'%Y-%m-%dT%H:%i:%S.%fZ', 'UTC') FROM {database}.events GROUP BY event_id"
        ).result_rows
    }
    for r in records:  # the copy a merge keeps
        assert r["ingested_at"] == newest_copy[r["id"]][:23] + "Z"
    assert reader.event("dup", str(events[1].event_id))["id"] == str(events[1].event_id)  # type: ignore[index]
    body = _export(reader, "dup", []).decode().splitlines()
    exported = [json.loads(line) for line in body]
    assert sorted(e["id"] for e in exported) == sorted(_ids(records))
    for e in exported:  # the export serves the same (newest) copy as the pages
        assert e["ingested_at"] == newest_copy[e["id"]][:23] + "Z"
    csv_rows = list(
        csv.DictReader(io.StringIO(_export(reader, "dup", [("format", "csv")]).decode()))
    )
    assert {row["id"]: row["ingested_at"] for row in csv_rows} == {
        e["id"]: e["ingested_at"] for e in exported
    }
    polled, _ = _poll_all(reader, "dup")
    assert sorted(_ids(polled)) == sorted(_ids(records))


def _poll_all(
    reader: EventReader,
    account: str,
    after: str | None = None,
    size: int = 2,
    items: tuple[tuple[str, str], ...] = (),
) -> tuple[list[dict[str, Any]], str]:
    """Ingest-order pages until the cursor stops moving (nothing more was scanned);
    returns what came and the last cursor."""
    got: list[dict[str, Any]] = []
    for _ in range(1000):
        query = [*items, ("order", "ingested"), ("page[limit]", str(size))]
        page = reader.page(
            account, parse_list_query(query + ([("page[after]", after)] if after else []))
        )
        assert page.next_cursor is not None
        got.extend(page.data)
        if page.next_cursor == after:
            return got, after
        after = page.next_cursor
    raise AssertionError("the ingest cursor never settled")


def test_paging_while_events_arrive_returns_each_once(
    client: Client, url: str, database: str
) -> None:
    start, end = NOW - timedelta(hours=3), NOW - timedelta(hours=1)
    first = [Ev("pager", start + timedelta(minutes=10 + 3 * n)) for n in range(30)]
    # Two events in one millisecond: the cursor breaks the tie on the id.
    first += [Ev("pager", start + timedelta(minutes=31)) for _ in range(3)]
    _insert(client, database, first)
    reader = _reader(url, database)
    items = [("from", start.isoformat()), ("to", end.isoformat()), ("page[size]", "4")]
    arrived: list[Ev] = []

    def insert_between(page_number: int) -> None:
        # Below every row served so far: each one earlier than the one before.
        inside_old = Ev("pager", start + timedelta(seconds=60 - page_number))
        inside_new = Ev("pager", end - timedelta(seconds=page_number))  # above the cursor
        after_range = Ev("pager", end + timedelta(minutes=page_number))
        arrived.extend([inside_old, inside_new, after_range])
        _insert(client, database, [inside_old, inside_new, after_range, first[page_number]])

    records, pages = _all_pages(reader, "pager", items, insert_between)
    ids = _ids(records)
    assert len(ids) == len(set(ids))
    assert set(ids) >= {str(e.event_id) for e in first}
    for e in arrived:
        if e.occurred_at <= start + timedelta(seconds=60):
            assert str(e.event_id) in ids  # arrived in the part not yet read
        if e.occurred_at >= end:
            assert str(e.event_id) not in ids
    timestamps = [r["timestamp"] for r in records]
    assert timestamps == sorted(timestamps, reverse=True)
    # Counted once, when paging began: the events that arrived in the range since (served
    # above) are not counted by the later pages.
    assert len(pages) > 2
    assert [p.total for p in pages] == [len(first)] * len(pages)


def test_ingest_order_serves_a_late_event_with_an_old_timestamp(
    client: Client, url: str, database: str
) -> None:
    clock_now = NOW
    reader = _reader(url, database, ingest_lag_s=1, clock=lambda: clock_now)
    on_time = [Ev("poll", NOW - timedelta(minutes=30 - n)) for n in range(5)]
    _insert(
        client,
        database,
        on_time,
        ingested_at=[e.occurred_at + timedelta(seconds=2) for e in on_time],
    )
    got, after = _poll_all(reader, "poll")
    assert _ids(got) == [str(e.event_id) for e in on_time]

    late = Ev("poll", NOW - timedelta(days=20))
    twice = Ev("poll", NOW - timedelta(days=2))
    _insert(
        client,
        database,
        [late, twice, twice],
        ingested_at=[
            NOW - timedelta(seconds=20),
            NOW - timedelta(seconds=19),
            NOW - timedelta(seconds=10),
        ],
    )
    newer, after = _poll_all(reader, "poll", after)
    assert _ids(newer) == [str(late.event_id), str(twice.event_id)]
    assert newer[1]["ingested_at"] == (NOW - timedelta(seconds=10)).isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")
    # Newest-order paging that started before it arrived would not see it: it is older
    # than the cursor. Ingest order did.
    again, _ = _poll_all(reader, "poll", after)
    assert again == []
    # Rows ingested within the lag are not served yet.
    fresh = Ev("poll", NOW)
    _insert(client, database, [fresh], ingested_at=[NOW + timedelta(seconds=5)])
    assert _poll_all(reader, "poll", after)[0] == []


TENANTS = ("iso-a", "iso-b", "iso-c")
ACTIONS = ("recipe.stopped", "recipe.started", "user.login")
CATEGORY = {
    "recipe.stopped": "recipes",
    "recipe.started": "recipes",
    "user.login": "account_security",
}
ACTORS = ("u-1", "u-2", "u-3")
RTYPES = ("recipe", "connection")
NAMES = ("Payroll sync", "payroll EXPORT", "Onboard 100%", None)
EMAILS = ("ann@acme.io", "Bob@Acme.io", None)


@dataclass(repr=False)
class World:
    url: str
    database: str
    events: list[Ev]

    def __repr__(self) -> str:
        return f"World({self.database}, {len(self.events)} events)"


@pytest.fixture(scope="module")
def world(url: str) -> Iterator[World]:
    client = _client(url)
    database = _database(client)
    rng = random.Random(7)
    events = []
    for n in range(240):
        action = rng.choice(ACTIONS)
        events.append(
            Ev(
                TENANTS[n % 3],
                NOW - timedelta(hours=rng.randrange(1, 24 * 10), milliseconds=rng.randrange(1000)),
                action=action,
                category=CATEGORY[action],
                actor_id=rng.choice(ACTORS),
                actor_email=rng.choice(EMAILS),
                resource_type=rng.choice(RTYPES),
                resource_id=f"r-{rng.randrange(4)}",
                resource_name=rng.choice(NAMES),
                workspace_id=rng.choice(("w-1", "w-2", None)),
                environment=rng.choice(("prod", "dev", None)),
                ip=rng.choice(("203.0.113.7", "10.0.0.1", None)),
                status=rng.choice(("success", "failure")),
            )
        )
    _insert(client, database, events)
    _insert(client, database, events[::7])  # some stored twice
    yield World(url, database, events)
    client.command(f"DROP DATABASE IF EXISTS {database}")


def _matches(e: Ev, items: list[tuple[str, str]]) -> bool:
    multi: dict[str, list[str]] = {}
    for name, value in items:
        multi.setdefault(name, []).append(value)
    checks: dict[str, Callable[[list[str]], bool]] = {
        "users_ids[]": lambda vs: e.actor_id in vs,
        "include_event_types[]": lambda vs: e.action in vs,
        "exclude_event_types[]": lambda vs: e.action not in vs,
        "include_resource_types[]": lambda vs: e.resource_type in vs,
        "exclude_resource_types[]": lambda vs: e.resource_type not in vs,
        "categories[]": lambda vs: e.category in vs,
        "actor_emails[]": lambda vs: (e.actor_email or "").lower() in [v.lower() for v in vs],
        "resource_ids[]": lambda vs: e.resource_id in vs,
        "workspace_id": lambda vs: e.workspace_id == vs[0],
        "environment": lambda vs: e.environment == vs[0],
        "outcome": lambda vs: e.status == vs[0],
        "ip": lambda vs: e.ip == vs[0],
        "q": lambda vs: (
            vs[0].lower() in (e.resource_name or "").lower()
            or vs[0].lower() in (e.actor_email or "").lower()
        ),
        "from": lambda vs: e.occurred_at >= datetime.fromisoformat(vs[0]),
        "to": lambda vs: e.occurred_at < datetime.fromisoformat(vs[0]),
    }
    return all(checks[name](values) for name, values in multi.items())


def _some(name: str, values: tuple[str, ...]) -> st.SearchStrategy[list[tuple[str, str]]]:
    return st.lists(st.sampled_from(values), max_size=2).map(lambda vs: [(name, v) for v in vs])


def _one(name: str, values: tuple[str, ...]) -> st.SearchStrategy[list[tuple[str, str]]]:
    return st.one_of(st.just([]), st.sampled_from(values).map(lambda v: [(name, v)]))


FILTERS = st.tuples(
    _some("users_ids[]", ACTORS),
    _some("include_event_types[]", ACTIONS),
    _some("exclude_event_types[]", ACTIONS),
    _some("include_resource_types[]", RTYPES),
    _some("exclude_resource_types[]", RTYPES),
    _some("categories[]", ("recipes", "account_security")),
    _some("actor_emails[]", ("ANN@acme.io", "bob@acme.io", "' OR 1=1 --")),
    _some("resource_ids[]", ("r-0", "r-1", "r-2", "r-3")),
    _one("workspace_id", ("w-1", "w-2")),
    _one("environment", ("prod", "dev")),
    _one("outcome", ("success", "failure")),
    _one("ip", ("203.0.113.7", "10.0.0.1")),
    _one("q", ("payroll", "ACME", "100%", "_", "' OR 1=1 --")),
    _one("from", tuple((NOW - timedelta(days=d)).isoformat() for d in (2, 5))),
    _one("to", tuple((NOW - timedelta(days=d)).isoformat() for d in (1, 3))),
).map(lambda parts: [item for part in parts for item in part])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=FILTERS, tenant=st.sampled_from(TENANTS), order=st.sampled_from(("newest", "ingested"))
)
def test_isolation_and_filters_match_a_reference(
    world: World, items: list[tuple[str, str]], tenant: str, order: str
) -> None:
    try:
        parse_list_query(items)
    except BadParameter:
        return  # e.g. from >= to
    reader = _reader(world.url, world.database, ingest_lag_s=0)
    expected = {str(e.event_id) for e in world.events if e.tenant == tenant and _matches(e, items)}
    if order == "newest":
        records, pages = _all_pages(reader, tenant, [*items, ("page[limit]", "50")])
        assert {p.total for p in pages} == {len(expected)}
    else:
        records, _ = _poll_all(reader, tenant, size=50, items=tuple(items))
    ids = _ids(records)
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
    mine = {str(e.event_id) for e in world.events if e.tenant == tenant}
    assert set(ids) <= mine


def test_foreign_and_tampered_cursors_and_ids(world: World) -> None:
    reader = _reader(world.url, world.database)
    page = reader.page("iso-a", parse_list_query([("page[size]", "3")]))
    assert page.next_cursor is not None
    for account, items in (
        ("iso-b", [("page[size]", "3")]),
        ("iso-a", [("page[size]", "3"), ("users_ids[]", "u-1")]),
        ("iso-a", [("page[size]", "3"), ("order", "ingested")]),
    ):
        with pytest.raises(BadParameter) as caught:
            reader.page(account, parse_list_query([*items, ("page[after]", page.next_cursor)]))
        assert caught.value.parameter == "page[after]"
    flipped = (
        page.next_cursor[:10]
        + ("A" if page.next_cursor[10] != "A" else "B")
        + page.next_cursor[11:]
    )
    with pytest.raises(BadParameter):
        reader.page("iso-a", parse_list_query([("page[size]", "3"), ("page[after]", flipped)]))
    theirs = next(e for e in world.events if e.tenant == "iso-b")
    assert reader.event("iso-a", str(theirs.event_id)) is None
    assert reader.event("iso-b", str(theirs.event_id)) is not None
    for bad in ("", "not-a-uuid", "' OR 1=1 --", str(uuid.uuid4())):
        assert reader.event("iso-a", bad) is None


def test_the_seeds_use_case_who_stopped_the_recipe(client: Client, url: str, database: str) -> None:
    noise = [
        Ev(
            "seed",
            NOW - timedelta(hours=n),
            action=a,
            resource_id=f"r-{n % 5}",
            actor_id=f"u-{n % 4}",
        )
        for n in range(60)
        for a in ("recipe.started", "recipe.updated")
    ]
    stopped = Ev(
        "seed",
        NOW - timedelta(hours=30, minutes=12),
        action="recipe.stopped",
        resource_id="r-42",
        resource_name="Payroll sync",
        actor_id="u-7",
        actor_email="mallory@acme.io",
        details={"request": "spoof"},
    )
    _insert(client, database, [*noise, stopped])
    reader = _reader(url, database)
    page = reader.page(
        "seed",
        parse_list_query(
            [
                ("from", (NOW - timedelta(days=7)).isoformat()),
                ("include_event_types[]", "recipe.stopped"),
                ("resource_ids[]", "r-42"),
            ]
        ),
    )
    assert page.total == 1
    [found] = page.data
    assert found["user"] == {"id": "u-7", "type": "user", "name": "Ann", "email": "mallory@acme.io"}
    assert found["timestamp"] == stopped.occurred_at.isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
    assert found["details"]["request"]["ip"] == "203.0.113.7"
    assert reader.event("seed", found["id"]) == found
    exported = _export(reader, "seed", [("include_event_types[]", "recipe.stopped")])
    assert [json.loads(line) for line in exported.splitlines()] == [found]
    assert found["details"]["_request"] == "spoof"
    by_text = reader.page(
        "seed", parse_list_query([("q", "MALLORY"), ("include_event_types[]", "recipe.stopped")])
    )
    assert _ids(by_text.data) == [found["id"]]


def test_exports_are_complete_and_equal_to_the_pages(world: World) -> None:
    reader = _reader(world.url, world.database)
    items = [("exclude_event_types[]", "user.login")]
    records, _ = _all_pages(reader, "iso-b", [*items, ("page[size]", "7")])
    lines = _export(reader, "iso-b", items).decode().splitlines()
    assert [json.loads(line) for line in lines] == records
    text = _export(reader, "iso-b", [*items, ("format", "csv")]).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == _ids(records)
    assert [r["user.id"] for r in rows] == [r["user"]["id"] for r in records]


HOSTILE = (
    "",
    "plain",
    "a,b",
    'say "hi"',
    "two\nlines",
    'crlf\r\nin, a "cell"',
    "=1+1",
    "+x",
    "-2",
    "@SUM(A1)",
    "\tx",
    "\rx",
    "'=already",
    " =after a space",
    "é漢😀",
    "a/b\\c",
    '"',
    ",",
    "\n",
    '{"j": [1]}',
)


def _hostile_rows(tenant: str, values: tuple[str, ...]) -> list[list[Any]]:
    """One event per value, the value in every text field (NULL in some nullable ones),
    in the activity fields (also under the reserved name) and in the changes."""
    rows = []
    for i, h in enumerate(values):
        details = (
            {}
            if i % 5 == 0
            else {"a": h, "request": h, "z": h}
            if i % 3 == 0
            else {"k" + h: h, "b": "/"}
        )
        rows.append(
            [
                uuid.uuid4(),
                tenant,
                NOW - timedelta(seconds=i, milliseconds=i),
                h or "x.y",
                h or "cat",
                ("user", h, h if i % 2 else None, None if i % 3 == 0 else h),
                (h or "rt", h, h if i % 2 == 0 else None),
                (h, None, h),
                (h, h, None, h),
                (h or "success", None if i % 2 else h),
                details,
                [] if i % 4 == 0 else [(h, None, h), ("f", h, None)],
                None if i % 2 else h,
            ]
        )
    return rows


def _reference(client: Client, database: str, tenant: str) -> tuple[bytes, bytes, int]:
    """The export of ``tenant`` as the Python reference encoders write it: (CSV, NDJSON,
    records), from the stored rows in the export's order."""
    where = sql.conditions(tenant, 0, None, EventFilters())
    rows = client.query(sql.export(database, where), parameters=where.params).result_rows
    csv_body = csv_header() + b"".join(data for data, _ in encoded_rows([rows], "csv"))
    ndjson_body = b"".join(data for data, _ in encoded_rows([rows], "ndjson"))
    return csv_body, ndjson_body, len(rows)


def test_csv_and_ndjson_built_by_clickhouse_equal_the_reference(
    client: Client, url: str, database: str
) -> None:
    client.insert(f"{database}.events", _hostile_rows("hostile", HOSTILE), column_names=COLUMNS)
    reader = _reader(url, database)
    expected_csv, expected_ndjson, n = _reference(client, database, "hostile")
    assert n == len(HOSTILE)

    stream = reader.export("hostile", parse_export_query([("format", "csv")]))
    body = b"".join(stream)
    assert body == expected_csv  # byte for byte
    assert stream.count == n  # records, though cells hold line breaks
    assert body.count(b"\n") > n + 1
    parsed = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert len(parsed) == n + 1
    by_name = [dict(zip(parsed[0], cells, strict=True)) for cells in parsed[1:]]
    formula = {"=1+1", "+x", "-2", "@SUM(A1)", "\tx", "\rx"}
    assert {r["user.id"] for r in by_name if r["user.id"][1:] in formula} == {
        "'" + v for v in formula
    }

    stream = reader.export("hostile", parse_export_query([]))
    lines = b"".join(stream).decode().splitlines()
    assert stream.count == n
    assert [json.loads(line) for line in lines] == [
        json.loads(line) for line in expected_ndjson.decode().splitlines()
    ]


def test_csv_json_cells_with_control_characters_are_the_same_json(
    client: Client, url: str, database: str
) -> None:
    """The one spelling difference (see viewer.query.export): control characters and
    U+2028/U+2029 in the JSON cells. Cells equal, the JSON cells as JSON."""
    odd = ("\x01\x1f", "x\u2028y\u2029", "\x7f\x00", "\x0b=")
    client.insert(f"{database}.events", _hostile_rows("odd", odd), column_names=COLUMNS)
    reader = _reader(url, database)
    expected, _, n = _reference(client, database, "odd")
    stream = reader.export("odd", parse_export_query([("format", "csv")]))
    got = list(csv.reader(io.StringIO(b"".join(stream).decode(), newline="")))
    want = list(csv.reader(io.StringIO(expected.decode(), newline="")))
    assert stream.count == n == len(got) - 1
    json_cells = {"details", "changes"}
    for got_row, want_row in zip(got[1:], want[1:], strict=True):
        for name, a, b in zip(got[0], got_row, want_row, strict=True):
            if name in json_cells and a:
                assert json.loads(a) == json.loads(b), name
            else:
                assert a == b, name


def test_actor_emails_match_whatever_the_letter_case_beyond_ascii(
    client: Client, url: str, database: str
) -> None:
    """ClickHouse's lower() is ASCII-only: ÉLODIE@ must still match élodie@."""
    elodie = Ev("intl", NOW - timedelta(hours=1), actor_email="ÉLODIE@Exemple.FR")
    other = Ev("intl", NOW - timedelta(hours=2), actor_email="elodie@exemple.fr")
    _insert(client, database, [elodie, other])
    reader = _reader(url, database)
    for asked in ("élodie@exemple.fr", "ÉLODIE@EXEMPLE.FR", "Élodie@exemple.fr"):
        page = reader.page("intl", parse_list_query([("actor_emails[]", asked)]))
        assert _ids(page.data) == [str(elodie.event_id)], asked
