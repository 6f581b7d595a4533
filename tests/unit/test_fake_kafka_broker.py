"""The in-memory Kafka broker of the deterministic tests (tests/fakes/): what its clients
do, its group protocol and its faults. tests/stack/test_fake_broker_contract.py checks the
same behaviour against the real broker."""

from __future__ import annotations

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
    consistent,
    murmur2,
)

from tests.fakes.crash import SimulatedCrash
from tests.fakes.kafka_broker import FakeBroker
from tests.fakes.kafka_consumer import FakeConsumer
from tests.fakes.kafka_group import sticky_assignment

TOPIC = "events"


class Events:
    """The rebalance callbacks one member saw, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[int]]] = []

    def assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.seen.append(("assign", [tp.partition for tp in partitions]))

    def revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.seen.append(("revoke", [tp.partition for tp in partitions]))

    def lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.seen.append(("lost", [tp.partition for tp in partitions]))

    def subscribe(self, consumer: Consumer, topic: str = TOPIC) -> None:
        consumer.subscribe([topic], on_assign=self.assign, on_revoke=self.revoke, on_lost=self.lost)


def broker_with(partitions: int = 4, records: int = 0) -> FakeBroker:
    broker = FakeBroker()
    broker.create_topic(TOPIC, partitions)
    for n in range(records):
        broker.append(TOPIC, n % partitions, f"k{n}".encode(), f"v{n}".encode())
    return broker


def settled_pair(broker: FakeBroker) -> list[tuple[FakeConsumer, Events]]:
    """Two members of group ``g`` that both saw their assignment."""
    pair = [(broker.consumer("g"), Events()), (broker.consumer("g"), Events())]
    for consumer, events in pair:
        events.subscribe(consumer)
    for consumer, _ in pair + pair:
        consumer.poll(0)
    return pair


def offsets(messages: list[Message]) -> list[tuple[int | None, int | None]]:
    return [(m.partition(), m.offset()) for m in messages]


# -- producing and reading ----------------------------------------------------------------


def test_a_produced_record_arrives_on_poll_with_its_key_headers_and_timestamp() -> None:
    broker = broker_with(partitions=1)
    producer = broker.producer()
    reports: list[tuple[KafkaError | None, Message]] = []
    producer.produce(
        TOPIC,
        value="body",
        key=b"acme",
        headers=[("a", "text"), ("b", b"\x00"), ("c", None)],
        timestamp=1_700_000_000_123,
        on_delivery=lambda err, msg: reports.append((err, msg)),
    )
    assert isinstance(producer, Producer)
    assert len(producer) == 1
    assert broker.records(TOPIC) == []
    assert reports == []
    assert producer.poll(0) == 1
    assert len(producer) == 0
    [(error, delivered)] = reports
    assert error is None
    assert (delivered.topic(), delivered.partition(), delivered.offset()) == (TOPIC, 0, 0)

    consumer = broker.consumer()
    consumer.assign([TopicPartition(TOPIC, 0, OFFSET_BEGINNING)])
    [message] = consumer.consume(10, timeout=5)
    assert isinstance(message, Message)
    assert message.error() is None
    assert (message.topic(), message.partition(), message.offset()) == (TOPIC, 0, 0)
    assert message.key() == b"acme"
    assert message.value() == b"body"
    assert len(message) == 4
    assert message.headers() == [("a", b"text"), ("b", b"\x00"), ("c", None)]
    assert message.timestamp() == (TIMESTAMP_CREATE_TIME, 1_700_000_000_123)


def test_a_record_without_headers_has_none_and_gets_the_broker_time() -> None:
    broker = broker_with(partitions=1)
    producer = broker.producer()
    producer.produce(TOPIC, b"x")
    producer.produce(TOPIC, b"y", headers=[])
    assert producer.flush(1) == 0
    first, second = broker.records(TOPIC)
    assert first.headers is None
    assert second.headers is None
    assert 0 < first.timestamp_ms < second.timestamp_ms


def test_keyed_records_go_where_librdkafka_partitioners_put_them() -> None:
    broker = broker_with(partitions=6)
    default, java = broker.producer(), broker.producer(partitioner="murmur2_random")
    for key in (b"acme", b"globex", b"initech"):
        default.produce(TOPIC, b"1", key=key)
        java.produce(TOPIC, b"2", key=key)
    default.flush()
    java.flush()
    where = {(r.key, r.value): r.partition for r in broker.records(TOPIC)}
    for key in (b"acme", b"globex", b"initech"):
        assert where[(key, b"1")] == consistent(key, 6)
        assert where[(key, b"2")] == murmur2(key, 6)


def test_delivery_to_an_unknown_topic_or_an_injected_failure_reports_the_error() -> None:
    broker = broker_with(partitions=1)
    producer = broker.producer()
    reports: list[KafkaError | None] = []
    producer.fail_deliveries.append(KafkaError(KafkaError._MSG_TIMED_OUT))
    for topic in (TOPIC, "missing", TOPIC):
        producer.produce(topic, b"x", on_delivery=lambda err, _msg: reports.append(err))
    producer.flush()
    codes = [None if err is None else err.code() for err in reports]
    assert codes == [KafkaError._MSG_TIMED_OUT, KafkaError.UNKNOWN_TOPIC_OR_PART, None]
    assert len(broker.records(TOPIC)) == 1


def test_consume_returns_runs_of_one_partition_taking_turns_and_never_waits() -> None:
    broker = broker_with(partitions=2, records=8)
    consumer = broker.consumer(max_run=3)
    consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(2)])
    assert offsets(consumer.consume(4, timeout=60)) == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert offsets(consumer.consume(100, timeout=60)) == [(1, 1), (1, 2), (1, 3), (0, 3)]
    assert consumer.consume(100, timeout=60) == []
    assert consumer.poll(60) is None


def test_assign_starts_at_the_given_offset_the_beginning_or_the_end() -> None:
    broker = broker_with(partitions=3, records=9)
    consumer = broker.consumer()
    consumer.assign(
        [
            TopicPartition(TOPIC, 0, 2),
            TopicPartition(TOPIC, 1, OFFSET_BEGINNING),
            TopicPartition(TOPIC, 2, OFFSET_END),
        ]
    )
    assert sorted(offsets(consumer.consume(100))) == [(0, 2), (1, 0), (1, 1), (1, 2)]
    assert [tp.partition for tp in consumer.assignment()] == [0, 1, 2]
    consumer.unassign()
    assert consumer.assignment() == []


def test_retention_moves_the_low_watermark_and_a_reader_below_it_resets() -> None:
    broker = broker_with(partitions=1, records=5)
    broker.truncate(TOPIC, 0, 3)
    consumer = broker.consumer()
    tp = TopicPartition(TOPIC, 0, 1)
    assert consumer.get_watermark_offsets(tp, timeout=1) == (3, 5)
    consumer.assign([tp])
    assert offsets(consumer.consume(10)) == [(0, 3), (0, 4)]


def test_end_of_partition_is_reported_once_per_end_when_enabled() -> None:
    broker = broker_with(partitions=1, records=1)
    consumer = broker.consumer(enable_partition_eof=True)
    consumer.assign([TopicPartition(TOPIC, 0, OFFSET_BEGINNING)])
    first = consumer.consume(10)
    assert offsets(first) == [(0, 0)]
    [eof] = consumer.consume(10)
    error = eof.error()
    assert error is not None
    assert error.code() == KafkaError._PARTITION_EOF
    assert eof.offset() == 1
    assert consumer.consume(10) == []


def test_position_is_unknown_until_a_record_was_returned() -> None:
    broker = broker_with(partitions=1, records=3)
    consumer = broker.consumer()
    tp = TopicPartition(TOPIC, 0, OFFSET_BEGINNING)
    consumer.assign([tp])
    assert [t.offset for t in consumer.position([tp])] == [OFFSET_INVALID]
    consumer.consume(2)
    assert [t.offset for t in consumer.position([tp])] == [2]


def test_watermarks_and_what_is_cached() -> None:
    broker = broker_with(partitions=2, records=4)
    consumer = broker.consumer()
    tp0, tp1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    consumer.assign([TopicPartition(TOPIC, 0, OFFSET_BEGINNING)])
    assert consumer.get_watermark_offsets(tp0, timeout=1) == (0, 2)
    assert consumer.get_watermark_offsets(tp0, cached=True) == (0, 2)
    assert consumer.get_watermark_offsets(tp1, cached=True) == (OFFSET_INVALID, OFFSET_INVALID)
    with pytest.raises(KafkaException):
        consumer.get_watermark_offsets(TopicPartition(TOPIC, 7), timeout=1)


def test_a_paused_partition_yields_nothing_until_resumed() -> None:
    broker = broker_with(partitions=2, records=4)
    consumer = broker.consumer()
    consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(2)])
    consumer.pause([TopicPartition(TOPIC, 0)])
    assert offsets(consumer.consume(10)) == [(1, 0), (1, 1)]
    consumer.resume([TopicPartition(TOPIC, 0)])
    assert offsets(consumer.consume(10)) == [(0, 0), (0, 1)]


def test_list_topics_describes_partitions_and_unknown_topics() -> None:
    broker = broker_with(partitions=3)
    consumer = broker.consumer()
    metadata = consumer.list_topics(TOPIC, timeout=1)
    assert sorted(metadata.topics[TOPIC].partitions) == [0, 1, 2]
    assert metadata.topics[TOPIC].error is None
    missing = consumer.list_topics("missing").topics["missing"]
    assert missing.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


# -- groups -------------------------------------------------------------------------------


def test_the_first_member_gets_every_partition_at_its_first_poll() -> None:
    broker = broker_with(partitions=4, records=8)
    events = Events()
    consumer = broker.consumer("g")
    assert isinstance(consumer, Consumer)
    events.subscribe(consumer)
    assert events.seen == []
    messages = consumer.consume(100)
    assert events.seen == [("assign", [0, 1, 2, 3])]
    assert len(messages) == 8
    assert consumer.memberid() == consumer.member_id


def test_commit_then_committed_and_a_new_member_starts_there() -> None:
    broker = broker_with(partitions=2, records=6)
    first = broker.consumer("g")
    first.subscribe([TOPIC])
    first.consume(100)
    done = first.commit(offsets=[TopicPartition(TOPIC, 0, 2)], asynchronous=False)
    assert [(tp.partition, tp.offset) for tp in done] == [(0, 2)]
    assert first.commit(offsets=[TopicPartition(TOPIC, 1, 1)]) is None  # asynchronous
    asked = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
    assert [tp.offset for tp in first.committed(asked, timeout=5)] == [2, 1]
    assert broker.committed_offset("g", TOPIC, 0) == 2
    first.close()

    second = broker.consumer("g")
    second.subscribe([TOPIC])
    assert sorted(offsets(second.consume(100))) == [(0, 2), (1, 1), (1, 2)]
    assert [tp.offset for tp in broker.consumer("other").committed(asked)] == [OFFSET_INVALID] * 2


def test_commit_of_a_message_or_of_the_positions() -> None:
    broker = broker_with(partitions=2, records=4)
    consumer = broker.consumer("g")
    consumer.subscribe([TOPIC])
    messages = consumer.consume(100)
    consumer.commit(message=messages[0], asynchronous=False)
    assert broker.committed_offset("g", TOPIC, 0) == 1
    consumer.commit(asynchronous=False)
    assert [broker.committed_offset("g", TOPIC, p) for p in range(2)] == [2, 2]


def test_a_joining_member_gets_partitions_only_after_their_owner_revoked_them() -> None:
    broker = broker_with(partitions=4)
    first_events, second_events = Events(), Events()
    first, second = broker.consumer("g"), broker.consumer("g")
    first_events.subscribe(first)
    first.poll(0)
    second_events.subscribe(second)
    second.poll(0)
    assert second_events.seen == []  # the first still holds them all
    first.poll(0)
    assert first_events.seen == [("assign", [0, 1, 2, 3]), ("revoke", [2, 3])]
    second.poll(0)
    assert second_events.seen == [("assign", [2, 3])]
    assert broker.held(first) == {(TOPIC, 0), (TOPIC, 1)}
    assert broker.members("g") == [first.member_id, second.member_id]


def test_a_member_that_closes_revokes_and_the_others_take_over() -> None:
    broker = broker_with(partitions=4)
    (first, first_events), (second, second_events) = settled_pair(broker)
    second.close()
    assert second_events.seen == [("assign", [2, 3]), ("revoke", [2, 3])]
    first.poll(0)
    assert first_events.seen[-1] == ("assign", [2, 3])
    with pytest.raises(RuntimeError):
        second.poll(0)


def test_a_killed_member_sees_nothing_more_and_its_partitions_restart_at_the_commit() -> None:
    broker = broker_with(partitions=2, records=6)
    first_events, second_events = Events(), Events()
    first, second = broker.consumer("g"), broker.consumer("g")
    first_events.subscribe(first)
    first.consume(100)
    first.commit(offsets=[TopicPartition(TOPIC, 0, 1)], asynchronous=False)
    broker.kill(first)
    assert broker.members("g") == []
    for call in (lambda: first.poll(0), first.close, lambda: first.commit(asynchronous=False)):
        with pytest.raises(SimulatedCrash):
            call()
    assert first_events.seen == [("assign", [0, 1])]  # no revoke: it died
    second_events.subscribe(second)
    assert sorted(offsets(second.consume(100))) == [(0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert second_events.seen == [("assign", [0, 1])]


def test_an_expired_member_is_told_its_partitions_were_lost_and_rejoins() -> None:
    broker = broker_with(partitions=2)
    first_events, second_events = Events(), Events()
    first, second = broker.consumer("g"), broker.consumer("g")
    first_events.subscribe(first)
    first.poll(0)
    second_events.subscribe(second)
    broker.expire(first)
    second.poll(0)
    assert second_events.seen == [("assign", [0, 1])]
    with pytest.raises(KafkaException) as fenced:
        first.commit(offsets=[TopicPartition(TOPIC, 0, 0)], asynchronous=False)
    assert fenced.value.args[0].code() == KafkaError.UNKNOWN_MEMBER_ID
    first.poll(0)
    assert first_events.seen == [("assign", [0, 1]), ("lost", [0, 1])]
    second.poll(0)
    first.poll(0)
    assert second_events.seen[-1] == ("revoke", [1])
    assert first_events.seen[-1] == ("assign", [1])


def test_a_member_with_an_unseen_revocation_cannot_commit() -> None:
    broker = broker_with(partitions=2)
    first, second = broker.consumer("g"), broker.consumer("g")
    first.subscribe([TOPIC])
    first.poll(0)
    second.subscribe([TOPIC])
    with pytest.raises(KafkaException) as refused:
        first.commit(offsets=[TopicPartition(TOPIC, 0, 0)], asynchronous=False)
    assert refused.value.args[0].code() == KafkaError.REBALANCE_IN_PROGRESS
    first.poll(0)
    first.commit(offsets=[TopicPartition(TOPIC, 0, 0)], asynchronous=False)
    assert broker.committed_offset("g", TOPIC, 0) == 0


def test_an_explicit_rebalance_moves_exactly_what_it_says() -> None:
    broker = broker_with(partitions=3)
    (first, first_events), (second, second_events) = settled_pair(broker)
    broker.rebalance("g", {first: [(TOPIC, 0), (TOPIC, 1), (TOPIC, 2)], second: []})
    second.poll(0)
    first.poll(0)
    assert second_events.seen[-1] == ("revoke", [2])
    assert first_events.seen[-1] == ("assign", [2])


def test_a_pause_made_in_on_assign_holds() -> None:
    broker = broker_with(partitions=2, records=4)
    consumer = broker.consumer("g")
    consumer.subscribe(
        [TOPIC], on_assign=lambda c, tps: c.pause([tp for tp in tps if tp.partition == 0])
    )
    assert offsets(consumer.consume(100)) == [(1, 0), (1, 1)]


@pytest.mark.parametrize(
    ("members", "previous", "expected"),
    [
        (["a"], {}, {"a": [0, 1, 2, 3]}),
        (["a", "b"], {"a": {0, 1, 2, 3}}, {"a": [0, 1], "b": [2, 3]}),
        (["a", "b", "c"], {"a": {0, 1}, "b": {2, 3}}, {"a": [0, 1], "b": [2], "c": [3]}),
        (["b", "c"], {"b": {2}, "c": {3}}, {"b": [0, 2], "c": [1, 3]}),
        ([], {"a": {0}}, {}),
    ],
)
def test_the_assignor_is_sticky_balanced_and_deterministic(
    members: list[str], previous: dict[str, set[int]], expected: dict[str, list[int]]
) -> None:
    keys = [(TOPIC, p) for p in range(4)]
    result = sticky_assignment(
        keys, members, {m: {(TOPIC, p) for p in ps} for m, ps in previous.items()}
    )
    assert {m: sorted(p for _, p in held) for m, held in result.items()} == expected


# -- faults -------------------------------------------------------------------------------


def _member(broker: FakeBroker) -> FakeConsumer:
    consumer = broker.consumer("g")
    consumer.subscribe([TOPIC])
    consumer.poll(0)
    return consumer


@pytest.mark.parametrize("after_apply", [True, False])
def test_a_failed_commit_raises_after_reaching_the_broker_or_not(after_apply: bool) -> None:
    broker = broker_with(partitions=1)
    consumer = _member(broker)
    broker.fail_next_commit(consumer, after_apply=after_apply)
    with pytest.raises(KafkaException) as failed:
        consumer.commit(offsets=[TopicPartition(TOPIC, 0, 5)], asynchronous=False)
    assert failed.value.args[0].code() == KafkaError.REQUEST_TIMED_OUT
    assert broker.committed_offset("g", TOPIC, 0) == (5 if after_apply else None)
    consumer.commit(offsets=[TopicPartition(TOPIC, 0, 6)], asynchronous=False)  # once only
    assert broker.committed_offset("g", TOPIC, 0) == 6


def test_a_commit_can_crash_the_member_after_it_landed() -> None:
    broker = broker_with(partitions=1)
    consumer = _member(broker)
    broker.fail_next_commit(consumer, after_apply=True, crash=True)
    with pytest.raises(SimulatedCrash):
        consumer.commit(offsets=[TopicPartition(TOPIC, 0, 5)], asynchronous=False)
    assert broker.committed_offset("g", TOPIC, 0) == 5
    assert consumer.dead
    assert broker.members("g") == []


def test_hooks_run_before_and_after_an_operation_as_many_times_as_asked() -> None:
    broker = broker_with(partitions=1, records=1)
    consumer = _member(broker)
    calls: list[str] = []
    broker.hook("before", "commit", lambda: calls.append("before"), client=consumer)
    broker.hook("after", "commit", lambda: calls.append("after"), times=None)
    broker.hook("before", "consume", lambda: calls.append("other"), client=broker.consumer("g"))
    for _ in range(2):
        consumer.commit(offsets=[TopicPartition(TOPIC, 0, 1)], asynchronous=False)
        consumer.consume(1)
    assert calls == ["before", "after", "after"]


def test_a_hook_that_crashes_the_client_stops_the_operation() -> None:
    broker = broker_with(partitions=1)
    consumer = _member(broker)

    def die() -> None:
        raise broker.crash(consumer)

    broker.hook("before", "commit", die)
    with pytest.raises(SimulatedCrash):
        consumer.commit(offsets=[TopicPartition(TOPIC, 0, 1)], asynchronous=False)
    assert broker.committed_offset("g", TOPIC, 0) is None
    with pytest.raises(SimulatedCrash):
        consumer.close()


def test_a_killed_producer_loses_what_it_had_not_delivered() -> None:
    broker = broker_with(partitions=1)
    producer = broker.producer()
    producer.produce(TOPIC, b"delivered")
    producer.poll(0)
    producer.produce(TOPIC, b"queued")
    broker.kill(producer)
    with pytest.raises(SimulatedCrash):
        producer.flush()
    assert [r.value for r in broker.records(TOPIC)] == [b"delivered"]


def test_a_simulated_crash_is_not_an_exception() -> None:
    """So the ``except Exception`` of retry loops does not swallow it."""
    assert not issubclass(SimulatedCrash, Exception)
    assert issubclass(SimulatedCrash, BaseException)
