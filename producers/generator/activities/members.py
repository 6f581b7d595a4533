"""Members and roles: invitations, role changes, removals, custom roles, locks and sessions.

Handlers follow the contract of :mod:`producers.generator.context`; admin handlers return
None for actors who are not admins.
"""

from __future__ import annotations

from producers.generator import vocabulary as vocab
from producers.generator.activities.common import (
    account_resource,
    other_member,
    role_title,
)
from producers.generator.context import (
    Ctx,
    change,
)
from producers.generator.population import MAX_USERS, Asset, Tenant, User, new_id
from producers.generator.world import Event

# ---- members and roles -----------------------------------------------------------------


def member_invited(c: Ctx) -> Event | None:
    if not c.is_admin or len(c.tenant.invitations) >= 20:
        return None
    rng = c.rng
    first, last = rng.choice(vocab.FIRST_NAMES), rng.choice(vocab.LAST_NAMES)
    domain = c.tenant.domain if rng.random() < 0.85 else "contractor-partners.com"
    email = f"{first}.{last}@{domain}".lower()
    role = rng.choice(("developer", "developer", "operator", "analyst", "admin"))
    invitation = Asset(
        new_id(rng, "inv"), email, state="pending", extra=role, parent=f"{first} {last}"
    )
    c.tenant.invitations.append(invitation)
    details = {"email": email, "role": role_title(role)}
    return c.emit("member.invited", invitation, details=details)


def _pending(c: Ctx) -> Asset | None:
    return c.rng.choice(c.tenant.invitations) if c.tenant.invitations else None


def invitation_resent(c: Ctx) -> Event | None:
    invitation = _pending(c)
    if invitation is None or not c.is_admin:
        return None
    return c.emit("member.invitation_resent", invitation, details={"email": invitation.name})


def invitation_revoked(c: Ctx) -> Event | None:
    invitation = _pending(c)
    if invitation is None or not c.is_admin:
        return None
    c.tenant.invitations.remove(invitation)
    return c.emit("member.invitation_revoked", invitation, details={"email": invitation.name})


def role_changed(c: Ctx) -> Event | None:
    member = other_member(c)
    if member is None or not c.is_admin:
        return None
    roles = [r for r in ("admin", "developer", "operator", "analyst") if r != member.role]
    old, member.role = member.role, c.rng.choice(roles)
    details = {"old_role": role_title(old), "new_role": role_title(member.role)}
    if len(c.tenant.workspaces) > 1 and c.rng.random() < 0.3:
        details["environment"] = c.ws.environment
    return c.emit(
        "member.role_changed",
        (member.id, member.name),
        details=details,
        changes=[change("role", details["old_role"], details["new_role"])],
    )


def member_removed(c: Ctx) -> Event | None:
    member = other_member(c)
    if member is None or not c.is_admin or len(c.tenant.users) < 4:
        return None
    c.tenant.users.remove(member)
    member.removed = True
    details = {"email": member.email, "role": role_title(member.role)}
    return c.emit("member.removed", (member.id, member.name), details=details)


def ownership_transferred(c: Ctx) -> Event | None:
    user = c.user
    if user is None or user.role != "owner":
        return None
    heir = next((u for u in c.tenant.users if u.role == "admin"), None)
    if heir is None:
        return None
    user.role, heir.role = "admin", "owner"
    details = {"previous_owner_email": user.email, "new_owner_email": heir.email}
    changes = [change("owner", user.email, heir.email)]
    return c.emit(
        "account.ownership_transferred",
        account_resource(c.tenant),
        details=details,
        changes=changes,
    )


def custom_role_created(c: Ctx) -> Event | None:
    if not c.is_admin:
        return None
    role = c.create("role", account_wide=True)
    return c.emit("role.created", role, details={"name": role.name})


def custom_role_updated(c: Ctx) -> Event | None:
    role = c.pick("role", account_wide=True)
    if role is None or not c.is_admin:
        return None
    held = role.extra.split(",") if role.extra else []
    free = [p for p in vocab.PRIVILEGES if p not in held]
    added = c.rng.sample(free, min(len(free), c.rng.randint(0, 2)))
    removed = c.rng.sample(held, min(max(0, len(held) - 1), c.rng.randint(0 if added else 1, 1)))
    if not added and not removed:
        return None
    before = role.extra
    role.extra = ",".join(sorted((set(held) - set(removed)) | set(added)))
    details = {}
    if added:
        details["privileges_added"] = ",".join(added)
    if removed:
        details["privileges_removed"] = ",".join(removed)
    changes = [change("privileges", before, role.extra)]
    return c.emit("role.updated", role, details=details, changes=changes)


def custom_role_deleted(c: Ctx) -> Event | None:
    role = c.pick("role", account_wide=True)
    if role is None or not c.is_admin or c.count("role", account_wide=True) < 2:
        return None
    c.remove("role", role, account_wide=True)
    return c.emit("role.deleted", role, details={"name": role.name})


def user_unlocked(c: Ctx) -> Event | None:
    locked = [u for u in c.tenant.users if u.locked]
    if not locked or not c.is_admin:
        return None
    user = c.rng.choice(locked)
    user.locked = False
    return c.emit("user.unlocked", (user.id, user.name))


def session_revoked(c: Ctx) -> Event | None:
    member = other_member(c)
    if member is None or not c.is_admin:
        return None
    details = {"session_id": c.world.token("sess")}
    return c.emit("user.session_revoked", (member.id, member.name), details=details)


def member_left(c: Ctx) -> Event | None:
    """The actor leaves the account (not the owner, not from a tiny account)."""
    user = c.user
    if user is None or user.role == "owner" or len(c.tenant.users) < 4:
        return None
    if user in c.tenant.users:
        c.tenant.users.remove(user)
    user.removed = True
    return c.emit("member.left", (user.id, user.name), details={"email": user.email})


def add_member(tenant: Tenant, user: User) -> None:
    """Add a member (an accepted invitation, a provisioned user), bounded in number."""
    if len(tenant.users) < 2 * MAX_USERS:
        tenant.users.append(user)
