"""Routing: a record of the events topic -> the lanes that take it. No I/O.

A record of the group's stream (:meth:`Router.route`) goes to the ``live`` lanes of its
tenant's destinations in its partition: the tenant is the record's key (a record without
one is nobody's); a lane is created on first use (:mod:`sinks.lane_registry`); destinations
waiting for ownership verification take nothing. A record from a lane's own reader
(:meth:`Router.offer_behind`) goes to that lane alone, if its key names the lane's tenant.

**Partner destinations** (docs/partners.md). A record also goes to the live lanes of the
partner destinations of the partner that managed its tenant at the record's publish time
(its Kafka timestamp: :meth:`sinks.membership.Membership.partner_at`), if the lane's
account lists (:attr:`sinks.batch_shape.BatchShape.accounts`) accept the tenant. While any
partner destination exists, a record whose time is not decided yet
(:meth:`~sinks.membership.Membership.decided`) is held with every later record of its
partition (:attr:`sinks.lane_registry.OwnedPartition.held`, in order, the partition's
``position`` staying before it so the group never commits past it) and routed by
:meth:`Router.release` once the membership is known as of its time. A lane's own reader
stops at such a record (:meth:`Router.offer_behind` returns False) and reads it again
later. The cost per record: a dict look-up of its tenant's partner (and of that partner's
destinations), and a timestamp comparison.

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
from typing import Any

from confluent_kafka import Message

from integrity import copy_records
from schemas.headers import ACTION, CATEGORY, INTEGRITY_HEADER, TENANT
from schemas.tenancy import header_tenants, tenant_disagreement
from schemas.wire import Decoder, WireError
from sinks.destinations.model import Destination
from sinks.destinations.store import DestinationCatalog
from sinks.lane import Lane
from sinks.lane_registry import LaneRegistry, OwnedPartition
from sinks.membership import Membership
from sinks.metrics import SinkMetrics
from sinks.stats import SinkStats
from sinks.transcode import EventTranscoder

_LOG = logging.getLogger("auditlog.sink")
_NONE: tuple[Destination, ...] = ()


class Router:
    """See the module docstring. Used by the worker loop's thread only."""

    def __init__(
        self,
        catalog: DestinationCatalog,
        decoder: Decoder,
        metrics: SinkMetrics,
        stats: SinkStats,
        membership: Membership | None = None,
    ) -> None:
        self._catalog = catalog
        self._transcoder = EventTranscoder(decoder)
        self._metrics = metrics
        self._stats = stats
        # Without a membership (no accounts topic followed), no account is any partner's
        # and nothing waits.
        self._membership = membership or Membership.nobody()

    def route(self, message: Message, registry: LaneRegistry, now: float) -> None:
        """A record the group consumer handed out (without error): routed now, or held
        behind earlier held records of its partition or until partner membership is known
        as of its time (see the module docstring)."""
        partition = message.partition()
        if partition is None:
            return
        part = registry.partitions.get(partition)
        if part is None:
            return
        if part.held or (
            self._catalog.has_partner_destinations
            and not self._membership.decided(message.timestamp()[1])
        ):
            part.held.append(message)  # in order, behind what is held already
            return
        self._route(message, partition, part, registry, now)

    def release(self, registry: LaneRegistry, now: float) -> int:
        """Route the held records whose time is decided now (all of them once no partner
        destination is left), oldest first per partition; returns how many."""
        released = 0
        decided = self._membership.decided
        everything = not self._catalog.has_partner_destinations
        for partition, part in list(registry.partitions.items()):
            held = part.held
            while held and (everything or decided(held[0].timestamp()[1])):
                self._route(held.popleft(), partition, part, registry, now)
                released += 1
        return released

    def _route(
        self,
        message: Message,
        partition: int,
        part: OwnedPartition,
        registry: LaneRegistry,
        now: float,
    ) -> None:
        """Move the group's position past ``message`` and give it to the live lanes of its
        tenant's destinations and of its partner's at its time."""
        offset = message.offset()
        if offset is None:
            return
        part.position = offset + 1
        key = message.key()
        if not key:
            return
        tenant = key.decode(errors="replace")
        destinations = self._catalog.for_tenant(tenant)
        partner_destinations = _NONE
        if self._catalog.has_partner_destinations:
            partner = self._membership.partner_at(tenant, message.timestamp()[1])
            if partner is not None:
                partner_destinations = self._catalog.for_partner(partner)
        if not destinations and not partner_destinations:
            return
        lanes = []
        known = part.lanes
        for destination in destinations + partner_destinations:
            if destination.state == "pending_verification":
                continue
            lane = known.get((destination.id, partition, "live")) or registry.lane(
                destination, partition, part, "live", offset
            )
            if destination.partner_id is not None and not lane.shape.accounts.accepts(tenant):
                continue
            if lane.mode == "live" and lane.wants(offset):
                lanes.append(lane)
        if lanes:
            self.offer(message, offset, lanes, now)

    def offer_behind(self, lane: Lane, message: Message, now: float) -> bool:
        """A record read by ``lane``'s own reader. False: the record's time is not decided
        yet for a partner destination; the reader must read it again later."""
        offset = message.offset()
        if offset is None or not lane.wants(offset):
            return True
        key = message.key()
        destination = lane.destination
        if not key:
            lane.skip(offset)
            return True
        tenant = key.decode(errors="replace")
        if destination.partner_id is None:
            if tenant != destination.tenant_id:
                lane.skip(offset)
                return True
        else:
            published_ms = message.timestamp()[1]
            if not self._membership.decided(published_ms):
                return False
            if not self.partner_takes(lane, tenant, published_ms):
                lane.skip(offset)
                return True
        self.offer(message, offset, [lane], now)
        return True

    def partner_takes(self, lane: Lane, tenant: str, published_ms: int) -> bool:
        """Whether a record of ``tenant`` published at ``published_ms`` is for ``lane``
        of a partner destination: managed by its partner then, accepted by the lane's
        account lists, and, for a replay of chosen accounts, one of them."""
        destination = lane.destination
        if self._membership.partner_at(tenant, published_ms) != destination.partner_id:
            return False
        if not lane.shape.accounts.accepts(tenant):
            return False
        replay = destination.replay
        return not (lane.stream == "replay" and replay is not None and replay.accounts) or (
            tenant in replay.accounts
        )

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
                why = _tenant_disagreement(message.key(), headers, tenant)
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


def _tenant_disagreement(key: bytes | None, headers: Any, tenant: str) -> str | None:
    """:func:`schemas.tenancy.tenant_disagreement` of the record's key, tenant headers
    (a consumer's: a list of (name, value) pairs, or None) and body ``tenant``, without
    building their list when they agree (every record)."""
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
