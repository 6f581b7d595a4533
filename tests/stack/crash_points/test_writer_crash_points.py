"""The writer's crash-point table (W1..W7, docs and CONTEXT share the ids): the writer stops
at exactly that step, its next owner takes over, and ClickHouse holds every event once.

Kafka is the fake broker, ClickHouse the real engine; the crash is injected at a seam (see
:mod:`tests.stack.crash_points.writer_crash_support`). After each crash more events are
published, so the next owner reads past the announced range at once: it must still form
exactly that range again, or the insert would carry another deduplication token and store
the range twice.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from tests.fakes.crash import SimulatedCrash
from tests.stack.crash_points.writer_crash_support import (
    GROUP,
    TOPIC,
    CrashHarness,
    WriterProcess,
    unreachable,
)

pytestmark = [pytest.mark.stack]

# Fewer than a batch per partition (batch_max_records 8): the first owner cuts its batches
# when their flush interval passes, so the next owner, which reads a full batch's worth at
# once, forms the same ranges only if it follows the progress log.
FEW = 6


def _crashes(process: WriterProcess) -> None:
    with pytest.raises(SimulatedCrash):
        process.writer.run()
    assert process.consumer.dead


def _next_owner_finishes(
    harness: CrashHarness,
    published: set[str],
    *,
    dead_letters: int = 0,
    second: WriterProcess | None = None,
) -> WriterProcess:
    """More events arrive; the next owner (``second``, or a new process) writes everything
    and exits when idle. Every event is then stored once, every offset committed, and
    ``dead_letters`` published."""
    published |= harness.publish(24, seed=99)
    second = second or harness.start()
    second.writer.run()
    harness.assert_each_event_once(published)
    assert harness.committed() == harness.ends()
    assert len(harness.dead_letters()) == dead_letters
    return second


def _first_token(process: WriterProcess, partition: int) -> str:
    prefix = f"{TOPIC}-{partition}-"
    return next(t for t in process.clickhouse.tokens() if t.startswith(prefix))


def _partition_of(token: str) -> int:
    return int(token.removeprefix(f"{TOPIC}-").split("-")[0])


def test_w1_crash_before_announce(harness: CrashHarness) -> None:
    """Killed before announcing its second batch: nothing of that batch happened, its range
    is unknown to the next owner, which starts at the committed offsets (the first batch
    was committed after its insert)."""
    published = harness.publish(FEW, seed=1)
    first = harness.start()
    first.clickhouse.inject("announce", harness.crash_action(first), nth=2)
    _crashes(first)
    inserted = first.clickhouse.tokens()
    committed_before = harness.committed()
    landed = harness.stored()

    second = _next_owner_finishes(harness, published)
    assert len(inserted) == 1, "the second batch was not inserted"
    assert landed.rows == landed.events > 0
    assert sum(o or 0 for o in committed_before.values()) == landed.rows, (
        "every batch that landed was committed, nothing more"
    )
    for partition, offset in committed_before.items():
        start = offset or 0
        assert _first_token(second, partition).startswith(f"{TOPIC}-{partition}-{start}-")


def test_w2_crash_after_announce_before_insert(harness: CrashHarness) -> None:
    """Killed once its announcement landed, before the insert: the next owner finds the
    range announced at its committed offset and forms exactly that batch."""
    published = harness.publish(FEW, seed=2)
    first = harness.start()
    first.clickhouse.inject("announce", harness.crash_action(first), nth=1, when="after")
    _crashes(first)
    announced = first.clickhouse.announced()[-1]
    assert announced not in first.clickhouse.tokens(), "not inserted"

    second = _next_owner_finishes(harness, published)
    assert _first_token(second, _partition_of(announced)) == announced


def test_w3_crash_during_insert_it_landed_without_an_answer(harness: CrashHarness) -> None:
    """The insert is stored, the writer never hears so (killed while waiting for the
    answer): the next owner inserts the same range under the same token, and ClickHouse
    stores it once."""
    published = harness.publish(FEW, seed=3)
    first = harness.start()
    first.clickhouse.inject("insert", harness.crash_action(first), nth=1, when="after")
    _crashes(first)
    [landed_token] = first.clickhouse.tokens()
    partition = _partition_of(landed_token)
    first_offset, last_offset = map(int, landed_token.rsplit("-", 2)[1:])
    assert harness.stored().rows == last_offset - first_offset + 1, "the insert landed"
    assert harness.committed()[partition] is None, "and was not committed"

    second = _next_owner_finishes(harness, published)
    assert _first_token(second, partition) == landed_token, "the same block, deduplicated"


def test_w4_crash_after_insert_before_dead_letters_and_commit(harness: CrashHarness) -> None:
    """The batch holds a poison record; the rows landed, the writer dies before publishing
    the dead letter: the next owner re-forms the batch (deduplicated) and dead-letters the
    poison, once."""
    poison_offset = harness.publish_raw(b"not avro at all", partition=0)
    published = harness.publish(FEW, seed=4)
    first = harness.start()
    harness.broker.hook("before", "produce", harness.crash_action(first), client=first.producer)
    _crashes(first)
    landed_token = next(t for t in first.clickhouse.tokens() if _partition_of(t) == 0)
    assert harness.dead_letters() == []

    second = _next_owner_finishes(harness, published, dead_letters=1)
    assert _first_token(second, 0) == landed_token
    [letter] = harness.dead_letters()
    assert letter.value == b"not avro at all"
    assert dict(letter.headers or ())["auditlog-dlq-source-offset"] == str(poison_offset).encode()


def test_w4_crash_after_dead_letters_before_commit_repeats_them_identically(
    harness: CrashHarness,
) -> None:
    """Killed after the dead letter was acknowledged and before the commit: the next owner
    re-forms the batch and publishes the dead letter again. Rows stay exactly once; the
    dead letter is at least once, the copies identical (same key, same source offset)."""
    harness.publish_raw(b"not avro at all", partition=0)
    published = harness.publish(FEW, seed=5)
    first = harness.start()
    harness.broker.hook("before", "commit", harness.crash_action(first), client=first.consumer)
    _crashes(first)
    assert len(harness.dead_letters()) == 1

    _next_owner_finishes(harness, published, dead_letters=2)
    letters = harness.dead_letters()
    sources = {
        (r.key, dict(r.headers or ())["auditlog-dlq-source-offset"], r.value) for r in letters
    }
    assert len(sources) == 1


@pytest.mark.parametrize(
    ("reached_the_broker", "crash"),
    [(True, True), (False, True), (True, False), (False, False)],
    ids=["landed-then-killed", "lost-then-killed", "landed-answer-lost", "lost-answer-lost"],
)
def test_w5_crash_during_commit(
    harness: CrashHarness, reached_the_broker: bool, crash: bool
) -> None:
    """The commit of the second batch (the first commit after its announcement) reaches the
    broker or not; the writer then dies, or hears an error and goes on. Either way each
    event is stored once: a commit that did not land leaves the announced range for the
    writer itself (it lives on) or the next owner to re-form; one that did, nothing to
    redo."""
    published = harness.publish(FEW, seed=6)
    first = harness.start()

    def fail_the_next_commit() -> None:
        harness.broker.fail_next_commit(first.consumer, after_apply=reached_the_broker, crash=crash)

    first.clickhouse.inject("announce", fail_the_next_commit, nth=2, when="after")
    if crash:
        _crashes(first)
    else:
        first.writer.run()
    announced = first.clickhouse.announced()[1]
    assert announced in first.clickhouse.tokens(), "inserted before the commit"
    partition = _partition_of(announced)
    last_offset = int(announced.rsplit("-", 1)[1])
    # A writer that lives on after a failed commit reads the partition again from its
    # committed offset, re-forms the batch from its announcement and commits it itself.
    redone = not crash and not reached_the_broker
    if redone:
        assert first.clickhouse.tokens().count(announced) == 2
    landed = reached_the_broker or redone
    assert harness.committed()[partition] == (last_offset + 1 if landed else None)

    second = _next_owner_finishes(harness, published)
    if not landed:
        assert _first_token(second, partition) == announced


def test_w5_a_refused_commit_is_not_written_over(harness: CrashHarness) -> None:
    """The commit of a full batch is refused (as during a cooperative rebalance) and the
    writer keeps the partition: it must not announce and insert the partition's next batch
    over the one whose commit failed (docs/exactly-once.md, section 8, finding 1). It reads
    the partition again from its committed offset: the batch is re-formed from its
    announcement (the same token) and inserted once more, deduplicated. Killed right after
    that insert, its next owner finds the announcement at the committed offset; had the
    writer written on, it would have found the next batch's, cut freely, and stored that
    batch's events twice."""
    published = harness.publish(10, seed=8, partition=0)  # a full batch of 8, then 2
    first = harness.start()

    def refuse_the_next_commit() -> None:
        harness.broker.fail_next_commit(
            first.consumer, after_apply=False, error_code=KafkaError.REBALANCE_IN_PROGRESS
        )

    first.clickhouse.inject("announce", refuse_the_next_commit, nth=1, when="after")
    first.clickhouse.inject("insert", harness.crash_action(first), nth=2, when="after")
    _crashes(first)
    batch, again = first.clickhouse.tokens()
    assert again == batch, "the partition's next batch written over a refused commit"
    assert harness.committed()[0] is None

    second = _next_owner_finishes(harness, published)
    assert _first_token(second, 0) == batch


def test_w6_partition_revoked_while_the_batch_retries(harness: CrashHarness) -> None:
    """ClickHouse refuses the first insert; while the writer backs off, partition 0 is
    revoked. It abandons that batch uncommitted (and keeps writing partition 1); the
    partition's next owner re-forms the announced range."""
    published = harness.publish(FEW, seed=7)
    first = harness.start()

    def revoke_partition_0() -> None:
        harness.broker.rebalance(GROUP, {first.consumer: [(TOPIC, 1)]})
        raise unreachable()

    first.clickhouse.inject("insert", revoke_partition_0, nth=1)
    first.writer.run()
    abandoned = first.clickhouse.announced()[0]
    partition = _partition_of(abandoned)
    assert partition == 0
    assert abandoned not in first.clickhouse.tokens()
    assert harness.committed()[0] is None, "the abandoned batch stayed uncommitted"
    assert first.writer.stats.retries == 1

    second = _next_owner_finishes(harness, published)
    assert _first_token(second, 0) == abandoned


def test_w6_a_member_joins_while_the_batch_retries(harness: CrashHarness) -> None:
    """ClickHouse refuses the insert of partition 1's batch; while the writer backs off, a
    second writer joins the group and the rebalance moves partition 1 to it. The first
    abandons that batch uncommitted and finishes partition 0; the second re-forms the
    announced range of partition 1."""
    published = harness.publish(FEW, seed=9)
    first, second = harness.start(), harness.start()

    def a_member_joins() -> None:
        second.consumer.subscribe([TOPIC])  # joining: the group rebalances now
        raise unreachable()

    first.clickhouse.inject("insert", a_member_joins, nth=2)
    first.writer.run()
    abandoned = first.clickhouse.announced()[1]
    assert _partition_of(abandoned) == 1
    assert first.clickhouse.tokens() == [first.clickhouse.announced()[0]]
    assert harness.committed() == {0: harness.ends()[0], 1: None}

    _next_owner_finishes(harness, published, second=second)
    assert _first_token(second, 1) == abandoned


def test_w7_killed_while_backing_off(harness: CrashHarness) -> None:
    """ClickHouse fails the first two insert attempts; the writer is killed while it waits
    to retry (polling, paused): the next owner re-forms the announced range."""
    published = harness.publish(FEW, seed=8)
    first = harness.start()
    first.clickhouse.fail_transiently("insert", [1, 2])
    crash = harness.crash_action(first)

    def crash_in_the_second_backoff() -> None:
        if first.writer.stats.retries == 2:
            crash()

    harness.broker.hook(
        "before", "poll", crash_in_the_second_backoff, client=first.consumer, times=None
    )
    _crashes(first)
    assert first.clickhouse.tokens() == []
    assert first.writer.stats.retries == 2
    [announced] = first.clickhouse.announced()

    second = _next_owner_finishes(harness, published)
    assert _first_token(second, _partition_of(announced)) == announced
