"""Where each destination stands in each partition, and how its deliveries go.

One record per (destination, partition of the events topic) in a compacted topic (key
``<destination id>/<partition>``), written by the worker that owns the partition:

- ``done_until`` (``"next_offset"`` in the JSON record): every record below it is done for
  this destination (delivered, filtered out, or not the destination's tenant).
- ``in_sync``: the destination keeps up with the sink group. The group's committed offset
  never passes a pending record of an in-sync destination, so after a restart it continues
  from ``max(committed, done_until)``. A destination that is parked (failing) or paused is
  *not* in sync: the group moves on without it, and its ``done_until`` is where it resumes,
  on its own reader, when it answers again or is resumed.
- ``announced_first``, ``announced_last``, ``announced_shape``: before a batch is sent, its
  range and its shape (:mod:`sinks.batch_shape`: filters, format, compression, S3 prefix
  template, and the destination revision they come from) are written here, so a worker
  that restarts (or takes the partition over) re-forms exactly the same batch, whatever
  was changed in the destination meanwhile: the same records, the same S3 key, the same
  webhook idempotency key, the same bytes. A record written before shapes were announced
  has none; the destination's shape at the restart is used then. An unreadable shape is
  logged and treated alike.
- ``replay_*``: progress of a ``destinations replay`` request on this partition.
- health: records delivered, last success, last error, consecutive failures, failing since,
  lag. ``auditlog destinations show`` sums it up over partitions
  (:func:`destination_health`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runtime.compacted_table import CompactedTable, FollowedTable, KeyedWriter
from runtime.kafka_connection import KafkaConnection
from sinks.batch_shape import BatchShape

_LOG = logging.getLogger("auditlog.sink")


@dataclass(frozen=True)
class LaneProgress:
    """The progress record of one destination in one partition.

    ``done_until`` is written and read under the JSON key ``"next_offset"``, its name
    before the offsets were renamed: workers of both releases run side by side in a
    rolling upgrade, and each must read the other's records."""

    destination_id: str
    partition: int
    done_until: int
    stream: str = "live"  # "live", or "replay" for a replay's own record
    in_sync: bool = True
    announced_first: int | None = None
    announced_last: int | None = None
    announced_shape: BatchShape | None = None
    replay_id: str | None = None
    replay_end: int | None = None
    replay_done: bool = False
    delivered_records: int = 0
    delivered_batches: int = 0
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    lag_records: int = 0
    updated_at: datetime | None = None

    @property
    def key(self) -> bytes:
        return progress_key(self.destination_id, self.partition, self.stream)

    def to_json(self) -> bytes:
        values: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, BatchShape):
                value = value.to_json()
            values[_WIRE_NAMES.get(field.name, field.name)] = value
        return json.dumps(values, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> LaneProgress:
        values = json.loads(raw)
        known = {field.name: field for field in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for wire_name, value in values.items():
            name = _FIELD_NAMES.get(wire_name, wire_name)
            if name not in known:
                continue  # written by a newer release
            if name.endswith("_at") or name == "failing_since":
                kwargs[name] = datetime.fromisoformat(value) if value else None
            elif name == "announced_shape":
                kwargs[name] = _shape(value, values)
            else:
                kwargs[name] = value
        return cls(**kwargs)

    def replace(self, **changes: Any) -> LaneProgress:
        """A copy with ``changes`` (``updated_at`` too: :mod:`sinks.progress_update`)."""
        return dataclasses.replace(self, **changes)


# Fields whose JSON key is not their name (see LaneProgress).
_WIRE_NAMES = {"done_until": "next_offset"}
_FIELD_NAMES = {wire: name for name, wire in _WIRE_NAMES.items()}


def _shape(value: Any, record: dict[str, Any]) -> BatchShape | None:
    if value is None:
        return None
    try:
        return BatchShape.from_json(value)
    except (ValueError, TypeError, KeyError) as exc:
        _LOG.warning(
            "announced batch shape unreadable: the destination's shape is used",
            extra={
                "destination": record.get("destination_id"),
                "partition": record.get("partition"),
                "error": str(exc),
            },
        )
        return None


def progress_key(destination_id: str, partition: int, stream: str = "live") -> bytes:
    suffix = "" if stream == "live" else f"/{stream}"
    return f"{destination_id}/{partition}{suffix}".encode()


class ProgressStore:
    """The worker's view of the progress topic: every record, kept current by
    :meth:`refresh`, and writes that :meth:`flush` confirms. Reads from one thread; writes
    from any."""

    def __init__(self, table: FollowedTable, writer: KeyedWriter) -> None:
        self._table = table
        self._writer = writer
        self._records: dict[bytes, LaneProgress] = {}

    def load(self, timeout_s: float = 30.0) -> None:
        self._records = {
            key: LaneProgress.from_json(value) for key, value in self._table.load(timeout_s).items()
        }

    def refresh(self, timeout_s: float = 0.0) -> None:
        """Take in what other workers wrote (e.g. the previous owner of a partition)."""
        for key, value in self._table.changes(timeout_s):
            if value is None:
                self._records.pop(key, None)
            else:
                self._records[key] = LaneProgress.from_json(value)

    def catch_up(self, timeout_s: float = 10.0) -> None:
        """Read everything written up to now (call on assignment, before trusting
        :meth:`get` for a partition another worker owned)."""
        self._table.read_to_end(self._apply, timeout_s=timeout_s)

    def _apply(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self._records.pop(key, None)
        else:
            self._records[key] = LaneProgress.from_json(value)

    def get(self, destination_id: str, partition: int, stream: str = "live") -> LaneProgress | None:
        return self._records.get(progress_key(destination_id, partition, stream))

    def write(self, record: LaneProgress) -> None:
        """Queue a write; the local view has it at once, :meth:`flush` makes it durable."""
        self._records[record.key] = record
        self._writer.put(record.key, record.to_json())

    def forget(self, destination_id: str, partitions: Iterable[int]) -> None:
        for partition in partitions:
            for stream in ("live", "replay"):
                key = progress_key(destination_id, partition, stream)
                if self._records.pop(key, None) is not None:
                    self._writer.put(key, None)

    def flush(self, timeout_s: float = 30.0) -> None:
        self._writer.flush(timeout_s)

    def records(self) -> list[LaneProgress]:
        return list(self._records.values())

    def close(self) -> None:
        self._table.close()
        self._writer.close()


@dataclass(frozen=True)
class DestinationHealth:
    """A destination's health summed over the partitions it has progress in."""

    destination_id: str
    partitions: list[LaneProgress]

    @property
    def delivered_records(self) -> int:
        return sum(p.delivered_records for p in self.partitions)

    @property
    def last_success_at(self) -> datetime | None:
        return max((p.last_success_at for p in self.partitions if p.last_success_at), default=None)

    @property
    def last_error(self) -> tuple[datetime, str] | None:
        errors = [(p.last_error_at, p.last_error or "") for p in self.partitions if p.last_error_at]
        return max(errors, default=None)

    @property
    def consecutive_failures(self) -> int:
        return max((p.consecutive_failures for p in self.partitions), default=0)

    @property
    def failing_since(self) -> datetime | None:
        return min((p.failing_since for p in self.partitions if p.failing_since), default=None)

    @property
    def lag_records(self) -> int:
        return sum(p.lag_records for p in self.partitions)

    def lines(self) -> list[str]:
        if not self.partitions:
            return ["nothing delivered yet (no progress recorded)"]
        last_error = self.last_error
        behind = [p.partition for p in self.partitions if not p.in_sync]
        replays = [p for p in self.partitions if p.stream == "replay" and not p.replay_done]
        return [
            f"delivered records: {self.delivered_records}",
            f"last success: {_when(self.last_success_at)}",
            "last error: " + (f"{_when(last_error[0])}: {last_error[1]}" if last_error else "none"),
            f"consecutive failures: {self.consecutive_failures}",
            f"failing since: {_when(self.failing_since)}",
            f"lag: {self.lag_records} records",
            "partitions behind the group (parked or paused): "
            + (", ".join(map(str, sorted(behind))) if behind else "none"),
            f"replay in progress on {len(replays)} partitions" if replays else "replay: none",
        ]


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "never"


def destination_health(
    kafka: KafkaConnection, topic: str, destination_id: str, *, timeout_s: float = 30.0
) -> DestinationHealth:
    """Read the progress topic and sum up one destination's health."""
    table = CompactedTable(kafka, topic, client_id="auditlog-destination-health")
    try:
        records = table.load(timeout_s)
    finally:
        table.close()
    prefix = f"{destination_id}/".encode()
    found = [LaneProgress.from_json(v) for k, v in records.items() if k.startswith(prefix)]
    return DestinationHealth(destination_id, sorted(found, key=lambda p: p.partition))
