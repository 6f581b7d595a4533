"""Signed checkpoints in ClickHouse (``integrity_checkpoints``, migration 0005).

Rows are keyed by (account, size, time): one checkpoint inserted twice (a retry) replaces
itself, and the insert's deduplication token, a digest of the rows' keys, makes a retried
insert a no-op. Calls block until ClickHouse answers and raise clickhouse-connect's errors.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from integrity.checkpointer import CheckpointRow, Signed

CHECKPOINTS_TABLE = "integrity_checkpoints"
_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CheckpointStore:
    """The checkpoints of ``database``."""

    def __init__(self, client: Client, database: str) -> None:
        if not _DATABASE.fullmatch(database):
            raise ValueError(f"{database!r} is not a database name")
        self._client = client
        self._table = f"{database}.{CHECKPOINTS_TABLE}"

    def insert(self, rows: Sequence[CheckpointRow]) -> None:
        insert_once(
            self._client,
            self._table,
            ["tenant_id", "size", "root", "time", "note"],
            [(r.tenant_id, r.size, r.root, _utc(r.time_ms), r.note) for r in rows],
            [f"{r.tenant_id}\x00{r.size}\x00{r.time_ms}" for r in rows],
        )

    def latest(self, tenant_ids: Iterable[str]) -> dict[str, Signed]:
        """Each account's largest signed size and latest time (of those that have one)."""
        wanted = sorted(set(tenant_ids))
        if not wanted:
            return {}
        result = self._client.query(
            f"SELECT tenant_id, max(size), toUnixTimestamp64Milli(max(time)) FROM {self._table} "  # noqa: S608 - checked name
            "WHERE tenant_id IN {tenants:Array(String)} GROUP BY tenant_id",
            parameters={"tenants": wanted},
        )
        return {str(t): Signed(int(size), int(ms)) for t, size, ms in result.result_rows}

    def notes(self, tenant_id: str) -> list[str]:
        """Every checkpoint note of ``tenant_id``, oldest first (by size, then time)."""
        result = self._client.query(
            f"SELECT note FROM {self._table} FINAL WHERE tenant_id = {{tenant:String}} "  # noqa: S608
            "ORDER BY size, time",
            parameters={"tenant": tenant_id},
        )
        return [str(row[0]) for row in result.result_rows]


def insert_once(
    client: Client,
    table: str,
    columns: list[str],
    rows: Sequence[tuple[Any, ...]],
    keys: Sequence[str],
) -> None:
    """Insert ``rows`` (nothing for none) under a deduplication token that digests their
    ``keys`` (what names each row's fact): a retried insert is a no-op."""
    if not rows:
        return
    digest = hashlib.sha256("\n".join(keys).encode())
    name = table.rsplit(".", 1)[-1]
    client.insert(
        table,
        list(rows),
        column_names=columns,
        settings={
            "insert_deduplication_token": f"{name}-{digest.hexdigest()}",
            "insert_deduplicate": 1,
        },
    )


def _utc(time_ms: int) -> datetime:
    return datetime.fromtimestamp(time_ms / 1000, UTC)
