"""The integrity log's append rule (integrity.appending), table-driven: leaf indexes, the
skip at or before ``last_offset``, head rows, batches, and determinism: the same stored
heads and records give the same leaves however the records are cut and replayed."""

from __future__ import annotations

import uuid

import pytest

from integrity import merkle
from integrity.appending import Batch, ForeignAccount, HeadRow, LeafRow, PartitionLog

TOPIC = "audit.events"


def _hash(n: int) -> bytes:
    return merkle.leaf_hash(f"leaf {n}".encode())


def _id(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


# (offset, tenant) records of partition 3: two accounts interleaved, offsets with a gap.
RECORDS = [(10, "acme"), (11, "globex"), (12, "acme"), (14, "acme"), (15, "globex")]


def _run(log: PartitionLog, records: list[tuple[int, str]]) -> list[LeafRow | None]:
    log.start_new({tenant for _, tenant in records})
    return [log.append(t, o, _id(o), _hash(o), now_s=0.0) for o, t in records]


def _leaves(batches: list[Batch]) -> list[LeafRow]:
    return [leaf for batch in batches for leaf in batch.leaves]


def test_each_account_gets_consecutive_leaf_indexes_in_offset_order() -> None:
    log = PartitionLog(TOPIC, 3)
    leaves = _run(log, RECORDS)
    assert [(leaf.tenant_id, leaf.leaf_index, leaf.kafka_offset) for leaf in leaves if leaf] == [
        ("acme", 0, 10),
        ("globex", 0, 11),
        ("acme", 1, 12),
        ("acme", 2, 14),
        ("globex", 1, 15),
    ]
    assert all(leaf is not None and leaf.partition == 3 for leaf in leaves)


def test_the_batch_holds_the_range_the_leaves_and_each_changed_head() -> None:
    log = PartitionLog(TOPIC, 3)
    _run(log, RECORDS)
    batch = log.take()
    assert batch is not None
    assert (batch.first_offset, batch.last_offset, batch.records) == (10, 15, 5)
    assert batch.token("integrity_leaves") == "integrity_leaves-audit.events-3-10-15"
    heads = {head.tenant_id: head for head in batch.heads}
    acme = [_hash(o) for o, t in RECORDS if t == "acme"]
    assert heads["acme"].size == 3
    assert heads["acme"].root == merkle.root(acme)
    assert heads["acme"].last_offset == 14
    assert heads["acme"].partition == 3
    assert merkle.Frontier.restore(3, heads["acme"].frontier).root() == merkle.root(acme)
    assert log.take() is None, "taken once"


@pytest.mark.parametrize(
    ("last_offset", "appended"),
    [
        (9, [10, 12, 14]),  # nothing of this range stored yet
        (10, [12, 14]),  # the first record is already a leaf
        (12, [14]),
        (13, [14]),  # an offset between records (a gap, or another account's record)
        (14, []),  # a replay of what is stored: nothing appended
        (99, []),
    ],
)
def test_records_at_or_before_last_offset_are_skipped(
    last_offset: int, appended: list[int]
) -> None:
    stored = [_hash(o) for o, t in RECORDS if t == "acme" and o <= last_offset]
    frontier = merkle.Frontier.empty()
    for leaf_hash in stored:
        frontier.append(leaf_hash)
    head = HeadRow("acme", frontier.size, frontier.root(), frontier.hashes, 3, last_offset)
    log = PartitionLog(TOPIC, 3, [head])
    leaves = _run(log, [r for r in RECORDS if r[1] == "acme"])
    got = [leaf for leaf in leaves if leaf is not None]
    assert [leaf.kafka_offset for leaf in got] == appended
    assert [leaf.leaf_index for leaf in got] == list(range(len(stored), len(stored) + len(got)))


def test_a_crash_between_insert_and_commit_replays_to_the_same_leaves() -> None:
    """The first run stores batch [10..12] (leaves and heads) but its commit is lost; the
    next owner reads from offset 10 again with those heads and must make the same log."""
    first = PartitionLog(TOPIC, 3)
    _run(first, RECORDS[:3])
    stored = first.take()
    assert stored is not None
    _run(first, RECORDS[3:])
    rest = first.take()
    assert rest is not None
    expected = _leaves([stored, rest])

    second = PartitionLog(TOPIC, 3, stored.heads)
    leaves = _run(second, RECORDS)  # from the committed offset (10): a replay
    assert leaves[:3] == [None, None, None]
    replayed = second.take()
    assert replayed is not None
    assert _leaves([stored, replayed]) == expected
    assert set(replayed.heads) == set(rest.heads)


def test_a_zombie_and_the_new_owner_write_identical_rows() -> None:
    """Both start from the same stored heads and read the same records: the rows are equal,
    so written twice they replace each other."""
    zombie, owner = PartitionLog(TOPIC, 3), PartitionLog(TOPIC, 3)
    _run(zombie, RECORDS)
    _run(owner, RECORDS[:2])
    first = owner.take()
    _run(owner, RECORDS[2:])
    second = owner.take()
    zombie_batch = zombie.take()
    assert first is not None
    assert second is not None
    assert zombie_batch is not None
    assert _leaves([first, second]) == list(zombie_batch.leaves)
    latest = {h.tenant_id: h for batch in (first, second) for h in batch.heads}
    assert latest == {h.tenant_id: h for h in zombie_batch.heads}


def test_skipped_records_count_in_the_batch_range() -> None:
    log = PartitionLog(TOPIC, 3)
    log.note_record(7, now_s=1.0)
    _run(log, RECORDS[:1])
    batch = log.take()
    assert batch is not None
    assert (batch.first_offset, batch.last_offset, batch.records, len(batch.leaves)) == (
        7,
        10,
        2,
        1,
    )


def test_a_batch_of_skips_only_has_no_rows() -> None:
    log = PartitionLog(TOPIC, 3)
    log.note_record(7, now_s=1.0)
    batch = log.take()
    assert batch is not None
    assert (batch.leaves, batch.heads, batch.records) == ((), (), 1)


def test_an_account_kept_by_another_partition_is_refused() -> None:
    head = HeadRow("acme", 1, _hash(1), (_hash(1),), 5, 40)
    log = PartitionLog(TOPIC, 3)
    log.adopt([head])
    assert log.knows("acme")
    log.start_new(["acme"])
    with pytest.raises(ForeignAccount, match="partition 5"):
        log.append("acme", 10, _id(10), _hash(10), now_s=0.0)
    batch = log.take()
    assert batch is not None
    assert (batch.leaves, batch.records) == ((), 1)


def test_adopting_keeps_the_larger_head() -> None:
    small = HeadRow("acme", 1, _hash(1), (_hash(1),), 3, 10)
    frontier = merkle.Frontier.empty()
    frontier.append(_hash(1))
    frontier.append(_hash(2))
    large = HeadRow("acme", 2, frontier.root(), frontier.hashes, 3, 12)
    log = PartitionLog(TOPIC, 3, [large])
    log.adopt([small])
    leaf = log.append("acme", 14, _id(14), _hash(14), now_s=0.0)
    assert leaf is not None
    assert leaf.leaf_index == 2


@pytest.mark.parametrize(("now_s", "due"), [(1.9, False), (2.0, True), (5.0, True)])
def test_a_batch_is_due_when_its_first_record_waited_long_enough(now_s: float, due: bool) -> None:
    log = PartitionLog(TOPIC, 3)
    assert not log.due(100.0, 1.0), "nothing pending"
    log.note_record(1, now_s=1.0)
    log.note_record(2, now_s=1.5)
    assert log.due(now_s, 1.0) is due
