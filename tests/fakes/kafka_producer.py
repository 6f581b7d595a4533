"""The fake broker's producer: a ``confluent_kafka.Producer`` the code under test uses as is.

``produce`` only queues the record (``len(producer)`` counts the queue); ``poll`` and
``flush`` deliver the queue: each record lands in its partition (or fails: unknown topic,
an injected delivery failure) and its ``on_delivery`` callback runs, in produce order.
Neither waits (``timeout`` is ignored). A killed producer loses its queue.

Partitioning with ``partition=-1``: a keyed record goes where librdkafka's partitioner puts
it (``consistent_random``: CRC32, the default; ``murmur2_random``: the Java client's); a
record without a key goes to the partitions in turn.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from confluent_kafka import KafkaError, Message, Producer, consistent, murmur2

from tests.fakes.crash import SimulatedCrash
from tests.fakes.kafka_hooks import Operation, operation
from tests.fakes.kafka_log import HeadersIn, StoredHeaders, as_bytes, stored_headers

if TYPE_CHECKING:
    from tests.fakes.kafka_broker import FakeBroker

DeliveryCallback = Callable[[KafkaError | None, Message], None]
Partitioner = Literal["consistent_random", "murmur2_random"]


@dataclass(frozen=True)
class Queued:
    topic: str
    partition: int  # -1: the partitioner chooses at delivery
    key: bytes | None
    value: bytes | None
    headers: StoredHeaders | None
    timestamp_ms: int  # 0: the broker's clock
    on_delivery: DeliveryCallback | None


class FakeProducer(Producer):
    """Made by :meth:`tests.fakes.kafka_broker.FakeBroker.producer`. One thread at a time."""

    def __init__(self, broker: FakeBroker, name: str, partitioner: Partitioner) -> None:
        self.broker = broker
        self.name = name
        self.partitioner: Partitioner = partitioner
        self.dead = False
        self.fail_deliveries: list[KafkaError] = []  # the next deliveries fail with these
        self._queue: list[Queued] = []
        self._turn = itertools.count()

    def __repr__(self) -> str:
        return f"FakeProducer({self.name!r})"

    def _before(self, name: Operation) -> None:
        if self.dead:
            raise SimulatedCrash(f"{self.name} is dead ({name})")
        self.broker.hooks.run("before", name, self)

    def _after(self, name: Operation) -> None:
        self.broker.hooks.run("after", name, self)

    def __len__(self) -> int:
        return len(self._queue)

    def __bool__(self) -> bool:
        return True

    @operation("produce")
    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        partition: int = -1,
        callback: DeliveryCallback | None = None,
        on_delivery: DeliveryCallback | None = None,
        timestamp: int = 0,
        headers: HeadersIn = None,
    ) -> None:
        self._queue.append(
            Queued(
                topic,
                partition,
                as_bytes(key),
                as_bytes(value),
                stored_headers(headers),
                timestamp,
                on_delivery or callback,
            )
        )

    @operation("poll")
    def poll(self, timeout: float = -1) -> int:
        return self._deliver()

    @operation("flush")
    def flush(self, timeout: float = -1) -> int:
        self._deliver()
        return 0

    def lose_queue(self) -> None:
        """What a killed process loses: the records not yet delivered."""
        self._queue.clear()

    def _deliver(self) -> int:
        queued, self._queue = self._queue, []
        for item in queued:
            error: KafkaError | None = None
            partition = item.partition
            count = self.broker.partition_count(item.topic)
            if self.fail_deliveries:
                error = self.fail_deliveries.pop(0)
            elif count is None or partition >= count:
                error = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
            if error is not None or count is None:
                message = Message(topic=item.topic, key=item.key, value=item.value, error=error)
            else:
                if partition < 0:
                    partition = self._partition(item.key, count)
                record = self.broker.append(
                    item.topic, partition, item.key, item.value, item.headers, item.timestamp_ms
                )
                message = record.message()
            if item.on_delivery is not None:
                item.on_delivery(error, message)
        return len(queued)

    def _partition(self, key: bytes | None, count: int) -> int:
        if key is None:
            return next(self._turn) % count
        if self.partitioner == "murmur2_random":
            return murmur2(key, count)
        return consistent(key, count)
