"""Scripts: the sequences of events one actor produces, such as a user's sign-in session.

A script is a generator of ``(event or None, delay_ms)``: the engine resumes it at its due
time, emits the event (stamped with that time), and resumes it again ``delay_ms`` later.
Its body runs at the simulated time of the event it yields, so state changes (a recipe
started, a user locked) happen in the same order as the events that report them.
"""

from __future__ import annotations

from collections.abc import Generator

from producers.generator import vocabulary as vocab
from producers.generator.activities import common, members, platform, recipes, workspace
from producers.generator.context import Ctx, Handler
from producers.generator.menus import menu_for
from producers.generator.population import Tenant, User, new_id, random_ip
from producers.generator.world import (
    SYSTEM_ORIGIN,
    Event,
    Origin,
    World,
    system_actor,
    user_actor,
)

Script = Generator[tuple[Event | None, int], None, None]

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
IDLE_TIMEOUT_MS = 30 * MINUTE_MS
LOCKOUT_MS = 30 * MINUTE_MS
LOCK_AFTER_FAILURES = 5

_FAILURE_TEXT = {
    "invalid_credentials": "Wrong password",
    "two_factor_failed": "Invalid two-factor authentication code",
    "account_locked": "Account is locked after too many failed sign-ins",
    "unknown_user": "No member with this email address",
}
_SSO_ERRORS = (
    "SSO error: SAML response signature is invalid",
    "SSO error: user is not assigned to the application in the identity provider",
    "SSO error: SAML assertion expired (clock skew)",
    "SSO error: identity provider returned access_denied",
)
_WORKSPACE_PREFERENCE = {
    "developer": ("dev", "dev", "dev", "test", "prod"),
    "operator": ("prod", "prod", "prod", "test"),
    "analyst": ("prod", "prod", "dev"),
    "admin": ("prod", "prod", "dev", "test"),
    "owner": ("prod", "prod", "dev"),
}


def new_script(world: World) -> Script:
    """The script of the next arriving activity: a tenant by size, then what happens."""
    tenant = world.pick_tenant()
    rng = world.rng
    draw = rng.random()
    if draw < 0.007:
        return attack(world, tenant)
    if draw < 0.06:
        return system_job(world, tenant)
    if draw < 0.13 and tenant.api_clients:
        return api_client_run(world, tenant)
    if draw < 0.16 and tenant.invitations:
        return invitation_accepted(world, tenant)
    users = tenant.users
    return user_session(world, tenant, users[int(len(users) * rng.random() ** 1.5)])


def _think(world: World) -> int:
    """A user's pause between two actions: median about 30 s, long tail, capped at 15 min."""
    return min(15 * MINUTE_MS, int(world.rng.lognormvariate(10.3, 0.9)))


def _workspace(world: World, tenant: Tenant, role: str) -> int:
    environment = world.rng.choice(_WORKSPACE_PREFERENCE.get(role, ("prod",)))
    spaces = tenant.workspaces
    matching = [i for i, ws in enumerate(spaces) if ws.environment == environment]
    return world.rng.choice(matching or range(len(spaces)))


def _login_failed(c: Ctx, user: User | None, email: str, method: str, reason: str) -> Event:
    text = c.rng.choice(_SSO_ERRORS) if reason == "sso_error" else _FAILURE_TEXT[reason]
    resource = (user.id, user.name) if user is not None else ("anonymous", email)
    details = {"method": method, "reason": reason, "email": email}
    return c.emit("user.login_failed", resource, details=details, failure=text)


def user_session(world: World, tenant: Tenant, user: User) -> Script:
    """Sign in (after failed attempts, sometimes), a handful of activities, sign out.

    The session keeps one IP, user agent and session id. It ends with a logout (75%), with
    the session revoked by the platform after the idle timeout (10%), or silently (15%).
    """
    rng = world.rng
    ip = user.ip if rng.random() < 0.85 else random_ip(rng, vocab.ISP_FIRST_OCTETS)
    origin = Origin(ip, user.user_agent, None)
    ws_key = _workspace(world, tenant, user.role)
    c = Ctx(world, tenant, user_actor(user), origin, user=user, ws_key=ws_key)
    me = (user.id, user.name)
    method = "sso" if tenant.sso and (user.role != "owner" or rng.random() < 0.7) else "password"
    if not (yield from _before_sign_in(c, user, method)):
        return
    session_id = world.token("sess")
    c.origin = Origin(ip, user.user_agent, session_id)
    yield c.emit("user.login", me, details={"method": method}), rng.randint(2000, 40000)

    ending = rng.random()
    for _ in range(1 + min(30, int(rng.expovariate(0.2)))):
        if user.removed:  # removed by an admin meanwhile: the platform ends the session
            return
        yield _next_activity(c, user), _think(world)
    while c.followups and not user.removed:  # finish what was started
        event = c.followups.pop(0)(c)
        if event is not None:
            yield event, _think(world)
    if ending < 0.003:
        yield members.member_left(c), 0
    elif ending < 0.75:
        yield c.emit("user.logout", me), 0
    elif ending < 0.85:
        yield None, IDLE_TIMEOUT_MS
        system = _system(world, tenant, "sessions", "Session manager")
        note = "Session expired after 30 minutes of inactivity"
        details = {"session_id": session_id}
        yield system.emit("user.session_revoked", me, details=details, note=note), 0


def _before_sign_in(
    c: Ctx, user: User, method: str
) -> Generator[tuple[Event | None, int], None, bool]:
    """Failed attempts or a password reset before a sign-in; False when it never happens."""
    rng, me = c.rng, (user.id, user.name)
    if user.locked:
        yield _login_failed(c, user, user.email, method, "account_locked"), 0
        return False
    if method == "password" and rng.random() < 0.02:
        yield c.emit("user.password_reset_requested", me), rng.randint(MINUTE_MS, 10 * MINUTE_MS)
        yield c.emit("user.password_reset", me), rng.randint(10 * SECOND_MS, MINUTE_MS)
    elif rng.random() < 0.1:
        for _ in range(1 + (rng.random() < 0.3)):
            if method == "sso":
                reason = "sso_error"
            else:
                reason = "invalid_credentials" if rng.random() < 0.8 else "two_factor_failed"
            yield _login_failed(c, user, user.email, method, reason), rng.randint(3000, 30000)
        return rng.random() >= 0.1  # or gave up
    return True


def _next_activity(c: Ctx, user: User) -> Event:
    if c.followups:
        event = c.followups.pop(0)(c)
        if event is not None:
            return event
    for _ in range(6):
        event = menu_for(c.rng, user.role).choose(c.rng)(c)
        if event is not None:
            return event
    return _always(c)


def _always(c: Ctx) -> Event:
    event = recipes.recipe_updated(c)
    if event is None:  # pragma: no cover - recipe_updated creates a recipe when there is none
        raise RuntimeError("recipe_updated returned no event")
    return event


def attack(world: World, tenant: Tenant) -> Script:
    """A burst of failed sign-ins from one IP: a password spray over guessed addresses
    (no valid user), or credential stuffing against one member, which locks the member out
    until the lockout expires.
    """
    rng = world.rng
    origin = Origin(
        random_ip(rng, vocab.ATTACK_FIRST_OCTETS), rng.choice(vocab.ATTACK_USER_AGENTS), None
    )
    victims = [u for u in tenant.users if u.role != "owner"]
    if victims and rng.random() < 0.35:
        victim = rng.choice(victims)
        c = Ctx(world, tenant, user_actor(victim), origin, user=victim, ws_key=0)
        locked_here = False
        for attempt in range(1, rng.randint(6, 20) + 1):
            reason = "account_locked" if victim.locked else "invalid_credentials"
            yield _login_failed(c, victim, victim.email, "password", reason), rng.randint(300, 3000)
            if attempt >= LOCK_AFTER_FAILURES and not victim.locked:
                victim.locked = locked_here = True
                lock = _system(world, tenant, "sign-in-protection", "Sign-in protection")
                details = {"reason": "failed_attempts"}
                yield lock.emit("user.locked", (victim.id, victim.name), details=details), 200
        if locked_here:
            yield None, LOCKOUT_MS
            if victim.locked:
                victim.locked = False
                unlock = _system(world, tenant, "sign-in-protection", "Sign-in protection")
                note = "Lockout expired"
                yield unlock.emit("user.unlocked", (victim.id, victim.name), note=note), 0
        return
    for _ in range(rng.randint(5, 40)):
        email = f"{rng.choice(vocab.GUESSED_LOCAL_PARTS)}@{tenant.domain}"
        actor = {"type": "user", "id": "anonymous", "name": None, "email": email}
        c = Ctx(world, tenant, actor, origin, user=None, ws_key=0)
        yield _login_failed(c, None, email, "password", "unknown_user"), rng.randint(200, 2500)


def _system(world: World, tenant: Tenant, service: str, name: str, ws_key: int = 0) -> Ctx:
    return Ctx(world, tenant, system_actor(service, name), SYSTEM_ORIGIN, user=None, ws_key=ws_key)


def _prod_workspace(world: World, tenant: Tenant) -> int:
    return _workspace(world, tenant, "operator")


def system_job(world: World, tenant: Tenant) -> Script:
    """Something the platform does on its own: a recipe stopped after errors, an expired
    connection, a failing streaming destination paused, a member provisioned by SCIM or
    just-in-time SSO, a scheduled package export.
    """
    rng = world.rng
    ws_key = _prod_workspace(world, tenant)
    draw = rng.random()
    if draw < 0.45:
        c = _system(world, tenant, "recipe-runtime", "Recipe runtime", ws_key)
        recipe = c.pick("recipe", "running")
        if recipe is not None:
            recipe.state = "stopped"
            reason, error = rng.choice(vocab.AUTO_STOP_REASONS)
            details = {"reason": reason, "error": error}
            yield (
                c.emit(
                    "recipe.auto_stopped",
                    recipe,
                    details=details,
                    note=error,
                    source="recipe-runtime",
                ),
                0,
            )
    elif draw < 0.65:
        c = _system(world, tenant, "connection-monitor", "Connection health monitor", ws_key)
        connection = c.pick("connection", "connected")
        if connection is not None:
            connection.state = "disconnected"
            note = "OAuth refresh token expired"
            details = {"reason": "credentials_expired"}
            yield c.emit("connection.disconnected", connection, details=details, note=note), 0
    elif draw < 0.75:
        c = _system(world, tenant, "audit-streaming", "Audit log streaming")
        stream = c.pick("audit_stream", "active", account_wide=True)
        if stream is not None:
            stream.state = "auto_paused"
            error = rng.choice(vocab.STREAM_ERRORS)
            since = c.iso(-rng.randint(1, 7) * 86_400_000)
            details = {"error": error, "failing_since": since}
            yield (
                c.emit("audit_stream.destination_auto_paused", stream, details=details, note=error),
                0,
            )
    elif draw < 0.88:
        yield from _provisioned(world, tenant)
    else:
        c = _system(world, tenant, "scheduler", "Scheduled jobs", ws_key)
        event = workspace.package_exported(c)
        if event is not None:
            yield event, 0


def _provisioned(world: World, tenant: Tenant) -> Script:
    rng = world.rng
    first, last = rng.choice(vocab.FIRST_NAMES), rng.choice(vocab.LAST_NAMES)
    user = User(
        id=new_id(rng, "usr"),
        name=f"{first} {last}",
        email=f"{first}.{last}.{rng.randrange(10, 99)}@{tenant.domain}".lower(),
        role=rng.choice(("developer", "operator", "analyst")),
        ip=random_ip(rng, vocab.ISP_FIRST_OCTETS),
        user_agent=rng.choice(vocab.BROWSER_USER_AGENTS),
    )
    source = "sso_jit" if tenant.sso and rng.random() < 0.5 else "scim"
    members.add_member(tenant, user)
    c = _system(
        world,
        tenant,
        source.replace("_", "-"),
        "SCIM provisioning" if source == "scim" else "SSO just-in-time provisioning",
    )
    details = {"source": source, "role": common.role_title(user.role)}
    yield (
        c.emit("member.provisioned", (user.id, user.name), details=details),
        rng.randint(500, 5000),
    )
    if source == "sso_jit":
        yield from user_session(world, tenant, user)


def invitation_accepted(world: World, tenant: Tenant) -> Script:
    """An invited person accepts, becomes a member, and starts a first session."""
    rng = world.rng
    invitation = tenant.invitations.pop(int(rng.random() * len(tenant.invitations)))
    user = User(
        id=new_id(rng, "usr"),
        name=invitation.parent,
        email=invitation.name,
        role=invitation.extra,
        ip=random_ip(rng, vocab.ISP_FIRST_OCTETS),
        user_agent=rng.choice(vocab.BROWSER_USER_AGENTS),
    )
    members.add_member(tenant, user)
    c = Ctx(
        world, tenant, user_actor(user), Origin(user.ip, user.user_agent, None), user=user, ws_key=0
    )
    details = {"email": invitation.name}
    yield (
        c.emit("member.invitation_accepted", invitation, details=details),
        rng.randint(5000, 60000),
    )
    yield from user_session(world, tenant, user)


_AUTOMATION: tuple[Handler, ...] = (
    recipes.connection_updated,
    platform.access_profile_key_regenerated,
    platform.table_updated,
    platform.tag_assigned,
    platform.endpoint_updated,
    recipes.recipe_started,
    recipes.recipe_jobs_rerun,
)


def api_client_run(world: World, tenant: Tenant) -> Script:
    """An API client's burst of calls: a SIEM paging through recent audit events, a CI/CD
    pipeline exporting and deploying, or automation adjusting assets.
    """
    rng = world.rng
    client = rng.choice(tenant.api_clients)
    actor = {"type": "api_client", "id": client.id, "name": client.name, "email": None}
    origin = Origin(client.ip, client.user_agent, None)
    c = Ctx(world, tenant, actor, origin, user=None, ws_key=_prod_workspace(world, tenant))
    if client.kind == "siem":
        window_ms = rng.choice((5, 5, 15, 60)) * MINUTE_MS
        window = {"from": c.iso(-window_ms), "to": c.iso()}
        resource = common.audit_log_resource(tenant)
        cursor = ""
        for _ in range(rng.randint(1, 4)):
            details = {
                **window,
                "filters": f"page[size]=100&page[after]={cursor}" if cursor else "page[size]=100",
            }
            yield c.emit("audit_log.queried", resource, details=details), rng.randint(150, 1500)
            cursor = f"{rng.getrandbits(64):016x}"
        return
    if client.kind == "cicd":
        sources = [i for i, ws in enumerate(tenant.workspaces) if ws.environment != "prod"]
        if sources:
            c.ws_key = rng.choice(sources)
            c.ws = tenant.workspaces[c.ws_key]
        steps: list[Handler] = [workspace.manifest_updated, workspace.package_exported]
        steps += [workspace.deployment_progress] * rng.randint(1, 3)
    else:
        steps = rng.sample(_AUTOMATION, rng.randint(1, 3))
    for step in steps:
        event = step(c)
        if event is not None:
            yield event, rng.randint(300, 20000)
