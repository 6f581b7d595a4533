"""The state shared by every script of one run: the random generator, the tenants, the catalog.

:class:`World` is the only source of randomness after tenants are built, and scripts use it
in the order the engine resumes them, which is what makes a run deterministic. It also
assembles events, so that every event's category and resource type come from the catalog.
"""

from __future__ import annotations

import bisect
import random
from datetime import UTC, datetime
from typing import Any, NamedTuple

from producers.generator.assets import WORKSPACE_TYPES
from producers.generator.config import GeneratorConfig
from producers.generator.population import Tenant, User, Workspace, build_tenant
from schemas.catalog import Catalog

Event = dict[str, Any]
"""One generated event: a JSON-serialisable dict in the NDJSON input shape."""

Change = dict[str, str | None]
"""One entry of an event's ``changes``: ``{"field", "before", "after"}``."""

_SOURCES = {
    "account_security": "identity-service",
    "members_roles": "identity-service",
    "recipes": "recipe-service",
    "connections": "connection-service",
    "folders_projects": "workspace-service",
    "packages_deployments": "deployment-service",
    "api_platform": "api-platform-admin",
    "custom_connectors": "connector-sdk-service",
    "account_settings": "account-service",
    "audit_streaming": "audit-streaming",
    "audit_access": "audit-viewer",
}
"""The platform service that emits each category's events (``source``)."""


class TimestampFormatter:
    """Milliseconds since the epoch -> ``2026-11-25T12:00:00.123Z``, caching the date."""

    __slots__ = ("_day", "_prefix")

    def __init__(self) -> None:
        self._day = -1
        self._prefix = ""

    def __call__(self, ms: int) -> str:
        seconds, milli = divmod(ms, 1000)
        day, seconds = divmod(seconds, 86_400)
        if day != self._day:
            self._day = day
            self._prefix = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%dT")
        hours, seconds = divmod(seconds, 3600)
        minutes, seconds = divmod(seconds, 60)
        return f"{self._prefix}{hours:02d}:{minutes:02d}:{seconds:02d}.{milli:03d}Z"


class Origin(NamedTuple):
    """Where a request came from; a session keeps one for all its events."""

    ip: str | None
    user_agent: str | None
    session_id: str | None


SYSTEM_ORIGIN = Origin(None, None, None)


def user_actor(user: User) -> dict[str, str | None]:
    """The ``actor`` of an event done by ``user``."""
    return {"type": "user", "id": user.id, "name": user.name, "email": user.email}


def system_actor(service: str, name: str) -> dict[str, str | None]:
    """The ``actor`` of an event the platform did on its own (``service`` names the job)."""
    return {"type": "system", "id": f"system:{service}", "name": name, "email": None}


class World:
    """Randomness, tenants and event assembly for one run.

    Raises ``ValueError`` at construction when the catalog lacks an action in ``actions``
    (the actions the scripts can emit).
    """

    def __init__(self, config: GeneratorConfig, catalog: Catalog, actions: frozenset[str]) -> None:
        missing = sorted(actions - catalog.actions)
        if missing:
            raise ValueError(f"the activity catalog lacks actions the generator emits: {missing}")
        self.config = config
        self.rng = random.Random(config.seed)  # noqa: S311 - synthetic, reproducible data
        self.meta: dict[str, tuple[str, str, str, bool]] = {}
        for activity in catalog.activities:
            self.meta[activity.action] = (
                activity.category,
                activity.resource_type,
                _SOURCES.get(activity.category, "platform"),
                activity.resource_type in WORKSPACE_TYPES,
            )
        self._cumulative: list[float] = []
        total = 0.0
        for rank in range(config.tenants):
            total += (rank + 1) ** -config.tenant_skew
            self._cumulative.append(total)
        self._tenants: dict[int, Tenant] = {}
        self.now_ms = config.start_ms
        """The simulated time of the event being made (the engine advances it)."""
        self._iso = TimestampFormatter()

    def iso(self, ms: int) -> str:
        """``ms`` (since the epoch) as ISO 8601 UTC with milliseconds and a trailing Z."""
        return self._iso(ms)

    def pick_tenant(self) -> Tenant:
        """A tenant drawn by activity share (Zipf): low indexes are the big accounts."""
        index = bisect.bisect_right(self._cumulative, self.rng.random() * self._cumulative[-1])
        index = min(index, len(self._cumulative) - 1)
        tenant = self._tenants.get(index)
        if tenant is None:
            share = (index + 1) ** -self.config.tenant_skew
            tenant = self._tenants[index] = build_tenant(self.config.seed, index, share)
        return tenant

    def token(self, prefix: str) -> str:
        """A fresh random id such as a session id (80 random bits)."""
        return f"{prefix}_{self.rng.getrandbits(80):020x}"

    def event(
        self,
        tenant: Tenant,
        action: str,
        actor: dict[str, str | None],
        origin: Origin,
        resource: tuple[str, str | None],
        *,
        workspace: Workspace | None = None,
        details: dict[str, str] | None = None,
        changes: list[Change] | None = None,
        failure: str | None = None,
        note: str | None = None,
        source: str | None = None,
    ) -> Event:
        """An event on ``resource`` (id, name), without its id, time and request id (the engine
        stamps those).

        ``workspace`` is kept only when the action's resource type belongs to a workspace.
        ``failure`` makes the outcome a failure with that reason; ``note`` is a reason on a
        success. Raises ``KeyError`` for an action the catalog does not list.
        """
        category, resource_type, default_source, scoped = self.meta[action]
        if scoped and workspace is not None:
            where: dict[str, str | None] = {
                "id": workspace.id,
                "name": workspace.name,
                "environment": workspace.environment,
            }
        else:
            where = {"id": None, "name": None, "environment": None}
        return {
            "event_id": "",
            "tenant_id": tenant.id,
            "occurred_at": "",
            "action": action,
            "category": category,
            "actor": dict(actor),
            "resource": {"type": resource_type, "id": resource[0], "name": resource[1]},
            "workspace": where,
            "request": {
                "ip": origin.ip,
                "user_agent": origin.user_agent,
                "request_id": None,
                "session_id": origin.session_id,
            },
            "outcome": (
                {"status": "failure", "reason": failure}
                if failure is not None
                else {"status": "success", "reason": note}
            ),
            "details": details if details is not None else {},
            "changes": changes if changes is not None else [],
            "source": source or default_source,
        }


_MODIFICATION_VERBS = ("updated", "renamed", "moved", "changed")
_SECRET_CHANGES = frozenset({"user.password_changed"})


def is_modification(action: str) -> bool:
    """Whether events of ``action`` carry field ``changes`` (non-empty) rather than none.

    Modifications are the actions whose verb ends in updated, renamed, moved or changed
    (``recipe.updated``, ``member.role_changed``, ``account.ip_allowlist_updated``...) and
    ``account.ownership_transferred``; ``user.password_changed`` is not, since a secret's
    values are never recorded.
    """
    if action in _SECRET_CHANGES:
        return False
    verb = action.rpartition(".")[2].rpartition("_")[2]
    return verb in _MODIFICATION_VERBS or action == "account.ownership_transferred"
