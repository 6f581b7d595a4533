"""The streamed copy as the appender publishes it: each batch's leaves records chain from
the tree before the batch, go to the account's partition with the integrity header, are
identical when a crash replays the batch, and are published before anything is stored;
checkpoints are published before they are stored."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Message
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from integrity import merkle
from integrity.appender import INTEGRITY_RECORD, IntegrityAppender
from integrity.appender_config import AppenderConfig
from integrity.appending import Batch, PartitionLog
from integrity.checkpointer import Checkpointer, CheckpointPolicy, CheckpointRow
from integrity.copy_publisher import CopyPublisher, CopyPublishError, batch_leaves
from integrity.copy_records import LeavesRecord, parse
from integrity.keys import SigningKey
from integrity.reading import Leaf, Skipped
from producers.generator import GeneratorConfig, generate
from runtime.kafka_connection import KafkaConnection
from schemas.headers import RECORD_KIND, is_integrity
from schemas.validation import EventValidator
from schemas.wire import SingleObjectEncoder

TOPIC = "audit.events"


def _hash(n: int) -> bytes:
    return merkle.leaf_hash(f"leaf {n}".encode())


def _append(log: PartitionLog, records: list[tuple[int, str]]) -> Batch:
    log.start_new({tenant for _, tenant in records})
    for offset, tenant in records:
        log.append(tenant, offset, uuid.UUID(int=offset), _hash(offset), now_s=0.0)
    batch = log.take()
    assert batch is not None
    return batch


class FakeProducer:
    def __init__(self, *, fail: str | None = None, undelivered: int = 0) -> None:
        self.produced: list[dict[str, Any]] = []
        self.flushes = 0
        self._fail = fail
        self._undelivered = undelivered
        self._callbacks: list[Any] = []

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.produced.append({"topic": topic, **kwargs})
        self._callbacks.append(kwargs["on_delivery"])

    def flush(self, _timeout: float) -> int:
        self.flushes += 1
        for callback in self._callbacks:
            callback(_Error(self._fail) if self._fail else None, None)
        self._callbacks = []
        return self._undelivered


class _Error:
    def __init__(self, text: str) -> None:
        self._text = text

    def str(self) -> str:
        return self._text


def _published(producer: FakeProducer) -> list[LeavesRecord]:
    out = []
    for record in producer.produced:
        parsed = parse(record["value"])
        assert isinstance(parsed, LeavesRecord)
        out.append(parsed)
    return out


def test_leaves_records_per_account_chain_from_the_tree_before_the_batch() -> None:
    log = PartitionLog(TOPIC, 3)
    first = _append(log, [(10, "acme"), (11, "globex"), (12, "acme")])
    second = _append(log, [(13, "acme"), (14, "acme"), (15, "globex")])
    records = batch_leaves(first) + batch_leaves(second)
    acme = [r for r in records if r.tenant_id == "acme"]
    assert [(r.first, len(r.hashes)) for r in acme] == [(0, 2), (2, 2)]
    assert acme[0].frontier == ()
    tree = merkle.Frontier.empty()
    for record in acme:
        assert record.frontier == tree.hashes
        for h in record.hashes:
            tree.append(h)
    assert tree.root() == merkle.root([_hash(o) for o in (10, 12, 13, 14)])
    head = {h.tenant_id: h for h in second.heads}["acme"]
    assert head.root == tree.root()


def test_published_into_the_accounts_partition_with_the_header_and_waited_for() -> None:
    producer = FakeProducer()
    copies = CopyPublisher(TOPIC, producer)  # type: ignore[arg-type]
    batch = _append(PartitionLog(TOPIC, 3), [(10, "acme"), (11, "globex")])
    assert copies.leaves(batch) == 2
    assert [(r["topic"], r["partition"], r["key"]) for r in producer.produced] == [
        (TOPIC, 3, b"acme"),
        (TOPIC, 3, b"globex"),
    ]
    assert all(is_integrity(r["headers"]) for r in producer.produced)
    assert all(name == RECORD_KIND for r in producer.produced for name, _ in r["headers"])
    assert producer.flushes == 1
    assert copies.published == 2


def test_a_replayed_batch_publishes_identical_records() -> None:
    records = [(10, "acme"), (11, "globex"), (12, "acme")]
    stored_heads = _append(PartitionLog(TOPIC, 3), [(5, "acme")]).heads
    runs = []
    for _ in range(2):  # the same stored heads and records: a crash before the commit
        producer = FakeProducer()
        log = PartitionLog(TOPIC, 3, stored_heads)
        CopyPublisher(TOPIC, producer).leaves(_append(log, records))  # type: ignore[arg-type]
        runs.append([r["value"] for r in producer.produced])
    assert runs[0] == runs[1]
    assert parse(runs[0][0]).first == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(("fail", "undelivered"), [("broker down", 0), (None, 1)])
def test_an_unacknowledged_record_raises(fail: str | None, undelivered: int) -> None:
    producer = FakeProducer(fail=fail, undelivered=undelivered)
    batch = _append(PartitionLog(TOPIC, 0), [(1, "acme")])
    with pytest.raises(CopyPublishError):
        CopyPublisher(TOPIC, producer).leaves(batch)  # type: ignore[arg-type]


class FakeSink:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def insert(self, rows: Sequence[CheckpointRow]) -> None:
        self.calls.append(f"stored {len(rows)}")


def test_checkpoints_are_published_before_they_are_stored_into_their_partition() -> None:
    calls: list[str] = []
    key = SigningKey("test-key", Ed25519PrivateKey.generate())
    producer = FakeProducer()
    copies = CopyPublisher(TOPIC, producer)  # type: ignore[arg-type]

    def publish(rows: Sequence[CheckpointRow]) -> int:
        calls.append(f"published {len(rows)}")
        return copies.checkpoints(rows, {"acme": 4})

    checkpointer = Checkpointer(CheckpointPolicy(), FakeSink(calls), lambda _ms: [key])
    tree = merkle.Frontier.empty()
    tree.append(_hash(1))
    [row] = checkpointer.sign_due([("acme", tree)], 1_000, publish=publish)
    assert calls == ["published 1", "stored 1"]
    [record] = producer.produced
    assert record["partition"] == 4
    assert parse(record["value"]).note == row.note  # type: ignore[union-attr]


def test_a_checkpoint_of_an_account_without_a_partition_is_refused() -> None:
    copies = CopyPublisher(TOPIC, FakeProducer())  # type: ignore[arg-type]
    with pytest.raises(CopyPublishError):
        copies.checkpoints([CheckpointRow("acme", 1, b"\x00" * 32, 1, "note")], {})


def test_the_appender_makes_no_leaf_of_an_integrity_record_whatever_its_value() -> None:
    config = GeneratorConfig(events=1, tenants=1, seed=5, start=datetime.now(UTC) - timedelta(1))
    datum = EventValidator().validate(next(iter(generate(config)))).to_avro()
    key = str(datum["tenant_id"]).encode()
    value = SingleObjectEncoder().encode(datum)
    appender = IntegrityAppender(
        AppenderConfig(KafkaConnection("127.0.0.1:1")),
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        lambda _ms: [],
        consumer=object(),  # type: ignore[arg-type]
    )
    plain = Message(offset=3, key=key, value=value, headers=[("auditlog-tenant", key)])
    marked = Message(
        offset=4,
        key=key,
        value=value,  # a real event, mislabelled: no leaf either
        headers=[("auditlog-tenant", key), (RECORD_KIND, b"integrity")],
    )
    assert isinstance(appender._read_or_copy(plain), Leaf)
    assert appender._read_or_copy(marked) == Skipped(4, INTEGRITY_RECORD, "")
