"""Batches cut by size, bytes and time, and exactly at an announced range's end."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.batches import PartitionBuffer


@dataclass(frozen=True)
class _Message:
    """The part of confluent_kafka.Message a buffer reads."""

    at: int
    size: int

    def offset(self) -> int:
        return self.at

    def value(self) -> bytes:
        return b"x" * self.size

    def key(self) -> bytes:
        return b"k"

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)


def _record(offset: int, size: int = 10) -> _Message:
    return _Message(offset, size)


def _buffer(**overrides: object) -> PartitionBuffer:
    values: dict[str, object] = {
        "topic": "t",
        "partition": 3,
        "max_records": 4,
        "max_bytes": 1000,
        "max_wait_s": 1.0,
    }
    values.update(overrides)
    return PartitionBuffer(**values)  # type: ignore[arg-type]


def test_cut_by_records_with_the_dedup_token_of_its_range() -> None:
    buffer = _buffer()
    cut = [b for offset in range(10, 18) for b in buffer.add(_record(offset), 0.0)]
    assert [(b.first_offset, b.last_offset) for b in cut] == [(10, 13), (14, 17)]
    assert cut[0].dedup_token == "t-3-10-13"


def test_cut_by_bytes() -> None:
    buffer = _buffer(max_records=100, max_bytes=25)
    cut = [b for offset in range(5) for b in buffer.add(_record(offset), 0.0)]
    assert [(b.first_offset, b.last_offset) for b in cut] == [(0, 2)]


def test_cut_by_time_only_once_the_oldest_record_waited() -> None:
    buffer = _buffer(max_records=100)
    buffer.add(_record(0), 10.0)
    buffer.add(_record(1), 10.9)
    assert buffer.due(10.99) is None
    batch = buffer.due(11.0)
    assert batch is not None
    assert (batch.first_offset, batch.last_offset) == (0, 1)
    assert buffer.due(100.0) is None


def test_an_announced_range_is_formed_again_exactly_whatever_the_limits() -> None:
    buffer = _buffer(max_records=2, announced_last=14)
    cut = [b for offset in range(10, 19) for b in buffer.add(_record(offset), 0.0)]
    assert [(b.first_offset, b.last_offset) for b in cut] == [(10, 14), (15, 16), (17, 18)]


def test_an_announced_range_ending_in_a_gap_is_cut_before_the_gap() -> None:
    buffer = _buffer(max_records=100, announced_last=12)
    assert buffer.add(_record(10), 0.0) == []
    cut = buffer.add(_record(15), 0.0)  # 11 and 12 were never there (e.g. control records)
    assert [(b.first_offset, b.last_offset) for b in cut] == [(10, 10)]
    assert buffer.announced_last is None
    flushed = buffer.flush()
    assert flushed is not None
    assert (flushed.first_offset, flushed.last_offset) == (15, 15)


def test_nothing_is_due_while_an_announced_range_is_incomplete() -> None:
    buffer = _buffer(max_records=100, announced_last=20)
    buffer.add(_record(10), 0.0)
    assert buffer.due(1000.0) is None
    assert buffer.flush() is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=60),
    st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=30),
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=1, max_value=150),
    st.none() | st.integers(min_value=0, max_value=70),
)
def test_extend_cuts_exactly_where_add_does(
    sizes: list[int], runs: list[int], max_records: int, max_bytes: int, announced_last: int | None
) -> None:
    """The bulk path gives the batches, and leaves the state, that one add per record does
    (record and byte limits, an announced range being re-formed)."""
    records = [_record(100 + i, size) for i, size in enumerate(sizes)]
    limits = {"max_records": max_records, "max_bytes": max_bytes}
    end = None if announced_last is None else 100 + announced_last
    one_by_one, bulk = _buffer(**limits, announced_last=end), _buffer(**limits, announced_last=end)
    expected = [b for r in records for b in one_by_one.add(r, 0.0)]
    got = []
    start = 0
    for length in runs * len(records):
        if start >= len(records):
            break
        got.extend(bulk.extend(records[start : start + length], 0.0))
        start += length
    got.extend(bulk.extend(records[start:], 0.0))
    assert [b.records for b in got] == [b.records for b in expected]
    assert (bulk.records, bulk.size_bytes, bulk.announced_last) == (
        one_by_one.records,
        one_by_one.size_bytes,
        one_by_one.announced_last,
    )
