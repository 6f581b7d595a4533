"""Activities on the API platform, custom connectors, account properties, lookup tables and
tags.

Handlers follow the contract of :mod:`producers.generator.context`.
"""

from __future__ import annotations

from producers.generator.activities.common import (
    delete_asset,
    set_state,
    touch_asset,
)
from producers.generator.context import (
    Ctx,
    FieldTable,
    change,
    changed_fields,
)
from producers.generator.world import Event

# ---- API platform ----------------------------------------------------------------------

_COLLECTION_FIELDS: FieldTable = (
    ("description", ("Public order lookups", "Orders for the partner portal", "")),
    ("base_path", ("/orders/v1", "/orders/v2")),
    ("rate_limit_per_min", ("600", "1200", "3000")),
)
_ENDPOINT_FIELDS: FieldTable = (
    ("recipe_version", ("12", "13", "14", "15")),
    ("cache_ttl_s", ("0", "60", "300")),
    ("request_schema", ("v1", "v2")),
)
_CLIENT_FIELDS: FieldTable = (
    ("description", ("Partner portal backend", "Mobile app", "Nightly sync")),
    ("ip_allowlist", ("", "52.14.0.0/16", "52.14.0.0/16,18.220.0.0/16")),
    ("owner_email", ("it@", "platform@")),
)
_PROFILE_FIELDS: FieldTable = (
    ("collections", ("Orders API v1", "Orders API v1,Customers API v2", "HR API v1")),
    ("token_ttl_s", ("3600", "86400", "604800")),
    ("ip_allowlist", ("", "203.0.113.0/24")),
)


def collection_created(c: Ctx) -> Event | None:
    return c.emit("api_collection.created", c.create("api_collection"))


def collection_updated(c: Ctx) -> Event | None:
    return touch_asset(c, "api_collection.updated", "api_collection", _COLLECTION_FIELDS)


def collection_deleted(c: Ctx) -> Event | None:
    return delete_asset(c, "api_collection.deleted", "api_collection")


def endpoint_created(c: Ctx) -> Event | None:
    endpoint = c.create("api_endpoint")
    method, _, path = endpoint.name.partition(" ")
    details = {"collection_id": endpoint.parent, "http_method": method, "path": path}
    return c.emit("api_endpoint.created", endpoint, details=details)


def endpoint_updated(c: Ctx) -> Event | None:
    return touch_asset(c, "api_endpoint.updated", "api_endpoint", _ENDPOINT_FIELDS)


def endpoint_enabled(c: Ctx) -> Event | None:
    return set_state(c, "api_endpoint.enabled", "api_endpoint", "disabled", "enabled")


def endpoint_disabled(c: Ctx) -> Event | None:
    return set_state(c, "api_endpoint.disabled", "api_endpoint", "enabled", "disabled")


def endpoint_deleted(c: Ctx) -> Event | None:
    return delete_asset(c, "api_endpoint.deleted", "api_endpoint", keep=2)


def client_created(c: Ctx) -> Event | None:
    return c.emit("api_client.created", c.create("api_client"))


def client_updated(c: Ctx) -> Event | None:
    return touch_asset(c, "api_client.updated", "api_client", _CLIENT_FIELDS)


def client_deleted(c: Ctx) -> Event | None:
    return delete_asset(c, "api_client.deleted", "api_client")


def access_profile_created(c: Ctx) -> Event | None:
    profile = c.create("access_profile")
    details = {"api_client_id": profile.parent, "auth_method": profile.extra}
    return c.emit("access_profile.created", profile, details=details)


def access_profile_updated(c: Ctx) -> Event | None:
    return touch_asset(c, "access_profile.updated", "access_profile", _PROFILE_FIELDS)


def access_profile_key_regenerated(c: Ctx) -> Event | None:
    return touch_asset(c, "access_profile.api_key_regenerated", "access_profile")


def access_profile_enabled(c: Ctx) -> Event | None:
    return set_state(c, "access_profile.enabled", "access_profile", "disabled", "enabled")


def access_profile_disabled(c: Ctx) -> Event | None:
    return set_state(c, "access_profile.disabled", "access_profile", "enabled", "disabled")


def access_profile_deleted(c: Ctx) -> Event | None:
    return delete_asset(c, "access_profile.deleted", "access_profile")


# ---- custom connectors (account-wide) --------------------------------------------------


def connector_created(c: Ctx) -> Event | None:
    return c.emit("custom_connector.created", c.create("custom_connector", account_wide=True))


def connector_updated(c: Ctx) -> Event | None:
    connector = c.pick("custom_connector", account_wide=True)
    if connector is None:
        return None
    before, after = (f"sha256:{c.rng.getrandbits(48):012x}" for _ in range(2))
    changes = [change("source_code", before, after)]
    if c.rng.random() < 0.2:
        changes.append(change("title", connector.name, f"{connector.name} (beta)"))
    return c.emit("custom_connector.updated", connector, changes=changes)


def connector_released(c: Ctx) -> Event | None:
    connector = c.pick("custom_connector", account_wide=True)
    if connector is None:
        return None
    connector.version += 1
    details = {"version": str(connector.version)}
    return c.emit("custom_connector.released", connector, details=details)


def connector_shared(c: Ctx) -> Event | None:
    connector = c.pick("custom_connector", "", account_wide=True)
    if connector is None or connector.state == "shared":
        return None
    connector.state = "shared"
    visibility = "managed_accounts" if c.tenant.partner else "community"
    return c.emit("custom_connector.shared", connector, details={"visibility": visibility})


def connector_unshared(c: Ctx) -> Event | None:
    connector = c.pick("custom_connector", "shared", account_wide=True)
    if connector is None:
        return None
    connector.state = ""
    return c.emit("custom_connector.unshared", connector)


def connector_deleted(c: Ctx) -> Event | None:
    connector = c.pick("custom_connector", account_wide=True)
    if connector is None or c.count("custom_connector", account_wide=True) < 2:
        return None
    c.remove("custom_connector", connector, account_wide=True)
    return c.emit("custom_connector.deleted", connector)


# ---- account properties, lookup tables, tags -------------------------------------------


def property_created(c: Ctx) -> Event | None:
    prop = c.create("account_property")
    return c.emit("account_property.created", prop, details={"name": prop.name})


def property_updated(c: Ctx) -> Event | None:
    prop = c.pick("account_property")
    if prop is None:
        return None
    changes = [change("value", "[redacted]", "[redacted]")]
    return c.emit("account_property.updated", prop, details={"name": prop.name}, changes=changes)


def property_deleted(c: Ctx) -> Event | None:
    prop = c.pick("account_property")
    if prop is None or c.count("account_property") < 2:
        return None
    c.remove("account_property", prop)
    return c.emit("account_property.deleted", prop, details={"name": prop.name})


def table_created(c: Ctx) -> Event | None:
    table = c.create("lookup_table")
    return c.emit("lookup_table.created", table, details={"folder_id": table.parent})


def table_updated(c: Ctx) -> Event | None:
    table = c.pick("lookup_table")
    if table is None:
        return None
    old, table.version = table.version, max(0, table.version + c.rng.randint(-5, 20))
    changes = [change("entries", str(old), str(table.version))]
    if c.rng.random() < 0.1:
        changes.append(change("columns", "code,name", "code,name,owner"))
    details = {"changed_fields": changed_fields(changes), "entry_count": str(table.version)}
    return c.emit("lookup_table.updated", table, details=details, changes=changes)


def table_deleted(c: Ctx) -> Event | None:
    return delete_asset(c, "lookup_table.deleted", "lookup_table")


def tag_created(c: Ctx) -> Event | None:
    tag = c.create("tag")
    return c.emit("tag.created", tag, details={"name": tag.name})


def _tagging(c: Ctx, action: str) -> Event | None:
    tag = c.pick("tag")
    target_type = "recipe" if c.rng.random() < 0.75 else "connection"
    target = c.pick(target_type)
    if tag is None or target is None:
        return None
    return c.emit(action, tag, details={"target_type": target_type, "target_id": target.id})


def tag_assigned(c: Ctx) -> Event | None:
    return _tagging(c, "tag.assigned")


def tag_unassigned(c: Ctx) -> Event | None:
    return _tagging(c, "tag.unassigned")


def tag_deleted(c: Ctx) -> Event | None:
    tag = c.pick("tag")
    if tag is None or c.count("tag") < 3:
        return None
    c.remove("tag", tag)
    return c.emit("tag.deleted", tag, details={"name": tag.name})
