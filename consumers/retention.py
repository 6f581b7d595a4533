"""Per-tenant retention of the audit events: read and change it through a passed-in
ClickHouse client. How retention works is in ``deploy/clickhouse/RETENTION.md``.

A change (:func:`set_retention`) does three things, in this order, each blocking until
ClickHouse answered:

1. appends the new setting to ``<database>.tenant_retention`` (the newest row wins);
2. reloads ``<database>.tenant_retention_dict``, so rows inserted from now on get the new
   value from the ``retention_days`` DEFAULT of the events table;
3. rewrites ``retention_days`` of the tenant's stored events with a mutation
   (``ALTER TABLE ... UPDATE``), which also re-evaluates their TTL: rows past the new
   retention are deleted by that mutation, rows within it stay (and a longer retention
   keeps them longer). With ``wait=True`` it returns once the mutation finished.

Rows inserted between 2 and 3 already carry the new value; rows inserted before 2 exist
when the mutation is created and are rewritten by it, so none keeps the old value.
ClickHouse errors propagate as the client raises them; :class:`RetentionError` is raised
for invalid input before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

DEFAULT_RETENTION_DAYS = 365
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 3650
DEFAULT_DATABASE = "audit"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")  # as in schemas.event


class ClickHouseClient(Protocol):
    """The part of clickhouse-connect's ``Client`` used here."""

    def command(self, cmd: str, parameters: Any = None, *args: Any, **kwargs: Any) -> Any: ...
    def query(
        self, query: str | None = None, parameters: Any = None, *args: Any, **kwargs: Any
    ) -> Any: ...


class RetentionError(ValueError):
    """A tenant id or a number of days that is not allowed; nothing was changed."""


@dataclass(frozen=True)
class TenantRetention:
    """A tenant's retention; ``updated_at`` is None for a tenant on the default."""

    tenant_id: str
    retention_days: int
    updated_at: datetime | None = None
    updated_by: str = ""

    @property
    def is_default(self) -> bool:
        return self.updated_at is None


@dataclass(frozen=True)
class RetentionChange:
    tenant_id: str
    old_days: int
    new_days: int

    @property
    def changed(self) -> bool:
        return self.old_days != self.new_days


def validate_days(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int):
        raise RetentionError(f"retention must be a whole number of days, not {days!r}")
    if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise RetentionError(
            f"retention must be {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS} days, not {days}"
        )
    return days


def validate_tenant(tenant_id: str) -> str:
    if not _TENANT.fullmatch(tenant_id):
        raise RetentionError(
            f"{tenant_id!r} is not a tenant id (letters, digits and . _ : @ -, at most 128)"
        )
    return tenant_id


def _in(database: str, sql: str) -> str:
    """``sql`` with ``{database}`` replaced by a checked database name."""
    return sql.replace("{database}", _db(database))


def _db(database: str) -> str:
    if not _IDENTIFIER.fullmatch(database):
        raise RetentionError(f"{database!r} is not a plain database name")
    return database


def list_retention(
    client: ClickHouseClient, *, database: str = DEFAULT_DATABASE
) -> list[TenantRetention]:
    """Every tenant with a retention of its own (tenants not listed keep the default)."""
    rows = client.query(
        _in(
            database,
            "SELECT tenant_id, argMax(retention_days, updated_at), max(updated_at), "
            "argMax(updated_by, updated_at) FROM {database}.tenant_retention "
            "GROUP BY tenant_id ORDER BY tenant_id",
        )
    ).result_rows
    return [TenantRetention(str(r[0]), int(r[1]), r[2], str(r[3])) for r in rows]


def get_retention(
    client: ClickHouseClient, tenant_id: str, *, database: str = DEFAULT_DATABASE
) -> TenantRetention:
    """The tenant's retention as stored (the default when it has none of its own)."""
    rows = client.query(
        _in(
            database,
            "SELECT argMax(retention_days, updated_at), max(updated_at), "
            "argMax(updated_by, updated_at) FROM {database}.tenant_retention "
            "WHERE tenant_id = {tenant:String} GROUP BY tenant_id",
        ),
        parameters={"tenant": validate_tenant(tenant_id)},
    ).result_rows
    if not rows:
        return TenantRetention(tenant_id, DEFAULT_RETENTION_DAYS)
    days, updated_at, updated_by = rows[0]
    return TenantRetention(tenant_id, int(days), updated_at, str(updated_by))


def set_retention(
    client: ClickHouseClient,
    tenant_id: str,
    days: int,
    *,
    database: str = DEFAULT_DATABASE,
    updated_by: str = "",
    wait: bool = True,
) -> RetentionChange:
    """Set the tenant's retention and apply it to its stored events (see module doc).
    Setting the value the tenant already has still re-applies it (repairs a change that
    failed half way). ``wait=False`` returns once the mutation is queued."""
    database = _db(database)
    validate_tenant(tenant_id)
    validate_days(days)
    old = get_retention(client, tenant_id, database=database)
    client.command(
        _in(
            database,
            "INSERT INTO {database}.tenant_retention (tenant_id, retention_days, updated_by) "
            "VALUES ({tenant:String}, {days:UInt16}, {by:String})",
        ),
        parameters={"tenant": tenant_id, "days": days, "by": updated_by},
    )
    client.command(f"SYSTEM RELOAD DICTIONARY {database}.tenant_retention_dict")
    apply_to_stored(client, tenant_id, days, database=database, wait=wait)
    return RetentionChange(tenant_id, old.retention_days, days)


def apply_to_stored(
    client: ClickHouseClient,
    tenant_id: str,
    days: int,
    *,
    database: str = DEFAULT_DATABASE,
    wait: bool = True,
) -> None:
    """Rewrite ``retention_days`` of the tenant's stored events (a mutation; it also
    deletes the rows the new value expires)."""
    client.command(
        f"ALTER TABLE {_db(database)}.events UPDATE retention_days = {{days:UInt16}} "
        "WHERE tenant_id = {tenant:String} AND retention_days != {days:UInt16}",
        parameters={"tenant": validate_tenant(tenant_id), "days": validate_days(days)},
        settings={"mutations_sync": 2 if wait else 0},
    )
