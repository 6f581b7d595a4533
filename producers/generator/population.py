"""The simulated accounts: tenants, their members, API clients, workspaces and assets.

Each tenant is built from its own random generator, seeded by (run seed, tenant index), so
a tenant looks the same whichever order tenants are first needed in. Afterwards the
tenant's mutable state (assets, members, locks) only changes through the run's own
generator, in event order, so a run stays deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from producers.generator import vocabulary as vocab

MAX_USERS = 250
"""Members of the largest tenant; the others scale with their share of the activity."""

ADMIN_ROLES = frozenset({"owner", "admin"})


@dataclass(slots=True)
class User:
    """A member of a tenant: who signs in, from where and with which browser."""

    id: str
    name: str
    email: str
    role: str
    ip: str
    user_agent: str
    locked: bool = False
    removed: bool = False

    @property
    def is_admin(self) -> bool:
        """Owners and admins may do the account-wide (admin) activities."""
        return self.role in ADMIN_ROLES


@dataclass(frozen=True, slots=True)
class ApiClient:
    """An application calling the platform's API with its own credentials."""

    id: str
    name: str
    kind: str
    ip: str
    user_agent: str


@dataclass(frozen=True, slots=True)
class Workspace:
    """One environment of one team's workspace."""

    id: str
    name: str
    environment: str


class Asset:
    """A resource of a tenant that events refer to; mutable so that its history is coherent.

    ``state`` is type-specific (running/stopped, connected/disconnected, enabled/disabled,
    deployment stages...), ``version`` counts saved versions (or entries, assets),
    ``parent`` is the id of the holding folder/collection/client, ``extra`` a type-specific
    attribute (provider, http route, destination type, email).
    """

    __slots__ = ("extra", "id", "name", "parent", "state", "version")

    def __init__(
        self,
        id: str,
        name: str,
        *,
        state: str = "",
        version: int = 1,
        parent: str = "",
        extra: str = "",
    ) -> None:
        self.id = id
        self.name = name
        self.state = state
        self.version = version
        self.parent = parent
        self.extra = extra


ACCOUNT_WIDE = -1
"""Pool key for account-wide assets (roles, custom connectors, streaming destinations)."""


@dataclass(slots=True)
class Tenant:
    """One account, with everything the simulation needs to know about it."""

    index: int
    id: str
    company: str
    domain: str
    sso: bool
    partner: bool
    users: list[User]
    api_clients: list[ApiClient]
    workspaces: list[Workspace]
    office_prefixes: list[str]
    pools: dict[tuple[int, str], list[Asset]] = field(default_factory=dict)
    invitations: list[Asset] = field(default_factory=list)
    two_factor_enforced: bool = False
    retention_days: int = 365
    audit_add_on: bool | None = None  # the audit log add-on: never set, on or off
    managing_partner: str | None = None  # the embedded partner managing the account

    def admins(self) -> list[User]:
        """The members who may do admin activities (never empty: the owner is one)."""
        return [user for user in self.users if user.is_admin]

    def owner(self) -> User:
        """The account owner (the first member holding the owner role)."""
        return next(user for user in self.users if user.role == "owner")


def tenant_id(index: int, seed: int) -> str:
    """A distinct, random-looking account id per tenant index (a bijection on 32 bits)."""
    mixed = (index * 0x9E3779B1 + (seed * 0x85EBCA77)) & 0xFFFFFFFF
    return f"acct-{mixed ^ 0x5BD1E995:08x}"


def new_id(rng: random.Random, prefix: str) -> str:
    """A random id such as ``rcp_3fa94c0d12be`` (48 bits: unique within any tenant)."""
    return f"{prefix}_{rng.getrandbits(48):012x}"


def random_ip(rng: random.Random, first_octets: tuple[int, ...]) -> str:
    """A public-looking IPv4 address whose first octet is one of ``first_octets``."""
    return (
        f"{rng.choice(first_octets)}.{rng.randrange(256)}.{rng.randrange(256)}."
        f"{rng.randrange(1, 255)}"
    )


def build_tenant(seed: int, index: int, share: float) -> Tenant:
    """Build tenant ``index``; ``share`` is its activity relative to the largest (0 < s <= 1)."""
    rng = random.Random(f"auditlog-generator/{seed}/tenant/{index}")  # noqa: S311 - synthetic data
    word = rng.choice(vocab.COMPANY_WORDS)
    kind = rng.choice(vocab.COMPANY_KINDS)
    company = f"{word} {kind}"
    domain = f"{word.lower().replace(' ', '')}-{kind.lower()}{rng.choice(vocab.DOMAIN_SUFFIXES)}"
    jitter = rng.lognormvariate(0.0, 0.25)
    user_count = max(2, min(MAX_USERS * 2, round(MAX_USERS * share * jitter)))
    offices = [
        f"{rng.choice(vocab.OFFICE_FIRST_OCTETS)}.{rng.randrange(256)}.{rng.randrange(256)}"
        for _ in range(1 + user_count // 80)
    ]
    users = _build_users(rng, domain, user_count, offices)
    clients = [_build_client(rng, i) for i in range(min(6, user_count // 25 + rng.randrange(2)))]
    return Tenant(
        index=index,
        id=tenant_id(index, seed),
        company=company,
        domain=domain,
        sso=rng.random() < 0.2 + 0.6 * min(1.0, user_count / 100),
        partner=rng.random() < 0.04,
        users=users,
        api_clients=clients,
        workspaces=_build_workspaces(rng, company, user_count),
        office_prefixes=offices,
        two_factor_enforced=rng.random() < 0.3,
        retention_days=rng.choice((365, 365, 365, 730)),
    )


def _build_users(rng: random.Random, domain: str, count: int, offices: list[str]) -> list[User]:
    users: list[User] = []
    emails: set[str] = set()
    for position in range(count):
        first, last = rng.choice(vocab.FIRST_NAMES), rng.choice(vocab.LAST_NAMES)
        local = f"{first}.{last}".lower()
        email, n = f"{local}@{domain}", 1
        while email in emails:
            n += 1
            email = f"{local}{n}@{domain}"
        emails.add(email)
        if position == 0:
            role = "owner"
        else:
            draw = rng.random()
            role = (
                "admin"
                if draw < 0.08 or position == 5
                else "developer"
                if draw < 0.55
                else "operator"
                if draw < 0.85
                else "analyst"
            )
        in_office = rng.random() < 0.6
        ip = (
            f"{rng.choice(offices)}.{rng.randrange(2, 254)}"
            if in_office
            else random_ip(rng, vocab.ISP_FIRST_OCTETS)
        )
        users.append(
            User(
                id=new_id(rng, "usr"),
                name=f"{first} {last}",
                email=email,
                role=role,
                ip=ip,
                user_agent=rng.choice(vocab.BROWSER_USER_AGENTS),
            )
        )
    return users


def _build_client(rng: random.Random, position: int) -> ApiClient:
    kind, name = vocab.API_CLIENT_KINDS[position % len(vocab.API_CLIENT_KINDS)]
    return ApiClient(
        id=new_id(rng, "apic"),
        name=name,
        kind=kind,
        ip=random_ip(rng, vocab.CLOUD_FIRST_OCTETS),
        user_agent=rng.choice(vocab.API_USER_AGENTS[kind]),
    )


def _build_workspaces(rng: random.Random, company: str, user_count: int) -> list[Workspace]:
    environments = (
        ("prod",)
        if user_count < 5
        else ("dev", "prod")
        if user_count < 30
        else ("dev", "test", "prod")
    )
    teams = rng.sample(vocab.TEAMS, min(len(vocab.TEAMS), 1 + user_count // 40))
    if len(teams) == 1:
        teams = [company]
    return [
        Workspace(new_id(rng, "ws"), f"{team} ({vocab.ENVIRONMENT_TITLES[env]})", env)
        for team in teams
        for env in environments
    ]
