"""An in-memory Kafka broker for deterministic tests (after arroyo's local broker).

Topics of N partitions (:mod:`tests.fakes.kafka_log`), consumer groups with a deterministic
cooperative-sticky-like assignor (:mod:`tests.fakes.kafka_group`), and clients that are real
``confluent_kafka.Consumer``/``Producer`` subclasses (:mod:`tests.fakes.kafka_consumer`,
:mod:`tests.fakes.kafka_producer`): the code under test takes them as they are. Nothing
waits on wall time, nothing runs in the background: a rebalance or a delivery happens inside
the client call that serves it.

Faults a test injects (see each method): :meth:`FakeBroker.kill` (the process died: no
commit, no callback, every later call raises :class:`~tests.fakes.crash.SimulatedCrash`, its
partitions go to the other members), :meth:`FakeBroker.expire` (its session timed out: it
sees ``on_lost``), :meth:`FakeBroker.fail_next_commit`, hooks :meth:`FakeBroker.hook` before or
after any operation (:mod:`tests.fakes.kafka_hooks`), and an explicit
:meth:`FakeBroker.rebalance`.

Not modelled: transactions and ``isolation.level``, compaction, replication and acks, quotas,
fetch sizes in bytes, offset commit metadata, ``on_commit``/``error_cb``/``stats_cb``, the
real assignor's exact choice, timing of any kind (session and poll timeouts happen only when
a test calls :meth:`FakeBroker.expire`).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from tests.fakes.crash import SimulatedCrash
from tests.fakes.kafka_consumer import FakeConsumer, OffsetReset
from tests.fakes.kafka_group import GroupState
from tests.fakes.kafka_hooks import Hook, Hooks, Operation, When
from tests.fakes.kafka_log import PartitionKey, PartitionLog, StoredHeaders, StoredRecord
from tests.fakes.kafka_producer import FakeProducer, Partitioner

FakeClient = FakeConsumer | FakeProducer
_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: record timestamps count up from here


@dataclass(frozen=True)
class CommitFault:
    after_apply: bool
    crash: bool
    error_code: int


class FakeBroker:
    """One cluster. Thread-safe (one lock; callbacks and hooks run outside it)."""

    def __init__(self, *, clock_ms: Callable[[], int] | None = None) -> None:
        ticks = itertools.count()
        self.lock = threading.RLock()
        self.hooks = Hooks()
        self._clock_ms = clock_ms or (lambda: _EPOCH_MS + next(ticks))
        self._topics: dict[str, list[PartitionLog]] = {}
        self._groups: dict[str, GroupState] = {}
        self._commit_faults: dict[str, CommitFault] = {}
        self._ids = itertools.count(1)

    # -- topics and records ---------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = 1) -> None:
        with self.lock:
            if name in self._topics:
                raise KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS, name))
            self._topics[name] = [PartitionLog(name, p) for p in range(partitions)]
            for group in self._groups.values():
                if any(name in topics for topics in group.subscriptions.values()):
                    self._rebalance(group)

    def topic_names(self) -> list[str]:
        with self.lock:
            return sorted(self._topics)

    def partition_count(self, topic: str) -> int | None:
        with self.lock:
            logs = self._topics.get(topic)
            return None if logs is None else len(logs)

    def log(self, topic: str, partition: int) -> PartitionLog:
        """Raises ``KafkaException`` (``UNKNOWN_TOPIC_OR_PART``) for an unknown partition."""
        with self.lock:
            logs = self._topics.get(topic, [])
            if not 0 <= partition < len(logs):
                raise KafkaException(
                    KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"{topic}[{partition}]")
                )
            return logs[partition]

    def append(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: StoredHeaders | None = None,
        timestamp_ms: int = 0,
    ) -> StoredRecord:
        """Store a record (what a producer's delivery does); ``timestamp_ms`` 0: now."""
        with self.lock:
            log = self.log(topic, partition)
            return log.append(key, value, headers, timestamp_ms or self._clock_ms())

    def records(self, topic: str, partition: int | None = None) -> list[StoredRecord]:
        """The records still held, of one partition or of all (by partition, then offset)."""
        with self.lock:
            logs = self._topics[topic] if partition is None else [self.log(topic, partition)]
            return [r for log in logs for r in log.records[log.log_start :]]

    def truncate(self, topic: str, partition: int, before: int) -> None:
        """Delete the records below ``before``, as retention does."""
        with self.lock:
            self.log(topic, partition).truncate(before)

    # -- clients --------------------------------------------------------------------------

    def consumer(
        self,
        group_id: str = "",
        *,
        client_id: str = "consumer",
        auto_offset_reset: OffsetReset = "earliest",
        enable_partition_eof: bool = False,
        max_run: int = 500,
    ) -> FakeConsumer:
        """A consumer (member id ``{client_id}-{n}``); it joins ``group_id`` on subscribe."""
        return FakeConsumer(
            self,
            f"{client_id}-{next(self._ids)}",
            group_id,
            auto_offset_reset=auto_offset_reset,
            enable_partition_eof=enable_partition_eof,
            max_run=max_run,
        )

    def producer(
        self, *, client_id: str = "producer", partitioner: Partitioner = "consistent_random"
    ) -> FakeProducer:
        return FakeProducer(self, f"{client_id}-{next(self._ids)}", partitioner)

    # -- groups ---------------------------------------------------------------------------

    def committed_offset(self, group_id: str, topic: str, partition: int) -> int | None:
        with self.lock:
            group = self._groups.get(group_id)
            return None if group is None else group.committed.get((topic, partition))

    def members(self, group_id: str) -> list[str]:
        """Member ids, in join order."""
        with self.lock:
            return self._group(group_id).members

    def held(self, consumer: FakeConsumer) -> set[PartitionKey]:
        """What the group considers ``consumer`` to hold (seen assigned, not revoked)."""
        with self.lock:
            return set(self._group(consumer.group_id).owned.get(consumer.member_id, set()))

    def rebalance(
        self,
        group_id: str,
        assignment: Mapping[FakeConsumer, Iterable[PartitionKey]] | None = None,
    ) -> None:
        """A rebalance of ``group_id``: to ``assignment`` if given (members left out get
        nothing), else the assignor's choice. Members see it at their next consume/poll."""
        with self.lock:
            group = self._group(group_id)
            if assignment is None:
                self._rebalance(group)
            else:
                explicit = {c.member_id: set(keys) for c, keys in assignment.items()}
                group.rebalance({}, explicit)

    def join(self, consumer: FakeConsumer) -> None:
        """For the fake consumer's ``subscribe``."""
        assert consumer.topics is not None
        with self.lock:
            group = self._group(consumer.group_id)
            group.join(consumer.member_id, consumer.topics)
            self._rebalance(group)

    def leave(self, consumer: FakeConsumer) -> None:
        """For the fake consumer's ``close``."""
        with self.lock:
            group = self._group(consumer.group_id)
            group.leave(consumer.member_id)
            self._rebalance(group)

    def changes_for(self, consumer: FakeConsumer) -> tuple[set[PartitionKey], set[PartitionKey]]:
        """For the fake consumer: (lost, to revoke) since its last call. A member whose
        session expired rejoins here."""
        with self.lock:
            group = self._group(consumer.group_id)
            member = consumer.member_id
            lost = group.lost.pop(member, None)
            if lost is not None:
                assert consumer.topics is not None
                group.join(member, consumer.topics)
                self._rebalance(group)
            revoked = group.owned.get(member, set()) - group.target.get(member, set())
            return lost or set(), revoked

    def release(self, consumer: FakeConsumer, keys: set[PartitionKey]) -> None:
        """For the fake consumer: ``keys`` are revoked (after its ``on_revoke``)."""
        with self.lock:
            self._group(consumer.group_id).owned.get(consumer.member_id, set()).difference_update(
                keys
            )

    def claim(self, consumer: FakeConsumer) -> set[PartitionKey]:
        """For the fake consumer: the partitions of its target no one else holds now."""
        with self.lock:
            group = self._group(consumer.group_id)
            owned = group.owned.setdefault(consumer.member_id, set())
            gained = {
                key
                for key in group.target.get(consumer.member_id, set()) - owned
                if group.owner_of(key) is None
            }
            owned |= gained
            return gained

    def commit(self, consumer: FakeConsumer, offsets: list[TopicPartition]) -> list[TopicPartition]:
        """For the fake consumer's ``commit``. A member with revocations it has not yet
        seen gets ``REBALANCE_IN_PROGRESS``, one whose session expired ``UNKNOWN_MEMBER_ID``
        (nothing is applied); a member may commit any partition otherwise (as Kafka's
        classic protocol allows)."""
        with self.lock:
            fault = self._commit_faults.pop(consumer.member_id, None)
            if fault is not None and not fault.after_apply:
                self._fail_commit(consumer, fault)
            group = self._group(consumer.group_id)
            member = consumer.member_id
            if member in group.lost:
                raise KafkaException(KafkaError(KafkaError.UNKNOWN_MEMBER_ID))
            if group.owned.get(member, set()) - group.target.get(member, set()):
                raise KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))
            for tp in offsets:
                self.log(tp.topic, tp.partition)
                group.committed[(tp.topic, tp.partition)] = tp.offset
            if fault is not None:
                self._fail_commit(consumer, fault)
            return [TopicPartition(tp.topic, tp.partition, tp.offset) for tp in offsets]

    # -- faults ---------------------------------------------------------------------------

    def kill(self, client: FakeClient) -> None:
        """``client``'s process died: no commit, no callback. Every later call on it raises
        :class:`SimulatedCrash`; a consumer's partitions go to the other members at their
        next poll (as after its session timed out); a producer's queue is lost."""
        with self.lock:
            client.dead = True
            if isinstance(client, FakeProducer):
                client.lose_queue()
            elif client.topics is not None:
                group = self._group(client.group_id)
                group.leave(client.member_id)
                self._rebalance(group)

    def expire(self, consumer: FakeConsumer) -> None:
        """``consumer``'s session timed out (it did not poll in time): its partitions go to
        the others now; at its next poll it sees ``on_lost`` and rejoins. Until then its
        commits fail with ``UNKNOWN_MEMBER_ID``."""
        with self.lock:
            group = self._group(consumer.group_id)
            held = group.leave(consumer.member_id)
            group.lost[consumer.member_id] = held
            self._rebalance(group)

    def fail_next_commit(
        self,
        consumer: FakeConsumer,
        *,
        after_apply: bool,
        crash: bool = False,
        error_code: int = KafkaError.REQUEST_TIMED_OUT,
    ) -> None:
        """``consumer``'s next commit reaches the broker (``after_apply``) or not, then its
        caller gets ``KafkaException(error_code)``, or the process dies there (``crash``:
        killed, :class:`SimulatedCrash`)."""
        with self.lock:
            self._commit_faults[consumer.member_id] = CommitFault(after_apply, crash, error_code)

    def hook(
        self,
        when: When,
        operation: Operation,
        action: Callable[[], object],
        *,
        client: FakeClient | None = None,
        times: int | None = 1,
    ) -> Hook:
        """Run ``action`` just ``before`` ``client``'s (or any client's) next ``times``
        ``operation`` calls (None: every call), or just ``after`` such a call returned,
        before its caller sees the result. Returns the hook (``hooks.remove`` it)."""
        return self.hooks.add(Hook(operation, when, action, client, times))

    def crash(self, client: FakeClient) -> SimulatedCrash:
        """Kill ``client`` and return the crash to raise (``raise broker.crash(c)``)."""
        self.kill(client)
        return SimulatedCrash(f"{client!r} killed")

    # -- inside ---------------------------------------------------------------------------

    def _fail_commit(self, consumer: FakeConsumer, fault: CommitFault) -> None:
        if fault.crash:
            raise self.crash(consumer)
        raise KafkaException(KafkaError(fault.error_code, "injected commit failure"))

    def _group(self, group_id: str) -> GroupState:
        group = self._groups.get(group_id)
        if group is None:
            group = self._groups[group_id] = GroupState(group_id)
        return group

    def _rebalance(self, group: GroupState) -> None:
        topics = {t for subscribed in group.subscriptions.values() for t in subscribed}
        group.rebalance({t: [(t, p) for p in range(len(self._topics.get(t, [])))] for t in topics})
