"""The fake broker's consumer: a ``confluent_kafka.Consumer`` the code under test uses as is.

Group mode (``subscribe``): the member sees rebalances inside its next ``consume``/``poll``
(``on_lost``, then ``on_revoke``, then ``on_assign``, each with the partitions that changed,
as the cooperative protocol does); it starts a newly assigned partition at the group's
committed offset, or at ``auto.offset.reset``. Assign mode (``assign``): no group, the
given offsets (``OFFSET_BEGINNING``, ``OFFSET_END``, or the committed one).

``consume`` and ``poll`` never wait: they return what is there (``timeout`` is ignored).
``consume`` hands out runs of one partition at a time (at most ``max_run`` records each),
starting with the next partition on every call. ``close`` of a member calls ``on_revoke``
with what it holds, then leaves the group. Methods the fake does not implement fail as on a
closed client (``RuntimeError``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import ClusterMetadata, PartitionMetadata, TopicMetadata

from tests.fakes.crash import SimulatedCrash
from tests.fakes.kafka_hooks import Operation, operation
from tests.fakes.kafka_log import PartitionKey, end_of_partition

if TYPE_CHECKING:
    from tests.fakes.kafka_broker import FakeBroker

RebalanceCallback = Callable[[Consumer, list[TopicPartition]], None]
OffsetReset = Literal["earliest", "latest"]


def topic_partitions(keys: set[PartitionKey]) -> list[TopicPartition]:
    return [TopicPartition(topic, partition) for topic, partition in sorted(keys)]


class FakeConsumer(Consumer):
    """Made by :meth:`tests.fakes.kafka_broker.FakeBroker.consumer`. One thread at a time."""

    def __init__(
        self,
        broker: FakeBroker,
        member_id: str,
        group_id: str,
        *,
        auto_offset_reset: OffsetReset,
        enable_partition_eof: bool,
        max_run: int,
    ) -> None:  # the C client is never initialised: every method used is overridden
        self.broker = broker
        self.member_id = member_id
        self.group_id = group_id
        self.auto_offset_reset: OffsetReset = auto_offset_reset
        self.enable_partition_eof = enable_partition_eof
        self.max_run = max_run
        self.dead = False
        self.closed = False
        self.topics: tuple[str, ...] | None = None  # subscribed: group mode
        self._on_assign: RebalanceCallback | None = None
        self._on_revoke: RebalanceCallback | None = None
        self._on_lost: RebalanceCallback | None = None
        self._assigned: set[PartitionKey] = set()
        self._fetch_at: dict[PartitionKey, int] = {}
        self._returned_until: dict[PartitionKey, int] = {}
        self._paused: set[PartitionKey] = set()
        self._eof_at: dict[PartitionKey, int] = {}
        self._turn = 0

    def __repr__(self) -> str:
        return f"FakeConsumer({self.member_id!r}, group={self.group_id!r})"

    # -- the hooks (tests.fakes.kafka_hooks) ------------------------------------------------

    def _before(self, name: Operation) -> None:
        if self.dead:
            raise SimulatedCrash(f"{self.member_id} is dead ({name})")
        if self.closed:
            raise RuntimeError("Consumer closed")
        self.broker.hooks.run("before", name, self)

    def _after(self, name: Operation) -> None:
        self.broker.hooks.run("after", name, self)

    # -- group membership -----------------------------------------------------------------

    @operation("subscribe")
    def subscribe(
        self,
        topics: list[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        if not self.group_id:
            raise KafkaException(KafkaError(KafkaError._INVALID_ARG, "group.id is required"))
        self.topics = tuple(topics)
        self._on_assign, self._on_revoke, self._on_lost = on_assign, on_revoke, on_lost
        self.broker.join(self)

    def memberid(self) -> str:
        return self.member_id

    def _serve_rebalance(self) -> None:
        """Run the callbacks of what changed since the last call (group mode only)."""
        if self.topics is None:
            return
        lost, revoked = self.broker.changes_for(self)
        if lost:
            self._forget(lost)
            callback = self._on_lost or self._on_revoke
            if callback is not None:
                callback(self, topic_partitions(lost))
        if revoked:
            if self._on_revoke is not None:
                self._on_revoke(self, topic_partitions(revoked))
            self.broker.release(self, revoked)
            self._forget(revoked)
        gained = self.broker.claim(self)
        if gained:
            self._start(gained, OFFSET_INVALID)
            if self._on_assign is not None:
                self._on_assign(self, topic_partitions(gained))

    def _forget(self, keys: set[PartitionKey]) -> None:
        self._assigned -= keys
        self._paused -= keys
        for key in keys:
            self._fetch_at.pop(key, None)
            self._returned_until.pop(key, None)
            self._eof_at.pop(key, None)

    def _start(self, keys: set[PartitionKey] | dict[PartitionKey, int], offset: int) -> None:
        """Start fetching ``keys`` at their offsets (or ``offset`` for a set)."""
        for key in keys:
            requested = keys[key] if isinstance(keys, dict) else offset
            self._assigned.add(key)
            self._fetch_at[key] = self._start_offset(key, requested)

    def _start_offset(self, key: PartitionKey, requested: int) -> int:
        log = self.broker.log(*key)
        if requested >= 0:
            return requested
        if requested == OFFSET_BEGINNING:
            return log.log_start
        if requested == OFFSET_END:
            return log.high
        committed = self.broker.committed_offset(self.group_id, *key)
        if committed is not None:
            return committed
        return log.log_start if self.auto_offset_reset == "earliest" else log.high

    # -- assign mode ----------------------------------------------------------------------

    @operation("assign")
    def assign(self, partitions: list[TopicPartition]) -> None:
        if self.topics is not None:
            return  # inside on_assign: the assignment is already applied
        self._forget(set(self._assigned))
        self._start({(tp.topic, tp.partition): tp.offset for tp in partitions}, OFFSET_INVALID)

    @operation("unassign")
    def unassign(self) -> None:
        if self.topics is None:
            self._forget(set(self._assigned))

    @operation("assignment")
    def assignment(self) -> list[TopicPartition]:
        return topic_partitions(self._assigned)

    @operation("seek")
    def seek(self, partition: TopicPartition) -> None:
        key = (partition.topic, partition.partition)
        if key not in self._assigned:
            raise KafkaException(KafkaError(KafkaError._STATE, "partition not assigned"))
        self._fetch_at[key] = self._start_offset(key, partition.offset)
        self._eof_at.pop(key, None)

    # -- reading --------------------------------------------------------------------------

    @operation("consume")
    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        self._serve_rebalance()
        return self._fetch(num_messages)

    @operation("poll")
    def poll(self, timeout: float = -1) -> Message | None:
        self._serve_rebalance()
        found = self._fetch(1)
        return found[0] if found else None

    def _fetch(self, wanted: int) -> list[Message]:
        with self.broker.lock:
            keys = sorted(self._assigned - self._paused)
            if not keys:
                return []
            turn = self._turn % len(keys)
            self._turn += 1
            found: list[Message] = []
            for key in keys[turn:] + keys[:turn]:
                if len(found) >= wanted:
                    break
                log = self.broker.log(*key)
                at = self._fetch_at[key]
                if not log.log_start <= at <= log.high:  # out of range: auto.offset.reset
                    at = log.log_start if self.auto_offset_reset == "earliest" else log.high
                records = log.read(at, min(self.max_run, wanted - len(found)))
                if records:
                    found.extend(record.message() for record in records)
                    at = records[-1].offset + 1
                    self._returned_until[key] = at
                elif self.enable_partition_eof and self._eof_at.get(key) != at:
                    self._eof_at[key] = at
                    found.append(end_of_partition(key, at))
                self._fetch_at[key] = at
            return found

    @operation("pause")
    def pause(self, partitions: list[TopicPartition]) -> None:
        self._paused |= {(tp.topic, tp.partition) for tp in partitions}

    @operation("resume")
    def resume(self, partitions: list[TopicPartition]) -> None:
        self._paused -= {(tp.topic, tp.partition) for tp in partitions}

    @operation("position")
    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [
            TopicPartition(
                tp.topic,
                tp.partition,
                self._returned_until.get((tp.topic, tp.partition), OFFSET_INVALID),
            )
            for tp in partitions
        ]

    @operation("get_watermark_offsets")
    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = -1, cached: bool = False
    ) -> tuple[int, int]:
        key = (partition.topic, partition.partition)
        log = self.broker.log(*key)
        if cached and key not in self._fetch_at:
            return OFFSET_INVALID, OFFSET_INVALID  # nothing fetched: nothing cached
        return log.log_start, log.high

    @operation("list_topics")
    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        metadata = ClusterMetadata()
        names = [topic] if topic is not None else self.broker.topic_names()
        for name in names:
            entry = TopicMetadata()
            entry.topic = name
            count = self.broker.partition_count(name)
            if count is None:
                entry.error = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
            for partition in range(count or 0):
                part = PartitionMetadata()
                part.id = partition
                entry.partitions[partition] = part
            metadata.topics[name] = entry
        return metadata

    # -- offsets --------------------------------------------------------------------------

    @overload
    def commit(self, *, asynchronous: Literal[True] = ...) -> None: ...
    @overload
    def commit(self, *, asynchronous: Literal[False]) -> list[TopicPartition]: ...
    @overload
    def commit(self, *, message: Message, asynchronous: Literal[True] = ...) -> None: ...
    @overload
    def commit(self, *, message: Message, asynchronous: Literal[False]) -> list[TopicPartition]: ...
    @overload
    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: Literal[True] = ...
    ) -> None: ...
    @overload
    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: Literal[False]
    ) -> list[TopicPartition]: ...
    def commit(
        self,
        *,
        message: Message | None = None,
        offsets: list[TopicPartition] | None = None,
        asynchronous: bool = True,
    ) -> list[TopicPartition] | None:
        """Applied at once, even when ``asynchronous`` (then nothing is returned)."""
        self._before("commit")  # not @operation: mypy checks the overloads against it
        if offsets is None and message is not None:
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            if topic is None or partition is None or offset is None:
                raise KafkaException(KafkaError(KafkaError._INVALID_ARG, "not a record"))
            offsets = [TopicPartition(topic, partition, offset + 1)]
        elif offsets is None:
            offsets = [
                TopicPartition(topic, partition, until)
                for (topic, partition), until in sorted(self._returned_until.items())
            ]
        committed = self.broker.commit(self, offsets)
        self._after("commit")
        return None if asynchronous else committed

    @operation("committed")
    def committed(
        self, partitions: list[TopicPartition], timeout: float = -1
    ) -> list[TopicPartition]:
        found = []
        for tp in partitions:
            offset = self.broker.committed_offset(self.group_id, tp.topic, tp.partition)
            found.append(
                TopicPartition(tp.topic, tp.partition, OFFSET_INVALID if offset is None else offset)
            )
        return found

    # -- the end --------------------------------------------------------------------------

    @operation("close")
    def close(self) -> None:
        """A member revokes what it holds (``on_revoke``) and leaves the group."""
        if self.topics is not None:
            held = set(self._assigned)
            if held and self._on_revoke is not None:
                self._on_revoke(self, topic_partitions(held))
            self.broker.leave(self)
        self._forget(set(self._assigned))
        self.closed = True
