"""Publishing a destination change as audit events, once the change itself succeeded.

An account destination's change is an event of its account. A partner destination's change
is an event of the partner, then one of each account it affects (``details.scope`` is
``partner``, ``details.partner_account_id`` names the partner): the accounts the partner
manages now that its account lists select, before or after the change (a replay of chosen
accounts: those accounts).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from auditlog import wiring
from auditlog.commands.destinations_common import EXIT_NOT_PUBLISHED
from auditlog.settings import AuditlogSettings
from producers.delivery import DeliveryError, DeliveryResult, PublishError
from runtime.compacted_table import TableError
from schemas.validation import InvalidEventError
from sinks.destinations.model import Destination


def _event(
    tenant_id: str,
    destination: Destination,
    *,
    action: str,
    actor: Mapping[str, str],
    details: Mapping[str, str],
    failure: str | None,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "occurred_at": datetime.now(UTC),
        "action": action,
        "actor": dict(actor),
        "resource": {
            "type": "audit_stream",
            "id": destination.id,
            "name": destination.name or None,
        },
        "outcome": {"status": "failure", "reason": failure[:1024]}
        if failure
        else {"status": "success"},
        "details": {key: value[:2048] for key, value in details.items()},
        "source": "auditlog-cli",
    }


def affected_accounts(
    settings: AuditlogSettings, destination: Destination, before: Destination | None = None
) -> list[str]:
    """The accounts a change of a partner destination concerns (empty for an account
    destination); raises :class:`TableError` when the accounts topic cannot be read."""
    if destination.partner_id is None:
        return []
    replay = destination.replay
    store = wiring.account_store(settings)
    try:
        managed = {record.account_id for record in store.list(destination.partner_id)}
    finally:
        store.close()
    chosen = {a for a in managed if destination.accounts.accepts(a)}
    if before is not None:
        chosen |= {a for a in managed if before.accounts.accepts(a)}
    if replay is not None and replay.accounts and (before is None or before.replay != replay):
        chosen = set(replay.accounts)
    return sorted(chosen)


def _publish(
    settings: AuditlogSettings,
    destination: Destination,
    action: str,
    actor: Mapping[str, str],
    *,
    details: Mapping[str, str],
    accounts: list[str],
    failure: str | None,
) -> str:
    """Publish ``action`` as an audit event of the destination's owner, then of each of
    ``accounts``; blocks until Kafka acknowledged every one (raises :class:`PublishError`
    subclasses when it did not). Returns the owner's event id."""
    with wiring.audit_producer(settings, client_id="auditlog-destinations") as producer:
        event_id = producer.publish(
            _event(
                destination.tenant_id,
                destination,
                action=action,
                actor=actor,
                details=details,
                failure=failure,
            )
        )
        if not accounts:
            return event_id
        assert destination.partner_id is not None
        theirs = {**details, "scope": "partner", "partner_account_id": destination.partner_id}
        futures: list[Future[DeliveryResult]] = [
            producer.publish_future(
                _event(a, destination, action=action, actor=actor, details=theirs, failure=failure)
            )
            for a in accounts
        ]
        producer.flush()
        for future in futures:
            result = future.result()
            if not result.ok:
                raise PublishError(
                    f"an event of account {result.tenant_id} was not published: {result.error}"
                )
        return event_id


def announce(
    settings: AuditlogSettings,
    destination: Destination,
    action: str,
    actor: Mapping[str, str],
    details: Mapping[str, str],
    *,
    failure: str | None = None,
    code: int = 0,
    before: Destination | None = None,
) -> int:
    """Publish the change; ``code`` when published, 5 when not (the change stays).
    ``before``: the destination before an update (its accounts are affected too)."""
    try:
        accounts = affected_accounts(settings, destination, before)
        event_id = _publish(
            settings,
            destination,
            action,
            actor,
            details=details,
            accounts=accounts,
            failure=failure,
        )
    except (PublishError, DeliveryError, InvalidEventError, OSError, TableError) as exc:
        print(
            f"auditlog: the change is stored, but its audit event was not published: {exc}",
            file=sys.stderr,
        )
        return code or EXIT_NOT_PUBLISHED
    print(f"published {action} {event_id}")
    if accounts:
        print(f"published {action} to {len(accounts)} managed accounts of {destination.tenant_id}")
    return code
