"""Publishing the integrity log's streamed copy (:mod:`integrity.copy_records`) into the
events topic, beside the events it covers.

Every record goes to the account's own partition of the events topic (explicitly: the
partition the appender read the account's events from), keyed by the account, with the
header ``auditlog-record: integrity``. :meth:`CopyPublisher.leaves` queues the
``auditlog.leaves`` records of a stored batch, :meth:`CopyPublisher.checkpoints` those of
signed checkpoints; each then flushes and raises :class:`CopyPublishError` unless Kafka
acknowledged every record. The appender calls them before it stores what they describe and
before it commits (docs/integrity.md, "Streamed copies"): a crash re-publishes identical
records, never loses one. The client is idempotent with ``acks=all``: no copy is
duplicated nor reordered by the client's own retries. Use from one thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from integrity.appending import Batch
from integrity.checkpointer import CheckpointRow
from integrity.copy_records import (
    CheckpointRecord,
    CopyRecord,
    LeavesRecord,
    encode,
    leaves_records,
)
from producers.topic_specs import EVENTS_MAX_MESSAGE_BYTES
from runtime.kafka_connection import KafkaConnection
from runtime.kafka_logs import librdkafka_logger
from schemas.headers import INTEGRITY_VALUE, RECORD_KIND

_CLIENT_LOG = librdkafka_logger("integrity_copies")
_LOG = logging.getLogger("auditlog.integrity")
_HEADERS: list[tuple[str, str | bytes | None]] = [(RECORD_KIND, INTEGRITY_VALUE)]


class CopyPublishError(RuntimeError):
    """Integrity records did not all reach the events topic: commit nothing past what
    they describe (the appender stops; its next run publishes them again)."""


def batch_leaves(batch: Batch) -> list[LeavesRecord]:
    """The ``auditlog.leaves`` records of a batch: per account, in the order the batch first
    appended to it, its leaves in index order (split every 8,192). Pure and deterministic:
    the same leaves from the same trees give the same records."""
    hashes: dict[str, list[bytes]] = {}
    for leaf in batch.leaves:
        hashes.setdefault(leaf.tenant_id, []).append(leaf.leaf_hash)
    records: list[LeavesRecord] = []
    for tenant_id, listed in hashes.items():
        records += leaves_records(tenant_id, batch.bases[tenant_id], listed)
    return records


def producer_properties(
    kafka: KafkaConnection, *, delivery_timeout_s: float, client_id: str = "auditlog-integrity"
) -> dict[str, Any]:
    """The client's librdkafka properties (idempotent, ``acks=all``, sized for the events
    topic's ``max.message.bytes``)."""
    return {
        **kafka.properties(),
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "zstd",
        "linger.ms": 5,
        "message.max.bytes": EVENTS_MAX_MESSAGE_BYTES,
        "message.timeout.ms": max(int(delivery_timeout_s * 1000), 1),
        "logger": _CLIENT_LOG,
        "error_cb": _log_client_error,
    }


class CopyPublisher:
    """Publishes integrity records to ``topic`` with ``producer`` (built from
    :func:`producer_properties` by the wiring; a seam for tests)."""

    def __init__(self, topic: str, producer: Producer, *, flush_timeout_s: float = 65.0) -> None:
        self.topic = topic
        self._producer = producer
        self._flush_timeout_s = flush_timeout_s
        self._lock = threading.Lock()
        self._failures: list[str] = []
        self.published = 0

    def leaves(self, batch: Batch) -> int:
        """Publish the batch's ``auditlog.leaves`` records into its partition and wait for
        them; how many. Raises :class:`CopyPublishError`."""
        records = batch_leaves(batch)
        self._publish((batch.partition, record) for record in records)
        return len(records)

    def checkpoints(self, rows: Sequence[CheckpointRow], partitions: Mapping[str, int]) -> int:
        """Publish one ``auditlog.checkpoint`` record per row, into the partition
        ``partitions`` names for its account, and wait for them. Raises
        :class:`CopyPublishError` (also for an account without a partition)."""
        missing = [row.tenant_id for row in rows if row.tenant_id not in partitions]
        if missing:
            raise CopyPublishError(f"no partition known for accounts {missing[:5]!r}")
        self._publish(
            (partitions[row.tenant_id], CheckpointRecord(row.tenant_id, row.note)) for row in rows
        )
        return len(rows)

    def _publish(self, records: Iterable[tuple[int, CopyRecord]]) -> None:
        queued = 0
        for partition, record in records:
            try:
                self._producer.produce(
                    self.topic,
                    value=encode(record),
                    key=record.tenant_id.encode(),
                    partition=partition,
                    headers=_HEADERS,
                    on_delivery=self._on_delivery,
                )
            except (KafkaException, BufferError) as exc:
                self._producer.flush(self._flush_timeout_s)
                raise CopyPublishError(f"integrity record refused by the client: {exc}") from exc
            queued += 1
        if not queued:
            return
        undelivered = self._producer.flush(self._flush_timeout_s)
        with self._lock:
            failures, self._failures = self._failures, []
        if failures or undelivered:
            shown = "; ".join(failures[:3])
            raise CopyPublishError(
                f"integrity records to {self.topic} did not all arrive: {len(failures)} failed"
                f"{' (' + shown + ')' if shown else ''}, {undelivered} undelivered"
            )
        self.published += queued

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            with self._lock:
                self._failures.append(err.str())

    def close(self) -> None:
        self._producer.flush(self._flush_timeout_s)


def _log_client_error(err: KafkaError) -> None:
    _CLIENT_LOG.log(logging.ERROR if err.fatal() else logging.WARNING, "%s", err.str())
