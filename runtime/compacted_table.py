"""A compacted Kafka topic used as a table: the latest value per key.

Shared control-plane machinery: the destination store, the sinks' progress and the account
facts (:mod:`accounts.store`) are such tables (the destinations and the account facts are
JSON records keyed by id: :mod:`runtime.keyed_records`, :mod:`runtime.keyed_record_store`).
:class:`CompactedTable` assigns itself every partition of its topic (no consumer group:
every reader sees every key), :meth:`~CompactedTable.load` reads up to the end offsets
taken when it starts, and :meth:`~CompactedTable.changes` then returns what was written
since, so a running worker sees a change without a restart. :class:`TableWriter` writes
keyed records (``None``: a tombstone that deletes the key) and :meth:`~TableWriter.flush`
raises unless every write was acknowledged by all in-sync replicas.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from confluent_kafka import (
    OFFSET_BEGINNING,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from runtime.kafka_connection import KafkaConnection
from runtime.kafka_failover import is_failover
from runtime.kafka_logs import librdkafka_logger
from runtime.standalone_consumer import standalone_consumer

Change = tuple[bytes, bytes | None]

#: How often a flush rewrites a key whose latest write failed before it raises.
REWRITE_ROUNDS = 2
_ATTEMPT_S = 5.0  # one end-offset request at most (see _high_watermark)


# librdkafka's own log lines go through Python logging (JSON logs), not stderr.
_CLIENT_LOG = librdkafka_logger("sink")


class TableSource(Protocol):
    """What a follower of a table reads: :class:`CompactedTable`, or a fake in unit tests.
    :meth:`load` first (the whole table), then :meth:`changes` (what was written since)."""

    def load(self, timeout_s: float = ...) -> dict[bytes, bytes]: ...

    def changes(self, timeout_s: float = ...) -> list[Change]: ...

    def close(self) -> None: ...


class FollowedTable(TableSource, Protocol):
    """A :class:`TableSource` that is also read to its end on demand (the sinks' progress,
    on assignment): :class:`CompactedTable`, or a fake."""

    def read_to_end(
        self, apply: Callable[[bytes, bytes | None], None], *, timeout_s: float = ...
    ) -> None: ...


class KeyedWriter(Protocol):
    """What writes a table: :class:`TableWriter`, or a fake. :meth:`put` queues a write
    (``None``: delete the key), :meth:`flush` returns once every queued write is durable."""

    def put(self, key: bytes, value: bytes | None) -> None: ...

    def flush(self, timeout_s: float = ...) -> None: ...

    def close(self, timeout_s: float = ...) -> None: ...


class TableError(RuntimeError):
    """The table's topic could not be read or written; the message says which and why."""


class CompactedTable:
    """Reads one compacted topic. Not thread-safe: one thread loads and polls it."""

    def __init__(self, kafka: KafkaConnection, topic: str, *, client_id: str) -> None:
        self._topic = topic
        self._consumer = standalone_consumer(
            kafka,
            client_id=client_id,
            **{"enable.partition.eof": False, "isolation.level": "read_committed"},
        )
        self._assigned = False
        self._partitions: list[TopicPartition] = []

    def _assign(self, timeout_s: float) -> list[TopicPartition]:
        try:
            metadata = self._consumer.list_topics(self._topic, timeout=timeout_s)
        except KafkaException as exc:
            raise TableError(f"topic {self._topic}: {exc.args[0]}") from exc
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise TableError(
                f"topic {self._topic} does not exist: create it with `auditlog topics ensure`"
            )
        partitions = [TopicPartition(self._topic, p, 0) for p in sorted(topic.partitions)]
        # Offset 0 (or the log start, if compaction or retention removed it): every record.
        for tp in partitions:
            tp.offset = OFFSET_BEGINNING
        self._consumer.assign(partitions)
        self._assigned = True
        return partitions

    def load(self, timeout_s: float = 30.0) -> dict[bytes, bytes]:
        """Every live key and its latest value, read up to the end offsets of now. Raises
        :class:`TableError` when the topic is missing or not read within ``timeout_s``."""
        self._partitions = self._assign(timeout_s)
        table: dict[bytes, bytes] = {}

        def apply(key: bytes, value: bytes | None) -> None:
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value

        self.read_to_end(apply, timeout_s=timeout_s)
        return table

    def read_to_end(
        self, apply: Callable[[bytes, bytes | None], None], *, timeout_s: float = 30.0
    ) -> None:
        """Hand every record up to the end offsets of now to ``apply`` (after
        :meth:`load`, only the ones not read yet)."""
        deadline = time.monotonic() + timeout_s
        ends: dict[int, int] = {}
        for tp in self._partitions:
            ends[tp.partition] = self._high_watermark(tp, deadline)
        self._drop_reached(ends)
        while ends:
            if time.monotonic() > deadline:
                raise TableError(
                    f"topic {self._topic}: not read to its end within {timeout_s:.0f} s"
                )
            for message in self._consumer.consume(1000, 0.1):
                for key, value in _changes([message]):
                    apply(key, value)
                partition, offset = message.partition(), message.offset()
                if (
                    partition is not None
                    and offset is not None
                    and offset + 1 >= ends.get(partition, 0)
                ):
                    ends.pop(partition, None)
            # Compaction can remove the last records: trust the position too.
            self._drop_reached(ends)

    def _high_watermark(self, tp: TopicPartition, deadline: float) -> int:
        """The partition's end offset; retried while the broker says it is not ready yet
        (a topic created a moment ago, or whose leader died, has no leader for a while)."""
        while True:
            try:
                _, high = self._consumer.get_watermark_offsets(
                    # Short attempts: a request stuck on a dead leader's handle is not
                    # re-routed; the next attempt goes to the new leader.
                    tp,
                    timeout=min(_ATTEMPT_S, max(0.1, deadline - time.monotonic())),
                )
                return int(high)
            except KafkaException as exc:
                # Also while a leader moves to another broker (a broker of a cluster died).
                if not is_failover(exc) or time.monotonic() > deadline:
                    raise TableError(f"topic {self._topic}: {exc.args[0]}") from exc
                time.sleep(0.1)

    def _drop_reached(self, ends: dict[int, int]) -> None:
        """Forget the partitions whose position reached their end offset."""
        if not ends:
            return
        for tp in self._consumer.position([TopicPartition(self._topic, p) for p in ends]):
            end = ends.get(tp.partition, 0)
            if tp.offset >= end or (tp.offset < 0 and end == 0):
                ends.pop(tp.partition, None)

    def changes(self, timeout_s: float = 0.0) -> list[Change]:
        """Records written since the last call (or since :meth:`load`), in order per key;
        waits at most ``timeout_s`` for the first one."""
        if not self._assigned:
            raise TableError("load() the table before asking for changes")
        return list(_changes(self._consumer.consume(1000, timeout_s)))

    def close(self) -> None:
        self._consumer.close()


def _changes(messages: list[Message]) -> Iterator[Change]:
    for message in messages:
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                continue
            raise TableError(f"reading {message.topic()}: {error.str()}")
        key = message.key()
        if key is None:
            continue  # not ours: every record of a table has a key
        yield bytes(key), message.value()


class ProducerLike(Protocol):
    """The part of ``confluent_kafka.Producer`` a :class:`TableWriter` uses (a fake in tests)."""

    def produce(
        self,
        topic: str,
        value: bytes | None = ...,
        key: bytes | None = ...,
        *,
        on_delivery: Callable[[KafkaError | None, Message], None] = ...,
    ) -> None: ...

    def poll(self, timeout: float = ...) -> int: ...

    def flush(self, timeout: float = ...) -> int: ...


class TableWriter:
    """Writes keyed records to a compacted topic (idempotent, acks=all). Thread-safe.

    A write that fails is not forgotten by the next :meth:`flush` that sees it: until a later
    write of the same key is acknowledged, every flush rewrites the key's latest value (up to
    :data:`REWRITE_ROUNDS` times) and raises if it still does not land. Callers flush
    concurrently (the sinks' delivery threads before a send, their loop before a commit);
    each of them must learn that what it relies on may not be stored, not only the first.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        *,
        client_id: str,
        producer: ProducerLike | None = None,
    ) -> None:
        self._topic = topic
        self._producer: ProducerLike = producer or Producer(
            {
                **kafka.properties(),
                "client.id": client_id,
                "logger": _CLIENT_LOG,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "zstd",
            }
        )
        self._lock = threading.Lock()
        self._sequence = 0
        # key -> (sequence, value) of its latest write not acknowledged yet
        self._unacknowledged: dict[bytes, tuple[int, bytes | None]] = {}
        # key -> why its latest write failed; kept until a later write of it is acknowledged
        self._failed: dict[bytes, str] = {}

    def _on_delivery(
        self, key: bytes, sequence: int, error: KafkaError | None, _message: Message
    ) -> None:
        # Reports of one key come in the order of its writes (one partition per key).
        with self._lock:
            latest = self._unacknowledged.get(key)
            if error is None:
                self._failed.pop(key, None)  # this value supersedes every earlier one
                if latest is not None and latest[0] == sequence:
                    del self._unacknowledged[key]
            else:
                self._failed[key] = error.str()

    def put(self, key: bytes, value: bytes | None) -> None:
        """Queue a write (``None`` deletes the key); :meth:`flush` confirms it."""
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
            self._unacknowledged[key] = (sequence, value)
        on_delivery = functools.partial(self._on_delivery, key, sequence)
        try:
            self._producer.produce(self._topic, value, key, on_delivery=on_delivery)
        except BufferError:
            self._producer.flush(5.0)
            self._producer.produce(self._topic, value, key, on_delivery=on_delivery)
        self._producer.poll(0)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every queued write is acknowledged; raises :class:`TableError` when a
        key's latest write failed (after rewriting it) or is still pending after
        ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        pending = self._producer.flush(timeout_s)
        for _ in range(REWRITE_ROUNDS):
            with self._lock:
                retry = [
                    (key, self._unacknowledged[key][1])
                    for key in self._failed
                    if key in self._unacknowledged
                ]
            if not retry or pending:
                break
            for key, value in retry:
                self.put(key, value)
            pending = self._producer.flush(max(0.0, deadline - time.monotonic()))
        with self._lock:
            failures = [f"{key!r}: {why}" for key, why in self._failed.items()]
        if failures:
            raise TableError(
                f"writing {self._topic} failed ({len(failures)} keys not stored): "
                f"{'; '.join(failures[:3])}"
            )
        if pending:
            raise TableError(
                f"writing {self._topic}: {pending} writes not acknowledged within {timeout_s} s"
            )

    def close(self, timeout_s: float = 30.0) -> None:
        self.flush(timeout_s)
