"""Shared pieces of the integrity appender's stack tests: an appender over a test pipeline
(its own topic, group and migrated database, :mod:`tests.stack.writer_support`), a key
store of the test's own, the records as Kafka holds them, and the log as ClickHouse holds
it, checked against each other."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from integrity import checkpoint, merkle
from integrity.appender import IntegrityAppender
from integrity.appender_config import AppenderConfig
from integrity.checkpoint_store import CheckpointStore
from integrity.checkpointer import CheckpointPolicy
from integrity.copy_publisher import CopyPublisher
from integrity.copy_records import CheckpointRecord, LeavesRecord, parse
from integrity.heads import LogStore
from integrity.keys import KeyRing
from integrity.keystore import KeyStore
from integrity.leaf import event_leaf_hash
from integrity.metrics import integrity_metrics
from schemas.headers import is_integrity
from schemas.wire import Decoder
from tests.stack.writer_support import PARTITIONS, Pipeline


def key_store(directory: Path) -> KeyStore:
    store = KeyStore(directory)
    store.generate("auditlog-test", time.time_ns() // 1_000_000 - 60_000)
    return store


def appender(pipeline: Pipeline, keys: KeyStore, **overrides: object) -> IntegrityAppender:
    values: dict[str, object] = {
        "kafka": pipeline.kafka,
        "topic": pipeline.topic,
        "group_id": integrity_group(pipeline),
        "database": pipeline.database,
        "batch_max_records": 700,
        "flush_interval_s": 0.3,
        "checkpoints": CheckpointPolicy(interval_s=1.0, heartbeat_s=3600.0),
        "retry_initial_s": 0.2,
        "retry_max_s": 1.0,
    }
    publish = bool(overrides.pop("publish", False))
    values.update(overrides)
    client = pipeline.client()
    config = AppenderConfig(**values)  # type: ignore[arg-type]
    copies = None
    if publish:  # the streamed copy, as `auditlog integrity run` publishes it
        copies = CopyPublisher(config.topic, Producer(config.producer_properties()))
    return IntegrityAppender(
        config,
        LogStore(client, pipeline.database),
        CheckpointStore(client, pipeline.database),
        keys.active_signers,
        metrics=integrity_metrics(CollectorRegistry()),
        copies=copies,
    )


def integrity_group(pipeline: Pipeline) -> str:
    return f"{pipeline.group_id}-integrity"


def env(pipeline: Pipeline, keys: KeyStore) -> dict[str, str]:
    """``AUDITLOG_*`` settings pointing ``auditlog integrity run`` at this pipeline."""
    return {
        **pipeline.env(),
        "AUDITLOG_INTEGRITY_GROUP_ID": integrity_group(pipeline),
        "AUDITLOG_INTEGRITY_BATCH_MAX_RECORDS": "500",
        "AUDITLOG_INTEGRITY_FLUSH_INTERVAL_S": "0.3",
        "AUDITLOG_INTEGRITY_CHECKPOINT_INTERVAL_S": "1",
        "AUDITLOG_INTEGRITY_KEYS_DIR": str(keys.directory),
    }


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    leaf_hash: bytes


def kafka_records(pipeline: Pipeline) -> dict[str, list[Record]]:
    """Every record of the topic by account (the key), in offset order, with the leaf hash
    of its decoded event (computed here from the value, not by the appender)."""
    consumer = Consumer(
        {
            "bootstrap.servers": pipeline.bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(pipeline.topic, p), 10)[1]
        for p in range(PARTITIONS)
    }
    consumer.assign([TopicPartition(pipeline.topic, p, 0) for p in range(PARTITIONS)])
    found: dict[str, list[Record]] = defaultdict(list)
    done = {p for p, end in ends.items() if end == 0}
    decoder = Decoder()
    try:
        while len(done) < PARTITIONS:
            for message in consumer.consume(1000, timeout=1.0):
                partition, offset = message.partition(), message.offset()
                assert partition is not None
                assert offset is not None
                if message.error() is not None or offset >= ends[partition] - 1:
                    done.add(partition)
                if message.error() is not None or is_integrity(message.headers()):
                    continue
                value, key = message.value(), message.key()
                assert isinstance(value, bytes)
                assert isinstance(key, bytes)
                leaf = event_leaf_hash(decoder.decode(value))
                found[key.decode()].append(Record(partition, offset, leaf))
    finally:
        consumer.close()
    return dict(found)


def stored_leaves(pipeline: Pipeline) -> dict[str, list[tuple[int, int, int, bytes]]]:
    """``(leaf_index, partition, offset, leaf_hash)`` of every stored leaf by account, in
    index order (FINAL: a row written twice counts once)."""
    rows = (
        pipeline.client()
        .query(
            "SELECT tenant_id, leaf_index, partition, kafka_offset, leaf_hash "
            f"FROM {pipeline.database}.integrity_leaves FINAL ORDER BY tenant_id, leaf_index"
        )
        .result_rows
    )
    found: dict[str, list[tuple[int, int, int, bytes]]] = defaultdict(list)
    for tenant, index, partition, offset, leaf_hash in rows:
        found[str(tenant)].append((int(index), int(partition), int(offset), bytes(leaf_hash)))
    return dict(found)


def leaf_rows(pipeline: Pipeline) -> int:
    """Leaf rows stored, replicas of one leaf included (before any merge)."""
    return int(
        pipeline.client().command(f"SELECT count() FROM {pipeline.database}.integrity_leaves")  # type: ignore[arg-type]
    )


def leaf_count(pipeline: Pipeline) -> int:
    """Distinct leaves stored (FINAL: a leaf written twice counts once)."""
    return int(
        pipeline.client().command(  # type: ignore[arg-type]
            f"SELECT count() FROM {pipeline.database}.integrity_leaves FINAL"
        )
    )


def checkpoints(pipeline: Pipeline, ring: KeyRing) -> dict[str, list[checkpoint.Checkpoint]]:
    """Every stored checkpoint by account, verified, by size then time."""
    store = CheckpointStore(pipeline.client(), pipeline.database)
    tenants = pipeline.client().query(
        f"SELECT DISTINCT tenant_id FROM {pipeline.database}.integrity_checkpoints"
    )
    return {
        str(t): [
            checkpoint.verify(note, ring, checkpoint.origin_for(str(t)))
            for note in store.notes(str(t))
        ]
        for (t,) in tenants.result_rows
    }


def assert_one_log_per_account(pipeline: Pipeline, ring: KeyRing) -> dict[str, list[Record]]:
    """Every record a leaf of its account's log, once, in Kafka order, at indexes 0..n-1;
    the stored head's root is the root of those leaves; every checkpoint verifies and is
    consistent with the log. Returns the records by account."""
    records = kafka_records(pipeline)
    leaves = stored_leaves(pipeline)
    assert set(leaves) == set(records)
    heads = LogStore(pipeline.client(), pipeline.database).heads_of(records)
    assert {h.tenant_id for h in heads} == set(records)
    signed = checkpoints(pipeline, ring)
    for head in heads:
        expected = records[head.tenant_id]
        got = leaves[head.tenant_id]
        assert [index for index, *_ in got] == list(range(len(expected))), head.tenant_id
        assert [(p, o, h) for _, p, o, h in got] == [
            (r.partition, r.offset, r.leaf_hash) for r in expected
        ], head.tenant_id
        hashes = [r.leaf_hash for r in expected]
        assert (head.size, head.root) == (len(hashes), merkle.root(hashes))
        assert head.last_offset == expected[-1].offset
        notes = signed[head.tenant_id]
        assert notes[-1].size == len(hashes), "the last checkpoint signs the whole log"
        for note in notes:
            proof = merkle.consistency_proof(note.size, hashes)
            assert merkle.verify_consistency(
                note.size, len(hashes), note.root, merkle.root(hashes), proof
            ), f"{head.tenant_id}: checkpoint of size {note.size} is not a prefix"
    return records


@dataclass(frozen=True)
class Copy:
    """The streamed copy of one account as the topic holds it, in stream order."""

    partitions: set[int]
    leaves: list[LeavesRecord]
    checkpoints: list[CheckpointRecord]


def copy_records(pipeline: Pipeline) -> dict[str, Copy]:
    """Every integrity record of the topic by account (the key), parsed strictly, in each
    partition's offset order."""
    consumer = Consumer(
        {
            "bootstrap.servers": pipeline.bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(pipeline.topic, p), 10)[1]
        for p in range(PARTITIONS)
    }
    consumer.assign([TopicPartition(pipeline.topic, p, 0) for p in range(PARTITIONS)])
    found: dict[str, Copy] = {}
    positions = dict.fromkeys(range(PARTITIONS), 0)
    try:
        while any(positions[p] < ends[p] for p in positions):
            for message in consumer.consume(1000, timeout=1.0):
                partition, offset = message.partition(), message.offset()
                if message.error() is not None or partition is None or offset is None:
                    continue
                positions[partition] = offset + 1
                if not is_integrity(message.headers()):
                    continue
                key, value = message.key(), message.value()
                assert isinstance(key, bytes)
                assert isinstance(value, bytes)
                record = parse(value)
                assert record.tenant_id == key.decode()
                copy = found.setdefault(record.tenant_id, Copy(set(), [], []))
                copy.partitions.add(partition)
                if isinstance(record, LeavesRecord):
                    copy.leaves.append(record)
                else:
                    copy.checkpoints.append(record)
    finally:
        consumer.close()
    return found


def assert_copies_cover(
    pipeline: Pipeline, records: dict[str, list[Record]], ring: KeyRing
) -> dict[str, Copy]:
    """The streamed copy of each account: in the account's partition; its leaves records
    contiguous in stream order (none starts beyond what the records before it listed),
    each one's frontier the tree of the leaves before it, one hash per index (identical on
    duplicates), every leaf listed and equal to the record's leaf hash; every checkpoint
    record verifies and its root is the root of the listed leaves up to its size."""
    copies = copy_records(pipeline)
    assert set(copies) == set(records)
    for tenant, copy in copies.items():
        expected = [r.leaf_hash for r in records[tenant]]
        assert copy.partitions == {records[tenant][0].partition}, tenant
        listed: dict[int, bytes] = {}
        end = 0
        for record in copy.leaves:
            assert record.first <= end, f"{tenant}: a gap before leaf {record.first}"
            tree = merkle.Frontier.empty()
            for index in range(record.first):
                tree.append(listed[index])
            assert record.frontier == tree.hashes, f"{tenant}: frontier at {record.first}"
            for index, leaf_hash in enumerate(record.hashes, record.first):
                assert listed.setdefault(index, leaf_hash) == leaf_hash, f"{tenant}: {index}"
            end = max(end, record.end)
        assert [listed[i] for i in range(len(listed))] == expected, tenant
        assert copy.checkpoints, tenant
        for note in copy.checkpoints:
            signed = checkpoint.verify(note.note, ring, checkpoint.origin_for(tenant))
            assert signed.root == merkle.root(expected[: signed.size]), tenant
    return copies
