"""What an activity handler sees: the actor, where they are, and helpers to emit events.

A handler is a function ``(Ctx) -> Event | None``: it picks or creates the assets it acts
on, updates their state, and returns the event, or None when it does not apply right now
(no running recipe to stop, a non-admin asked to approve...). Handlers may queue follow-up
handlers (``Ctx.then``) that the session runs next, such as starting a recipe just built.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from producers.generator import assets
from producers.generator.population import ACCOUNT_WIDE, Asset, Tenant, User, Workspace
from producers.generator.world import Change, Event, Origin, World


class Ctx:
    """One actor acting in one tenant, from one origin, in one workspace (index ``ws_key``)."""

    __slots__ = ("actor", "followups", "origin", "rng", "tenant", "user", "world", "ws", "ws_key")

    def __init__(
        self,
        world: World,
        tenant: Tenant,
        actor: dict[str, str | None],
        origin: Origin,
        *,
        user: User | None,
        ws_key: int,
    ) -> None:
        self.world = world
        self.rng: random.Random = world.rng
        self.tenant = tenant
        self.actor = actor
        self.origin = origin
        self.user = user
        self.ws_key = ws_key
        self.ws: Workspace = tenant.workspaces[ws_key]
        self.followups: list[Handler] = []

    @property
    def is_admin(self) -> bool:
        """Whether the actor may do admin activities (admin members only)."""
        return self.user is not None and self.user.is_admin

    def emit(
        self,
        action: str,
        resource: Asset | tuple[str, str | None],
        *,
        details: dict[str, str] | None = None,
        changes: list[Change] | None = None,
        failure: str | None = None,
        note: str | None = None,
        source: str | None = None,
    ) -> Event:
        """The event of ``action`` on ``resource`` (an asset, or an (id, name) pair)."""
        rid, name = (resource.id, resource.name) if isinstance(resource, Asset) else resource
        return self.world.event(
            self.tenant,
            action,
            self.actor,
            self.origin,
            (rid, name),
            workspace=self.ws,
            details=details,
            changes=changes,
            failure=failure,
            note=note,
            source=source,
        )

    def pick(self, rtype: str, state: str = "", *, account_wide: bool = False) -> Asset | None:
        """A random asset of ``rtype`` here (in ``state`` when given), or None."""
        key = ACCOUNT_WIDE if account_wide else self.ws_key
        return assets.pick(self.rng, self.tenant, key, rtype, state)

    def create(self, rtype: str, *, account_wide: bool = False) -> Asset:
        """A new asset of ``rtype`` here."""
        key = ACCOUNT_WIDE if account_wide else self.ws_key
        return assets.create(self.rng, self.tenant, key, rtype)

    def remove(self, rtype: str, asset: Asset, *, account_wide: bool = False) -> None:
        """Forget a deleted asset."""
        assets.remove(self.tenant, ACCOUNT_WIDE if account_wide else self.ws_key, rtype, asset)

    def count(self, rtype: str, *, account_wide: bool = False) -> int:
        """How many assets of ``rtype`` there are here."""
        key = ACCOUNT_WIDE if account_wide else self.ws_key
        return len(assets.pool(self.rng, self.tenant, key, rtype))

    def then(self, handler: Handler) -> None:
        """Run ``handler`` as this session's next activity."""
        self.followups.append(handler)

    def iso(self, offset_ms: int = 0) -> str:
        """The current simulated time plus ``offset_ms``, as an ISO 8601 UTC string."""
        return self.world.iso(self.world.now_ms + offset_ms)

    def person_email(self) -> str:
        """The email of a random member other than the actor (or the actor when alone)."""
        others = [u for u in self.tenant.users if u is not self.user]
        return (self.rng.choice(others) if others else self.tenant.users[0]).email


Handler = Callable[[Ctx], Event | None]


def change(field: str, before: str | None, after: str | None) -> Change:
    """One ``changes`` entry."""
    return {"field": field, "before": before, "after": after}


FieldTable = tuple[tuple[str, tuple[str, ...]], ...]
"""Fields that an update may change, each with the values it takes."""


def field_changes(rng: random.Random, table: FieldTable, most: int = 2) -> list[Change]:
    """One to ``most`` distinct fields of ``table``, each moved between two of its values."""
    chosen = rng.sample(table, rng.randint(1, min(most, len(table))))
    result = []
    for field, values in chosen:
        before, after = rng.sample(values, 2) if len(values) > 1 else (values[0], values[0])
        result.append(change(field, before, after))
    return result


def changed_fields(changes: list[Change]) -> str:
    """The ``changed_fields`` detail matching ``changes``."""
    return ",".join(str(c["field"]) for c in changes)
