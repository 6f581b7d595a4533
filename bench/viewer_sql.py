"""The representative SQL of each viewer query kind, and the per-account probes that fill it.

Every page is the viewer's shape: one account (``tenant_id``), a time range,
``ORDER BY occurred_at DESC, event_id DESC``, rows stored twice (a redelivery not yet
merged away) shown once, 100 rows. How duplicates are dropped is a :data:`Dedupe`
choice, so that the choices can be measured side by side; pages default to ``final``,
as the viewer's reader reads them (viewer/query/sql.py since b4e6044):

- ``limit_by``: ``LIMIT 1 BY occurred_at, event_id`` after the ORDER BY (reads in key
  order and stops early);
- ``final``: ``FROM events FINAL`` (the engine merges at read time);
- ``none``: no deduplication (wrong answers when duplicates exist; the floor);
- ``none_lazy``: ``none`` with the engine's lazy materialization allowed up to the page
  size (``query_plan_max_limit_for_lazy_materialization``, default 10): the wide columns
  are read for the page's rows only. A caller could dedupe such pages itself by asking
  for a few rows more than it shows;
- ``keys``: ``limit_by`` selecting only ``(occurred_at, event_id)`` (the first half of a
  two-query page: keys, then their rows);
- ``bounded``: ``limit_by`` with ``occurred_at >= (the oldest key of the page)``, that key
  found by a scalar subquery over the keys alone: the wide columns are then read only
  from the granules that can hold the page.

Text search is a case-insensitive substring of the resource name or the actor email,
written as ``positionCaseInsensitiveUTF8`` (``text``, the viewer's form) or as
``lower(ifNull(x, '')) LIKE '%term%'`` (``text_like``, the form an ngram bloom filter on
that expression can use: those indexes take no Nullable column).
Keyset pages come after a cursor ``(occurred_at, event_id)``, as a tuple comparison
(``tuple``) or expanded so the primary key can prune (``expanded``).

Queries use server-side parameters (``{name:Type}``); :func:`page` and friends return
``(sql, parameters)`` for ``client.query``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from clickhouse_connect.driver.client import Client

Dedupe = Literal["limit_by", "final", "none", "none_lazy", "keys", "bounded"]
Filter = Literal["none", "actor", "actor_email", "action", "text", "text_like"]

COLUMNS = (
    "toString(event_id), toUnixTimestamp64Milli(occurred_at), action, category, actor.type,"
    " actor.id, actor.name, actor.email, resource.type, resource.id, resource.name,"
    " workspace.id, workspace.name, workspace.environment, request.ip, request.user_agent,"
    " request.request_id, request.session_id, outcome.status, outcome.reason, details,"
    " changes, source, toUnixTimestamp64Milli(ingested_at)"
)
"""The viewer's select list (viewer/query/sql.py on branch viewer/query), flat."""
PAGE_ROWS = 100
MAX_EVENT_AGE = timedelta(days=30, minutes=5)
"""How far before its ingest watermark a poll looks (the producer refuses older events)."""

Query = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Probe:
    """One account and the values its filtered queries use, sampled from its own data:
    a user (id and email), an action and a text term of a recent event, a cursor about 60 days back,
    and an event id from the whole year."""

    tenant_id: str
    events: int
    actor_id: str
    actor_email: str
    action: str
    term: str
    cursor_at: datetime
    cursor_id: UUID
    event_id: UUID


_FILTERS: dict[Filter, str] = {
    "none": "",
    "actor": " AND actor.id IN {actors:Array(String)}",
    "actor_email": " AND lower(ifNull(actor.email, '')) IN {emails:Array(String)}",
    "action": " AND action IN {actions:Array(String)}",
    "text": (
        " AND (positionCaseInsensitiveUTF8(ifNull(resource.name, ''), {term:String}) > 0"
        " OR positionCaseInsensitiveUTF8(ifNull(actor.email, ''), {term:String}) > 0)"
    ),
    "text_like": (
        " AND (lower(ifNull(resource.name, '')) LIKE {pattern:String}"
        " OR lower(ifNull(actor.email, '')) LIKE {pattern:String})"
    ),
}


def _filter_params(probe: Probe, filter_: Filter) -> dict[str, Any]:
    if filter_ == "actor":
        return {"actors": [probe.actor_id]}
    if filter_ == "actor_email":
        return {"emails": [probe.actor_email.lower()]}
    if filter_ == "action":
        return {"actions": [probe.action]}
    if filter_ == "text":
        return {"term": probe.term}
    if filter_ == "text_like":
        return {"pattern": f"%{probe.term.lower()}%"}
    return {}


def _source(database: str, dedupe: Dedupe) -> str:
    return f"{database}.events" + (" FINAL" if dedupe == "final" else "")


def _tail(dedupe: Dedupe, *, descending: bool = True, limit: int | None = PAGE_ROWS) -> str:
    way = "DESC" if descending else "ASC"
    order = f" ORDER BY occurred_at {way}, event_id {way}"
    limit_by = dedupe in ("limit_by", "keys", "bounded")
    dedupe_sql = " LIMIT 1 BY occurred_at, event_id" if limit_by else ""
    lazy = (
        f" SETTINGS query_plan_max_limit_for_lazy_materialization = {limit}"
        if dedupe == "none_lazy" and limit is not None
        else ""
    )
    return order + dedupe_sql + (f" LIMIT {limit}" if limit is not None else "") + lazy


def page(
    database: str,
    probe: Probe,
    *,
    since: datetime,
    until: datetime,
    filter_: Filter = "none",
    dedupe: Dedupe = "final",
) -> Query:
    """The first page of ``probe``'s account in ``[since, until)``, filtered."""
    columns = "occurred_at, event_id" if dedupe == "keys" else COLUMNS
    where = (
        " WHERE tenant_id = {tenant:String}"
        " AND occurred_at >= {since:DateTime64(3)} AND occurred_at < {until:DateTime64(3)}"
        + _FILTERS[filter_]
    )
    if dedupe == "bounded":
        keys = f"SELECT occurred_at, event_id FROM {database}.events{where}{_tail('keys')}"
        where += f" AND occurred_at >= (SELECT min(occurred_at) FROM ({keys}))"
    sql = f"SELECT {columns} FROM {_source(database, dedupe)}{where}{_tail(dedupe)}"
    params = {"tenant": probe.tenant_id, "since": since, "until": until}
    return sql, params | _filter_params(probe, filter_)


def count(
    database: str,
    probe: Probe,
    *,
    since: datetime,
    until: datetime,
    how: Literal["limit_by", "uniq", "final"] = "uniq",
) -> Query:
    """The total number of distinct events of the account in ``[since, until)``."""
    where = (
        " WHERE tenant_id = {tenant:String}"
        " AND occurred_at >= {since:DateTime64(3)} AND occurred_at < {until:DateTime64(3)}"
    )
    if how == "uniq":
        sql = f"SELECT uniqExact(occurred_at, event_id) FROM {database}.events" + where
    elif how == "final":
        sql = f"SELECT count() FROM {database}.events FINAL" + where
    else:
        sql = (
            f"SELECT count() FROM (SELECT 1 FROM {database}.events"
            + where
            + " LIMIT 1 BY occurred_at, event_id)"
        )
    return sql, {"tenant": probe.tenant_id, "since": since, "until": until}


def keyset_page(
    database: str,
    probe: Probe,
    *,
    since: datetime,
    form: Literal["tuple", "expanded"] = "expanded",
    dedupe: Dedupe = "final",
) -> Query:
    """The page after ``probe``'s cursor, going back in time, not before ``since``."""
    if form == "tuple":
        after = " AND (occurred_at, event_id) < ({at:DateTime64(3)}, {id:UUID})"
    else:
        after = (
            " AND occurred_at <= {at:DateTime64(3)}"
            " AND (occurred_at < {at:DateTime64(3)} OR event_id < {id:UUID})"
        )
    sql = (
        f"SELECT {COLUMNS} FROM {_source(database, dedupe)}"
        " WHERE tenant_id = {tenant:String} AND occurred_at >= {since:DateTime64(3)}"
        + after
        + _tail(dedupe)
    )
    return sql, {
        "tenant": probe.tenant_id,
        "since": since,
        "at": probe.cursor_at,
        "id": probe.cursor_id,
    }


def by_id(database: str, probe: Probe) -> Query:
    """One event of the account by its id (no time bound: a link to an event)."""
    sql = (
        f"SELECT {COLUMNS} FROM {database}.events"
        " WHERE tenant_id = {tenant:String} AND event_id = {id:UUID}"
        " ORDER BY ingested_at DESC LIMIT 1"
    )
    return sql, {"tenant": probe.tenant_id, "id": probe.event_id}


def poll(database: str, probe: Probe, *, ingested_after: datetime, max_age: timedelta) -> Query:
    """A poller's page: the account's events ingested after a watermark, in ingest
    order (pollers page on ingest order so late events are never missed), among those
    that occurred at most ``max_age`` before it (the producer refuses older events; the
    viewer's reader bounds its scan the same way)."""
    sql = (
        f"SELECT {COLUMNS} FROM {database}.events"
        " WHERE tenant_id = {tenant:String} AND occurred_at >= {floor:DateTime64(3)}"
        " AND ingested_at > {after:DateTime64(3)}"
        " ORDER BY ingested_at, event_id LIMIT 1 BY ingested_at, event_id"
        f" LIMIT {PAGE_ROWS}"
    )
    return sql, {
        "tenant": probe.tenant_id,
        "after": ingested_after,
        "floor": ingested_after - max_age,
    }


def export(database: str, tenant: str, *, since: datetime, until: datetime) -> Query:
    """Every distinct event of ``tenant`` in ``[since, until)``, newest first (as the
    viewer exports)."""
    sql = (
        f"SELECT {COLUMNS} FROM {database}.events"
        " WHERE tenant_id = {tenant:String}"
        " AND occurred_at >= {since:DateTime64(3)} AND occurred_at < {until:DateTime64(3)}"
        + _tail("limit_by", limit=None)
    )
    return sql, {"tenant": tenant, "since": since, "until": until}


def sample_probe(
    client: Client, database: str, tenant: str, events: int, *, anchor: datetime, salt: int
) -> Probe:
    """The probe of ``tenant``: values from its own events, chosen by hash (``salt``
    varies them between probes of one account)."""
    recent = client.query(
        f"SELECT actor.id, actor.email, action, resource.name FROM {database}.events"
        " WHERE tenant_id = {tenant:String} AND occurred_at >= {since:DateTime64(3)}"
        " AND actor.type = 'user' ORDER BY sipHash64(event_id, {salt:UInt32}) LIMIT 1",
        parameters={"tenant": tenant, "since": anchor - timedelta(days=7), "salt": salt},
    ).result_rows
    if not recent:  # a small account may have nothing in a week: take any of its events
        recent = client.query(
            f"SELECT actor.id, actor.email, action, resource.name FROM {database}.events"
            " WHERE tenant_id = {tenant:String} AND actor.type = 'user'"
            " ORDER BY sipHash64(event_id, {salt:UInt32}) LIMIT 1",
            parameters={"tenant": tenant, "salt": salt},
        ).result_rows
    actor_id, actor_email, action, name = recent[0]
    cursor = client.query(
        f"SELECT occurred_at, event_id FROM {database}.events"
        " WHERE tenant_id = {tenant:String} AND occurred_at < {at:DateTime64(3)}"
        " ORDER BY occurred_at DESC, event_id DESC LIMIT 1",
        parameters={"tenant": tenant, "at": anchor - timedelta(days=60)},
    ).result_rows
    anyone = client.query(
        f"SELECT event_id FROM {database}.events WHERE tenant_id = {{tenant:String}}"
        " ORDER BY sipHash64(event_id, {salt:UInt32}) LIMIT 1",
        parameters={"tenant": tenant, "salt": salt + 1},
    ).result_rows
    # The term: the resource name's second word (a connected system), shortened, in
    # another case than stored: "Salesforce" -> "SALESFO".
    words = str(name or "").split()
    term = (words[1] if len(words) > 1 else words[0] if words else "sync")[:7].upper()
    cursor_at, cursor_id = cursor[0] if cursor else (anchor - timedelta(days=60), UUID(int=0))
    return Probe(
        tenant_id=tenant,
        events=events,
        actor_id=str(actor_id),
        actor_email=str(actor_email or ""),
        action=str(action),
        term=term,
        cursor_at=cursor_at,
        cursor_id=cursor_id,
        event_id=anyone[0][0],
    )


def estimate(
    client: Client, query: Query, settings: dict[str, Any] | None = None
) -> dict[str, int]:
    """What the engine plans to read for ``query`` after the primary key and skip
    indexes (``EXPLAIN ESTIMATE``): parts, rows (whole granules) and marks; zeros when
    it reads nothing. The gateway's summary counts result rows, not rows read."""
    rows = client.query(
        "EXPLAIN ESTIMATE " + query[0], parameters=query[1], settings=settings
    ).named_results()
    found = {"parts": 0, "rows": 0, "marks": 0}
    for row in rows:
        for key in found:
            found[key] += int(row.get(key, 0))
    return found
