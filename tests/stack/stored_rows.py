"""Counting what an events table stores, so that no background merge can change the answer.

``events`` is a ReplacingMergeTree: a merge, at a time of the engine's choosing, collapses
rows with the same sorting key (tenant, occurred_at, event_id) into one. A writer that
stored an event twice would pass a "no duplicate" check once a merge had run, and a test
that stores a block twice on purpose would see its count drop. So:

- :func:`stop_background_merges` makes a table under test never merge on its own: the
  largest merge allowed is one byte. Unlike ``SYSTEM STOP MERGES`` it is a table setting,
  so it holds across a restart of the engine; ``OPTIMIZE ... FINAL`` still merges when a
  test asks for it.
- :func:`stored_rows` counts rows (``count()``) and distinct events (``uniqExact``) in one
  read: ``rows == events`` is the no-duplicate check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class ClickHouseClient(Protocol):
    def command(self, cmd: str, *args: Any, **kwargs: Any) -> Any: ...
    def query(self, query: str | None = None, *args: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class StoredRows:
    rows: int  # every stored row, duplicates included
    events: int  # distinct event ids


def stop_background_merges(client: ClickHouseClient, table: str) -> None:
    """From now on ``table`` keeps every part an insert made until a test merges it."""
    client.command(
        f"ALTER TABLE {table} MODIFY SETTING "
        "max_bytes_to_merge_at_max_space_in_pool = 1, max_bytes_to_merge_at_min_space_in_pool = 1"
    )


def stored_rows(client: ClickHouseClient, table: str) -> StoredRows:
    [(rows, events)] = client.query(f"SELECT count(), uniqExact(event_id) FROM {table}").result_rows
    return StoredRows(int(rows), int(events))
