"""Raw Avro datums framed into one object-container block and inserted ``FORMAT Avro``
into a table shaped like the audit event v2 schema, on the real engine: every row lands
as encoded; older writer versions need upcasting; dedup tokens hold; a corrupt datum
fails the whole block and writes nothing.

What these tests pin about ClickHouse's Avro input (26.9, through the gateway):
- columns map by NAME to top-level fields; Avro fields with no column are skipped;
- a table column the writer schema lacks fails the insert ("Field ingested_at not found
  in Avro schema", code 8) unless the INSERT column list is restricted to the writer's
  fields (then it gets its DEFAULT) or ``input_format_avro_allow_missing_fields = 1``;
- a nested record with fewer fields than its Tuple column fails (code 117), so v1
  datums (``request`` without ``session_id``) must be upcast before the insert.
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from consumers.avro_block import (
    DatumGroup,
    bundled_schema_json,
    frame_block,
    split_by_schema,
    top_level_fields,
    upcast,
)
from consumers.migrations import apply_pending
from deploy.stack.endpoints import StackEndpoints
from producers.generator import GeneratorConfig, generate
from schemas.validation import EventValidator
from schemas.versions import bundled
from schemas.wire import SingleObjectEncoder
from tests.stack.stored_rows import StoredRows, stop_background_merges, stored_rows

pytestmark = pytest.mark.stack

ROW_QUERY = """
SELECT event_id, tenant_id, toUnixTimestamp64Milli(occurred_at), action, category, actor,
       resource, workspace, request, outcome, details, changes, source
FROM {table}
"""


def _client(url: str, **options: Any) -> Client:
    parts = urllib.parse.urlsplit(url)
    return clickhouse_connect.get_client(host=parts.hostname, port=parts.port, **options)


@pytest.fixture
def client(stack_endpoints: StackEndpoints) -> Iterator[Client]:
    """A client whose database is this test's own, migrated: an empty ``events`` table that
    never merges in the background (a merge would collapse rows stored twice on purpose)."""
    name = f"avro_{uuid.uuid4().hex[:12]}"
    admin = _client(stack_endpoints.clickhouse_url)
    apply_pending(admin, database=name)  # the real table, as `auditlog migrate` makes it
    stop_background_merges(admin, f"{name}.events")
    scoped = _client(stack_endpoints.clickhouse_url, database=name)
    yield scoped
    admin.command(f"DROP DATABASE IF EXISTS {name}")
    admin.close()
    scoped.close()


def _datums(events: int, seed: int = 11) -> list[dict[str, Any]]:
    config = GeneratorConfig(
        events=events,
        tenants=20,
        seed=seed,
        start=datetime.now(UTC) - timedelta(days=2),
        diurnal=False,
    )
    validator = EventValidator()
    return [validator.validate(event).to_avro() for event in generate(config)]


def _insert(client: Client, group: DatumGroup, **settings: Any) -> int:
    """Frame ``group`` and insert it with the writer's fields as the column list."""
    schema = bundled_schema_json(group.frame)
    summary = client.raw_insert(
        "events",
        top_level_fields(schema),
        insert_block=frame_block(schema, group.datums),
        fmt="Avro",
        settings=settings or None,
    )
    return summary.written_rows


def _expected(datum: dict[str, Any]) -> tuple[Any, ...]:
    request = {"session_id": None} | datum["request"]
    return (
        uuid.UUID(datum["event_id"]),
        datum["tenant_id"],
        datum["occurred_at"],
        datum["action"],
        datum["category"],
        datum["actor"],
        datum["resource"],
        datum["workspace"],
        request,
        datum["outcome"],
        datum["details"],
        datum.get("changes", []),
        datum["source"],
    )


def _rows(client: Client, where: str = "") -> dict[uuid.UUID, tuple[Any, ...]]:
    rows = client.query(ROW_QUERY.format(table="events") + where).result_rows
    return {row[0]: tuple(row) for row in rows}


def test_10k_generated_events_land_field_for_field(client: Client) -> None:
    datums = _datums(10_000)
    assert any(d["changes"] for d in datums)
    assert any(d["outcome"]["reason"] for d in datums)
    assert any(d["occurred_at"] % 1000 for d in datums)
    encoder = SingleObjectEncoder()
    (group,) = split_by_schema([encoder.encode(d) for d in datums]).groups
    assert _insert(client, group) == 10_000
    assert client.query("SELECT count(), uniqExact(event_id) FROM events").result_rows == [
        (10_000, 10_000)
    ]
    stored = _rows(client)
    for datum in datums:
        assert stored[uuid.UUID(datum["event_id"])] == _expected(datum)
    nulls = client.query(
        "SELECT countIf(isNull(actor.email)), countIf(isNull(workspace.id)),"
        " countIf(length(changes) > 0), countIf(ingested_at > now64(3) - INTERVAL 1 HOUR)"
        " FROM events"
    ).result_rows[0]
    assert nulls == (
        sum(d["actor"]["email"] is None for d in datums),
        sum(d["workspace"]["id"] is None for d in datums),
        sum(bool(d["changes"]) for d in datums),
        10_000,
    )


def test_all_table_columns_need_the_restricted_column_list(client: Client) -> None:
    (group,) = split_by_schema([SingleObjectEncoder().encode(d) for d in _datums(10)]).groups
    schema = bundled_schema_json(group.frame)
    block = frame_block(schema, group.datums)
    with pytest.raises(DatabaseError, match="ingested_at not found in Avro schema") as missing:
        client.raw_insert("events", insert_block=block, fmt="Avro")
    assert missing.value.code == 8
    settings = {"input_format_avro_allow_missing_fields": 1}
    client.raw_insert("events", insert_block=block, fmt="Avro", settings=settings)
    assert client.command("SELECT count() FROM events") == 10


def test_v1_and_v2_values_land_as_two_blocks(client: Client) -> None:
    v1, v2 = bundled()[0], bundled()[1]
    old, new = SingleObjectEncoder(v1), SingleObjectEncoder(v2)
    datums = _datums(600, seed=5)
    values = [(old if n % 3 == 0 else new).encode(d) for n, d in enumerate(datums)]
    old_group, new_group = split_by_schema(values).groups  # first seen: value 0, v1
    assert _insert(client, new_group) == 400
    with pytest.raises(DatabaseError, match="number of leaves in record") as nested:
        _insert(client, old_group)  # v1's request has 3 fields, the Tuple 4
    assert nested.value.code == 117
    upcast_result = upcast(old_group)
    assert upcast_result.failed == []
    assert upcast_result.group is not None
    assert _insert(client, upcast_result.group) == 200
    stored = _rows(client)
    assert len(stored) == 600
    for n, datum in enumerate(datums):
        row = stored[uuid.UUID(datum["event_id"])]
        if n % 3 == 0:
            v1_datum = datum | {"changes": [], "request": datum["request"] | {"session_id": None}}
            assert row == _expected(v1_datum)
        else:
            assert row == _expected(datum)


def test_top_level_fields_the_writer_lacks_get_column_defaults(client: Client) -> None:
    client.command(
        "CREATE TABLE narrow (event_id UUID, source Nullable(String),"
        " changes Array(Tuple(field String, before Nullable(String), after Nullable(String))),"
        " note String DEFAULT 'none') ENGINE = MergeTree ORDER BY event_id"
    )
    datums = _datums(20)
    (group,) = split_by_schema([SingleObjectEncoder(bundled()[0]).encode(d) for d in datums]).groups
    schema = bundled_schema_json(group.frame)
    columns = [name for name in top_level_fields(schema) if name in ("event_id", "source")]
    client.raw_insert("narrow", columns, insert_block=frame_block(schema, group.datums), fmt="Avro")
    assert client.query(
        "SELECT count(), uniqExact(changes), any(note) FROM narrow"
    ).result_rows == [(20, 1, "none")]
    assert client.command("SELECT toString(any(changes)) FROM narrow") == "[]"


def test_repeated_dedup_token_stores_the_block_once(client: Client) -> None:
    (group,) = split_by_schema([SingleObjectEncoder().encode(d) for d in _datums(1000)]).groups
    for _ in range(3):
        _insert(client, group, insert_deduplication_token="audit.events-3-1000-1999")
    assert stored_rows(client, "events") == StoredRows(rows=1000, events=1000)
    _insert(client, group, insert_deduplication_token="audit.events-3-2000-2999")
    assert stored_rows(client, "events") == StoredRows(rows=2000, events=1000)


def _corrupt(values: Sequence[bytes], at: int, value: bytes) -> list[bytes]:
    return [*values[:at], value, *values[at + 1 :]]


@pytest.mark.parametrize(
    ("damage", "code", "message"),
    [
        ("truncated", 376, "Cannot parse UUID"),
        ("garbage", 1001, "Invalid Avro varint"),
        ("negative-length", 1001, "Cannot have negative length"),
    ],
)
def test_a_block_with_one_corrupt_datum_is_rejected_whole(
    client: Client, damage: str, code: int, message: str
) -> None:
    values = [SingleObjectEncoder().encode(d) for d in _datums(500)]
    victim = values[250]
    broken = {
        "truncated": victim[:40],
        "garbage": victim[:10] + b"\xff" * 30,
        "negative-length": victim[:10] + b"\x7f" + victim[11:],
    }[damage]
    (group,) = split_by_schema(_corrupt(values, 250, broken)).groups
    with pytest.raises(DatabaseError, match=message) as rejected:
        _insert(client, group)
    assert rejected.value.code == code
    assert client.command("SELECT count() FROM events") == 0
    print(f"{damage}: {type(rejected.value).__name__} {rejected.value}")
