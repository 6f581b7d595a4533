"""Prune statements in ClickHouse (``integrity_prune_statements``, migration 0006), and
what the pruner reads beside them: the accounts' retention days (``tenant_retention``) and
their checkpoints (``integrity_checkpoints``). Calls block until ClickHouse answers and
raise clickhouse-connect's errors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from consumers.retention import DEFAULT_RETENTION_DAYS
from integrity.checkpoint_store import CHECKPOINTS_TABLE, insert_once
from integrity.prune_statement import PruneStatement, parse_statement
from integrity.pruner import PruneRow
from integrity.signed_note import NoteError

PRUNE_TABLE = "integrity_prune_statements"
_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ClickHousePruneStore:
    """The prune statements of ``database`` (a :class:`integrity.pruner.PruneStore`)."""

    def __init__(self, client: Client, database: str) -> None:
        if not _DATABASE.fullmatch(database):
            raise ValueError(f"{database!r} is not a database name")
        self._client = client
        self._database = database
        self._table = f"{database}.{PRUNE_TABLE}"

    def insert(self, rows: Sequence[PruneRow]) -> None:
        insert_once(
            self._client,
            self._table,
            ["tenant_id", "time", "below", "retention_days", "note"],
            [
                (
                    r.tenant_id,
                    datetime.fromtimestamp(r.time_ms / 1000, UTC),
                    r.below,
                    r.retention_days,
                    r.note,
                )
                for r in rows
            ],
            [f"{r.tenant_id}\x00{r.time_ms}" for r in rows],
        )

    def latest_statements(self, tenant_ids: Sequence[str]) -> dict[str, PruneStatement]:
        """Each account's latest stored statement, parsed (not verified: it only decides
        whether a new one is due)."""
        if not tenant_ids:
            return {}
        result = self._client.query(
            f"SELECT tenant_id, argMax(note, time) FROM {self._table} "  # noqa: S608 - checked name
            "WHERE tenant_id IN {tenants:Array(String)} GROUP BY tenant_id",
            parameters={"tenants": sorted(set(tenant_ids))},
        )
        latest = {}
        for tenant_id, note in result.result_rows:
            try:
                latest[str(tenant_id)] = parse_statement(str(note))[0]
            except NoteError:
                continue  # unreadable: a new one is due
        return latest

    def retention_days(self, tenant_ids: Sequence[str]) -> dict[str, int]:
        """Each account's retention as ``tenant_retention`` holds it (the default when it
        has none of its own)."""
        days = dict.fromkeys(tenant_ids, DEFAULT_RETENTION_DAYS)
        if not tenant_ids:
            return days
        result = self._client.query(
            "SELECT tenant_id, argMax(retention_days, updated_at) "  # noqa: S608 - checked name
            f"FROM {self._database}.tenant_retention "
            "WHERE tenant_id IN {tenants:Array(String)} GROUP BY tenant_id",
            parameters={"tenants": sorted(set(tenant_ids))},
        )
        days.update((str(t), int(d)) for t, d in result.result_rows)
        return days

    def checkpoint_notes(self, tenant_id: str, signed_before_ms: int, limit: int) -> list[str]:
        result = self._client.query(
            f"SELECT note FROM {self._database}.{CHECKPOINTS_TABLE} FINAL "  # noqa: S608
            "WHERE tenant_id = {tenant:String} "
            "AND time < fromUnixTimestamp64Milli({before:Int64}, 'UTC') "
            "ORDER BY size DESC, time LIMIT {limit:UInt32}",
            parameters={"tenant": tenant_id, "before": signed_before_ms, "limit": limit},
        )
        return [str(row[0]) for row in result.result_rows]

    def notes(self, tenant_id: str) -> list[str]:
        """Every statement of ``tenant_id``, oldest first."""
        result = self._client.query(
            f"SELECT note FROM {self._table} FINAL WHERE tenant_id = {{tenant:String}} "  # noqa: S608
            "ORDER BY time",
            parameters={"tenant": tenant_id},
        )
        return [str(row[0]) for row in result.result_rows]
