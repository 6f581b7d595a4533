"""Routing: a record of the events topic -> the lanes that take it. No I/O.

A record of the group's stream (:meth:`Router.route`) goes to the ``live`` lanes of its
tenant's destinations in its partition: the tenant is the record's key (a record without
one is nobody's); a lane is created on first use (:mod:`sinks.lane_registry`); destinations
waiting for ownership verification take nothing. A record from a lane's own reader
(:meth:`Router.offer_behind`) goes to that lane alone, if its key names the lane's tenant.

Offering a record to lanes (:meth:`Router.offer`) costs as little as the lanes need:

- a live lane skips records published before its destination existed;
- the headers (category, action) are read only if some lane filters on them, once;
- the value is decoded and encoded as the JSON line destinations receive only if some lane
  takes the record, once for all of them (:class:`sinks.transcode.EventTranscoder`);
- a record that does not decode, or that names two tenants (key, headers and body
  disagree: :func:`schemas.tenancy.tenant_disagreement`), is skipped by every lane and
  counted: the writer dead-letters it, no destination receives it.

An integrity record (header ``auditlog-record: integrity``: the account's log copy,
docs/integrity.md "Streamed copies") goes to every lane of the tenant whatever its
filters, as its value (checked strictly, never transcoded); ordinary events pay one
look at their headers for it.

A skipped record still moves an idle lane's position (:meth:`sinks.lane.Lane.skip`), so
the group's commit is not held back by records that are not for a destination.
"""

from __future__ import annotations

import logging

from confluent_kafka import Message

from integrity import copy_records
from schemas.headers import ACTION, CATEGORY, INTEGRITY_HEADER
from schemas.tenancy import header_tenants, tenant_disagreement
from schemas.wire import Decoder, WireError
from sinks.destinations.store import DestinationCatalog
from sinks.lane import Lane
from sinks.lane_registry import LaneRegistry
from sinks.metrics import SinkMetrics
from sinks.stats import SinkStats
from sinks.transcode import EventTranscoder

_LOG = logging.getLogger("auditlog.sink")


class Router:
    """See the module docstring. Used by the worker loop's thread only."""

    def __init__(
        self,
        catalog: DestinationCatalog,
        decoder: Decoder,
        metrics: SinkMetrics,
        stats: SinkStats,
    ) -> None:
        self._catalog = catalog
        self._transcoder = EventTranscoder(decoder)
        self._metrics = metrics
        self._stats = stats

    def route(self, message: Message, registry: LaneRegistry, now: float) -> None:
        """A record the group consumer handed out (without error): it moves the group's
        position in its partition, and goes to the live lanes of its tenant."""
        partition, offset = message.partition(), message.offset()
        if partition is None or offset is None:
            return
        part = registry.partitions.get(partition)
        if part is None:
            return
        part.position = offset + 1
        key = message.key()
        if not key:
            return
        destinations = self._catalog.for_tenant(key.decode(errors="replace"))
        if not destinations:
            return
        lanes = []
        known = part.lanes
        for destination in destinations:
            if destination.state == "pending_verification":
                continue
            lane = known.get((destination.id, partition, "live")) or registry.lane(
                destination, partition, part, "live", offset
            )
            if lane.mode == "live" and lane.wants(offset):
                lanes.append(lane)
        if lanes:
            self.offer(message, offset, lanes, now)

    def offer_behind(self, lane: Lane, message: Message, now: float) -> None:
        """A record read by ``lane``'s own reader."""
        offset = message.offset()
        if offset is None or not lane.wants(offset):
            return
        key = message.key()
        if not key or key.decode(errors="replace") != lane.destination.tenant_id:
            lane.skip(offset)
            return
        self.offer(message, offset, [lane], now)

    def offer(self, message: Message, offset: int, lanes: list[Lane], now: float) -> None:
        """Give one record to ``lanes`` (all of its tenant): filtered by headers, decoded
        once if any lane takes it."""
        _, timestamp_ms = message.timestamp()
        headers = message.headers()
        if headers and INTEGRITY_HEADER in headers:
            self._offer_copy(message, offset, lanes, timestamp_ms, now)
            return
        routing: tuple[str, str] | None = None  # category, action: read only when filtered
        line: bytes | None = None
        event_at_ms = 0
        for lane in lanes:
            if lane.stream == "live" and 0 < timestamp_ms < lane.created_ms:
                lane.skip(offset)  # published before the destination existed
                continue
            if lane.filtered:
                if routing is None:
                    named = dict(headers or ())
                    routing = (_text(named.get(CATEGORY)), _text(named.get(ACTION)))
                if not lane.filters.accepts(*routing):
                    lane.skip(offset)
                    continue
            if line is None:
                try:
                    line, event_at_ms, tenant = self._transcoder.to_json(message.value() or b"")
                except WireError as exc:
                    self._metrics.undecodable.inc()
                    _LOG.warning(
                        "undecodable record skipped (the writer dead-letters it)",
                        extra={"partition": lane.partition, "offset": offset, "error": str(exc)},
                    )
                    for other in lanes:
                        other.skip(offset)
                    return
                why = tenant_disagreement(message.key(), header_tenants(headers), tenant)
                if why is not None:
                    self._stats.tenant_mismatches += 1
                    self._metrics.tenant_mismatch.inc()
                    _LOG.warning(
                        "record naming two tenants skipped (the writer dead-letters it)",
                        extra={"partition": lane.partition, "offset": offset, "error": why},
                    )
                    for other in lanes:
                        other.skip(offset)
                    return
            lane.add(offset, line, event_at_ms, timestamp_ms, now)

    def _offer_copy(
        self, message: Message, offset: int, lanes: list[Lane], timestamp_ms: int, now: float
    ) -> None:
        """An integrity record (the account's streamed log copy): to every lane, filters or
        not, unless published before the destination existed; its value is the line, as it
        is. One that is not a well-formed record of the key's account (forged, or bytes
        that would break a destination's NDJSON) goes nowhere."""
        line = message.value() or b""
        try:
            record = copy_records.parse(line)
        except copy_records.CopyRecordError as exc:
            record, why = None, str(exc)
        else:
            why = "its tenant_id is not the record's key"
        key = message.key()
        if record is None or key is None or record.tenant_id.encode() != key:
            self._metrics.undecodable.inc()
            _LOG.warning(
                "malformed integrity record skipped",
                extra={"partition": lanes[0].partition, "offset": offset, "error": why},
            )
            for lane in lanes:
                lane.skip(offset)
            return
        for lane in lanes:
            if lane.stream == "live" and 0 < timestamp_ms < lane.created_ms:
                lane.skip(offset)
                continue
            lane.add_copy(offset, line, timestamp_ms, now)


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value
