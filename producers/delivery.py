"""What publishing reports back: one result per event, and what a flush left behind."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryResult:
    """The fate of one event: acknowledged at ``partition``/``offset``, or ``error``."""

    event_id: str
    tenant_id: str
    topic: str
    partition: int | None
    offset: int | None
    error: str | None
    latency_s: float

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class FlushReport:
    """After a flush: events acknowledged and failed since the previous flush, and events
    still in flight when the flush timed out (zero unless it timed out)."""

    delivered: int
    failed: tuple[DeliveryResult, ...]
    pending: int

    @property
    def ok(self) -> bool:
        return not self.failed and self.pending == 0


class PublishTimeoutError(TimeoutError):
    """The local queue stayed full for the whole publish timeout: the broker is slower than
    the caller, or unreachable. The event was not queued; the caller still owns it."""

    def __init__(self, event_id: str, waited_s: float, queued: int) -> None:
        super().__init__(
            f"event {event_id} not queued: the producer queue stayed full ({queued} events) "
            f"for {waited_s:.1f} s; the broker is not keeping up or is unreachable"
        )
        self.event_id = event_id


class PublishError(RuntimeError):
    """The client refused the event outright (for instance: the topic does not exist).
    The event was not queued."""


class DeliveryError(RuntimeError):
    """Raised by :meth:`AuditProducer.close` (and the context manager) when events failed or
    were still undelivered; ``report`` has them."""

    def __init__(self, report: FlushReport) -> None:
        first = report.failed[0].error if report.failed else None
        super().__init__(
            f"{len(report.failed)} events failed and {report.pending} were still in flight"
            + (f"; first error: {first}" if first else "")
        )
        self.report = report
