"""Partner destinations against the real broker and the S3-compatible server: accounts
move between two partners while events flow, and each partner's bucket prefix holds exactly
the events of the accounts it managed when each event was published, each account under its
own prefix (docs/partners.md)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from accounts.changes import next_record
from auditlog import wiring
from auditlog.settings import AuditlogSettings
from deploy.stack.endpoints import StackEndpoints
from sinks.destinations.model import AccountSelection, Destination
from sinks.destinations.replay import find_replay_offsets
from tests.stack.sink_support import (
    drop_topics,
    new_bucket,
    publish,
    put_destinations,
    running_worker,
    s3_destination,
    s3_objects,
    sink_settings,
    tenant_events,
    update_destination,
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.slow]

WAIT_S = 90.0
PER_PHASE = 25
ACCOUNTS = ("a1", "a2", "a3", "a4", "d1")  # d1: a direct customer, nobody's


@pytest.fixture
def partner_sink(stack_endpoints: StackEndpoints) -> Iterator[AuditlogSettings]:
    """Sink settings with an accounts topic of the test's own (dropped after)."""
    accounts_topic = f"test.sink.accounts.{uuid.uuid4().hex[:10]}"
    settings = sink_settings(
        stack_endpoints, accounts_topic=accounts_topic, sink_partner_grace_s=1.0
    )
    admin = AdminClient(wiring.kafka_connection(settings).properties())
    topic = NewTopic(accounts_topic, 1, config={"cleanup.policy": "compact"})
    for future in admin.create_topics([topic]).values():
        future.result(timeout=30)

    def known() -> bool:
        found = admin.list_topics(timeout=5).topics.get(accounts_topic)
        return found is not None and found.error is None and bool(found.partitions)

    wait_until(known, 30, f"topic {accounts_topic} in the metadata")
    yield settings
    drop_topics(settings)
    for future in admin.delete_topics([accounts_topic]).values():
        future.result(timeout=30)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _next_millisecond(after_ms: int) -> None:
    """Return once the wall clock is past ``after_ms`` (at most a millisecond of spinning):
    what was published before has an earlier timestamp than what comes after."""
    while _now_ms() <= after_ms:
        pass


def _manage(settings: AuditlogSettings, moves: dict[str, str | None]) -> None:
    """Write each account's managing partner as ``auditlog accounts`` does, strictly after
    every event published so far and strictly before every event published next."""
    _next_millisecond(_now_ms())
    store = wiring.account_store(settings)
    stamped = 0
    try:
        for account, partner in moves.items():
            current = store.get(account)
            now = datetime.now(UTC)
            stamped = max(stamped, int(now.timestamp() * 1000))
            record = next_record(
                current, account, updated_at=now, updated_by="test", partner_id=partner
            )
            assert record is not None
            store.put(record, expected_revision=current.revision if current else 0)
    finally:
        store.close()
    _next_millisecond(stamped)


def _partner_destination(partner: str, bucket: str, endpoint: str, **fields: Any) -> Destination:
    made = s3_destination(partner, bucket, endpoint, max_age_s=0.5)
    return Destination.model_validate(
        {**made.model_dump(), "tenant_id": None, "partner_id": partner, **fields}
    )


def test_accounts_moving_between_partners_reach_exactly_their_partner_of_the_time(
    partner_sink: AuditlogSettings, stack_endpoints: StackEndpoints, monkeypatch: Any
) -> None:
    settings = partner_sink
    _manage(settings, {"a1": "p1", "a2": "p1", "a3": "p2", "a4": "p2"})
    bucket = new_bucket(stack_endpoints)
    p1 = _partner_destination("p1", bucket, stack_endpoints.s3_endpoint)
    p2 = _partner_destination(
        "p2",
        bucket,
        stack_endpoints.s3_endpoint,
        accounts=AccountSelection(exclude_accounts=frozenset({"a4"})),
    )
    put_destinations(settings, p1, p2)
    expected: dict[str, set[str]] = {p1.id: set(), p2.id: set()}
    accounts_of: dict[str, str] = {}

    def phase(managed: dict[str, str | None]) -> None:
        for account in ACCOUNTS:
            ids = publish(settings, tenant_events(account, PER_PHASE))
            accounts_of.update(dict.fromkeys(ids, account))
            partner = managed.get(account)
            if partner == "p1":
                expected[p1.id].update(ids)
            elif partner == "p2" and account != "a4":
                expected[p2.id].update(ids)

    with running_worker(settings, monkeypatch, stack_endpoints):
        phase({"a1": "p1", "a2": "p1", "a3": "p2", "a4": "p2"})
        _manage(settings, {"a2": "p2", "a3": None})
        phase({"a1": "p1", "a2": "p2", "a4": "p2"})
        _manage(settings, {"a3": "p1", "a4": "p1"})
        phase({"a1": "p1", "a2": "p2", "a3": "p1", "a4": "p1"})
        total = len(expected[p1.id]) + len(expected[p2.id])
        wait_until(
            lambda: sum(len(v) for v in s3_objects(stack_endpoints, bucket).values()) >= total,
            WAIT_S,
            f"{total} events in s3://{bucket}",
        )
        objects = s3_objects(stack_endpoints, bucket)
    received: dict[str, list[str]] = {p1.id: [], p2.id: []}
    for key, events in objects.items():
        if "/ownership" in key or key.endswith(".txt"):
            continue
        prefix, destination_id, account = key.split("/")[1:4]
        assert prefix in ("p1", "p2")
        assert destination_id == (p1.id if prefix == "p1" else p2.id)
        for event in events:
            assert event["tenant_id"] == account, key  # each account under its own prefix
            received[destination_id].append(event["event_id"])
    for destination_id, ids in received.items():
        assert len(ids) == len(set(ids)), "an event was delivered twice"
        foreign = sorted(set(ids) - expected[destination_id])
        assert set(ids) == expected[destination_id], (
            f"{destination_id}: missing {sorted(expected[destination_id] - set(ids))[:5]}, "
            f"foreign (accounts) {[accounts_of.get(i) for i in foreign][:5]}"
        )


def test_replay_of_one_account_that_joined_sends_only_what_it_published_while_managed(
    partner_sink: AuditlogSettings, stack_endpoints: StackEndpoints, monkeypatch: Any
) -> None:
    """a2 publishes, then joins p1 and publishes more; p1's destination is added only then
    (its live lane skips what came before it); ``replay --account a2`` re-sends a2's events
    since it joined, never those of before, nor a1's."""
    settings = partner_sink
    began = datetime.now(UTC)
    _manage(settings, {"a1": "p1"})
    before_join = set(publish(settings, tenant_events("a2", PER_PHASE)))
    _manage(settings, {"a2": "p1"})
    joined = set(publish(settings, tenant_events("a2", PER_PHASE)))
    bucket = new_bucket(stack_endpoints)
    p1 = _partner_destination("p1", bucket, stack_endpoints.s3_endpoint)
    put_destinations(settings, p1)
    _next_millisecond(int(p1.created_at.timestamp() * 1000))
    live_a2 = set(publish(settings, tenant_events("a2", PER_PHASE)))
    live_a1 = set(publish(settings, tenant_events("a1", PER_PHASE)))
    start = find_replay_offsets(wiring.kafka_connection(settings), settings.events_topic, began)
    request = start.request().model_copy(update={"accounts": frozenset({"a2"})})
    with running_worker(settings, monkeypatch, stack_endpoints):
        wait_until(
            lambda: _ids_in(stack_endpoints, bucket, replay=False) >= live_a1 | live_a2,
            WAIT_S,
            "the live events of p1's accounts",
        )
        update_destination(settings, p1.id, replay=request)
        wait_until(
            lambda: _ids_in(stack_endpoints, bucket, replay=True) >= joined | live_a2,
            WAIT_S,
            "the replayed events of a2",
        )
    assert _ids_in(stack_endpoints, bucket, replay=False) == live_a1 | live_a2
    assert _ids_in(stack_endpoints, bucket, replay=True) == joined | live_a2
    everything = _ids_in(stack_endpoints, bucket, replay=False)
    assert not (everything | _ids_in(stack_endpoints, bucket, replay=True)) & before_join


def _ids_in(stack: StackEndpoints, bucket: str, *, replay: bool) -> set[str]:
    """The event ids in the bucket's objects of the live stream, or of replays."""
    found: set[str] = set()
    for key, events in s3_objects(stack, bucket).items():
        if key.endswith(".txt") or ("_replay-" in key) != replay:
            continue
        found.update(event["event_id"] for event in events)
    return found
