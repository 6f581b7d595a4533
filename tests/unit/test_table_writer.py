"""``TableWriter``: a failed write of a compacted table is reported to every flush until the
key is stored, and a flush rewrites it first (docs/exactly-once.md, section 8, finding 3)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, Message

from runtime.compacted_table import REWRITE_ROUNDS, TableError, TableWriter
from runtime.kafka_connection import KafkaConnection

Report = Callable[[KafkaError | None, Message], None]


class FlakyProducer:
    """Acknowledges queued writes on flush, failing the next ``failures[key]`` writes of a key."""

    def __init__(self, failures: dict[bytes, int] | None = None) -> None:
        self.failures = dict(failures or {})
        self.queued: list[tuple[bytes, bytes | None, Report]] = []
        self.stored: dict[bytes, bytes | None] = {}
        self.writes: list[bytes] = []

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        on_delivery: Report | None = None,
    ) -> None:
        assert key is not None
        assert on_delivery is not None
        self.queued.append((key, value, on_delivery))
        self.writes.append(key)

    def poll(self, timeout: float = 0.0) -> int:
        return 0

    def flush(self, timeout: float = 0.0) -> int:
        queued, self.queued = self.queued, []
        for key, value, report in queued:
            if self.failures.get(key, 0) > 0:
                self.failures[key] -= 1
                report(KafkaError(KafkaError._MSG_TIMED_OUT), None)  # type: ignore[arg-type]
            else:
                self.stored[key] = value
                report(None, None)  # type: ignore[arg-type]
        return 0


def _writer(producer: FlakyProducer) -> TableWriter:
    return TableWriter(
        KafkaConnection("localhost:9"), "progress", client_id="test", producer=producer
    )


def test_a_failed_write_is_rewritten_by_the_flush_and_then_stored() -> None:
    producer = FlakyProducer({b"a": 1})
    writer = _writer(producer)
    writer.put(b"a", b"1")
    writer.put(b"b", b"2")
    writer.flush()
    assert producer.stored == {b"a": b"1", b"b": b"2"}
    assert producer.writes == [b"a", b"b", b"a"]


def test_every_flush_raises_while_a_key_is_not_stored() -> None:
    producer = FlakyProducer({b"a": 100})
    writer = _writer(producer)
    writer.put(b"a", b"announced")
    writer.put(b"b", b"other lane")
    with pytest.raises(TableError, match=r"1 keys not stored.*b'a'"):
        writer.flush()
    # A second caller (another delivery thread, the checkpoint) must not see success.
    with pytest.raises(TableError, match="b'a'"):
        writer.flush()
    assert producer.writes.count(b"a") == 1 + 2 * REWRITE_ROUNDS
    producer.failures[b"a"] = 0
    writer.flush()
    assert producer.stored[b"a"] == b"announced"


def test_a_later_acknowledged_write_of_the_key_clears_its_failure() -> None:
    producer = FlakyProducer({b"a": 1})
    writer = _writer(producer)
    writer.put(b"a", b"old")
    writer.put(b"a", b"new")
    writer.flush()
    assert producer.stored == {b"a": b"new"}
    assert producer.writes == [b"a", b"a"]  # nothing to rewrite: the newer value landed


def test_the_rewrite_sends_the_latest_value_of_the_key() -> None:
    producer = FlakyProducer({b"a": 2})
    writer = _writer(producer)
    writer.put(b"a", b"first")
    writer.put(b"a", None)  # deleted since: the tombstone is what must land
    writer.flush()
    assert producer.stored == {b"a": None}
