"""The dead-letter limit: share over a sliding window, run of consecutive dead letters."""

from __future__ import annotations

import pytest
from confluent_kafka import Message
from hypothesis import given
from hypothesis import strategies as st

from consumers.dead_letter_budget import DeadLetterBudget, DeadLetterLimit, DeadLetterLimitExceeded
from consumers.dead_letter_reasons import MAX_DETAIL_BYTES, Poison, poisons_at, truncate_detail
from schemas.wire import WireError

SOURCE = "audit.events"
DLQ = "audit.events.dlq"


def budget(**limit: float) -> DeadLetterBudget:
    return DeadLetterBudget(DeadLetterLimit(**limit), SOURCE, DLQ)  # type: ignore[arg-type]


def tripped(b: DeadLetterBudget) -> DeadLetterLimitExceeded | None:
    try:
        b.check()
    except DeadLetterLimitExceeded as exc:
        return exc
    return None


def test_a_share_at_the_limit_passes_and_above_it_stops() -> None:
    b = budget(max_ratio=0.5, min_records=10, window_records=100)
    for _ in range(50):
        b.record(False)
        b.record(True)
    b.check()  # 50 of 100: not more than half
    assert (b.seen, b.poisoned, b.run) == (100, 50, 1)

    b.record(True)  # the window drops a kept record: 51 of 100
    exc = tripped(b)
    assert exc is not None
    assert (exc.poisoned, exc.seen) == (51, 100)


def test_the_share_is_judged_only_from_min_records_on() -> None:
    b = budget(max_ratio=0.5, min_records=100, max_run=1000)
    b.record(True, 60)
    b.record(False, 39)
    b.check()  # 60 of 99: too few to judge
    b.record(False)
    exc = tripped(b)
    assert exc is not None
    assert (exc.poisoned, exc.seen) == (60, 100)


def test_a_bulk_of_kept_records_trips_where_min_records_is_reached() -> None:
    # Record by record, the 100th record would see 99 of 100 dead-lettered.
    b = budget(max_ratio=0.5, min_records=100, max_run=1000)
    b.record(True, 99)
    b.record(False, 5000)
    exc = tripped(b)
    assert exc is not None
    assert (exc.poisoned, exc.seen, exc.run) == (99, 100, 0)


def test_a_run_above_max_run_stops_even_when_the_share_is_low() -> None:
    b = budget(max_ratio=0.9, max_run=20, window_records=1000, min_records=10)
    b.record(False, 900)
    b.record(True, 20)
    b.check()  # a run of exactly max_run is allowed
    b.record(True)
    exc = tripped(b)
    assert exc is not None
    assert exc.run == 21
    assert "21 consecutive records were dead-lettered" in str(exc)


def test_a_kept_record_ends_the_run() -> None:
    b = budget(max_ratio=1.0, max_run=5)
    for _ in range(100):
        b.record(True, 5)
        b.record(False)
    b.check()
    assert b.run == 0


def test_the_window_forgets_old_dead_letters() -> None:
    b = budget(max_ratio=0.5, min_records=100, window_records=100, max_run=1000)
    b.record(True, 50)
    b.record(False, 50)
    b.check()
    b.record(False, 50)  # the first 50 dead letters slide out
    assert (b.seen, b.poisoned) == (100, 0)
    b.record(True, 50)
    b.check()  # 50 of the last 100, not more
    assert (b.seen, b.poisoned, b.run) == (100, 50, 50)


def test_once_tripped_it_stays_tripped() -> None:
    b = budget(max_ratio=0.5, min_records=10, window_records=100)
    b.record(True, 10)
    first = tripped(b)
    assert first is not None
    b.record(False, 10_000)
    assert tripped(b) is first


def test_the_message_names_the_numbers_the_limit_and_the_topics() -> None:
    b = budget(max_ratio=0.5, min_records=50, window_records=10_000, max_run=1000)
    b.record(False, 3)
    b.record(True, 47)
    exc = tripped(b)
    assert exc is not None
    assert str(exc) == (
        "47 of the last 50 records were dead-lettered (limit: 50% of 10000 / a run of 1000): "
        "stopping instead of draining audit.events into audit.events.dlq; "
        "inspect the dead-letter topic"
    )


def test_observe_batch_counts_positions_in_order() -> None:
    b = budget(max_ratio=1.0, max_run=3, min_records=1, window_records=100)
    b.observe_batch(10, [0, 4, 5, 6])
    assert (b.seen, b.poisoned, b.run) == (10, 4, 0)
    b.check()
    b.observe_batch(3, [2])
    b.observe_batch(2, [0, 1])
    assert b.run == 3
    b.check()
    b.observe_batch(1, [0])
    assert tripped(b) is not None
    with pytest.raises(ValueError, match="outside"):
        b.observe_batch(2, [2])


@pytest.mark.parametrize(
    "limit",
    [
        {"max_ratio": 0.0},
        {"max_ratio": 1.5},
        {"max_run": 0},
        {"min_records": 0},
        {"window_records": 10, "min_records": 100},
    ],
)
def test_nonsense_limits_are_refused(limit: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DeadLetterLimit(**limit)  # type: ignore[arg-type]


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        budget().record(True, -1)


class _PerRecord:
    """The limit judged after every single record, the slow obvious way."""

    def __init__(self, limit: DeadLetterLimit) -> None:
        self.limit = limit
        self.outcomes: list[bool] = []
        self.run = 0
        self.tripped = False

    def add(self, poisoned: bool) -> None:
        self.outcomes.append(poisoned)
        self.run = self.run + 1 if poisoned else 0
        window = self.outcomes[-self.limit.window_records :]
        share = len(window) >= self.limit.min_records and sum(window) > self.limit.max_ratio * len(
            window
        )
        if share or self.run > self.limit.max_run:
            self.tripped = True


@given(
    segments=st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=30),
    max_ratio=st.sampled_from([0.1, 0.5, 0.8, 1.0]),
    max_run=st.integers(1, 60),
    min_records=st.integers(1, 30),
    extra_window=st.integers(0, 50),
)
def test_bulk_recording_trips_exactly_when_record_by_record_would(
    segments: list[tuple[bool, int]],
    max_ratio: float,
    max_run: int,
    min_records: int,
    extra_window: int,
) -> None:
    limit = DeadLetterLimit(max_ratio, max_run, min_records + extra_window, min_records)
    bulk = DeadLetterBudget(limit, SOURCE, DLQ)
    model = _PerRecord(limit)
    for poisoned, count in segments:
        bulk.record(poisoned, count)
        for _ in range(count):
            model.add(poisoned)
        assert (tripped(bulk) is not None) == model.tripped
        window = model.outcomes[-limit.window_records :]
        assert (bulk.seen, bulk.poisoned, bulk.run) == (len(window), sum(window), model.run)


def test_poison_detail_is_cut_to_its_byte_limit_on_a_character_boundary() -> None:
    detail = "é" * MAX_DETAIL_BYTES
    poison = Poison(0, 1, None, b"x", [], "corrupt-datum", detail)
    assert len(poison.detail.encode()) <= MAX_DETAIL_BYTES
    assert poison.detail.endswith(" [truncated]")
    assert truncate_detail("short") == "short"


def test_poisons_come_from_consumed_messages_and_wire_errors() -> None:
    messages = [
        Message(topic=SOURCE, partition=2, offset=10 + i, key=b"t", value=bytes([i]), headers=[])
        for i in range(4)
    ]
    messages[3] = Message(
        topic=SOURCE, partition=2, offset=13, key=None, value=b"\x03", headers=[("h", None)]
    )
    failed = [
        (3, WireError("corrupt-datum", "bad datum")),
        (1, WireError("not-framed", "no magic")),
    ]
    poisons = poisons_at(messages, failed)
    assert [(p.offset, p.reason, p.detail) for p in poisons] == [
        (11, "not-framed", "no magic"),
        (13, "corrupt-datum", "bad datum"),
    ]
    assert poisons[1] == Poison(2, 13, None, b"\x03", [("h", None)], "corrupt-datum", "bad datum")
    with pytest.raises(ValueError, match="not a consumed record"):
        Poison.of(Message(topic=SOURCE), "not-framed", "x")
