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

A skipped record still moves an idle lane's position (:meth:`sinks.lane.Lane.skip`), so
the group's commit is not held back by records that are not for a destination.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Message

from schemas.headers import ACTION, CATEGORY, TENANT
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
        routing: tuple[str, str] | None = None  # category, action: read only when filtered
        line: bytes | None = None
        event_at_ms = 0
        for lane in lanes:
            if lane.stream == "live" and 0 < timestamp_ms < lane.created_ms:
                lane.skip(offset)  # published before the destination existed
                continue
            if lane.filtered:
                if routing is None:
                    headers = dict(message.headers() or ())
                    routing = (_text(headers.get(CATEGORY)), _text(headers.get(ACTION)))
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
                why = _tenant_disagreement(message, tenant)
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


def _tenant_disagreement(message: Message, tenant: str) -> str | None:
    """:func:`schemas.tenancy.tenant_disagreement` of the record's key, tenant headers
    and body ``tenant``, without building their list when they agree (every record)."""
    key = message.key()
    headers: Any = message.headers()  # a consumer's: a list of (name, value) pairs, or None
    if key is not None and key == tenant.encode():
        for name, value in headers or ():
            if name == TENANT and value != key:
                break
        else:
            return None
    return tenant_disagreement(key, header_tenants(headers), tenant)


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value
