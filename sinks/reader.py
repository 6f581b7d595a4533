"""A lane's own reader: one partition of the events topic from a given offset, outside the
sink group (``assign``, no commits). Used by lanes that fell behind the group (parked,
resumed, replaying) so they catch up without holding anyone else back."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from runtime.kafka_connection import KafkaConnection
from runtime.standalone_consumer import standalone_consumer


class PartitionReader:
    """Reads ``topic``/``partition`` from ``start`` with ``consumer`` (assigned here, closed
    by :meth:`close`). Not thread-safe (the worker loop)."""

    def __init__(self, consumer: Consumer, topic: str, partition: int, start: int) -> None:
        self.partition = partition
        self._tp = TopicPartition(topic, partition, start)
        self._consumer = consumer
        self._consumer.assign([self._tp])
        self.start = start

    @classmethod
    def connect(
        cls, kafka: KafkaConnection, topic: str, partition: int, start: int, *, client_id: str
    ) -> PartitionReader:
        """A reader with a consumer of its own on ``kafka`` (no group, no commits)."""
        consumer = standalone_consumer(
            kafka,
            client_id=client_id,
            **{
                "enable.auto.offset.store": False,
                "fetch.wait.max.ms": 100,
                "queued.max.messages.kbytes": 16384,
            },
        )
        return cls(consumer, topic, partition, start)

    def log_start(self, timeout_s: float = 5.0) -> int:
        """The partition's first offset still held (retention may have removed older ones)."""
        low, _ = self._consumer.get_watermark_offsets(self._tp, timeout=timeout_s)
        return int(low)

    def read(self, max_records: int) -> list[Message]:
        """Up to ``max_records`` records, without waiting; errors other than end-of-
        partition raise :class:`KafkaException`."""
        found = []
        for message in self._consumer.consume(max_records, 0):
            error = message.error()
            if error is None:
                found.append(message)
            elif error.retriable() or error.code() == error._PARTITION_EOF:
                continue
            else:
                raise KafkaException(error)
        return found

    def rewind(self, offset: int) -> None:
        """Read from ``offset`` again (records handed out after it are read again)."""
        self._consumer.seek(TopicPartition(self._tp.topic, self.partition, offset))

    def close(self) -> None:
        self._consumer.close()
