"""Reading the log is itself audited: one audit event of the account read, per request.

A list or detail request publishes ``audit_log.queried``, an export ``audit_log.exported``
(once it ended, with how many events went out and whether the client took them all). The
event names who looked (the token's user), from where (the client's address and user
agent), what they asked for (the range and the filters, as a query string, without the
cursor), how many events came back, and for a partner's admin the partner.

When the event is published: it is queued on the process's :class:`AuditProducer` before
the response is sent (list, detail) and delivered to Kafka asynchronously (acks from all
in-sync replicas, retried by the client up to its delivery timeout). If the producer cannot
take it (its queue stays full: Kafka unreachable for a while), :meth:`ViewingAudit.record`
raises and the API answers 503 without the data: no unaudited read. An event the client
later fails to deliver is counted (``auditlog_viewer_audit_events_failed_total``) and
logged at error level.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from prometheus_client import CollectorRegistry, Counter

from producers.delivery import DeliveryResult
from viewer.principal import Grant

log = logging.getLogger("auditlog.viewer.audit")

ReadAction = Literal["audit_log.queried", "audit_log.exported"]
QUERIED: ReadAction = "audit_log.queried"
EXPORTED: ReadAction = "audit_log.exported"
SOURCE = "auditlog-viewer"
_MAX_DETAIL_CHARS = 2048  # the event schema's limit on one details value
_MAX_NAME_CHARS = 256  # and on the actor's name
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")  # the shape the schema accepts (at most 320)


class Publisher(Protocol):
    """What the trail needs of :class:`~producers.producer.AuditProducer`."""

    def publish(
        self,
        event: Mapping[str, Any],
        on_delivery: Callable[[DeliveryResult], None] | None = None,
    ) -> str: ...


class AuditUnavailableError(RuntimeError):
    """The read's audit event could not be queued: the read must not be served."""


@dataclass(frozen=True)
class RequestContext:
    """Where a request came from, as the audit event records it."""

    ip: str | None
    user_agent: str | None
    request_id: str | None


class ViewingAudit:
    def __init__(
        self,
        publisher: Publisher,
        *,
        registry: CollectorRegistry,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._publisher = publisher
        self._clock = clock
        self._published = Counter(
            "auditlog_viewer_audit_events",
            "Audit events of reads queued for Kafka, by action.",
            ["action"],
            registry=registry,
        )
        self._failed = Counter(
            "auditlog_viewer_audit_events_failed",
            "Audit events of reads that were not delivered to Kafka.",
            registry=registry,
        )

    def record(
        self,
        grant: Grant,
        action: ReadAction,
        context: RequestContext,
        details: Mapping[str, str],
    ) -> str:
        """Queue the audit event of one read; returns its event id. Raises
        :class:`AuditUnavailableError` when it cannot be queued."""
        principal = grant.principal
        actor: dict[str, Any] = {"type": "user", "id": principal.user_id}
        # What the token says of the user beyond its id is kept only as far as the event
        # schema takes it, so that an odd name or e-mail never makes every read fail.
        if principal.name:
            actor["name"] = principal.name[:_MAX_NAME_CHARS]
        if principal.email and _EMAIL.fullmatch(principal.email):
            actor["email"] = principal.email
        shown = {key: _clip(value) for key, value in details.items()}
        if grant.partner_id is not None:
            shown["partner_account_id"] = grant.partner_id
        event = {
            "tenant_id": grant.account_id,
            "occurred_at": self._clock(),
            "action": action,
            "actor": actor,
            "resource": {"type": "audit_log", "id": grant.account_id},
            "outcome": {"status": "success"},
            "request": _request(context),
            "details": shown,
            "source": SOURCE,
        }
        try:
            event_id = self._publisher.publish(event, self._delivered)
        except Exception as exc:
            log.error("the audit event of a read could not be queued: %s", exc)
            raise AuditUnavailableError(str(exc)) from exc
        self._published.labels(action).inc()
        return event_id

    def _delivered(self, result: DeliveryResult) -> None:
        if not result.ok:
            self._failed.inc()
            log.error(
                "the audit event %s of a read was not delivered: %s",
                result.event_id,
                result.error,
            )


def _request(context: RequestContext) -> dict[str, str]:
    found: dict[str, str] = {}
    if context.ip is not None:
        # A test client's "testclient", a unix socket: no address to record.
        with contextlib.suppress(ValueError):
            found["ip"] = str(ipaddress.ip_address(context.ip))
    if context.user_agent:
        found["user_agent"] = context.user_agent[:1024]
    if context.request_id:
        found["request_id"] = context.request_id[:128]
    return found


def _clip(value: str) -> str:
    return value if len(value) <= _MAX_DETAIL_CHARS else value[: _MAX_DETAIL_CHARS - 1] + "…"
