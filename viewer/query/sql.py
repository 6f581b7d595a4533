"""The SQL the reader runs: every value a bound server-side parameter (``{name:Type}``),
the database name the only text spliced in (checked against a plain identifier).

Every statement starts from :func:`conditions`: ``tenant_id = {account}`` (the first key
column, so only the account's key range is read), ``occurred_at >= {floor}`` where floor =
max(from, now - the account's retention) (so an event older than the retention is never
returned, whether or not the month-granular TTL has dropped its part yet), ``occurred_at
< {ceil}`` (``to``, or the ``to`` a cursor pinned), then the filters.

Deduplication (ReplacingMergeTree keeps copies of a row until a merge): duplicates share
the whole sorting key (tenant_id, occurred_at, event_id). Pages read ``FINAL`` (the newest
copy, by ``ingested_at``, as a merge would keep; copies in different partitions, e.g.
stored before and after a retention change, are merged too: the partition key is not in
the sorting key) with ``ORDER BY`` the sorting key and ``LIMIT``: the engine then reads in
order only the key columns, and the other columns of the rows served alone (lazy
materialisation), which ``LIMIT 1 BY`` prevents (measured in :mod:`viewer.query.reader`).
Exports read whole ranges and keep ``LIMIT 1 BY occurred_at, event_id`` after the
``ORDER BY`` of the sorting key (drops copies in the reading order); counts use
``uniqExact(occurred_at, event_id)``.

Text search ``q``: ``positionCaseInsensitiveUTF8(haystack, {q}) > 0`` over the resource
name and the actor e-mail: a plain substring search, so there are no LIKE wildcards
(``%``, ``_``, ``\\``) to escape and a ``q`` of ``%`` finds a literal percent sign.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from viewer.query.params import EventFilters

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

# The row records.record() reads, in its order.
COLUMNS = (
    "toString(event_id)",
    "toUnixTimestamp64Milli(occurred_at)",
    "action",
    "category",
    "actor.type",
    "actor.id",
    "actor.name",
    "actor.email",
    "resource.type",
    "resource.id",
    "resource.name",
    "workspace.id",
    "workspace.name",
    "workspace.environment",
    "request.ip",
    "request.user_agent",
    "request.request_id",
    "request.session_id",
    "outcome.status",
    "outcome.reason",
    "details",
    "changes",
    "source",
    "toUnixTimestamp64Milli(ingested_at)",
)
SELECT_LIST = ", ".join(COLUMNS)
OCCURRED_MS = 1  # index in COLUMNS
INGESTED_MS = 23
EVENT_ID = 0


def table(database: str) -> str:
    if not _IDENTIFIER.fullmatch(database):
        raise ValueError(f"{database!r} is not a plain database name")
    return f"{database}.events"


def retention_table(database: str) -> str:
    if not _IDENTIFIER.fullmatch(database):
        raise ValueError(f"{database!r} is not a plain database name")
    return f"{database}.tenant_retention"


@dataclass
class Where:
    """Conditions joined by AND, and their bound parameters."""

    clauses: list[str]
    params: dict[str, Any]

    def add(self, clause: str, **params: Any) -> None:
        self.clauses.append(clause)
        self.params.update(params)

    def sql(self) -> str:
        return " AND ".join(self.clauses)


def conditions(account_id: str, floor_ms: int, ceil_ms: int | None, filters: EventFilters) -> Where:
    """Tenant, time range [floor, ceil) and filters (see module doc)."""
    where = Where(
        [
            "tenant_id = {account:String}",
            "occurred_at >= fromUnixTimestamp64Milli({floor_ms:Int64}, 'UTC')",
        ],
        {"account": account_id, "floor_ms": floor_ms},
    )
    if ceil_ms is not None:
        where.add("occurred_at < fromUnixTimestamp64Milli({ceil_ms:Int64}, 'UTC')", ceil_ms=ceil_ms)
    f = filters
    lists = (
        ("actor.id IN {users_ids:Array(String)}", "users_ids", f.users_ids),
        ("resource.type IN {in_rtypes:Array(String)}", "in_rtypes", f.include_resource_types),
        ("resource.type NOT IN {ex_rtypes:Array(String)}", "ex_rtypes", f.exclude_resource_types),
        ("action IN {in_etypes:Array(String)}", "in_etypes", f.include_event_types),
        ("action NOT IN {ex_etypes:Array(String)}", "ex_etypes", f.exclude_event_types),
        ("category IN {categories:Array(String)}", "categories", f.categories),
        # lowerUTF8 on both sides (lower() is ASCII only): ÉLODIE@ matches élodie@.
        (
            "lowerUTF8(ifNull(actor.email, '')) "
            "IN arrayMap(x -> lowerUTF8(x), {emails:Array(String)})",
            "emails",
            f.actor_emails,
        ),
        ("resource.id IN {resource_ids:Array(String)}", "resource_ids", f.resource_ids),
    )
    for clause, name, values in lists:
        if values:
            where.add(clause, **{name: list(values)})
    scalars = (
        ("workspace.id = {workspace_id:String}", "workspace_id", f.workspace_id),
        ("workspace.environment = {environment:String}", "environment", f.environment),
        ("outcome.status = {outcome:String}", "outcome", f.outcome),
        ("request.ip = {ip:String}", "ip", f.ip),
    )
    for clause, name, value in scalars:
        if value is not None:
            where.add(clause, **{name: value})
    if f.q is not None:
        where.add(
            "(positionCaseInsensitiveUTF8(ifNull(resource.name, ''), {q:String}) > 0"
            " OR positionCaseInsensitiveUTF8(ifNull(actor.email, ''), {q:String}) > 0)",
            q=f.q,
        )
    return where


# FINAL must collapse the copies of an event across partitions (a retention change puts a
# later copy in another retention class): pinned, whatever the server's profile says.
PAGE_SETTINGS = {"do_not_merge_across_partitions_select_final": 0}
# The poll's subqueries read the same table: on a cluster (a Distributed table sharded by
# tenant) each shard answers for its own rows, which ClickHouse refuses by default.
POLL_SETTINGS = {"distributed_product_mode": "local"}


def newest_page(database: str, where: Where, limit: int) -> str:
    """Newest first on the sorting key, one row per (occurred_at, event_id): FINAL (see
    the module doc)."""
    return (
        f"SELECT {SELECT_LIST} FROM {table(database)} FINAL WHERE {where.sql()} "  # noqa: S608 - checked name, bound parameters
        f"ORDER BY occurred_at DESC, event_id DESC LIMIT {int(limit)}"
    )


def after_newest(where: Where, key_ms: int, event_id: str) -> None:
    """Rows strictly after the cursor in newest-first order. The first clause alone is a
    primary-key range; the second breaks ties on the same millisecond."""
    where.add(
        "occurred_at <= fromUnixTimestamp64Milli({c_ms:Int64}, 'UTC') AND "
        "(occurred_at < fromUnixTimestamp64Milli({c_ms:Int64}, 'UTC') "
        "OR event_id < toUUID({c_id:String}))",
        c_ms=key_ms,
        c_id=event_id,
    )


def ingested_page(database: str, where: Where, limit: int) -> str:
    """Oldest ingest first; each row with a flag saying whether it is the newest stored
    copy of its event (``latest``): the reader serves only those (see reader doc)."""
    inner = (
        f"SELECT {SELECT_LIST}, occurred_at AS o, event_id AS e, ingested_at AS i "  # noqa: S608 - checked name, bound parameters
        f"FROM {table(database)} WHERE {where.sql()} "
        f"ORDER BY ingested_at, event_id LIMIT {int(limit)}"
    )
    return (
        f"SELECT * EXCEPT (o, e, i), (o, e, i) IN ("  # noqa: S608 - checked name, bound parameters
        f"SELECT occurred_at, event_id, max(ingested_at) FROM {table(database)} "
        "WHERE tenant_id = {account:String} "
        "AND occurred_at >= fromUnixTimestamp64Milli({floor_ms:Int64}, 'UTC') "
        f"AND (occurred_at, event_id) IN (SELECT o, e FROM ({inner})) "
        f"GROUP BY occurred_at, event_id) AS latest FROM ({inner}) ORDER BY i, e"
    )


def after_ingested(where: Where, key_ms: int, event_id: str, cutoff_ms: int, lag_ms: int) -> None:
    """Rows after the cursor in ingest order, ingested at least ``lag`` ago."""
    where.add(
        "ingested_at >= fromUnixTimestamp64Milli({c_ms:Int64}, 'UTC') AND "
        "(ingested_at > fromUnixTimestamp64Milli({c_ms:Int64}, 'UTC') "
        "OR event_id > toUUID({c_id:String}))",
        c_ms=key_ms,
        c_id=event_id,
    )
    settled(where, cutoff_ms, lag_ms)


def settled(where: Where, cutoff_ms: int, lag_ms: int) -> None:
    """Only rows ingested long enough ago that no insert still running can add a row
    with an earlier ``ingested_at`` (by our clock and by the server's)."""
    where.add(
        "ingested_at <= fromUnixTimestamp64Milli({cutoff_ms:Int64}, 'UTC') AND "
        "ingested_at <= now64(3) - toIntervalMillisecond({lag_ms:UInt32})",
        cutoff_ms=cutoff_ms,
        lag_ms=lag_ms,
    )


def count(database: str, where: Where) -> str:
    source = table(database)
    return f"SELECT uniqExact(occurred_at, event_id) FROM {source} WHERE {where.sql()}"  # noqa: S608


def one_event(database: str) -> str:
    return (
        f"SELECT {SELECT_LIST} FROM {table(database)} WHERE tenant_id = {{account:String}} "  # noqa: S608 - checked name, bound parameters
        "AND event_id = toUUID({event_id:String}) "
        "AND occurred_at >= fromUnixTimestamp64Milli({floor_ms:Int64}, 'UTC') "
        "ORDER BY ingested_at DESC LIMIT 1"
    )


# Newest first, one row per event: the newest stored copy (the one FINAL serves pages),
# since copies of an event differ only in ``ingested_at`` and what is computed from it.
_EXPORT_ORDER = (
    "ORDER BY occurred_at DESC, event_id DESC, ingested_at DESC LIMIT 1 BY occurred_at, event_id"
)


def export(database: str, where: Where) -> str:
    """The export's rows as :func:`viewer.query.records.record` reads them, in its order:
    what the reference encoders take (the tests compare the lines ClickHouse builds)."""
    return (
        f"SELECT {SELECT_LIST} FROM {table(database)} WHERE {where.sql()} "  # noqa: S608 - checked name, bound parameters
        + _EXPORT_ORDER
    )


def _json_tuple(fields: str, type_: str) -> str:
    return f"toJSONString(CAST(({fields}), '{type_}'))"


# The NDJSON line of a row, built by ClickHouse: the same record as records.record()
# (its test compares them), so an export neither decodes rows nor encodes JSON in Python.
# toJSONString of a NULL is NULL, and concat with a NULL is NULL: a top-level Nullable
# (source) needs its ifNull, or the whole line of an event without one is \\N.
NDJSON_LINE = (
    "concat('{\"id\":', toJSONString(toString(event_id)), "
    "',\"timestamp\":', toJSONString(concat(substring(formatDateTime(occurred_at, "
    "'%Y-%m-%dT%H:%i:%S.%f', 'UTC'), 1, 23), 'Z')), "
    "',\"event_type\":', toJSONString(toString(action)), "
    "',\"category\":', toJSONString(toString(category)), "
    "',\"user\":', "
    + _json_tuple(
        "actor.id, toString(actor.type), actor.name, actor.email",
        "Tuple(id String, type String, name Nullable(String), email Nullable(String))",
    )
    + ", ',\"resource\":', "
    + _json_tuple(
        "resource.id, toString(resource.type), resource.name",
        "Tuple(id String, type String, name Nullable(String))",
    )
    + ", ',\"workspace\":', "
    + _json_tuple(
        "workspace.id, workspace.name, workspace.environment",
        "Tuple(id Nullable(String), name Nullable(String), environment Nullable(String))",
    )
    + ", ',\"outcome\":', "
    + _json_tuple(
        "toString(outcome.status), outcome.reason", "Tuple(status String, reason Nullable(String))"
    )
    + ', \',"details":{"request":\', '
    + _json_tuple(
        "request.ip, request.user_agent, request.request_id, request.session_id",
        "Tuple(ip Nullable(String), user_agent Nullable(String), "
        "request_id Nullable(String), session_id Nullable(String))",
    )
    + ", if(empty(details), '', concat(',', substring(toJSONString(mapApply((k, v) -> "
    "(if(k = 'request', '_request', k), v), details)) AS d, 2, length(d) - 2))), "
    "'},\"changes\":', toJSONString(changes), "
    "',\"source\":', ifNull(toJSONString(source), 'null'), "
    "',\"ingested_at\":', toJSONString(concat(substring(formatDateTime(ingested_at, "
    "'%Y-%m-%dT%H:%i:%S.%f', 'UTC'), 1, 23), 'Z')), '}')"
)


def _csv_text(expr: str) -> str:
    """A text cell of tenant input as :mod:`viewer.query.export` writes it: NULL -> empty,
    a leading ``= + - @`` tab or CR neutralised with ``'``, then quoted as Python's
    ``csv.writer`` (QUOTE_MINIMAL) quotes: only a cell holding ``,`` ``"`` CR or LF, its
    quotes doubled. (The repeated subexpressions are computed once by the engine.)"""
    text = f"ifNull({expr}, '')"
    safe = (
        f"if(substring({text}, 1, 1) IN ('=', '+', '-', '@', '\\t', '\\r'), "
        f"concat('\\'', {text}), {text})"
    )
    return (
        f"if(multiSearchAny({safe}, [',', '\"', '\\r', '\\n']), "
        f"concat('\"', replaceAll({safe}, '\"', '\"\"'), '\"'), {safe})"
    )


_ISO_MS = "concat(substring(formatDateTime({}, '%Y-%m-%dT%H:%i:%S.%f', 'UTC'), 1, 23), 'Z')"

# The activity fields as records.flat() writes them: "request" moved to "_request" at the
# end (records.activity_details), as a JSON object; empty when there are none.
_CSV_DETAILS = (
    "if(empty(details), '', if(mapContains(details, 'request'), toJSONString(mapFromArrays("
    "arrayConcat(arrayFilter(k -> k != 'request', mapKeys(details)), ['_request']), "
    "arrayConcat(arrayFilter((v, k) -> k != 'request', mapValues(details), mapKeys(details)), "
    "[details['request']]))), toJSONString(details)))"
)

# The CSV cells of a row, in records.CSV_HEADER order. id and the two instants are made
# here (a UUID, ISO 8601 digits): they never need neutralising or quoting.
_CSV_CELLS = (
    "toString(event_id)",
    _ISO_MS.format("occurred_at"),
    _csv_text("toString(action)"),
    _csv_text("toString(category)"),
    _csv_text("actor.id"),
    _csv_text("toString(actor.type)"),
    _csv_text("actor.name"),
    _csv_text("actor.email"),
    _csv_text("resource.id"),
    _csv_text("toString(resource.type)"),
    _csv_text("resource.name"),
    _csv_text("workspace.id"),
    _csv_text("workspace.name"),
    _csv_text("workspace.environment"),
    _csv_text("toString(outcome.status)"),
    _csv_text("outcome.reason"),
    _csv_text("request.ip"),
    _csv_text("request.user_agent"),
    _csv_text("request.request_id"),
    _csv_text("request.session_id"),
    _csv_text(_CSV_DETAILS),
    _csv_text("if(empty(changes), '', toJSONString(changes))"),
    _csv_text("source"),
    _ISO_MS.format("ingested_at"),
)

# The CSV line of a row (RFC 4180, CRLF), built by ClickHouse: the same cells as
# export.CsvEncoder writes for records.flat(records.record(row)) (a test compares them).
CSV_LINE = "concat(" + ", ',', ".join(_CSV_CELLS) + ", '\\r\\n')"

# toJSONString as orjson writes (no "\/"): the JSON cells then equal the reference's bytes.
CSV_SETTINGS = {"output_format_json_escape_forward_slashes": 0}


def export_csv(database: str, where: Where) -> str:
    """One String column per row, the row's CSV line (CRLF included); read as a column
    of bytes, so that a cell holding a line break does not change the count of rows."""
    return (
        f"SELECT {CSV_LINE} FROM {table(database)} WHERE {where.sql()} "  # noqa: S608
        + _EXPORT_ORDER
    )


def export_ndjson(database: str, where: Where) -> str:
    """One String column per row, the record's JSON (read as TSVRaw: one line each)."""
    return (
        f"SELECT {NDJSON_LINE} FROM {table(database)} WHERE {where.sql()} "  # noqa: S608
        + _EXPORT_ORDER
    )


def retention_days(database: str) -> str:
    return (
        f"SELECT argMax(retention_days, updated_at) FROM {retention_table(database)} "  # noqa: S608 - checked name, bound parameters
        "WHERE tenant_id = {account:String} GROUP BY tenant_id"
    )
