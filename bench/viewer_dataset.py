"""The viewer benchmark's data set: generated audit events, made by the engine itself.

``INSERT INTO <db>.events ... SELECT ... FROM numbers(...)`` in chunks of
``chunk_rows``, every value a deterministic function of the row number and the seed
(``sipHash64``), so the same :class:`DatasetSpec` always makes the same rows:

- ``accounts`` accounts, ids made as the producer's generator makes them
  (``acct-xxxxxxxx``), sizes skewed like Zipf(1): the account of a row is
  ``floor(exp(u * ln(accounts + 1))) - 1``, so account ``k`` (0 the largest) holds about
  ``ln((k + 2) / (k + 1)) / ln(accounts + 1)`` of the rows (10% for the largest of 1,000,
  0.014% for the smallest);
- ``occurred_at`` uniform over the 365 days before ``anchor_ms``; ``ingested_at`` 0.1-2.1 s
  later, 0.5% of rows up to an hour later;
- actions, categories and resource types from ``schemas/catalog/activities.json``
  (skewed: the catalog's first actions are the common ones); actors (users with emails,
  API clients, the system) from a Zipf pool per account whose size grows with the
  account; resources from a pool per account with names of a few words; workspaces,
  IPs per actor, user agents, request and session ids, outcomes (3% failures, all
  ``*_failed`` actions), details maps of 0-3 entries, changes for updating actions;
- ``event_id`` a UUID version 4 like the producer's (``producers/generator/engine.py``);
- then ``duplicate_every``: one row in that many is inserted a second time, as a
  redelivery would store it (same event, later ``ingested_at``), in parts of its own.

The loaded engine directory is cached under ``<cache>/bench-viewer-v<VERSION>/<key>/``,
``key`` a hash of the spec and the migrations' checksums, with ``dataset.json`` written
last (its presence marks a complete load). Nothing here starts processes: the caller
owns the gateway.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from consumers.migrations import apply_pending
from consumers.migrations.runner import load_migrations
from producers.generator.population import tenant_id
from schemas.catalog import load_catalog

VERSION = 1
"""Bump when the generating SQL changes: old caches are then ignored."""

DAY_MS = 86_400_000
RANGE_DAYS = 365

_FIRST = (
    "ana", "ben", "carla", "dev", "emma", "farid", "grace", "hugo", "ines", "jonas",
    "kira", "liam", "maya", "noah", "olga", "pablo", "quinn", "rosa", "sam", "tara",
    "uma", "victor", "wen", "xavi", "yara", "zoe", "aisha", "bruno", "chen", "dana",
)  # fmt: skip
_LAST = (
    "silva", "novak", "meyer", "tanaka", "okafor", "larsen", "rossi", "kowalski",
    "dubois", "garcia", "nguyen", "haddad", "ivanova", "murphy", "schmidt", "costa",
    "park", "kumar", "weber", "lopez",
)  # fmt: skip
_COMPANY = (
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell",
    "cyberdyne", "soylent", "wonka", "vandelay", "oscorp", "aperture", "monarch",
)  # fmt: skip
_ADJECTIVE = (
    "Nightly", "Hourly", "Daily", "Weekly", "Urgent", "Legacy", "New", "Shared", "Main",
    "Backup", "Quarterly", "Realtime", "Bulk", "Incremental", "Manual",
)  # fmt: skip
_SYSTEM = (
    "Salesforce", "NetSuite", "Workday", "Jira", "Slack", "Zendesk", "HubSpot", "Snowflake",
    "Marketo", "ServiceNow", "Shopify", "Stripe", "Okta", "Greenhouse", "Gmail", "SAP",
)  # fmt: skip
_NOUN = (
    "sync", "export", "import", "contacts", "invoices", "orders", "tickets", "leads",
    "employees", "payouts", "alerts", "reports", "onboarding", "backfill", "webhook",
)  # fmt: skip
_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "platform-cli/3.2.1",
    "python-requests/2.32.3",
)
_REASONS = ("permission_denied", "invalid_credentials", "timeout", "quota_exceeded")


@dataclass(frozen=True)
class DatasetSpec:
    """What to generate. ``anchor_ms`` is not part of it: it is the load time, recorded
    in the cache's ``dataset.json``."""

    events: int = 10_000_000
    accounts: int = 1_000
    seed: int = 7
    duplicate_every: int = 500
    chunk_rows: int = 1_000_000

    def key(self) -> str:
        """The cache key: the spec (without the chunking) and the migrations' checksums."""
        spec = asdict(self)
        spec.pop("chunk_rows")
        migrations = [m.checksum for m in load_migrations()]
        text = json.dumps({"spec": spec, "migrations": migrations}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_dir(root: Path, spec: DatasetSpec) -> Path:
    """The gateway data directory for ``spec`` under the cache ``root``."""
    return root / f"bench-viewer-v{VERSION}" / spec.key()


def _literal(values: tuple[str, ...] | list[str]) -> str:
    quoted = ("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)
    return "[" + ", ".join(quoted) + "]"


def _activities() -> tuple[list[str], list[str], list[str]]:
    catalog = load_catalog()
    actions = [a.action for a in catalog.activities]
    categories = [a.category for a in catalog.activities]
    resource_types = [a.resource_type for a in catalog.activities]
    return actions, categories, resource_types


def generate_sql(database: str, spec: DatasetSpec, anchor_ms: int, source: str) -> str:
    """The ``INSERT ... SELECT`` that stores the rows numbered by ``source``, a subquery
    yielding one column ``n`` (e.g. ``SELECT number AS n FROM numbers(0, 1000000)``)."""
    actions, categories, resource_types = _activities()
    tenants = [tenant_id(i, spec.seed) for i in range(spec.accounts)]
    seed = spec.seed
    # u(x): a uniform [0, 1) float from hash x.
    return f"""
INSERT INTO {database}.events (event_id, tenant_id, occurred_at, action, category, actor,
    resource, workspace, request, outcome, details, changes, source, ingested_at)
WITH
    {_literal(tenants)} AS tenants,
    {_literal(actions)} AS actions,
    {_literal(categories)} AS categories,
    {_literal(resource_types)} AS resource_types,
    {_literal(_FIRST)} AS firsts,
    {_literal(_LAST)} AS lasts,
    {_literal(_COMPANY)} AS companies,
    {_literal(_ADJECTIVE)} AS adjectives,
    {_literal(_SYSTEM)} AS systems,
    {_literal(_NOUN)} AS nouns,
    {_literal(_AGENTS)} AS agents,
    {_literal(_REASONS)} AS reasons
SELECT
    toUUID(concat(substring(hx, 1, 8), '-', substring(hx, 9, 4), '-4', substring(hx, 14, 3),
        '-', substring('89ab', 1 + (h1 % 4), 1), substring(hx, 18, 3), '-',
        substring(hx, 21, 12))) AS event_id,
    tenants[acct + 1] AS tenant_id,
    at AS occurred_at,
    actions[act + 1] AS action,
    categories[act + 1] AS category,
    tuple(actor_type, actor_id,
        if(actor_type = 'user', concat(initcap(firsts[fi]), ' ', initcap(lasts[la])),
           if(actor_type = 'api_client', concat('API client ', toString(actor_n)), NULL)),
        if(actor_type = 'user',
           concat(firsts[fi], '.', lasts[la], if(actor_n >= 600, toString(actor_n), ''), '@',
                  companies[acct % 15 + 1], '-', toString(acct), '.example.com'),
           NULL)) AS actor,
    tuple(resource_types[act + 1],
        concat(substring(resource_types[act + 1], 1, 3), '_',
               leftPad(lower(hex(bitAnd(sipHash64({seed}, acct, res_n, 3), 281474976710655))),
                       12, '0')),
        concat(adjectives[res_n % 15 + 1], ' ', systems[intDiv(res_n, 15) % 16 + 1], ' ',
               nouns[intDiv(res_n, 240) % 15 + 1], ' ', toString(res_n))) AS resource,
    tuple(concat('ws_', toString(acct), '_', toString(ws)),
        ['Production', 'Sandbox', 'Development'][ws + 1],
        ['prod', 'test', 'dev'][ws + 1]) AS workspace,
    tuple(if(actor_type = 'system', NULL,
             IPv4NumToString(toUInt32(sipHash64({seed}, acct, actor_n, 5) % 4294967296))),
        if(actor_type = 'system', NULL, agents[sipHash64({seed}, acct, actor_n, 6) % 5 + 1]),
        concat('req_', leftPad(lower(hex(h3)), 16, '0')),
        if(actor_type = 'user',
           concat('ses_', leftPad(lower(hex(bitAnd(sipHash64({seed}, acct, actor_n,
                  toStartOfDay(at)), 281474976710655))), 12, '0')),
           NULL)) AS request,
    tuple(if(failed, 'failure', 'success'),
        if(failed, reasons[h2 % 4 + 1], NULL)) AS outcome,
    mapFromArrays(
        arraySlice(['method', 'origin', 'ticket'], 1, h2 % 4),
        arraySlice([if(h2 % 2 = 0, 'sso', 'password'), ['web', 'api', 'cli'][h3 % 3 + 1],
                    concat('T-', toString(h3 % 100000))], 1, h2 % 4)) AS details,
    if(match(actions[act + 1], '(updated|renamed|changed|moved)$'),
       [tuple('name', concat('old ', toString(h2 % 1000)), concat('new ', toString(h3 % 1000)))],
       []) AS changes,
    ['platform-web', 'platform-api', 'scheduler'][h3 % 3 + 1] AS source,
    at + toIntervalMillisecond(if(h2 % 200 = 0, 100 + h3 % 3600000, 100 + h3 % 2000))
        AS ingested_at
FROM (
    SELECT
        n,
        sipHash64({seed}, n, 1) AS h1,
        sipHash64({seed}, n, 2) AS h2,
        sipHash64({seed}, n, 3) AS h3,
        leftPad(lower(hex(h1)), 16, '0') || leftPad(lower(hex(h2)), 16, '0') AS hx,
        toUInt32(floor(exp((h1 % 1000000007) / 1000000007 * log({spec.accounts} + 1)))) - 1
            AS acct,
        toUInt32(floor(exp((h2 % 1000000007) / 1000000007 * log({len(actions)} + 1)))) - 1
            AS act,
        5 + intDiv(3000, acct + 1) AS actors_in_account,
        toUInt32(floor(exp((h3 % 1000000007) / 1000000007 * log(actors_in_account + 1)))) - 1
            AS actor_n,
        multiIf(actor_n % 25 = 24, 'api_client', h2 % 100 = 99, 'system', 'user') AS actor_type,
        if(actor_type = 'system', 'system',
           concat(if(actor_type = 'user', 'usr_', 'apc_'),
                  leftPad(lower(hex(bitAnd(sipHash64({seed}, acct, actor_n, 4),
                                           281474976710655))), 12, '0'))) AS actor_id,
        actor_n % 30 + 1 AS fi,
        intDiv(actor_n, 30) % 20 + 1 AS la,
        20 + intDiv(30000, acct + 1) AS resources_in_account,
        toUInt32(floor(exp((bitShiftRight(h3, 20) % 1000000007) / 1000000007
                           * log(resources_in_account + 1)))) - 1 AS res_n,
        bitShiftRight(h1, 40) % 3 AS ws,
        bitShiftRight(h2, 8) % 100 < 3 OR endsWith(actions[act + 1], '_failed') AS failed,
        fromUnixTimestamp64Milli(
            toInt64({anchor_ms} - 1 - bitShiftRight(h3, 8) % {RANGE_DAYS * DAY_MS}), 'UTC') AS at
    FROM ({source})
)
"""


@dataclass(frozen=True)
class Loaded:
    """A loaded data set: where, when its times end, how long it took to load."""

    spec: DatasetSpec
    database: str
    anchor_ms: int
    load_s: float
    rows: int
    account_sizes: list[tuple[str, int]]
    """(tenant_id, distinct events), largest first."""

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": asdict(self.spec),
            "database": self.database,
            "anchor_ms": self.anchor_ms,
            "load_s": self.load_s,
            "rows": self.rows,
            "account_sizes": self.account_sizes,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Loaded:
        return Loaded(
            spec=DatasetSpec(**data["spec"]),
            database=data["database"],
            anchor_ms=int(data["anchor_ms"]),
            load_s=float(data["load_s"]),
            rows=int(data["rows"]),
            account_sizes=[(str(t), int(c)) for t, c in data["account_sizes"]],
        )


def read_loaded(data_dir: Path) -> Loaded | None:
    """The complete load recorded in ``data_dir``, or None."""
    marker = data_dir / "dataset.json"
    if not marker.exists():
        return None
    return Loaded.from_json(json.loads(marker.read_text()))


def load(client: Client, data_dir: Path, spec: DatasetSpec, *, database: str) -> Loaded:
    """Migrate ``database`` and generate ``spec`` into it through ``client`` (blocks for
    the whole load; SETTINGS keep each chunk one block); writes ``dataset.json`` last."""
    anchor_ms = (int(time.time() * 1000) // 3_600_000) * 3_600_000
    began = time.perf_counter()
    apply_pending(client, database=database)
    settings = {"max_insert_threads": 2, "max_block_size": 65536}
    for start in range(0, spec.events, spec.chunk_rows):
        count = min(spec.chunk_rows, spec.events - start)
        source = f"SELECT number AS n FROM numbers({start}, {count})"
        client.command(generate_sql(database, spec, anchor_ms, source), settings=settings)
    if spec.duplicate_every:
        every = spec.duplicate_every
        source = f"SELECT number * {every} AS n FROM numbers({spec.events // every})"
        # The same events again, as a redelivery stores them: an hour later.
        sql = generate_sql(database, spec, anchor_ms, source).replace(
            "AS ingested_at\nFROM", "+ toIntervalHour(1) AS ingested_at\nFROM"
        )
        client.command(sql, settings=settings)
    load_s = time.perf_counter() - began
    rows = int(client.command(f"SELECT count() FROM {database}.events"))  # type: ignore[arg-type]
    sizes = client.query(
        f"SELECT tenant_id, uniqExact(event_id) AS c FROM {database}.events "
        "GROUP BY tenant_id ORDER BY c DESC, tenant_id"
    ).result_rows
    loaded = Loaded(
        spec=spec,
        database=database,
        anchor_ms=anchor_ms,
        load_s=round(load_s, 1),
        rows=rows,
        account_sizes=[(str(t), int(c)) for t, c in sizes],
    )
    (data_dir / "dataset.json").write_text(json.dumps(loaded.to_json()))
    return loaded


def wait_for_merges(client: Client, database: str, *, timeout_s: float) -> float:
    """Block until no merge or mutation of ``database`` runs (or ``timeout_s``); returns
    the seconds waited."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout_s:
        running = client.command(
            "SELECT (SELECT count() FROM system.merges WHERE database = {db:String}) + "
            "(SELECT count() FROM system.mutations WHERE database = {db:String} "
            "AND NOT is_done)",
            parameters={"db": database},
        )
        if not running:
            break
        time.sleep(1.0)
    return round(time.perf_counter() - began, 1)
