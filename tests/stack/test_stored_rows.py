"""The duplicate check of the writer tests, on the real engine: a merge of the
ReplacingMergeTree hides a duplicate; with background merges stopped it cannot."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from consumers.migrations import apply_pending
from deploy.stack.endpoints import StackEndpoints
from schemas.versions import current
from tests.stack.stored_rows import StoredRows, stop_background_merges, stored_rows

pytestmark = pytest.mark.stack

COLUMNS = [field["name"] for field in current().schema["fields"]]


@pytest.fixture
def table(stack_endpoints: StackEndpoints) -> Iterator[tuple[Client, str]]:
    """A migrated database of this test's own; its events table."""
    client = clickhouse_connect.get_client(dsn=stack_endpoints.clickhouse_url)
    database = f"stored_{uuid.uuid4().hex[:10]}"
    apply_pending(client, database=database)
    yield client, f"{database}.events"
    client.command(f"DROP DATABASE IF EXISTS {database}")


def _rows(count: int) -> list[list[Any]]:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    return [
        [
            uuid.uuid4(), "acme", at, "recipe.stopped", "recipes", ("user", "u-1", None, None),
            ("recipe", f"r-{n}", None), (None, None, None), (None, None, None, None),
            ("success", None), {}, [], None,
        ]
        for n in range(count)
    ]  # fmt: skip


def _store_twice(client: Client, table: str, rows: list[list[Any]]) -> None:
    """The same events in two inserts the engine does not deduplicate (two tokens), as a
    writer that doubled a batch would store them."""
    for token in ("first", "second"):
        client.insert(
            table, rows, column_names=COLUMNS, settings={"insert_deduplication_token": token}
        )


def test_a_merge_hides_a_duplicate_from_count(table: tuple[Client, str]) -> None:
    """Why the writer tests stop merges: without that, the doubled rows vanish."""
    client, name = table
    _store_twice(client, name, _rows(50))
    assert stored_rows(client, name) == StoredRows(rows=100, events=50)
    client.command(f"OPTIMIZE TABLE {name}")  # what a background merge does, on demand
    assert stored_rows(client, name) == StoredRows(rows=50, events=50)


def test_with_background_merges_stopped_a_duplicate_stays_visible(
    table: tuple[Client, str],
) -> None:
    client, name = table
    stop_background_merges(client, name)
    _store_twice(client, name, _rows(50))
    client.command(f"OPTIMIZE TABLE {name}")  # selects parts as a background merge would
    assert stored_rows(client, name) == StoredRows(rows=100, events=50)
