"""Poison records: what they are, publishing them to the dead-letter topic, and the limit.

A poison record is one the ClickHouse writer cannot store: its value is not framed, names
an unknown writer schema, does not decode, or ClickHouse rejects it. It goes to the
dead-letter topic with the reason, so it never blocks its partition (DESIGN.md, decision 8).

- :class:`Poison` is the original record (partition, offset, key, value, headers) with a
  stable ``reason`` code and the error text.
- :class:`DeadLetterPublisher` queues poison records on the dead-letter topic: the
  original key, value and headers, plus the ``auditlog-dlq-*`` headers below.
  :meth:`~DeadLetterPublisher.flush` raises :class:`DeadLetterError` unless every record
  queued since the previous flush reached the topic: the writer must not commit offsets
  past a poison record that did not.
- :class:`DeadLetterBudget` keeps the share and the run of dead-lettered records over a
  sliding window against a :class:`DeadLetterLimit`; :meth:`~DeadLetterBudget.check`
  raises :class:`DeadLetterLimitExceeded`, so a consumer fed only garbage stops with a
  clear error instead of draining its topic into the dead-letter queue.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from producers.topics import DEAD_LETTER_MAX_MESSAGE_BYTES
from runtime.kafka_connection import KafkaConnection
from runtime.kafka_logs import librdkafka_logger
from schemas.wire import WireError

#: Why a record was dead-lettered (header :data:`REASON`). The first three are
#: :class:`~schemas.wire.WireError` reasons; then an insert ClickHouse refused, and a record
#: whose key, ``auditlog-tenant`` header and body name different tenants
#: (:mod:`schemas.tenancy`).
DeadLetterReason = Literal[
    "not-framed", "unknown-schema", "corrupt-datum", "rejected-by-clickhouse", "tenant-mismatch"
]
NOT_FRAMED: DeadLetterReason = "not-framed"
UNKNOWN_SCHEMA: DeadLetterReason = "unknown-schema"
CORRUPT_DATUM: DeadLetterReason = "corrupt-datum"
REJECTED_BY_CLICKHOUSE: DeadLetterReason = "rejected-by-clickhouse"
TENANT_MISMATCH: DeadLetterReason = "tenant-mismatch"

# Headers a dead-letter record carries besides the original record's own.
REASON = "auditlog-dlq-reason"
"""A :data:`DeadLetterReason` code."""
DETAIL = "auditlog-dlq-detail"
"""The error text, UTF-8, at most :data:`MAX_DETAIL_BYTES`."""
SOURCE_TOPIC = "auditlog-dlq-source-topic"
SOURCE_PARTITION = "auditlog-dlq-source-partition"
"""Decimal text."""
SOURCE_OFFSET = "auditlog-dlq-source-offset"
"""Decimal text."""
TIME = "auditlog-dlq-time"
"""When the record was dead-lettered: ISO 8601, UTC, milliseconds (``2026-11-25T10:00:00.123Z``)."""

DEAD_LETTER_HEADERS = (REASON, DETAIL, SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, TIME)

MAX_DETAIL_BYTES = 4096
_TRUNCATED = " [truncated]"

_CLIENT_LOG = librdkafka_logger("dead_letters")
_LOG = logging.getLogger("auditlog.dead_letters")
_FULL_QUEUE_WAIT_S = 0.005


def truncate_detail(detail: str, max_bytes: int = MAX_DETAIL_BYTES) -> str:
    """``detail`` cut to at most ``max_bytes`` of UTF-8 (never inside a character), ending
    in `` [truncated]`` when it was cut."""
    encoded = detail.encode()
    if len(encoded) <= max_bytes:
        return detail
    room = max_bytes - len(_TRUNCATED.encode())
    return encoded[:room].decode(errors="ignore") + _TRUNCATED


@dataclass(frozen=True)
class Poison:
    """One record of the source topic that goes to the dead-letter topic.

    ``partition``, ``offset``, ``key``, ``value`` and ``headers`` are the original record's;
    ``reason`` is a stable code, ``detail`` the error text (cut to :data:`MAX_DETAIL_BYTES`
    on construction).
    """

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]
    reason: DeadLetterReason
    detail: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", truncate_detail(self.detail))

    @classmethod
    def of(cls, message: Message, reason: DeadLetterReason, detail: str) -> Poison:
        """The poison record for a consumed ``message``. Raises ``ValueError`` for a message
        without partition or offset (an error event, not a record)."""
        partition, offset = message.partition(), message.offset()
        if partition is None or offset is None or message.error() is not None:
            raise ValueError(f"not a consumed record: {message.error() or 'no partition/offset'}")
        raw_headers = message.headers() or []
        items = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
        headers = [(name, v.encode() if isinstance(v, str) else v) for name, v in items]
        key, value = message.key(), message.value()
        return cls(
            partition=partition,
            offset=offset,
            key=key.encode() if isinstance(key, str) else key,
            value=value.encode() if isinstance(value, str) else value,
            headers=headers,
            reason=reason,
            detail=detail,
        )

    @classmethod
    def from_wire_error(cls, message: Message, error: WireError) -> Poison:
        """The poison record for ``message`` that failed to read with ``error``."""
        return cls.of(message, error.reason, str(error))


def poisons_at(
    messages: Sequence[Message], failed: Iterable[tuple[int, WireError]]
) -> list[Poison]:
    """Poison records for the ``(position in messages, error)`` pairs that
    :func:`consumers.avro_block.split_by_schema` (``unframed``) and
    :func:`consumers.avro_block.upcast` (``failed``) report, in offset order."""
    poisons = [Poison.from_wire_error(messages[position], error) for position, error in failed]
    return sorted(poisons, key=lambda poison: (poison.partition, poison.offset))


# --- publishing ---------------------------------------------------------------------------


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
    ``max.message.bytes``; its log lines go to the ``auditlog.dead_letters.client`` logger.
    A record not acknowledged within ``delivery_timeout_s`` (a missing topic, an
    unreachable broker) fails. Delivery reports are served by :meth:`publish` (without
    waiting) and :meth:`flush`; use the publisher from one thread at a time. ``producer``
    (built from the settings above when not given) is a seam for tests.
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
        producer: Producer | None = None,
    ) -> None:
        if delivery_timeout_s <= 0:
            raise ValueError(f"delivery_timeout_s must be positive, got {delivery_timeout_s}")
        self.topic = topic
        self.delivery_timeout_s = delivery_timeout_s
        self._producer = producer or Producer(
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


# --- the limit ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetterLimit:
    """When dead-lettering stops being a few bad records and becomes a broken input.

    Exceeded when more than ``max_ratio`` of the last ``window_records`` records examined
    were dead-lettered (judged only once at least ``min_records`` were seen), or when more
    than ``max_run`` consecutive records were. ``max_ratio = 1.0`` disables the share.
    """

    max_ratio: float = 0.5
    max_run: int = 1000
    window_records: int = 10_000
    min_records: int = 100

    def __post_init__(self) -> None:
        if not 0.0 < self.max_ratio <= 1.0:
            raise ValueError(f"max_ratio must be in (0, 1], got {self.max_ratio}")
        if self.max_run < 1:
            raise ValueError(f"max_run must be at least 1, got {self.max_run}")
        if self.min_records < 1:
            raise ValueError(f"min_records must be at least 1, got {self.min_records}")
        if self.window_records < self.min_records:
            raise ValueError(
                f"window_records ({self.window_records}) must be at least min_records "
                f"({self.min_records})"
            )

    def describe(self) -> str:
        return f"{self.max_ratio * 100:g}% of {self.window_records} / a run of {self.max_run}"


class DeadLetterLimitExceeded(RuntimeError):
    """Too many records were dead-lettered: the consumer stops (see :class:`DeadLetterLimit`).

    ``poisoned`` of the last ``seen`` records were dead-lettered, the last ``run`` of them
    consecutively, at the moment the limit was crossed.
    """

    def __init__(
        self,
        message: str,
        *,
        poisoned: int,
        seen: int,
        run: int,
        limit: DeadLetterLimit,
    ) -> None:
        super().__init__(message)
        self.poisoned = poisoned
        self.seen = seen
        self.run = run
        self.limit = limit


@dataclass
class DeadLetterBudget:
    """Counts outcomes (kept or dead-lettered) of the records examined, in order, against
    ``limit``. Pure and O(1) amortised per call, whatever ``count``.

    The limit is judged as if after every single record, so it trips at the first record
    that crosses it even inside a bulk :meth:`record`; once tripped it stays tripped, and
    :meth:`check` raises. Record outcomes before dead-lettering a batch and call
    :meth:`check` before publishing it, so a broken input stops the consumer instead of
    filling the dead-letter topic.
    """

    limit: DeadLetterLimit
    source_topic: str
    dead_letter_topic: str
    # The window, run-length encoded, oldest first.
    _segments: deque[_Segment] = field(default_factory=deque, init=False, repr=False)
    _seen: int = field(default=0, init=False)
    _poisoned: int = field(default=0, init=False)
    _run: int = field(default=0, init=False)
    _exceeded: DeadLetterLimitExceeded | None = field(default=None, init=False, repr=False)

    @property
    def seen(self) -> int:
        """Records in the window (at most ``limit.window_records``)."""
        return self._seen

    @property
    def poisoned(self) -> int:
        """Dead-lettered records in the window."""
        return self._poisoned

    @property
    def run(self) -> int:
        """Consecutive dead-lettered records up to the latest one (not bounded by the window)."""
        return self._run

    def record(self, poisoned: bool, count: int = 1) -> None:
        """Add ``count`` consecutive records, all dead-lettered or all kept."""
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        if count == 0:
            return
        limit = self.limit
        if not poisoned and self._exceeded is None:
            # The share only falls while records are kept, except that it starts to count
            # when the window reaches min_records: judge it there.
            before = self._seen
            if before < limit.min_records <= before + count:
                self._judge_ratio(self._poisoned, limit.min_records, run=0)
        if self._segments and self._segments[-1].poisoned == poisoned:
            self._segments[-1].count += count
        else:
            self._segments.append(_Segment(poisoned, count))
        self._seen += count
        if poisoned:
            self._poisoned += count
            self._run += count
        else:
            self._run = 0
        self._evict()
        if self._exceeded is None:
            if self._run > limit.max_run:
                self._trip(
                    f"{self._run} consecutive records were dead-lettered",
                    self._poisoned,
                    self._seen,
                    self._run,
                )
            else:
                # While records are dead-lettered the share only rises: the end is its peak.
                self._judge_ratio(self._poisoned, self._seen, self._run)

    def observe_batch(self, size: int, poisoned_positions: Collection[int]) -> None:
        """Add a batch of ``size`` records in order, of which those at
        ``poisoned_positions`` (indexes in ``range(size)``) were dead-lettered."""
        at = 0
        for position in sorted(set(poisoned_positions)):
            if not 0 <= position < size:
                raise ValueError(f"position {position} is outside a batch of {size}")
            self.record(False, position - at)
            self.record(True, 1)
            at = position + 1
        self.record(False, size - at)

    def check(self) -> None:
        """Raise :class:`DeadLetterLimitExceeded` if the limit was crossed."""
        if self._exceeded is not None:
            raise self._exceeded

    def _evict(self) -> None:
        excess = self._seen - self.limit.window_records
        while excess > 0:
            oldest = self._segments[0]
            dropped = min(excess, oldest.count)
            oldest.count -= dropped
            excess -= dropped
            self._seen -= dropped
            if oldest.poisoned:
                self._poisoned -= dropped
            if oldest.count == 0:
                self._segments.popleft()

    def _judge_ratio(self, poisoned: int, seen: int, run: int) -> None:
        if seen >= self.limit.min_records and poisoned > self.limit.max_ratio * seen:
            self._trip(
                f"{poisoned} of the last {seen} records were dead-lettered", poisoned, seen, run
            )

    def _trip(self, what: str, poisoned: int, seen: int, run: int) -> None:
        message = (
            f"{what} (limit: {self.limit.describe()}): stopping instead of draining "
            f"{self.source_topic} into {self.dead_letter_topic}; inspect the dead-letter topic"
        )
        self._exceeded = DeadLetterLimitExceeded(
            message, poisoned=poisoned, seen=seen, run=run, limit=self.limit
        )


@dataclass(slots=True)
class _Segment:
    """Consecutive records of one outcome."""

    poisoned: bool
    count: int
