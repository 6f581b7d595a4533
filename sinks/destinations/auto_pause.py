"""Pausing a destination that kept failing: through the store (so every worker sees it),
and published as ``audit_stream.destination_auto_paused`` of its tenant (no user did it);
a partner destination's also of each account it streams (``managed_accounts``: the accounts
the partner manages now, as the worker knows them)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from runtime.redaction import redact_text
from sinks.destinations.model import Destination
from sinks.destinations.store import ConcurrentUpdateError, DestinationStore

_LOG = logging.getLogger("auditlog.sink")

Publish = Callable[[Mapping[str, Any]], str]


class AutoPauser:
    """Called by the worker (its ``auto_pause``). Raises what the store or ``publish``
    raise; the worker tries again at the destination's next failure."""

    def __init__(
        self,
        store: DestinationStore,
        publish: Publish,
        managed_accounts: Callable[[str], frozenset[str]] = lambda partner: frozenset(),
    ) -> None:
        self._store = store
        self._publish = publish
        self._managed_accounts = managed_accounts

    def __call__(self, destination: Destination, error: str, failing_since: datetime) -> None:
        error = redact_text(error)  # it is shown by `show` and published to the tenant
        current = self._store.get(destination.id)
        if current is None or current.state != "active":
            return  # removed or paused meanwhile: nothing to do
        now = datetime.now(UTC)
        paused = current.model_copy(
            update={
                "state": "paused",
                "state_reason": (
                    f"paused automatically at {now:%Y-%m-%d %H:%M} UTC: failing since "
                    f"{failing_since:%Y-%m-%d %H:%M} UTC; last error: {error}"
                )[:1000],
                "revision": current.revision + 1,
                "updated_at": now,
            }
        )
        try:
            self._store.put(paused, expected_revision=current.revision)
        except ConcurrentUpdateError:
            return  # someone changed it meanwhile; the next failure decides again
        details = {"error": error[:500], "failing_since": failing_since.isoformat()}
        event = {
            "tenant_id": destination.tenant_id,
            "occurred_at": now,
            "action": "audit_stream.destination_auto_paused",
            "actor": {"type": "system", "id": "auditlog-sink"},
            "resource": {"type": "audit_stream", "id": destination.id},
            "outcome": {"status": "success"},
            "details": details,
            "source": "auditlog-sink",
        }
        event_id = self._publish(event)
        partner = destination.partner_id
        if partner is not None:
            theirs = {**details, "scope": "partner", "partner_account_id": partner}
            for account in sorted(self._managed_accounts(partner)):
                if destination.accounts.accepts(account):
                    self._publish({**event, "tenant_id": account, "details": theirs})
        _LOG.warning(
            "destination paused automatically",
            extra={"destination": destination.id, "event_id": event_id, "error": error},
        )
