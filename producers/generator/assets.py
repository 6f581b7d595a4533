"""Creating and finding a tenant's assets (recipes, connections, folders, ...) by type.

Assets live in pools keyed by (workspace index or ``ACCOUNT_WIDE``, resource type). A pool
is filled lazily, the first time an event needs it, with a number of assets that grows with
the tenant's size; creations beyond its cap replace an existing asset, so memory stays
bounded however many events are generated.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from producers.generator import vocabulary as vocab
from producers.generator.population import ACCOUNT_WIDE, Asset, Tenant, new_id

WORKSPACE_TYPES = frozenset(
    {
        "recipe", "connection", "folder", "project", "export_manifest", "package",
        "deployment", "api_collection", "api_endpoint", "api_client", "access_profile",
        "account_property", "lookup_table", "tag",
    }
)  # fmt: skip
"""Resource types that belong to one workspace; events about them carry its workspace."""

# resource type -> (initial assets per member of a workspace, minimum initial assets)
_INITIAL: dict[str, tuple[float, int]] = {
    "recipe": (3.0, 3),
    "connection": (1.2, 2),
    "folder": (0.5, 2),
    "project": (0.1, 1),
    "lookup_table": (0.2, 1),
    "tag": (0.0, 4),
    "account_property": (0.2, 2),
    "export_manifest": (0.1, 1),
    "package": (0.1, 1),
    "api_collection": (0.05, 1),
    "api_endpoint": (0.3, 2),
    "api_client": (0.05, 1),
    "access_profile": (0.05, 1),
    "custom_connector": (0.05, 1),
    "role": (0.0, 1),
    "audit_stream": (0.0, 1),
    "managed_account": (0.0, 3),
}

_PREFIXES = {
    "recipe": "rcp", "connection": "conn", "folder": "fld", "project": "prj",
    "lookup_table": "lkp", "tag": "tag", "account_property": "prop", "export_manifest": "mfst",
    "package": "pkg", "deployment": "dep", "api_collection": "apicol", "api_endpoint": "apiep",
    "api_client": "apic", "access_profile": "accp", "custom_connector": "ccn", "role": "role",
    "audit_stream": "strm", "invitation": "inv",
}  # fmt: skip


def pool(rng: random.Random, tenant: Tenant, key: int, rtype: str) -> list[Asset]:
    """The assets of ``rtype`` in workspace ``key`` (or account-wide), filled on first use."""
    assets = tenant.pools.get((key, rtype))
    if assets is None:
        assets = tenant.pools[(key, rtype)] = []
        per_member, minimum = _INITIAL.get(rtype, (0.0, 1))
        members = len(tenant.users) / max(1, len(tenant.workspaces))
        for _ in range(max(minimum, round(per_member * members))):
            assets.append(_make(rng, tenant, key, rtype, initial=True))
    return assets


def pick(rng: random.Random, tenant: Tenant, key: int, rtype: str, state: str = "") -> Asset | None:
    """A random asset (in ``state`` when given), or None when there is none to be found."""
    assets = pool(rng, tenant, key, rtype)
    if not assets:
        return None
    if not state:
        return assets[int(rng.random() * len(assets))]
    for _ in range(8):
        asset = assets[int(rng.random() * len(assets))]
        if asset.state == state:
            return asset
    return None


def create(rng: random.Random, tenant: Tenant, key: int, rtype: str) -> Asset:
    """A new asset added to its pool (replacing a random one when the pool is full)."""
    assets = pool(rng, tenant, key, rtype)
    asset = _make(rng, tenant, key, rtype, initial=False)
    per_member, minimum = _INITIAL.get(rtype, (0.0, 1))
    members = len(tenant.users) / max(1, len(tenant.workspaces))
    cap = max(12, 3 * max(minimum, round(per_member * members)))
    if len(assets) >= cap:
        assets[int(rng.random() * len(assets))] = asset
    else:
        assets.append(asset)
    return asset


def remove(tenant: Tenant, key: int, rtype: str, asset: Asset) -> None:
    """Forget a deleted asset (no-op when it is already gone)."""
    assets = tenant.pools.get((key, rtype), [])
    if asset in assets:
        assets.remove(asset)


def rename(rng: random.Random, rtype: str, old: str) -> str:
    """A plausible new name for an asset called ``old``."""
    if rtype == "recipe" and rng.random() < 0.5:
        return f"{old} v2" if not old.endswith(" v2") else old.removesuffix(" v2") + " (legacy)"
    if rtype == "connection":
        return f"{old} - service account" if " - " not in old else old.partition(" - ")[0]
    return _name(rng, rtype)


def _make(rng: random.Random, tenant: Tenant, key: int, rtype: str, *, initial: bool) -> Asset:
    asset = Asset(new_id(rng, _PREFIXES.get(rtype, rtype[:4])), "")
    environment = tenant.workspaces[key].environment if key != ACCOUNT_WIDE else ""
    asset.name = "" if rtype == "connection" else _name(rng, rtype)
    if rtype == "recipe":
        asset.parent = _parent_id(rng, tenant, key, "folder")
        asset.state = "running" if initial and rng.random() < 0.6 else "stopped"
        asset.version = rng.randrange(1, 40) if initial else 1
    elif rtype == "connection":
        asset.extra, title = rng.choice(vocab.APPS)
        suffix = rng.choice(("", "", " (EU)", " sandbox"))
        asset.name = f"{title} {environment or 'shared'}{suffix}"
        asset.parent = _parent_id(rng, tenant, key, "folder")
        asset.state = "connected" if initial and rng.random() < 0.9 else "disconnected"
    elif rtype == "folder":
        asset.parent = _parent_id(rng, tenant, key, "project")
    elif rtype == "lookup_table":
        asset.parent = _parent_id(rng, tenant, key, "folder")
        asset.version = rng.randrange(5, 500)
    elif rtype in ("export_manifest", "package"):
        asset.version = rng.randrange(3, 60)
    elif rtype == "api_endpoint":
        asset.parent = _parent_id(rng, tenant, key, "api_collection")
        asset.extra = asset.name.split(" ")[0]
        asset.state = "enabled" if initial or rng.random() < 0.5 else "disabled"
    elif rtype == "access_profile":
        asset.parent = _parent_id(rng, tenant, key, "api_client")
        asset.extra = rng.choice(("token", "token", "jwt", "oauth2", "mtls"))
        asset.state = "enabled"
    elif rtype == "custom_connector":
        asset.version = rng.randrange(1, 12) if initial else 1
    elif rtype == "role":
        asset.extra = ",".join(sorted(rng.sample(vocab.PRIVILEGES, rng.randrange(2, 6))))
    elif rtype == "audit_stream":
        destination_type, asset.name = rng.choice(vocab.STREAM_DESTINATIONS)
        asset.extra, asset.state = destination_type, "active"
    elif rtype == "managed_account":
        asset.id = f"acct-{rng.getrandbits(32):08x}"
    return asset


def _parent_id(rng: random.Random, tenant: Tenant, key: int, rtype: str) -> str:
    parent = pick(rng, tenant, key, rtype)
    return parent.id if parent is not None else ""


def _release(rng: random.Random) -> str:
    return f"Release 2026.{rng.randrange(1, 13)}.{rng.randrange(1, 30)}"


def _recipe_name(rng: random.Random) -> str:
    (_, a), (_, b) = rng.sample(vocab.APPS, 2)
    template = rng.choice(vocab.RECIPE_TEMPLATES)
    return template.format(obj=rng.choice(vocab.BUSINESS_OBJECTS), a=a, b=b)


def _endpoint_name(rng: random.Random) -> str:
    resource = rng.choice(vocab.API_RESOURCES)
    method = rng.choice(vocab.HTTP_METHODS)
    suffix = "" if method == "POST" or rng.random() < 0.3 else "/{id}"
    return f"{method} /{resource}{suffix}"


def _managed_name(rng: random.Random) -> str:
    return f"{rng.choice(vocab.COMPANY_WORDS)} {rng.choice(vocab.COMPANY_KINDS)} (customer)"


_NAMERS: dict[str, Callable[[random.Random], str]] = {
    "recipe": _recipe_name,
    "folder": lambda rng: rng.choice(vocab.FOLDER_NAMES),
    "project": lambda rng: rng.choice(vocab.PROJECT_NAMES),
    "lookup_table": lambda rng: rng.choice(vocab.LOOKUP_TABLES),
    "tag": lambda rng: rng.choice(vocab.TAGS),
    "account_property": lambda rng: rng.choice(vocab.ACCOUNT_PROPERTIES),
    "export_manifest": _release,
    "package": _release,
    "deployment": _release,
    "api_collection": lambda rng: f"{rng.choice(vocab.API_COLLECTIONS)} v{rng.randrange(1, 4)}",
    "api_endpoint": _endpoint_name,
    "api_client": lambda rng: rng.choice(vocab.API_CLIENT_NAMES),
    "access_profile": lambda rng: f"{rng.choice(('Partner', 'Internal', 'Mobile', 'BI'))} access",
    "custom_connector": lambda rng: f"{rng.choice(vocab.CONNECTOR_NAMES)} connector",
    "role": lambda rng: rng.choice(vocab.CUSTOM_ROLE_NAMES),
    "managed_account": _managed_name,
}


def _name(rng: random.Random, rtype: str) -> str:
    namer = _NAMERS.get(rtype)
    return namer(rng) if namer is not None else f"{rtype.replace('_', ' ')} {rng.randrange(1, 100)}"
