"""The sink worker stopped exactly at each crash point of the sinks (rows S1 to S10 of the
crash table in ``docs/exactly-once.md``), then the next owner of the partition started:
nothing is lost, and what is delivered twice is delivered under the same key with the same
bytes.

Kafka is the in-memory fake broker (:mod:`tests.fakes.kafka_broker`), the progress and
destinations topics are in-memory tables, the clock is the test's; the destinations are
real: the stack's S3 server (MinIO) and a local webhook receiver. The worker runs turn by
turn and the crash is an injected :class:`~tests.fakes.crash.SimulatedCrash` raised after
the process was marked dead, so it lands exactly where the row says (see
:mod:`tests.stack.crash_points.sink_crash_support`). Both destinations belong to one tenant
and see the same events (offsets 0 to 5) in batches of three; the S3 lane comes first in
every turn (lanes go by destination id). Before the next owner starts, both destinations
lower their batch size to two: a batch formed again from scratch would differ from the one
announced before the crash, and show up under other keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest

from deploy.stack.endpoints import StackEndpoints
from sinks.destinations.model import BatchLimits, Destination, ReplayRequest
from sinks.progress import LaneProgress
from sinks.signing import idempotency_key
from tests.stack.crash_points.sink_crash_support import (
    GROUP,
    TENANT,
    TOPIC,
    Delivered,
    SinkRun,
    ThreadedExecutor,
    World,
    assert_exactly_once,
    assert_s3_exactly_once,
    send_of,
    world,
)
from tests.unit.http_receiver import Reply

pytestmark = [pytest.mark.stack]

Target = Literal["s3", "webhook"]
BATCH = 3
SMALLER = 2  # the batch size after the crash
MAX_TURNS = 60
Ranges = set[tuple[int, int]]


@pytest.fixture
def w(stack_endpoints: StackEndpoints, monkeypatch: Any) -> Iterator[World]:
    with world(stack_endpoints, monkeypatch, f"crash-{uuid.uuid4().hex[:12]}") as made:
        yield made


# -- helpers -------------------------------------------------------------------------------


def _smaller_batches(w: World, *destinations: Destination) -> list[Destination]:
    """The destinations changed to batches of :data:`SMALLER` records (stored)."""
    return [
        w.change(destination, batch=BatchLimits(max_records=SMALLER, max_age_s=5.0))
        for destination in destinations
    ]


def _cuts(first: int, end: int, size: int = SMALLER) -> Ranges:
    return {(at, min(at + size, end) - 1) for at in range(first, end, size)}


def _announced(w: World, destination: Destination, stream: str = "live") -> tuple[int, int] | None:
    """The batch announced in the destination's progress record now (None: none)."""
    for record in w.progress.progress():
        if (
            record.destination_id == destination.id
            and record.stream == stream
            and record.announced_first is not None
            and record.announced_last is not None
        ):
            return record.announced_first, record.announced_last
    return None


def _re_formed(announced: tuple[int, int] | None, first: int, end: int) -> Ranges:
    """What the next owner delivers from ``first`` on: the announced batch as it was
    announced, then batches of the new size."""
    if announced is None:
        return _cuts(first, end)
    return {announced} | _cuts(announced[1] + 1, end)


def _key(destination: Destination, first: int, last: int) -> str:
    return idempotency_key(TENANT, destination.id, topic=TOPIC, partition=0, first=first, last=last)


def _ranges(w: World, batches: list[Delivered]) -> Ranges:
    return {w.range_of(batch.event_ids) for batch in batches}


def _run_until(w: World, run: SinkRun, done: Callable[[], bool], what: str) -> None:
    """Turns of ``run``, the clock one second further before each (batch ages, retries and
    checkpoints come due), until ``done``."""
    for _ in range(MAX_TURNS):
        if done():
            return
        w.clock.advance(1.0)
        run.turn()
    assert done(), f"not after {MAX_TURNS} turns: {what}"


def _everything_delivered(w: World, ids: list[str], since: int = 0) -> Callable[[], bool]:
    """Every event at both destinations (webhook requests from the ``since``-th on), and the
    group committed past all of them."""

    def done() -> bool:
        hooked = {i for batch in w.webhook_batches(since) for i in batch.event_ids}
        stored = set(w.s3_event_ids())
        return set(ids) <= hooked and set(ids) <= stored and w.committed() == len(w.offsets)

    return done


def _next_owner(w: World, ids: list[str], since: int = 0) -> SinkRun:
    """Start the next owner and run it until every event is delivered and committed."""
    run = SinkRun(w, "next").start()
    _run_until(w, run, _everything_delivered(w, ids, since), "every event delivered and committed")
    run.stop()
    return run


def _announces(value: bytes | None) -> bool:
    return value is not None and LaneProgress.from_json(value).announced_first is not None


def _delivered_record_of(destination: Destination) -> Callable[[bytes | None], bool]:
    def matches(value: bytes | None) -> bool:
        if value is None:
            return False
        record = LaneProgress.from_json(value)
        return record.destination_id == destination.id and record.delivered_batches > 0

    return matches


# -- S1 to S4: one batch, from its announcement to its delivery -------------------------


def test_s1_before_the_announcement_nothing_is_sent(w: World) -> None:
    """S1: the process dies as it is about to announce its first batch (the S3 lane's).
    Nothing was sent and nothing announced: the next owner forms every batch from scratch,
    with the destinations as they are now, and delivers each event once."""
    s3_destination, hook = w.s3(BATCH), w.webhook(BATCH)
    ids = w.publish(6)
    first = SinkRun(w, "first").start()
    first.crash_on_progress(_announces)
    first.turn()
    assert first.crashed
    assert (w.s3_objects(), w.receiver.requests) == ({}, []), "nothing sent unannounced"
    _smaller_batches(w, s3_destination, hook)
    _next_owner(w, ids)
    assert set(w.s3_ranges()) == _cuts(0, 6)
    assert _ranges(w, w.webhook_batches()) == _cuts(0, 6)
    assert_s3_exactly_once(w, ids)
    assert_exactly_once(w.webhook_batches(), ids)


def _crash_in_the_first_turn(
    w: World, target: Target, when: Literal["before", "after"]
) -> tuple[Destination, Destination, dict[str, tuple[int, int] | None]]:
    """Both destinations, six events, and the first worker crashing at the first send to
    ``target``; returns what each destination has announced then."""
    s3_destination, hook = w.s3(BATCH), w.webhook(BATCH)
    crashing = s3_destination if target == "s3" else hook
    w.publish(6)
    w.faults.crash_at(send_of(crashing.id), when)
    first = SinkRun(w, "first").start()
    first.turn()
    assert first.crashed
    assert _announced(w, crashing) == (0, 2)
    return s3_destination, hook, {d.id: _announced(w, d) for d in (s3_destination, hook)}


@pytest.mark.parametrize("target", ["s3", "webhook"])
def test_s2_after_the_announcement_the_batch_is_re_formed_exactly(w: World, target: Target) -> None:
    """S2: the batch's range and shape are durable, its send never went out. The next owner
    forms that very batch again (three records, though the destination now cuts at two),
    then goes on with batches of two; each event once."""
    s3_destination, hook, announced = _crash_in_the_first_turn(w, target, "before")
    ids = list(w.offsets)
    _smaller_batches(w, s3_destination, hook)
    _next_owner(w, ids)
    assert set(w.s3_ranges()) == _re_formed(announced[s3_destination.id], 0, 6)
    assert _ranges(w, w.webhook_batches()) == _re_formed(announced[hook.id], 0, 6)
    assert_s3_exactly_once(w, ids)
    assert_exactly_once(w.webhook_batches(), ids)


def _webhook_got_it_twice(w: World, hook: Destination) -> None:
    """Batch 0-2 reached the webhook twice, under one key with the same body."""
    hooked = [b for b in w.webhook_batches() if b.key == _key(hook, 0, 2)]
    assert len(hooked) == 2, "the webhook batch 0-2 was sent again"
    assert hooked[0].body == hooked[1].body


def _s3_rewrote_it_alike(w: World, s3_before: dict[str, bytes]) -> None:
    """The S3 objects written before (the batch sent again) are there under the same keys
    with the same bytes."""
    assert s3_before, "an object was written before"
    after = w.s3_objects()
    assert {k: after.get(k) for k in s3_before} == s3_before


@pytest.mark.parametrize("target", ["s3", "webhook"])
def test_s3_during_the_send_the_redelivery_is_the_same_batch(w: World, target: Target) -> None:
    """S3: the request landed, the answer never came back. The next owner sends the
    announced batch again: the same S3 key with the same bytes, the same webhook
    idempotency key with the same body; every other event once."""
    s3_destination, hook, announced = _crash_in_the_first_turn(w, target, "after")
    ids = list(w.offsets)
    s3_before = w.s3_objects()
    assert len(s3_before) == 1, "the S3 batch 0-2 landed before the crash"
    _smaller_batches(w, s3_destination, hook)
    _next_owner(w, ids)
    assert w.faults.sends[s3_destination.id] == 4, "S3: batch 0-2 twice, then 3-4 and 5"
    assert set(w.s3_ranges()) == _re_formed((0, 2), 0, 6)
    assert _ranges(w, w.webhook_batches()) == _re_formed(announced[hook.id], 0, 6)
    _s3_rewrote_it_alike(w, s3_before)
    if target == "webhook":
        _webhook_got_it_twice(w, hook)
    assert_s3_exactly_once(w, ids)
    assert_exactly_once(w.webhook_batches(), ids)


def test_s4_after_the_send_before_its_progress_the_batch_is_sent_again(w: World) -> None:
    """S4: both destinations received batch 0-2; the process dies as it records the first
    delivery (so neither is recorded). The batch is still announced: the next owner sends
    it again as it was (same keys, same bytes), then the rest once."""
    s3_destination, hook = w.s3(BATCH), w.webhook(BATCH)
    ids = w.publish(6)
    first = SinkRun(w, "first").start()
    first.turn()
    first.crash_on_progress(_delivered_record)
    first.turn()
    assert first.crashed
    s3_before = w.s3_objects()
    assert [b.key for b in w.webhook_batches()] == [_key(hook, 0, 2)]
    assert (_announced(w, s3_destination), _announced(w, hook)) == ((0, 2), (0, 2))
    _smaller_batches(w, s3_destination, hook)
    _next_owner(w, ids)
    _webhook_got_it_twice(w, hook)
    _s3_rewrote_it_alike(w, s3_before)
    assert set(w.s3_ranges()) == _ranges(w, w.webhook_batches()) == _re_formed((0, 2), 0, 6)
    assert_s3_exactly_once(w, ids)
    assert_exactly_once(w.webhook_batches(), ids)


def _delivered_record(value: bytes | None) -> bool:
    return value is not None and LaneProgress.from_json(value).delivered_batches > 0


# -- S5: the commit ------------------------------------------------------------------------


@pytest.mark.parametrize("applied", [True, False], ids=["commit-applied", "commit-lost"])
def test_s5_during_the_commit_nothing_is_lost_nor_sent_twice(w: World, applied: bool) -> None:
    """S5: batch 0-2 delivered and recorded; records 3 and 4 wait in an open batch. The
    checkpoint commits up to the first record a lane holds (3), and the process dies in
    the commit, after it reached the broker or before. The next owner neither sends 0-2
    again (the commit, or else the durable progress, says they are done) nor skips 3-4."""
    s3_destination, hook = w.s3(BATCH), w.webhook(BATCH)
    ids = w.publish(5)
    first = SinkRun(w, "first").start()
    w.broker.fail_next_commit(first.process.consumer, after_apply=applied, crash=True)
    _run_until(w, first, lambda: first.crashed, "a commit")
    committed_at_crash = w.committed()
    _smaller_batches(w, s3_destination, hook)
    _next_owner(w, ids)
    assert_s3_exactly_once(w, ids)
    assert_exactly_once(w.webhook_batches(), ids)
    assert set(w.s3_ranges()) == _ranges(w, w.webhook_batches()) == {(0, 2), (3, 4)}
    assert w.faults.sends == {s3_destination.id: 2, hook.id: 2}, "nothing sent twice"
    assert committed_at_crash == (3 if applied else None), "the commit stopped at record 3"


# -- S6: a rebalance with a send in flight -----------------------------------------------


def test_s6_a_revoked_partition_with_sends_in_flight_is_re_formed_by_its_next_owner(
    w: World,
) -> None:
    """S6: batch 0-2 of both destinations is announced and its sends are in flight (held)
    when the partition moves to another worker. The old owner commits nothing past them;
    the new one re-forms the announced batch and delivers everything; then the old sends
    land: the same S3 key with the same bytes, the same webhook key with the same body."""
    s3_destination, hook = w.s3(BATCH), w.webhook(BATCH)
    ids = w.publish(6)
    w.faults.hold_at(send_of(s3_destination.id))
    w.faults.hold_at(send_of(hook.id))
    executor = ThreadedExecutor()
    first = SinkRun(w, "first", executor).start()
    first.turn()
    w.faults.wait_held(2)
    _smaller_batches(w, s3_destination, hook)
    second = SinkRun(w, "second").start()
    w.broker.rebalance(GROUP, {first.process.consumer: [], second.process.consumer: [(TOPIC, 0)]})
    first.turn()  # revokes
    assert w.committed() is None, "nothing committed past the batch in flight"
    _run_until(w, second, _everything_delivered(w, ids), "every event delivered by the new owner")
    s3_delivered = w.s3_objects()
    w.faults.release()
    executor.join()
    first.turn()
    first.stop()
    second.stop()
    assert w.faults.sends == {s3_destination.id: 4, hook.id: 4}
    _webhook_got_it_twice(w, hook)
    _s3_rewrote_it_alike(w, s3_delivered)
    assert set(w.s3_ranges()) == _ranges(w, w.webhook_batches()) == _re_formed((0, 2), 0, 6)
    assert_s3_exactly_once(w, ids)
    assert_exactly_once(w.webhook_batches(), ids)


# -- S7 to S10: a destination that fails, parks, replays, pauses --------------------------


def test_s7_killed_while_backing_off_the_retry_is_the_same_batch(w: World) -> None:
    """S7: the webhook answers 503; the process dies while it waits to retry. The next owner
    sends the failed batch again exactly (same key, same body), and the rest once."""
    s3_destination, hook = w.s3(BATCH), w.webhook(BATCH)
    w.receiver.answer("/hook", Reply(status=503))
    ids = w.publish(6)
    first = SinkRun(w, "first").start()
    first.turn()
    first.turn()  # the failure is seen: a retry is due later
    first.kill()
    assert first.crashed
    refused = w.webhook_batches()
    assert [b.key for b in refused] == [_key(hook, 0, 2)]
    w.receiver.answer("/hook", Reply())
    _smaller_batches(w, s3_destination, hook)
    _next_owner(w, ids, since=1)
    accepted = w.webhook_batches(1)
    assert (accepted[0].key, accepted[0].body) == (refused[0].key, refused[0].body)
    assert _ranges(w, accepted) == _re_formed((0, 2), 0, 6)
    assert set(w.s3_ranges()) == {(0, 2), (3, 5)}
    assert_s3_exactly_once(w, ids)
    assert_exactly_once(accepted, ids)


def test_s8_a_parked_destination_does_not_hold_the_group_and_catches_up_after_a_crash(
    w: World,
) -> None:
    """S8: the webhook refuses batch 0-2 for good (404): its lane is parked, S3 goes on and
    the group commits past the webhook's records. The webhook answers again: the lane
    retries its batch, catches up on its own reader, announces 3-5 and dies before sending
    it. The next owner goes on from the progress record: 3-5 as announced, once."""
    s3_destination, hook = w.s3(BATCH), w.webhook(BATCH)
    w.receiver.answer("/hook", Reply(status=404))
    ids = w.publish(6)
    w.faults.crash_at(send_of(hook.id, 3), "before")
    first = SinkRun(w, "first").start()
    _run_until(w, first, lambda: w.committed() == 6, "the group past the parked destination")
    assert [b.event_ids for b in w.webhook_batches()] == [ids[:3]], "refused, parked"
    w.receiver.answer("/hook", Reply())
    _run_until(w, first, lambda: first.crashed, "the catch-up reaching 3-5")
    assert [w.range_of(b.event_ids) for b in w.webhook_batches(1)] == [(0, 2)]
    _smaller_batches(w, s3_destination, hook)
    _next_owner(w, ids, since=1)
    assert _ranges(w, w.webhook_batches(1)) == {(0, 2), (3, 5)}
    assert_s3_exactly_once(w, ids)
    assert_exactly_once(w.webhook_batches(1), ids)


def test_s9_a_replay_overlapping_live_delivery_survives_a_crash(w: World) -> None:
    """S9: events 0-5 are delivered and committed; a replay of the webhook from offset 0 to
    there starts, and events 6-8 arrive live while it runs (sent in the same turns). The
    replay's batch 3-5 lands and the process dies before it hears so. The next owner
    finishes the replay with that batch as it was (same key and body as its first
    attempt, though the destination now cuts at two) and marks the replay done; live
    delivery goes on. Every event once under a live key, and each replayed event once more
    under a key of the replay's own (a receiver that drops repeated keys keeps the replay,
    docs/exactly-once.md, section 8, finding 2)."""
    s3_destination, hook = w.s3(BATCH), w.webhook(BATCH)
    ids = w.publish(6)
    first = SinkRun(w, "first").start()
    _run_until(w, first, _everything_delivered(w, ids), "the first six events")
    live = len(w.receiver.requests)
    replay = ReplayRequest(id="replay-1", since=w.wall_clock(), offsets={0: 0})
    hook = w.change(hook, replay=replay)
    first.turn()  # the worker sees the request at the end of this turn: up to offset 5
    w.faults.crash_at(send_of(hook.id, 3), "after")
    ids += w.publish(3)
    _run_until(w, first, lambda: first.crashed, "the replay's batch 3-5")
    assert _announced(w, hook, "replay") == (3, 5)
    assert [w.range_of(b.event_ids) for b in w.webhook_batches(live)] == [(6, 8), (0, 2), (3, 5)]
    _smaller_batches(w, s3_destination, hook)
    run = SinkRun(w, "next").start()
    _run_until(
        w, run, lambda: _replay_done(w, hook) and _everything_delivered(w, ids)(), "the replay"
    )
    run.stop()
    assert [w.range_of(b.event_ids) for b in w.webhook_batches(live + 3)] == [(3, 5)]
    delivered_live, replayed = w.webhook_batches()[: live + 1], w.webhook_batches(live + 1)
    assert_exactly_once(delivered_live, ids)
    assert_exactly_once(replayed, ids[:6])
    assert not {b.key for b in replayed} & {b.key for b in delivered_live}
    assert_s3_exactly_once(w, ids)


def _replay_done(w: World, hook: Destination) -> bool:
    return any(
        r.destination_id == hook.id and r.stream == "replay" and r.replay_done
        for r in w.progress.progress()
    )


def test_s10_paused_then_killed_then_resumed_loses_nothing(w: World) -> None:
    """S10: the webhook is paused while its batch 3-5 is in flight (it lands); events 6-8
    arrive: the group commits past them and S3 receives them; the process dies while the
    webhook is paused. The next owner keeps it paused; once resumed, it catches up from
    where it stopped (6), each event once."""
    s3_destination, hook = w.s3(BATCH), w.webhook(BATCH)
    ids = w.publish(6)
    first = SinkRun(w, "first").start()
    first.turn()
    hook = w.change(hook, state="paused")
    first.turn()  # sends 3-5, then sees the pause (at the end of the turn)
    ids += w.publish(3)
    _run_until(w, first, lambda: w.committed() == 9, "the group past the paused destination")
    assert [w.range_of(b.event_ids) for b in w.webhook_batches()] == [(0, 2), (3, 5)]
    first.kill()
    _s3_destination, hook = _smaller_batches(w, s3_destination, hook)
    second = SinkRun(w, "second").start()
    _run_until(w, second, lambda: len(w.s3_event_ids()) >= 9, "S3 goes on")
    second.turn(3)
    assert len(w.webhook_batches()) == 2, "paused: nothing more sent"
    w.change(hook, state="active")
    _run_until(w, second, _everything_delivered(w, ids), "the webhook caught up")
    second.stop()
    assert _ranges(w, w.webhook_batches()) == {(0, 2), (3, 5)} | _cuts(6, 9)
    assert_exactly_once(w.webhook_batches(), ids)
    assert_s3_exactly_once(w, ids)
