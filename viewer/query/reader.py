"""The viewer's reads of one account's audit events: pages, one event, exports.

The account id given is already authorised (the app's access rules); what this module
guarantees is that nothing outside that account, nothing older than its retention, and
no event twice ever comes back.

**Retention.** Every read first reads the account's retention from
``<database>.tenant_retention`` (newest row wins; 365 days without one: the table the
retention dictionary is loaded from, so a change counts at once, not after the
dictionary's 30-60 s reload) and reads only ``occurred_at >= now - retention`` (and
``>= from``). The TTL drops whole months late; this bound does not wait for it.

**Newest order** (default): ``FROM events FINAL ... ORDER BY occurred_at DESC, event_id
DESC LIMIT n`` (copies share the sorting key; FINAL serves the newest copy of an event
not yet merged, see :mod:`viewer.query.sql`). The first page pins ``to`` (the request's,
or now) into the cursor, later pages read strictly below the last (occurred_at,
event_id) served: every event of the range present when paging started comes exactly
once, an event arriving in the part not yet read comes once, one arriving above the
cursor or after ``to`` never.
``total`` is the number of distinct events of the (pinned) range with the filters when
paging began: the first page counts them and its cursor carries the count, which every
later page of that range answers again without counting. (A count reads the whole range:
``deep_pages_90d_big`` of ``bench/viewer_export.py``, 1000-row pages of a 500k-event
account, went from p50 241-264 / p95 297-361 ms to 80-160 / 110-233 ms (back-to-back
runs of each version, 2 busy cores) when later pages stopped counting, and to 34-40 /
37-43 ms with FINAL below.) So on later pages ``total`` is the count when paging began:
events arriving in the range since are still served (in the part not yet read) but not
counted, and events that left the retention window since are still counted. A client
wanting a fresh count starts again from the first page.

**FINAL against LIMIT 1 BY** (the dedupe pages used before), measured 2026-12-01: the
query of ``sql.newest_page`` and the same with ``LIMIT 1 BY`` instead of FINAL, on the
data ``bench/viewer_export.py`` loads (1M events, its big account 500k over 90 days,
OPTIMIZE FINAL; then 40k of the account's events stored again, not merged), through the
local gateway (chdb 26.9) on 2 busy cores, 101 rows a page, 20 runs each, p50 / p95 ms::

                            merged                         unmerged copies
                            LIMIT 1 BY      FINAL          LIMIT 1 BY      FINAL
    first page, no from     103.7 / 136.6   16.0 / 17.9    205.3 / 235.4   27.4 / 36.1
    first page, 7 days       14.1 /  23.3   13.8 / 27.2     72.4 /  82.0   18.8 / 24.0
    users_ids[], 7 days      24.8 / 103.4   20.2 / 21.1     37.8 /  42.4   25.2 / 28.7
    q, no from              155.5 / 166.9   30.1 / 40.4    181.1 / 205.7   47.5 / 50.9
    page 2500 (cursor)       97.3 / 112.2   21.7 / 27.0     97.9 / 109.2   21.2 / 25.6

Same events on every page both ways. FINAL wins because ``ORDER BY key LIMIT n`` lets
the engine read the key columns in order and the other columns of the n rows served
only (lazy materialisation: ``EXPLAIN PIPELINE`` shows ``LazyMaterializingTransform``);
with ``LIMIT 1 BY`` in between it reads every column of the granules it passes.

**Ingest order** (``order=ingested``, for pollers, as Okta's System Log polls on
persistence time): ``ORDER BY ingested_at, event_id`` over rows ingested at least
``ingest_lag_s`` ago (by our clock and ClickHouse's), so that an insert still running,
whose rows carry an earlier ``ingested_at`` than rows already visible, cannot be skipped.
An event that arrives late with an old ``occurred_at`` has a new ``ingested_at`` and is
served when it arrives. The scan is bounded below by ``occurred_at >= cursor's
ingested_at - max_event_age_s`` (the producer refuses older events: 30 days, plus its 5
minutes of future skew), on top of the retention floor. A page always has a
``next_cursor`` (poll it again later); it may hold fewer than ``page_size`` events.
``total`` is counted again on every poll (the events of the range now): a poller's
cursor lives for as long as it polls, so a count carried from its first page would
never move.
An event stored twice is served at the position of its newest copy only (the copy a
merge keeps: ``ReplacingMergeTree(ingested_at)``), so the answer does not depend on the
merge state. A copy stored after a poller passed the first one (a replay hours later)
is served again at its own ingest position: pollers should dedupe on ``id``, as the
receivers of any at-least-once stream do.

**Threads.** clickhouse-connect's ``Client`` carries a session id by default and then
refuses two queries at once in that session (``ProgrammingError``); FastAPI runs sync
endpoints in a thread pool. So each thread gets its own client from ``client_factory``
(made on first use, kept for the thread), and each export owns a client of its own (an
export's iterator may be advanced by different pool threads). The factory should make
clients with ``autogenerate_session_id=False``; no state lives in ClickHouse sessions.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from consumers.retention import DEFAULT_RETENTION_DAYS
from schemas.validation import ValidationPolicy
from viewer.query import cursor, sql
from viewer.query.export import Chunk, ExportStream, csv_lines_chunk, raw_ndjson_chunk
from viewer.query.params import BadParameter, ExportQuery, ListQuery
from viewer.query.records import record

__all__ = ["BadParameter", "EventReader", "ExportStream", "Page", "epoch_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_POLICY = ValidationPolicy()
DEFAULT_MAX_EVENT_AGE_S = (_POLICY.max_age + _POLICY.max_future_skew).total_seconds()
DEFAULT_INGEST_LAG_S = 10.0
_EXPORT_READ_BYTES = 1 << 16
_NIL = uuid.UUID(int=0)


def epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Read:
    """What one page read knows before it queries."""

    client: Client
    account_id: str
    query: ListQuery
    bound_to: bytes
    position: cursor.Position | None
    now_ms: int
    floor_ms: int


@dataclass(frozen=True)
class Page:
    """One page: records in the order asked, the events the query matches in all
    (distinct; in newest order as counted when paging began, see the module doc), and the
    cursor of the next page (None: this was the last, newest order)."""

    data: list[dict[str, Any]]
    total: int
    next_cursor: str | None


class EventReader:
    """Reads one database's events for authorised accounts (see module doc). Thread-safe.
    Raises :class:`BadParameter` for a bad cursor; ClickHouse errors propagate."""

    def __init__(
        self,
        client_factory: Callable[[], Client],
        *,
        database: str,
        cursor_key: bytes,
        ingest_lag_s: float = DEFAULT_INGEST_LAG_S,
        clock: Callable[[], datetime] = _utc_now,
        max_event_age_s: float = DEFAULT_MAX_EVENT_AGE_S,
    ) -> None:
        if len(cursor_key) < 32:
            raise ValueError("cursor_key must be at least 32 bytes")
        sql.table(database)  # checks the name
        self._factory = client_factory
        self._database = database
        self._key = cursor_key
        self._lag_ms = int(ingest_lag_s * 1000)
        self._clock = clock
        self._max_age_ms = int(max_event_age_s * 1000)
        self._local = threading.local()
        self._clients: list[Client] = []
        self._lock = threading.Lock()

    # -- public API ---------------------------------------------------------------------

    def page(self, account_id: str, query: ListQuery) -> Page:
        """One page of ``query`` for ``account_id``."""
        bound_to = cursor.binding(account_id, query.order, query.since, query.until, query.filters)
        position = (
            cursor.decode(self._key, bound_to, query.page_after) if query.page_after else None
        )
        client = self._client()
        now_ms = epoch_ms(self._clock())
        floor_ms = self._floor_ms(client, account_id, now_ms, query.since)
        read = _Read(client, account_id, query, bound_to, position, now_ms, floor_ms)
        return self._ingested(read) if query.order == "ingested" else self._newest(read)

    def event(self, account_id: str, event_id: str) -> dict[str, Any] | None:
        """The event ``event_id`` of ``account_id`` within its retention, or None (also for
        a malformed id and another account's event: the answer never says which)."""
        try:
            parsed = uuid.UUID(event_id)
        except (ValueError, TypeError, AttributeError):
            return None
        client = self._client()
        floor_ms = self._floor_ms(client, account_id, epoch_ms(self._clock()), None)
        rows = client.query(
            sql.one_event(self._database),
            parameters={"account": account_id, "event_id": str(parsed), "floor_ms": floor_ms},
        ).result_rows
        return record(rows[0]) if rows else None

    def export(self, account_id: str, query: ExportQuery) -> ExportStream:
        """A stream of every event of ``query``, newest first, deduplicated, within
        retention; ``to`` pinned to now when not given. The query is sent now (its errors
        raise here); rows are read as the stream is iterated. Iterating to the end closes
        it; close() it when the client goes away before."""
        client = self._factory()
        now_ms = epoch_ms(self._clock())
        floor_ms = self._floor_ms(client, account_id, now_ms, query.since)
        ceil_ms = self._pinned_ms(query.until, now_ms)
        where = sql.conditions(account_id, floor_ms, ceil_ms, query.filters)
        if query.format == "ndjson":
            return self._raw_ndjson(client, where)
        return self._csv_lines(client, where)

    def _raw_ndjson(self, client: Client, where: sql.Where) -> ExportStream:
        """NDJSON made by ClickHouse, streamed as it comes (64 KiB reads)."""
        try:
            source: Any = client.raw_stream(  # an urllib3 response: read(), close()
                sql.export_ndjson(self._database, where), parameters=where.params, fmt="TSVRaw"
            )
        except BaseException:
            client.close()
            raise

        def read() -> Generator[Chunk]:
            while data := source.read(_EXPORT_READ_BYTES):
                yield raw_ndjson_chunk(data)

        def close() -> None:
            try:
                source.close()
            finally:
                client.close()

        return ExportStream(read(), "ndjson", close)

    def _csv_lines(self, client: Client, where: sql.Where) -> ExportStream:
        """CSV lines made by ClickHouse, a block at a time (a column of bytes per block:
        one value per record, whatever line breaks its cells hold)."""
        try:
            context = client.query_column_block_stream(
                sql.export_csv(self._database, where),
                parameters=where.params,
                settings=sql.CSV_SETTINGS,
                query_formats={"String": "bytes"},
            )
        except BaseException:
            client.close()
            raise

        def read() -> Generator[Chunk]:
            with context as stream:
                for block in stream:
                    yield csv_lines_chunk(block[0])

        blocks = read()

        def close() -> None:
            try:
                blocks.close()  # leaves the context if iteration had started
                context.__exit__(None, None, None)  # type: ignore[no-untyped-call]  # closes the response otherwise
            finally:
                client.close()

        return ExportStream(blocks, "csv", close)

    def close(self) -> None:
        """Closes the clients made so far (for shutdown)."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    # -- parts ----------------------------------------------------------------------------

    def _client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._factory()
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _floor_ms(
        self, client: Client, account_id: str, now_ms: int, since: datetime | None
    ) -> int:
        rows = client.query(
            sql.retention_days(self._database), parameters={"account": account_id}
        ).result_rows
        days = int(rows[0][0]) if rows else DEFAULT_RETENTION_DAYS
        floor = now_ms - days * 86_400_000
        return max(floor, epoch_ms(since)) if since is not None else floor

    @staticmethod
    def _pinned_ms(until: datetime | None, now_ms: int) -> int:
        return min(epoch_ms(until), now_ms + 1) if until is not None else now_ms + 1

    def _total(self, client: Client, where: sql.Where) -> int:
        return int(
            client.query(sql.count(self._database, where), parameters=where.params).result_rows[0][
                0
            ]
        )

    def _newest(self, r: _Read) -> Page:
        client, account_id, query = r.client, r.account_id, r.query
        bound_to, position, now_ms, floor_ms = r.bound_to, r.position, r.now_ms, r.floor_ms
        pinned = position.pinned_ms if position else self._pinned_ms(query.until, now_ms)
        where = sql.conditions(account_id, floor_ms, pinned, query.filters)
        if position is None:
            total = self._total(client, where)
        else:
            total = position.total  # counted once, at the first page (see module doc)
            sql.after_newest(where, position.key_ms, str(position.event_id))
        rows = client.query(
            sql.newest_page(self._database, where, query.page_size + 1),
            parameters=where.params,
            settings=sql.PAGE_SETTINGS,
        ).result_rows
        served = rows[: query.page_size]
        next_cursor = None
        if len(rows) > query.page_size:
            last = served[-1]
            next_cursor = cursor.encode(
                self._key,
                bound_to,
                cursor.Position(
                    "newest",
                    pinned,
                    total,
                    int(last[sql.OCCURRED_MS]),
                    uuid.UUID(last[sql.EVENT_ID]),
                ),
            )
        return Page([record(r) for r in served], total, next_cursor)

    def _ingested(self, r: _Read) -> Page:
        client, account_id, query = r.client, r.account_id, r.query
        bound_to, position, now_ms, floor_ms = r.bound_to, r.position, r.now_ms, r.floor_ms
        ceil_ms = epoch_ms(query.until) if query.until is not None else None
        total = self._total(client, sql.conditions(account_id, floor_ms, ceil_ms, query.filters))
        key_ms, key_id = (position.key_ms, position.event_id) if position else (0, _NIL)
        scan_floor = max(floor_ms, key_ms - self._max_age_ms) if position else floor_ms
        where = sql.conditions(account_id, scan_floor, ceil_ms, query.filters)
        sql.after_ingested(where, key_ms, str(key_id), now_ms - self._lag_ms, self._lag_ms)
        rows = client.query(
            sql.ingested_page(self._database, where, query.page_size),
            parameters=where.params,
            settings=sql.POLL_SETTINGS,
        ).result_rows
        data: list[dict[str, Any]] = []
        previous: tuple[int, str] | None = None
        for row in rows:
            here = (int(row[sql.INGESTED_MS]), str(row[sql.EVENT_ID]))
            latest = bool(row[-1])
            if latest and here != previous:
                data.append(record(row[:-1]))
            previous = here
        if rows:
            key_ms, key_id = int(rows[-1][sql.INGESTED_MS]), uuid.UUID(rows[-1][sql.EVENT_ID])
        next_cursor = cursor.encode(
            self._key, bound_to, cursor.Position("ingested", 0, 0, key_ms, key_id)
        )
        return Page(data, total, next_cursor)
