"""Partner destinations: which records reach them (:mod:`sinks.routing` with
:mod:`sinks.membership`).

The property: whatever the interleaving of partner changes, reads of the accounts topic and
events, and whatever filters and account lists, a partner destination receives exactly the
events of the accounts its partner managed at each event's publish time that its lists and
filters accept; never one of an account its partner did not manage then. The world is
simulated on one clock: a change is stamped ``since`` up to the grace before it becomes
visible (its write), an event is published at its timestamp and reaches the worker later,
the worker reads the accounts topic now and then.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from unittest.mock import patch

from confluent_kafka import TIMESTAMP_CREATE_TIME, Message
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from accounts.record import AccountRecord, PartnerSpan
from runtime.compacted_table import Change
from schemas.headers import ACTION, CATEGORY
from schemas.validation import EventValidator
from schemas.wire import Decoder, SingleObjectEncoder
from sinks.destinations.model import (
    ALL_ACCOUNTS,
    AccountSelection,
    Destination,
    Filters,
    SecretValue,
    WebhookTarget,
)
from sinks.destinations.store import DestinationCatalog
from sinks.lane import NO_FILTERS, Lane
from sinks.lane_registry import LaneRegistry
from sinks.membership import Membership
from sinks.metrics import sink_metrics
from sinks.progress import ProgressStore
from sinks.routing import Router
from sinks.stats import SinkStats
from tests.events import valid_event

ACCOUNTS = ("a1", "a2", "a3", "p1")  # p1 is a partner and an account of its own
PARTNERS = ("p1", "p2")
ACTIONS = (("recipe", "recipe.stopped"), ("recipe", "recipe.started"))
GRACE_MS = 2_000
T0 = 1_790_000_000_000  # 2026-09-21, after every destination was created
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
_VALIDATOR = EventValidator()
_ENCODED: dict[tuple[str, str], bytes] = {}


def _value(account: str, action: str) -> bytes:
    found = _ENCODED.get((account, action))
    if found is None:
        event = valid_event(tenant_id=account, action=action)
        found = SingleObjectEncoder().encode(_VALIDATOR.validate(event).to_avro())
        _ENCODED[(account, action)] = found
    return found


class _Table:
    """A table read once (the catalog, the progress)."""

    def __init__(self, records: dict[bytes, bytes]) -> None:
        self._records = records

    def load(self, timeout_s: float = 0.0) -> dict[bytes, bytes]:
        return dict(self._records)

    def changes(self, timeout_s: float = 0.0) -> list[Change]:
        return []

    def read_to_end(self, apply: object, *, timeout_s: float = 0.0) -> None:
        return None

    def close(self) -> None:
        return None


class _Writer:
    def put(self, key: bytes, value: bytes | None) -> None:
        return None

    def flush(self, timeout_s: float = 0.0) -> None:
        return None

    def close(self, timeout_s: float = 0.0) -> None:
        return None


def _destination(
    destination_id: str,
    *,
    partner: str | None = None,
    tenant: str | None = None,
    accounts: AccountSelection = ALL_ACCOUNTS,
    filters: Filters = NO_FILTERS,
) -> Destination:
    return Destination.model_validate(
        {
            "id": destination_id,
            "tenant_id": tenant,
            "partner_id": partner,
            "target": WebhookTarget(
                url="https://hooks.example.com/x", signing_secret=SecretValue(ref="env:HOOK")
            ),
            "accounts": accounts,
            "filters": filters,
            "batch": {"max_records": 1_000_000},
            "created_at": CREATED,
            "updated_at": CREATED,
        }
    )


def _catalog(destinations: list[Destination]) -> DestinationCatalog:
    catalog = DestinationCatalog(
        _Table({d.id.encode(): d.model_dump_json().encode() for d in destinations})
    )
    catalog.load()
    return catalog


def _router(catalog: DestinationCatalog, membership: Membership) -> tuple[Router, LaneRegistry]:
    metrics = sink_metrics(CollectorRegistry())
    stats = SinkStats()
    progress = ProgressStore(_Table({}), _Writer())
    registry = LaneRegistry(
        catalog=catalog,
        progress=progress,
        metrics=metrics,
        stats=stats,
        stop_reading=lambda key: None,
        clock=lambda: 0.0,
        wall_clock=lambda: datetime.now(UTC),
    )
    registry.assign(0, 0)
    return Router(catalog, Decoder(), metrics, stats, membership), registry


def _message(offset: int, account: str, action: tuple[str, str], published_ms: int) -> Message:
    return Message(
        topic="events",
        partition=0,
        offset=offset,
        key=account.encode(),
        value=_value(account, action[1]),
        headers=[(CATEGORY, action[0].encode()), (ACTION, action[1].encode())],
        error=None,
        timestamp=(TIMESTAMP_CREATE_TIME, published_ms),
    )


@dataclass(frozen=True)
class _Move:
    account: str
    partner: str | None
    write_ms: int  # how long the write took: ``since`` is that much before it is visible


@dataclass(frozen=True)
class _Event:
    account: str
    action: tuple[str, str]
    late_ms: int  # how long after its publish time it reaches the worker


@dataclass(frozen=True)
class _Read:
    pass


_steps = st.lists(
    st.tuples(
        st.integers(0, 1_500),  # time passing before the step
        st.one_of(
            st.builds(
                _Move,
                st.sampled_from(ACCOUNTS[:3]),
                st.sampled_from((*PARTNERS, None)),
                st.integers(0, GRACE_MS),
            ),
            st.builds(
                _Event, st.sampled_from(ACCOUNTS), st.sampled_from(ACTIONS), st.integers(0, 800)
            ),
            st.just(_Read()),
        ),
    ),
    max_size=60,
)
_selections = st.builds(
    AccountSelection,
    include_accounts=st.frozensets(st.sampled_from(ACCOUNTS), max_size=2),
    exclude_accounts=st.frozensets(st.sampled_from(ACCOUNTS), max_size=2),
)
_filters = st.sampled_from(
    (
        Filters(),
        Filters(include_actions=frozenset({"recipe.started"})),
        Filters(exclude_categories=frozenset({"recipe"})),
    )
)


class _World:
    """The truth: every change as it was stamped and when it became visible."""

    def __init__(self) -> None:
        self.changes: list[tuple[int, int, str, str | None]] = []  # visible, since, acc, p

    def partner_at(self, account: str, t_ms: int) -> str | None:
        partner = None
        latest = -1
        for _visible, since, changed, to in self.changes:
            if changed == account and since <= t_ms and since >= latest:
                partner, latest = to, since
        return partner

    def records(self, now_ms: int) -> dict[str, AccountRecord]:
        """The accounts topic as a reader sees it at ``now_ms``."""
        found: dict[str, AccountRecord] = {}
        for visible, since, account, partner in self.changes:
            if visible > now_ms:
                continue
            at = datetime.fromtimestamp(since / 1000, UTC)
            before = found.get(account)
            if before is None:
                found[account] = AccountRecord(
                    account_id=account,
                    partner_id=partner,
                    revision=1,
                    updated_at=at,
                    updated_by="test",
                    partner_history=(PartnerSpan(partner_id=partner, since=at),),
                )
            else:
                found[account] = before.changed(
                    audit_log_add_on=None, partner_id=partner, updated_at=at, updated_by="test"
                )
        return found


def _simulate(
    steps: list[tuple[int, _Move | _Event | _Read]], destinations: list[Destination]
) -> tuple[set[tuple[str, int]], set[tuple[str, int]], Membership]:
    """Run the world; returns (received, expected) as (destination id, offset) pairs."""
    world = _World()
    membership = Membership(grace_ms=GRACE_MS)
    router, registry = _router(_catalog(destinations), membership)
    received: list[tuple[str, int]] = []
    original = Lane.add

    def spy(lane: Lane, offset: int, *rest: object) -> None:
        received.append((lane.destination.id, offset))
        original(lane, offset, *rest)  # type: ignore[arg-type]

    events: list[tuple[int, str, tuple[str, str], int]] = []
    last_since: dict[str, int] = {}
    now = T0
    with patch.object(Lane, "add", spy):
        for passing, step in steps:
            now += passing
            if isinstance(step, _Move):
                since = max(now - step.write_ms, last_since.get(step.account, 0))
                last_since[step.account] = since
                world.changes.append((now, since, step.account, step.partner))
            elif isinstance(step, _Read):
                membership.install(world.records(now), read_at_ms=now)
            else:
                offset = len(events)
                published = now - step.late_ms
                events.append((offset, step.account, step.action, published))
                router.route(_message(offset, step.account, step.action, published), registry, 0)
            router.release(registry, 0.0)
        now += 10 * GRACE_MS
        membership.install(world.records(now), read_at_ms=now)
        router.release(registry, 0.0)
    assert len(received) == len(set(received)), "a record was offered to a lane twice"
    expected: set[tuple[str, int]] = set()
    for offset, account, (category, action), published in events:
        for destination in destinations:
            if not destination.filters.accepts(category, action):
                continue
            if destination.partner_id is None:
                owner = destination.tenant_id == account
            else:
                owner = world.partner_at(account, published) == destination.partner_id
                owner = owner and destination.accounts.accepts(account)
            if owner:
                expected.add((destination.id, offset))
    return set(received), expected, membership


@settings(max_examples=150, deadline=None)
@given(_steps, _selections, _selections, _filters, _filters)
def test_a_partner_destination_gets_exactly_its_accounts_events_at_publish_time(
    steps: list[tuple[int, _Move | _Event | _Read]],
    p1_accounts: AccountSelection,
    p2_accounts: AccountSelection,
    p1_filters: Filters,
    p2_filters: Filters,
) -> None:
    destinations = [
        _destination("p1-all", partner="p1", accounts=p1_accounts, filters=p1_filters),
        _destination("p1-plain", partner="p1"),
        _destination("p2-all", partner="p2", accounts=p2_accounts, filters=p2_filters),
        _destination("p1-own", tenant="p1"),
    ]
    received, expected, membership = _simulate(steps, destinations)
    assert received == expected
    assert membership.late_changes == 0


def test_a_record_waits_until_membership_is_known_as_of_its_time() -> None:
    membership = Membership(grace_ms=GRACE_MS)
    router, registry = _router(_catalog([_destination("p1-all", partner="p1")]), membership)
    record = AccountRecord(
        account_id="a1",
        partner_id="p1",
        revision=1,
        updated_at=datetime.fromtimestamp(T0 / 1000, UTC),
        updated_by="test",
    )
    membership.install({"a1": record}, read_at_ms=T0 + 1_000)
    router.route(_message(0, "a1", ACTIONS[0], T0 + 500), registry, 0.0)
    part = registry.partitions[0]
    assert len(part.held) == 1
    assert part.position == 0
    router.route(_message(1, "a2", ACTIONS[0], T0), registry, 0.0)
    assert len(part.held) == 2  # behind the held one, in order
    membership.advance(T0 + 500 + GRACE_MS + 1)
    assert router.release(registry, 0.0) == 2
    assert part.position == 2
    assert not part.held


def test_without_partner_destinations_nothing_waits() -> None:
    membership = Membership(grace_ms=GRACE_MS)  # never read: nothing decided
    router, registry = _router(_catalog([_destination("a1-own", tenant="a1")]), membership)
    router.route(_message(0, "a1", ACTIONS[0], T0), registry, 0.0)
    assert registry.partitions[0].position == 1


@settings(max_examples=100, deadline=None)
@given(_steps, _selections)
def test_a_lane_behind_takes_what_the_group_would_and_stops_at_undecided_records(
    steps: list[tuple[int, _Move | _Event | _Read]], accounts: AccountSelection
) -> None:
    """offer_behind (parked lanes, replays): the same decision; False until decided."""
    world = _World()
    membership = Membership(grace_ms=GRACE_MS)
    destination = _destination("p1-all", partner="p1", accounts=accounts)
    router, _registry = _router(_catalog([destination]), membership)
    last_since: dict[str, int] = {}
    now = T0
    pending: list[tuple[Message, int]] = []
    for passing, step in steps:
        now += passing
        if isinstance(step, _Move):
            since = max(now - step.write_ms, last_since.get(step.account, 0))
            last_since[step.account] = since
            world.changes.append((now, since, step.account, step.partner))
        elif isinstance(step, _Read):
            membership.install(world.records(now), read_at_ms=now)
        else:
            published = now - step.late_ms
            pending.append(
                (_message(len(pending), step.account, step.action, published), published)
            )
    lane = Lane(destination, 0, done_until=0, mode="catchup")
    decided_until = membership.decided_until_ms
    taken: list[int] = []
    original = Lane.add

    def spy(lane: Lane, offset: int, *rest: object) -> None:
        taken.append(offset)
        original(lane, offset, *rest)  # type: ignore[arg-type]

    expected: list[int] = []
    with patch.object(Lane, "add", spy):
        for message, published in pending:
            account = (message.key() or b"").decode()
            offset = message.offset() or 0
            took = router.offer_behind(lane, message, 0.0)
            if published > decided_until:
                assert not took  # read again later
                assert lane.offered_until == (expected[-1] + 1 if expected else lane.offered_until)
                break
            assert took
            if world.partner_at(account, published) == "p1" and accounts.accepts(account):
                expected.append(offset)
    assert taken == expected


def _spans(*spans: tuple[str | None, int]) -> Iterator[PartnerSpan]:
    for partner, at_ms in spans:
        yield PartnerSpan(partner_id=partner, since=datetime.fromtimestamp(at_ms / 1000, UTC))


def test_partner_at_reads_the_history_of_older_records() -> None:
    membership = Membership(grace_ms=0)
    record = AccountRecord(
        account_id="a1",
        partner_id="p2",
        revision=3,
        updated_at=datetime.fromtimestamp((T0 + 2_000) / 1000, UTC),
        updated_by="test",
        partner_history=tuple(_spans(("p1", T0), (None, T0 + 1_000), ("p2", T0 + 2_000))),
    )
    membership.install({"a1": record}, read_at_ms=T0 + 5_000)
    assert membership.partner_at("a1", T0 - 1) is None  # before the history: nobody
    assert membership.partner_at("a1", T0) == "p1"
    assert membership.partner_at("a1", T0 + 999) == "p1"
    assert membership.partner_at("a1", T0 + 1_000) is None
    assert membership.partner_at("a1", T0 + 2_000) == "p2"
    assert membership.partner_at("a2", T0 + 2_000) is None


def test_a_change_older_than_what_was_decided_is_counted() -> None:
    membership = Membership(grace_ms=0)
    membership.install({}, read_at_ms=T0 + 10_000)
    record = AccountRecord(
        account_id="a1",
        partner_id="p1",
        revision=1,
        updated_at=datetime.fromtimestamp(T0 / 1000, UTC),
        updated_by="test",
    )
    membership.install({"a1": record}, read_at_ms=T0 + 20_000)
    assert membership.late_changes == 1
