"""The writer's progress log: which offset range of a partition it is about to insert.

Before each insert the writer announces the batch's range here; offsets are committed to
Kafka only after the insert. After a crash between insert and commit, the partition's next
owner finds the announced range starting at the committed offset and forms exactly that
range again, so the insert carries the same deduplication token and ClickHouse stores it
once (the approach of ClickHouse's Kafka Connect sink, with a table instead of KeeperMap).

The log is a small ReplacingMergeTree keyed by (target table, topic, partition); reads
take the latest announcement per partition. On a cluster it is a KeeperMap table, one key
per partition, linearizable, so every writer reads the latest announcement whichever node
it asks (``deploy/clickhouse/cluster/0003_writer_progress.sql``). Why and in which order:
``docs/exactly-once.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from consumers.batches import Batch

DEFAULT_TABLE = "audit.writer_progress"
TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


@dataclass(frozen=True)
class Announced:
    """The last range announced for a partition."""

    first_offset: int
    last_offset: int


class ProgressLog:
    """Announcements for the writer that fills ``target`` (e.g. ``audit.events``)."""

    def __init__(self, client: Client, target: str, table: str = DEFAULT_TABLE) -> None:
        if not TABLE_NAME.fullmatch(table):
            raise ValueError(f"{table!r} is not a table name (database.table)")
        self._client = client
        self._target = target
        self._insert_sql = (
            f"INSERT INTO {table} (target, topic, partition, first_offset, last_offset) "  # noqa: S608
            "VALUES ({target:String}, {topic:String}, {partition:UInt32}, "
            "{first:UInt64}, {last:UInt64})"
        )
        self._select_sql = (
            "SELECT partition, argMax(first_offset, announced_at), "  # noqa: S608 - checked name
            f"argMax(last_offset, announced_at) FROM {table} "
            "WHERE target = {target:String} AND topic = {topic:String} "
            "AND partition IN {partitions:Array(UInt32)} GROUP BY partition"
        )

    def announce(self, batch: Batch) -> None:
        """Record that ``batch`` is about to be inserted; blocks until ClickHouse has it."""
        self._client.command(
            self._insert_sql,
            parameters={
                "target": self._target,
                "topic": batch.topic,
                "partition": batch.partition,
                "first": batch.first_offset,
                "last": batch.last_offset,
            },
        )

    def announced(self, topic: str, partitions: Iterable[int]) -> dict[int, Announced]:
        """The latest announcement of each of ``partitions`` that has one."""
        wanted = sorted(set(partitions))
        if not wanted:
            return {}
        result = self._client.query(
            self._select_sql,
            parameters={"target": self._target, "topic": topic, "partitions": wanted},
        )
        return {int(p): Announced(int(f), int(last)) for p, f, last in result.result_rows}
