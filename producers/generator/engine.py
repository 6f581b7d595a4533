"""The event loop: starts scripts as sessions arrive and emits their events in time order.

A discrete-event simulation: a heap of scripts keyed by the time they are next due, and a
Poisson arrival process of new scripts whose rate follows the hour of the week. Memory is
bounded by the number of concurrently active scripts and the tenants' (capped) state, not
by how many events are generated.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from producers.generator.config import GeneratorConfig
from producers.generator.sessions import Script, new_script
from producers.generator.world import Event, TimestampFormatter, World
from schemas.catalog import Catalog, load_catalog

EMITTED_ACTIONS = frozenset(
    {
        "access_profile.api_key_regenerated",
        "access_profile.created",
        "access_profile.deleted",
        "access_profile.disabled",
        "access_profile.enabled",
        "access_profile.updated",
        "account.ip_allowlist_updated",
        "account.partner_assigned",
        "account.partner_removed",
        "account.ownership_transferred",
        "account.sso_disabled",
        "account.sso_enabled",
        "account.sso_updated",
        "account.two_factor_enforcement_changed",
        "account_property.created",
        "account_property.deleted",
        "account_property.updated",
        "api_client.created",
        "api_client.deleted",
        "api_client.updated",
        "api_collection.created",
        "api_collection.deleted",
        "api_collection.updated",
        "api_endpoint.created",
        "api_endpoint.deleted",
        "api_endpoint.disabled",
        "api_endpoint.enabled",
        "api_endpoint.updated",
        "audit_log.access_granted",
        "audit_log.access_revoked",
        "audit_log.add_on_disabled",
        "audit_log.add_on_enabled",
        "audit_log.exported",
        "audit_log.queried",
        "audit_log.retention_changed",
        "audit_log.viewed",
        "audit_stream.destination_added",
        "audit_stream.destination_auto_paused",
        "audit_stream.destination_paused",
        "audit_stream.destination_removed",
        "audit_stream.destination_replay_requested",
        "audit_stream.destination_resumed",
        "audit_stream.destination_tested",
        "audit_stream.destination_updated",
        "audit_stream.destination_verified",
        "connection.connect_failed",
        "connection.connected",
        "connection.created",
        "connection.deleted",
        "connection.disconnected",
        "connection.moved",
        "connection.renamed",
        "connection.updated",
        "custom_connector.created",
        "custom_connector.deleted",
        "custom_connector.released",
        "custom_connector.shared",
        "custom_connector.unshared",
        "custom_connector.updated",
        "deployment.approved",
        "deployment.created",
        "deployment.deployed",
        "deployment.failed",
        "deployment.rejected",
        "deployment.review_requested",
        "deployment.rolled_back",
        "export_manifest.created",
        "export_manifest.deleted",
        "export_manifest.updated",
        "folder.created",
        "folder.deleted",
        "folder.moved",
        "folder.renamed",
        "lookup_table.created",
        "lookup_table.deleted",
        "lookup_table.updated",
        "managed_account.added",
        "managed_account.removed",
        "member.invitation_accepted",
        "member.invitation_resent",
        "member.invitation_revoked",
        "member.invited",
        "member.left",
        "member.provisioned",
        "member.removed",
        "member.role_changed",
        "package.exported",
        "package.import_failed",
        "package.imported",
        "project.access_granted",
        "project.access_revoked",
        "project.created",
        "project.deleted",
        "project.renamed",
        "recipe.auto_stopped",
        "recipe.copied",
        "recipe.created",
        "recipe.deleted",
        "recipe.jobs_rerun",
        "recipe.moved",
        "recipe.renamed",
        "recipe.start_failed",
        "recipe.started",
        "recipe.stopped",
        "recipe.updated",
        "recipe.version_restored",
        "role.created",
        "role.deleted",
        "role.updated",
        "tag.assigned",
        "tag.created",
        "tag.deleted",
        "tag.unassigned",
        "user.access_token_created",
        "user.access_token_revoked",
        "user.email_changed",
        "user.locked",
        "user.login",
        "user.login_failed",
        "user.logout",
        "user.password_changed",
        "user.password_reset",
        "user.password_reset_requested",
        "user.profile_updated",
        "user.session_revoked",
        "user.two_factor_disabled",
        "user.two_factor_enabled",
        "user.two_factor_recovery_codes_regenerated",
        "user.unlocked",
    }
)
"""Every action the generator can emit; the catalog given to :func:`generate` must list them."""

EVENTS_PER_SCRIPT = 7.2
"""The measured mean number of events per script, which turns the event spacing asked for
(``mean_gap_ms``) into the mean spacing of script arrivals."""

_HOUR_MS = 3_600_000
_WEEKDAY_HOURS = (
    0.25, 0.2, 0.2, 0.2, 0.25, 0.35, 0.6, 1.0, 1.5, 1.8, 1.9, 1.8,
    1.6, 1.8, 1.9, 1.8, 1.5, 1.1, 0.8, 0.6, 0.5, 0.4, 0.35, 0.3,
)  # fmt: skip
_WEEK = _WEEKDAY_HOURS * 5 + tuple(0.3 * h + 0.1 for h in _WEEKDAY_HOURS) * 2
_ACTIVITY = tuple(h * len(_WEEK) / sum(_WEEK) for h in _WEEK)
"""Relative arrival rate per hour of the week (Monday 00:00 UTC first), mean 1."""


def activity_factor(ms: int) -> float:
    """How busy the platform is at ``ms`` (UTC) relative to the weekly average."""
    return _ACTIVITY[(ms // _HOUR_MS + 72) % 168]  # the epoch was a Thursday


def uuid4_string(bits: int) -> str:
    """The UUID version 4 made of 128 random ``bits`` (as ``uuid.UUID(int=bits, version=4)``)."""
    bits = (bits & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generate(config: GeneratorConfig, catalog: Catalog | None = None) -> Iterator[Event]:
    """Exactly ``config.events`` synthetic audit events, lazily, in time order.

    Each event is a fresh JSON-serialisable dict in the NDJSON input shape. Timestamps never
    decrease (across all tenants, hence per tenant), starting at ``config.start``. The
    output is a pure function of ``config`` and ``catalog`` (default: the bundled one).
    Raises ``ValueError`` here, before any event, when the catalog lacks an action the
    generator emits.
    """
    world = World(config, catalog if catalog is not None else load_catalog(), EMITTED_ACTIONS)
    return _run(world, config)


def _run(world: World, config: GeneratorConfig) -> Iterator[Event]:
    rng = world.rng
    getrandbits = rng.getrandbits
    stamp = TimestampFormatter()
    heap: list[tuple[int, int, Script]] = []
    sequence = 0
    arrival = config.start_ms
    arrival_scale = config.mean_gap_ms * EVENTS_PER_SCRIPT
    remaining = config.events
    while remaining > 0:
        if heap and heap[0][0] <= arrival:
            due, _, script = heap[0]
            world.now_ms = due
            try:
                event, delay_ms = next(script)
            except StopIteration:
                heapq.heappop(heap)
                continue
            heapq.heapreplace(heap, (due + delay_ms, sequence, script))
            sequence += 1
            if event is None:
                continue
            event["event_id"] = uuid4_string(getrandbits(128))
            event["occurred_at"] = stamp(due)
            event["request"]["request_id"] = f"req_{getrandbits(80):020x}"
            remaining -= 1
            yield event
        else:
            world.now_ms = arrival
            heapq.heappush(heap, (arrival, sequence, new_script(world)))
            sequence += 1
            busy = activity_factor(arrival) if config.diurnal else 1.0
            gap = rng.expovariate(1.0) * arrival_scale / busy
            arrival += int(gap)
