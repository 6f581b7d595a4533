"""The integrity log's state in ClickHouse: leaves and account heads (migration 0005).

:meth:`LogStore.store` writes a batch's leaves, then its accounts' heads, each one insert
under a deduplication token derived from the batch's partition and offset range; it blocks
until ClickHouse acknowledged both and raises what clickhouse-connect raises (the caller
retries the same batch, hence the same tokens). Only then may the batch's offsets be
committed. Leaves go first: a crash between the two leaves heads that are behind their
leaves, and the records are appended again, to the same leaves.

Heads are read as the largest ``size`` per account (``argMax``): every stored head is a
state of the one deterministic log (docs/integrity.md), so the largest is the furthest
along, whichever process wrote it and whatever its clock said.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from clickhouse_connect.driver.client import Client

from integrity.appending import Batch, HeadRow

LEAVES_TABLE = "integrity_leaves"
HEADS_TABLE = "integrity_heads"
_LEAF_COLUMNS = (
    "tenant_id",
    "leaf_index",
    "partition",
    "kafka_offset",
    "event_id",
    "leaf_hash",
    "leaf_version",
)
_HEAD_COLUMNS = ("tenant_id", "size", "root", "frontier", "partition", "last_offset")
_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADS_SELECT = (
    "SELECT tenant_id, max(size), argMax(root, size), argMax(frontier, size), "
    "argMax(partition, size) AS head_partition, argMax(last_offset, size) "
    "FROM {table} WHERE {where} GROUP BY tenant_id"
)


class LogStore:
    """Leaves and heads in ``database`` through ``client`` (one per appender thread)."""

    def __init__(self, client: Client, database: str) -> None:
        if not _DATABASE.fullmatch(database):
            raise ValueError(f"{database!r} is not a database name")
        self._client = client
        self._leaves = f"{database}.{LEAVES_TABLE}"
        self._heads = f"{database}.{HEADS_TABLE}"

    def store(self, batch: Batch) -> None:
        """Insert ``batch``'s leaves, then its heads (nothing for a batch of skips)."""
        if batch.leaves:
            self._insert(
                self._leaves,
                _LEAF_COLUMNS,
                [
                    (
                        leaf.tenant_id,
                        leaf.leaf_index,
                        leaf.partition,
                        leaf.kafka_offset,
                        leaf.event_id,
                        leaf.leaf_hash,
                        leaf.leaf_version,
                    )
                    for leaf in batch.leaves
                ],
                batch.token(LEAVES_TABLE),
            )
        if batch.heads:
            self._insert(
                self._heads,
                _HEAD_COLUMNS,
                [
                    (h.tenant_id, h.size, h.root, list(h.frontier), h.partition, h.last_offset)
                    for h in batch.heads
                ],
                batch.token(HEADS_TABLE),
            )

    def _insert(
        self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]], token: str
    ) -> None:
        self._client.insert(
            table,
            rows,
            column_names=list(columns),
            settings={"insert_deduplication_token": token, "insert_deduplicate": 1},
        )

    def heads_in(self, partitions: Iterable[int]) -> dict[int, list[HeadRow]]:
        """The heads of the accounts last seen in each of ``partitions``."""
        wanted = sorted(set(partitions))
        found: dict[int, list[HeadRow]] = {p: [] for p in wanted}
        if not wanted:
            return found
        sql = _HEADS_SELECT.format(table=self._heads, where="1") + (
            " HAVING head_partition IN {partitions:Array(UInt32)}"
        )
        for row in self._select(sql, {"partitions": wanted}):
            found[row.partition].append(row)
        return found

    def heads_of(self, tenant_ids: Iterable[str]) -> list[HeadRow]:
        """The heads of ``tenant_ids`` that have one, whichever partition holds them."""
        wanted = sorted(set(tenant_ids))
        if not wanted:
            return []
        sql = _HEADS_SELECT.format(table=self._heads, where="tenant_id IN {tenants:Array(String)}")
        return self._select(sql, {"tenants": wanted})

    def _select(self, sql: str, parameters: dict[str, Any]) -> list[HeadRow]:
        result = self._client.query(sql, parameters=parameters)
        return [
            HeadRow(
                str(tenant),
                int(size),
                bytes(root),
                tuple(bytes(h) for h in frontier),
                int(partition),
                int(last_offset),
            )
            for tenant, size, root, frontier, partition, last_offset in result.result_rows
        ]
