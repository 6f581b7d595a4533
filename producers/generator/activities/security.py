"""Sign-in security: members' own settings (profile, password, two-factor, tokens, email)
and the account-wide settings admins change (SSO, two-factor enforcement, IP allowlist).

Handlers follow the contract of :mod:`producers.generator.context`; the account-wide ones
return None for actors who are not admins.
"""

from __future__ import annotations

from producers.generator import vocabulary as vocab
from producers.generator.activities.common import (
    DAY_MS,
    account_resource,
)
from producers.generator.context import (
    Ctx,
    FieldTable,
    change,
    changed_fields,
    field_changes,
)
from producers.generator.world import Event

# ---- self-service (the actor's own user) -----------------------------------------------

_PROFILE_FIELDS: FieldTable = (
    ("time_zone", ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London", "UTC")),
    ("locale", ("en-US", "en-GB", "de-DE", "fr-FR", "ja-JP")),
    ("job_title", ("Integration Engineer", "Automation Lead", "IT Manager", "Analyst")),
    ("phone", ("[redacted]",)),
)


def profile_updated(c: Ctx) -> Event | None:
    if c.user is None:
        return None
    changes = field_changes(c.rng, _PROFILE_FIELDS, most=3)
    details = {"changed_fields": changed_fields(changes)}
    return c.emit(
        "user.profile_updated", (c.user.id, c.user.name), details=details, changes=changes
    )


def password_changed(c: Ctx) -> Event | None:
    return None if c.user is None else c.emit("user.password_changed", (c.user.id, c.user.name))


def two_factor_enabled(c: Ctx) -> Event | None:
    if c.user is None:
        return None
    method = "authenticator_app" if c.rng.random() < 0.8 else "sms"
    return c.emit("user.two_factor_enabled", (c.user.id, c.user.name), details={"method": method})


def two_factor_disabled(c: Ctx) -> Event | None:
    if c.user is None or c.tenant.two_factor_enforced:
        return None
    return c.emit("user.two_factor_disabled", (c.user.id, c.user.name))


def recovery_codes_regenerated(c: Ctx) -> Event | None:
    if c.user is None:
        return None
    return c.emit("user.two_factor_recovery_codes_regenerated", (c.user.id, c.user.name))


def _token_name(c: Ctx) -> str:
    return f"{c.rng.choice(('ci', 'cli', 'terraform', 'notebook', 'backup'))}-token"


def access_token_created(c: Ctx) -> Event | None:
    if c.user is None:
        return None
    days = c.rng.choice((30, 90, 90, 365, 0))
    details = {"token_name": _token_name(c), "expires_at": c.iso(days * DAY_MS) if days else ""}
    return c.emit("user.access_token_created", (c.user.id, c.user.name), details=details)


def access_token_revoked(c: Ctx) -> Event | None:
    if c.user is None:
        return None
    details = {"token_name": _token_name(c)}
    return c.emit("user.access_token_revoked", (c.user.id, c.user.name), details=details)


def email_changed(c: Ctx) -> Event | None:
    user = c.user
    if user is None:
        return None
    old = user.email
    local, _, domain = old.partition("@")
    user.email = f"{local.split('.')[0]}.{c.rng.choice(vocab.LAST_NAMES).lower()}@{domain}"
    if user.email == old:
        user.email = f"{local}.{c.rng.randrange(2, 99)}@{domain}"
    c.actor["email"] = user.email
    return c.emit(
        "user.email_changed",
        (user.id, user.name),
        details={"old_email": old, "new_email": user.email},
        changes=[change("email", old, user.email)],
    )


# ---- account security settings ---------------------------------------------------------

_SSO_FIELDS: FieldTable = (
    ("idp_certificate", ("sha1:3f:9a:c2", "sha1:7b:10:e4", "sha1:a4:52:0d")),
    ("sso_url", ("https://idp.example.com/sso/saml", "https://login.example.com/saml2")),
    ("jit_provisioning", ("true", "false")),
    ("default_role", ("Operator", "Analyst", "Developer")),
)


def sso_enabled(c: Ctx) -> Event | None:
    if c.tenant.sso or not c.is_admin:
        return None
    c.tenant.sso = True
    details = {
        "protocol": "saml" if c.rng.random() < 0.7 else "oidc",
        "identity_provider": c.rng.choice(vocab.IDENTITY_PROVIDERS),
    }
    return c.emit("account.sso_enabled", account_resource(c.tenant), details=details)


def sso_updated(c: Ctx) -> Event | None:
    if not c.tenant.sso or not c.is_admin:
        return None
    changes = field_changes(c.rng, _SSO_FIELDS)
    details = {"changed_fields": changed_fields(changes)}
    return c.emit(
        "account.sso_updated", account_resource(c.tenant), details=details, changes=changes
    )


def sso_disabled(c: Ctx) -> Event | None:
    if not c.tenant.sso or not c.is_admin:
        return None
    c.tenant.sso = False
    return c.emit("account.sso_disabled", account_resource(c.tenant))


def two_factor_enforcement_changed(c: Ctx) -> Event | None:
    if not c.is_admin:
        return None
    before = c.tenant.two_factor_enforced
    c.tenant.two_factor_enforced = not before
    after = str(not before).lower()
    return c.emit(
        "account.two_factor_enforcement_changed",
        account_resource(c.tenant),
        details={"enforced": after},
        changes=[change("two_factor_required", str(before).lower(), after)],
    )


def ip_allowlist_updated(c: Ctx) -> Event | None:
    if not c.is_admin:
        return None
    before = [f"{prefix}.0/24" for prefix in c.tenant.office_prefixes]
    added = f"{c.rng.choice(vocab.OFFICE_FIRST_OCTETS)}.{c.rng.randrange(256)}.0.0/16"
    removed = before[-1] if len(before) > 1 and c.rng.random() < 0.3 else ""
    after = [cidr for cidr in before if cidr != removed] + [added]
    details = {"added": added}
    if removed:
        details["removed"] = removed
    changes = [change("ip_allowlist", ",".join(before), ",".join(after))]
    return c.emit(
        "account.ip_allowlist_updated", account_resource(c.tenant), details=details, changes=changes
    )
