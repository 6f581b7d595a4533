"""Publishing poison records to the dead-letter topic.

:class:`DeadLetterPublisher` queues :class:`~consumers.dead_letter_reasons.Poison` records
on the dead-letter topic: the original key, value and headers, plus the ``auditlog-dlq-*``
headers below. :meth:`~DeadLetterPublisher.flush` raises :class:`DeadLetterError` unless
every record queued since the previous flush reached the topic: the writer must not commit
offsets past a poison record that did not (the writer's ordering: docs/exactly-once.md).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from consumers.dead_letter_reasons import DeadLetterReason, Poison
from producers.topic_specs import DEAD_LETTER_MAX_MESSAGE_BYTES
from runtime.kafka_connection import KafkaConnection
from runtime.kafka_logs import librdkafka_logger

# Headers a dead-letter record carries besides the original record's own.
REASON = "auditlog-dlq-reason"
"""A :data:`~consumers.dead_letter_reasons.DeadLetterReason` code."""
DETAIL = "auditlog-dlq-detail"
"""The error text, UTF-8, at most :data:`~consumers.dead_letter_reasons.MAX_DETAIL_BYTES`."""
SOURCE_TOPIC = "auditlog-dlq-source-topic"
SOURCE_PARTITION = "auditlog-dlq-source-partition"
"""Decimal text."""
SOURCE_OFFSET = "auditlog-dlq-source-offset"
"""Decimal text."""
TIME = "auditlog-dlq-time"
"""When the record was dead-lettered: ISO 8601, UTC, milliseconds (``2026-11-25T10:00:00.123Z``)."""

DEAD_LETTER_HEADERS = (REASON, DETAIL, SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, TIME)

_CLIENT_LOG = librdkafka_logger("dead_letters")
_LOG = logging.getLogger("auditlog.dead_letters")
_FULL_QUEUE_WAIT_S = 0.005


@dataclass(frozen=True)
class DeadLetterFailure:
    """A poison record the dead-letter topic did not take, and the client's error."""

    source_topic: str
    partition: int
    offset: int
    reason: DeadLetterReason
    error: str

    def __str__(self) -> str:
        return f"{self.source_topic}[{self.partition}]@{self.offset} ({self.reason}): {self.error}"


class DeadLetterError(RuntimeError):
    """Poison records did not reach the dead-letter topic: do not commit past them.

    ``failures`` lists the records the client gave up on; ``undelivered`` counts those
    still queued or in flight when the flush timed out.
    """

    def __init__(
        self, topic: str, failures: Sequence[DeadLetterFailure], undelivered: int = 0
    ) -> None:
        self.topic = topic
        self.failures = tuple(failures)
        self.undelivered = undelivered
        parts = []
        if self.failures:
            shown = "; ".join(str(f) for f in self.failures[:5])
            more = f" and {len(self.failures) - 5} more" if len(self.failures) > 5 else ""
            parts.append(f"{len(self.failures)} failed ({shown}{more})")
        if undelivered:
            parts.append(f"{undelivered} still undelivered")
        super().__init__(
            f"dead-letter records to {topic} did not all arrive: {', '.join(parts) or 'unknown'}"
        )


class DeadLetterPublisher:
    """Publishes poison records to one dead-letter topic.

    The client is idempotent with ``acks=all`` (one copy of each dead letter, in order per
    partition), keyed like the source (the tenant), and sized for the dead-letter topic's
    ``max.message.bytes``; its log lines go to the ``librdkafka.dead_letters`` logger.
    A record not acknowledged within ``delivery_timeout_s`` (a missing topic, an
    unreachable broker) fails. Delivery reports are served by :meth:`publish` (without
    waiting) and :meth:`flush`; use the publisher from one thread at a time.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        client_id: str = "auditlog-dead-letters",
        *,
        delivery_timeout_s: float = 30.0,
        linger_ms: int = 5,
        librdkafka: dict[str, Any] | None = None,
    ) -> None:
        if delivery_timeout_s <= 0:
            raise ValueError(f"delivery_timeout_s must be positive, got {delivery_timeout_s}")
        self.topic = topic
        self.delivery_timeout_s = delivery_timeout_s
        self._producer = Producer(
            {
                **kafka.properties(),
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                # The Java client's partitioner, as the producer SDK uses: the same tenant
                # key lands on the same dead-letter partition whoever publishes it.
                "partitioner": "murmur2_random",
                "compression.type": "zstd",
                "linger.ms": linger_ms,
                "message.max.bytes": DEAD_LETTER_MAX_MESSAGE_BYTES,
                "message.timeout.ms": max(int(delivery_timeout_s * 1000), 1),
                "logger": _CLIENT_LOG,
                "error_cb": _log_client_error,
                **(librdkafka or {}),
            }
        )
        self._lock = threading.Lock()
        self._failures: list[DeadLetterFailure] = []
        self._published = 0
        self._closed = False

    def publish(self, source_topic: str, poison: Poison) -> None:
        """Queue ``poison`` for the dead-letter topic and return; the outcome is known at
        the next :meth:`flush`. Waits only while the client's local queue is full (up to
        ``delivery_timeout_s``). Raises :class:`DeadLetterError` when the client refuses
        the record outright (too large, queue still full, closed client)."""
        if self._closed:
            raise RuntimeError("this DeadLetterPublisher is closed")
        headers: list[tuple[str, str | bytes | None]] = [*poison.headers]
        headers += [
            (REASON, poison.reason.encode()),
            (DETAIL, poison.detail.encode()),
            (SOURCE_TOPIC, source_topic.encode()),
            (SOURCE_PARTITION, str(poison.partition).encode()),
            (SOURCE_OFFSET, str(poison.offset).encode()),
            (TIME, _now_iso_ms().encode()),
        ]
        callback = functools.partial(self._on_delivery, source_topic, poison)
        deadline: float | None = None
        while True:
            try:
                self._producer.produce(
                    self.topic,
                    value=poison.value,
                    key=poison.key,
                    headers=headers,
                    on_delivery=callback,
                )
                break
            except KafkaException as exc:
                raise self._refused(source_topic, poison, str(exc)) from exc
            except BufferError:
                now = time.monotonic()
                deadline = deadline or now + self.delivery_timeout_s
                if now >= deadline:
                    raise self._refused(
                        source_topic, poison, "the local queue stayed full"
                    ) from None
                self._producer.poll(_FULL_QUEUE_WAIT_S)
        self._published += 1
        self._producer.poll(0)

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every record queued since the previous flush is acknowledged or has
        failed, or ``timeout_s`` passed (default: ``delivery_timeout_s`` plus a margin, by
        which the client has failed whatever it could not deliver).

        Raises :class:`DeadLetterError` if any of them failed or is still undelivered; each
        failure is reported by one flush only. After it raised, commit nothing past the
        poison records of the batches published since the previous successful flush.
        """
        if timeout_s is None:
            timeout_s = self.delivery_timeout_s + 5.0
        undelivered = self._producer.flush(timeout_s)
        with self._lock:
            failures, self._failures = self._failures, []
        if failures or undelivered:
            raise DeadLetterError(self.topic, failures, undelivered)

    def in_flight(self) -> int:
        """Dead letters queued or sent and not yet acknowledged or failed."""
        return len(self._producer)

    @property
    def published(self) -> int:
        """Records queued by :meth:`publish` since construction (delivered or not)."""
        return self._published

    def close(self, timeout_s: float | None = None) -> None:
        """Flush (raising :class:`DeadLetterError` as :meth:`flush` does) and refuse further
        records. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.flush(timeout_s)

    def __enter__(self) -> DeadLetterPublisher:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.close()
            return
        try:  # already failing: flush what was queued, do not mask the original error
            self.close()
        except DeadLetterError as error:
            _LOG.error("%s", error)

    def _on_delivery(
        self, source_topic: str, poison: Poison, err: KafkaError | None, _msg: Message
    ) -> None:
        if err is None:
            return
        failure = DeadLetterFailure(
            source_topic, poison.partition, poison.offset, poison.reason, err.str()
        )
        with self._lock:
            self._failures.append(failure)

    def _refused(self, source_topic: str, poison: Poison, why: str) -> DeadLetterError:
        failure = DeadLetterFailure(
            source_topic, poison.partition, poison.offset, poison.reason, why
        )
        return DeadLetterError(self.topic, [failure])


def _log_client_error(err: KafkaError) -> None:
    _CLIENT_LOG.log(logging.ERROR if err.fatal() else logging.WARNING, "%s", err.str())


def _now_iso_ms() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
