"""Helpers shared by the activity handlers: generic asset activities and common resources."""

from __future__ import annotations

from producers.generator.assets import rename
from producers.generator.context import Ctx, FieldTable, change, changed_fields, field_changes
from producers.generator.population import Asset, Tenant, User
from producers.generator.world import Event

DAY_MS = 86_400_000


def account_resource(tenant: Tenant) -> tuple[str, str]:
    """The (id, name) of the account itself as a resource."""
    return tenant.id, tenant.company


def audit_log_resource(tenant: Tenant) -> tuple[str, str]:
    """The (id, name) of a tenant's audit log as a resource."""
    return f"{tenant.id}:audit_log", "Activity audit log"


def role_title(role: str) -> str:
    """The role name members see (``developer`` -> ``Developer``; the owner is an Admin)."""
    return "Admin" if role == "owner" else role.title()


def other_member(c: Ctx) -> User | None:
    """A random member who is neither the actor nor the owner, or None (a few tries)."""
    for _ in range(6):
        user = c.rng.choice(c.tenant.users)
        if user is not c.user and user.role != "owner":
            return user
    return None


def move_asset(
    c: Ctx, action: str, asset: Asset, keys: tuple[str, str], field: str
) -> Event | None:
    """Move ``asset`` to another folder; ``keys`` name the old and new folder details."""
    folder = c.pick("folder")
    if folder is None or folder.id in (asset.parent, asset.id):
        return None
    old, asset.parent = asset.parent, folder.id
    return c.emit(
        action,
        asset,
        details={keys[0]: old, keys[1]: folder.id},
        changes=[change(field, old, folder.id)],
    )


def rename_asset(c: Ctx, action: str, asset: Asset, rtype: str) -> Event:
    """Rename ``asset`` (details old_name/new_name, and the change of ``name``)."""
    old, asset.name = asset.name, rename(c.rng, rtype, asset.name)
    return c.emit(
        action,
        asset,
        details={"old_name": old, "new_name": asset.name},
        changes=[change("name", old, asset.name)],
    )


def touch_asset(c: Ctx, action: str, rtype: str, table: FieldTable | None = None) -> Event | None:
    """An activity on a random asset; with ``table``, an update of some of its fields."""
    asset = c.pick(rtype)
    if asset is None:
        return None
    if table is None:
        return c.emit(action, asset)
    changes = field_changes(c.rng, table)
    details = {"changed_fields": changed_fields(changes)}
    return c.emit(action, asset, details=details, changes=changes)


def delete_asset(c: Ctx, action: str, rtype: str, *, keep: int = 1) -> Event | None:
    """Delete a random asset, unless only ``keep`` or fewer are left."""
    asset = c.pick(rtype)
    if asset is None or c.count(rtype) <= keep:
        return None
    c.remove(rtype, asset)
    return c.emit(action, asset)


def set_state(c: Ctx, action: str, rtype: str, before: str, after: str) -> Event | None:
    """Move a random asset in state ``before`` to ``after`` (None when there is none)."""
    asset = c.pick(rtype, before)
    if asset is None:
        return None
    asset.state = after
    return c.emit(action, asset)
