"""Where a replay starts: a point in time, and the offsets of the events topic from it.

``auditlog destinations replay ID --since TIME`` stores a
:class:`~sinks.destinations.model.ReplayRequest` holding, per partition of the events
topic, the first offset whose record timestamp is at or after ``TIME``
(:func:`find_replay_offsets`, from Kafka's time index). Where the topic no longer holds
records that old (retention deleted them), the partition's log start is used and the
partition is named in ``from_log_start``, so the command can say so.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from confluent_kafka import Consumer, KafkaException, TopicPartition

from runtime.kafka_connection import KafkaConnection
from sinks.destinations.model import ReplayRequest

_RELATIVE = re.compile(r"(\d+)\s*(s|m|h|d|w)")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class ReplayError(RuntimeError):
    """The events topic could not be read for offsets; the message says why."""


def parse_since(text: str, *, now: datetime) -> datetime:
    """``2h``, ``30m``, ``3d``, ``1w`` (before ``now``) or an ISO 8601 time (UTC unless it
    says otherwise). Raises ``ValueError`` for anything else or a time after ``now``."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        since = now - timedelta(**{_UNITS[unit]: amount})
    else:
        try:
            since = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"--since {text!r}: expected an ISO 8601 time (2026-11-25T09:30:00Z) or a "
                "time ago (30m, 2h, 3d, 1w)"
            ) from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    if since > now:
        raise ValueError(f"--since {text!r} is in the future")
    return since.astimezone(UTC)


@dataclass(frozen=True)
class ReplayStart:
    """Per partition: the first offset to re-send. ``from_log_start``: partitions where
    records at or after ``since`` may already be deleted (the log start is used);
    ``end_offsets``: where each partition ends now (a partition whose start is its end has
    nothing to replay)."""

    since: datetime
    offsets: dict[int, int]
    end_offsets: dict[int, int]
    from_log_start: tuple[int, ...]

    @property
    def records(self) -> int:
        """How many records (of every tenant) lie between the starts and the ends now."""
        return sum(self.end_offsets[p] - o for p, o in self.offsets.items())

    def request(self) -> ReplayRequest:
        return ReplayRequest(id=str(uuid.uuid4()), since=self.since, offsets=dict(self.offsets))


def find_replay_offsets(
    kafka: KafkaConnection, topic: str, since: datetime, *, timeout_s: float = 30.0
) -> ReplayStart:
    """Look up the offsets of ``since`` in every partition of ``topic``. Blocks up to
    about ``timeout_s``; raises :class:`ReplayError` when Kafka does not answer or the topic
    does not exist."""
    consumer = Consumer(
        {
            **kafka.properties(),
            "group.id": "auditlog-replay-lookup-unused",  # required by the client; never joined
            "client.id": "auditlog-replay-lookup",
            "enable.auto.commit": False,
            "log_level": 2,
        }
    )
    try:
        return _lookup(consumer, topic, since, timeout_s)
    except KafkaException as exc:
        raise ReplayError(f"topic {topic}: {exc.args[0]}") from exc
    finally:
        consumer.close()


def _lookup(consumer: Consumer, topic: str, since: datetime, timeout_s: float) -> ReplayStart:
    metadata = consumer.list_topics(topic, timeout=timeout_s)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise ReplayError(f"topic {topic} does not exist")
    partitions = sorted(found.partitions)
    millis = int(since.timestamp() * 1000)
    asked = [TopicPartition(topic, p, millis) for p in partitions]
    answered = consumer.offsets_for_times(asked, timeout=timeout_s)
    offsets: dict[int, int] = {}
    ends: dict[int, int] = {}
    clamped: list[int] = []
    for tp in answered:
        if tp.error is not None:
            raise ReplayError(f"topic {topic} partition {tp.partition}: {tp.error}")
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, tp.partition), timeout=timeout_s
        )
        ends[tp.partition] = high
        # -1: no record at or after ``since``: nothing to replay, start at the end.
        start = high if tp.offset < 0 else max(tp.offset, low)
        if start == low and low > 0:
            clamped.append(tp.partition)
        offsets[tp.partition] = start
    return ReplayStart(since, offsets, ends, tuple(sorted(clamped)))
