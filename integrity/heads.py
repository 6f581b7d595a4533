"""The integrity log's state in ClickHouse: leaves and account heads (migration 0005).

:meth:`LogStore.store` writes a batch's leaves, then its accounts' heads, each one insert
under a deduplication token derived from the batch's partition and offset range; it blocks
until ClickHouse acknowledged both and raises what clickhouse-connect raises (the caller
retries the same batch, hence the same tokens). Only then may the batch's offsets be
committed. Leaves go first: a crash between the two leaves heads that are behind their
leaves, and the records are appended again, to the same leaves.

The leaves go as RowBinary bytes built here (:func:`leaves_row_binary`: one ``bytes`` per
leaf, no per-value conversion by the client); heads, a few rows a batch, through
clickhouse-connect's column types.

Heads are read as the largest ``size`` per account (``argMax``): every stored head is a
state of the one deterministic log (docs/integrity.md), so the largest is the furthest
along, whichever process wrote it and whatever its clock said.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Sequence
from typing import Any

from clickhouse_connect.driver.client import Client

from integrity.appending import Batch, HeadRow, LeafRow
from integrity.merkle import HASH_SIZE

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
# leaf_index, partition, kafka_offset, event_id (high and low 64 bits), leaf_hash, version
_LEAF_FIXED = struct.Struct("<QIQQQ32sB")
_LOW_64 = (1 << 64) - 1


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def leaves_row_binary(leaves: Iterable[LeafRow]) -> bytes:
    """``leaves`` in ClickHouse's RowBinary format, in ``_LEAF_COLUMNS`` order: ``tenant_id``
    String (LEB128 length, UTF-8), ``leaf_index`` UInt64, ``partition`` UInt32,
    ``kafka_offset`` UInt64 (little-endian), ``event_id`` UUID (its two 64-bit halves, each
    little-endian), ``leaf_hash`` FixedString(32), ``leaf_version`` UInt8. Raises ValueError
    for a hash that is not 32 bytes and ``struct.error`` for a number out of its type's
    range (either would make a stream that does not parse)."""
    prefixes: dict[str, bytes] = {}
    pack = _LEAF_FIXED.pack
    parts = []
    for leaf in leaves:
        tenant, index, partition, offset, event_id, leaf_hash, version = leaf
        prefix = prefixes.get(tenant)
        if prefix is None:
            raw = tenant.encode()
            prefix = prefixes[tenant] = _varint(len(raw)) + raw
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(leaf_hash)}")
        uid = event_id.int
        parts.append(prefix)
        parts.append(pack(index, partition, offset, uid >> 64, uid & _LOW_64, leaf_hash, version))
    return b"".join(parts)


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
            self._client.raw_insert(
                self._leaves,
                list(_LEAF_COLUMNS),
                insert_block=leaves_row_binary(batch.leaves),
                fmt="RowBinary",
                settings=_dedup(batch.token(LEAVES_TABLE)),
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
            settings=_dedup(token),
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


def _dedup(token: str) -> dict[str, Any]:
    return {"insert_deduplication_token": token, "insert_deduplicate": 1}
