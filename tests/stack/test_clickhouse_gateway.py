"""The ClickHouse gateway (chdb behind the HTTP protocol) through clickhouse-connect and
plain HTTP, as the product and a developer's curl use it."""

from __future__ import annotations

import io
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import fastavro
import lz4.frame  # type: ignore[import-untyped]
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from deploy.stack import processes
from deploy.stack.clickhouse import clickhouse_ready, start_clickhouse, stop_clickhouse
from deploy.stack.endpoints import StackEndpoints

pytestmark = pytest.mark.stack


def _client(url: str, **options: Any) -> Client:
    parts = urllib.parse.urlsplit(url)
    return clickhouse_connect.get_client(host=parts.hostname, port=parts.port, **options)


@pytest.fixture
def url(stack_endpoints: StackEndpoints) -> str:
    return stack_endpoints.clickhouse_url


@pytest.fixture
def database(url: str) -> Iterator[str]:
    """A database of this test's own."""
    name = f"gw_{uuid.uuid4().hex[:12]}"
    admin = _client(url)
    admin.command(f"CREATE DATABASE {name}")
    yield name
    admin.command(f"DROP DATABASE IF EXISTS {name}")
    admin.close()


def _events_table(client: Client, table: str) -> None:
    client.command(
        f"""
        CREATE TABLE {table} (
            tenant LowCardinality(String),
            seq UInt64,
            action String,
            ok Bool,
            at DateTime64(3, 'UTC')
        ) ENGINE = MergeTree
        ORDER BY (tenant, seq)
        TTL toDateTime(at) + INTERVAL 365 DAY
        SETTINGS non_replicated_deduplication_window = 100
        """
    )


def _columns(rows: int, start: int = 0) -> list[list[Any]]:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    seqs = range(start, start + rows)
    return [
        [f"t{seq % 10}" for seq in seqs],
        list(seqs),
        [f"action-{seq % 7}" for seq in seqs],
        [seq % 3 != 0 for seq in seqs],
        [at + timedelta(milliseconds=seq) for seq in seqs],
    ]


COLUMNS = ["tenant", "seq", "action", "ok", "at"]


@pytest.mark.parametrize(
    "compress", [True, "zstd", "gzip", False], ids=["lz4-default", "zstd", "gzip", "plain"]
)
def test_native_insert_of_100k_rows_reads_back(
    url: str, database: str, compress: bool | str
) -> None:
    client = _client(url, compress=compress, database=database)
    _events_table(client, "events")
    started = time.perf_counter()
    summary = client.insert("events", _columns(100_000), column_names=COLUMNS, column_oriented=True)
    elapsed_s = time.perf_counter() - started
    assert summary.written_rows == 100_000
    counted = client.query("SELECT count(), sum(seq) FROM events WHERE tenant = 't3'")
    assert counted.result_rows == [(10_000, sum(range(3, 100_000, 10)))]
    rows = client.query(
        "SELECT tenant, seq, action, ok, at FROM events WHERE seq IN (0, 99999) ORDER BY seq"
    ).result_rows
    assert rows == [
        ("t0", 0, "action-0", False, datetime(2026, 11, 1)),
        ("t9", 99_999, "action-4", False, datetime(2026, 11, 1, 0, 1, 39, 999_000)),
    ]
    ddl = client.command("SHOW CREATE TABLE events")
    assert "TTL" in str(ddl)
    print(f"100k-row Native insert (compress={compress}): {elapsed_s:.3f} s")


def test_insert_with_a_repeated_dedup_token_lands_once(url: str, database: str) -> None:
    client = _client(url, database=database)
    _events_table(client, "events")
    for _ in range(3):
        client.insert(
            "events",
            _columns(500),
            column_names=COLUMNS,
            column_oriented=True,
            settings={"insert_deduplication_token": "audit.events-0-0-499"},
        )
    client.insert(
        "events",
        _columns(500, start=500),
        column_names=COLUMNS,
        column_oriented=True,
        settings={"insert_deduplication_token": "audit.events-0-500-999"},
    )
    assert client.command("SELECT count() FROM events") == 1000


def test_bad_sql_raises_database_error_with_engine_message(url: str, database: str) -> None:
    client = _client(url, database=database)
    with pytest.raises(DatabaseError, match="Syntax error") as syntax:
        client.command("SELEC 1")
    assert syntax.value.code == 62
    with pytest.raises(DatabaseError, match="UNKNOWN_TABLE") as unknown:
        client.query("SELECT * FROM no_such_table")
    assert unknown.value.code == 60
    client.command("CREATE TABLE numbers_only (n UInt32) ENGINE = Memory")
    with pytest.raises(DatabaseError, match="Cannot parse") as bad_data:
        client.raw_insert("numbers_only", insert_block=b"1\nnot a number\n", fmt="TSV")
    assert bad_data.value.code == 27
    assert client.command("SELECT count() FROM numbers_only") == 0


def test_concurrent_clients_both_land(url: str, database: str) -> None:
    _events_table(_client(url, database=database), "events")
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            client = _client(url, database=database)
            start.wait(timeout=30)
            for batch in range(5):
                client.insert(
                    "events",
                    _columns(4000, start=offset + batch * 4000),
                    column_names=COLUMNS,
                    column_oriented=True,
                )
        except Exception as ex:  # noqa: BLE001 - surfaced in the main thread
            errors.append(ex)

    threads = [threading.Thread(target=writer, args=(n * 1_000_000,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    client = _client(url, database=database)
    assert client.command("SELECT count() FROM events") == 40_000
    assert client.command("SELECT uniqExact(intDiv(seq, 1000000)) FROM events") == 2


def test_database_and_settings_apply_per_request(url: str, database: str) -> None:
    scoped = _client(url, database=database)
    plain = _client(url)
    assert scoped.command("SELECT currentDatabase()") == database
    assert plain.command("SELECT currentDatabase()") == "default"
    assert plain.command("SELECT getSetting('max_threads')", settings={"max_threads": 1}) == 1
    assert plain.command("SELECT getSetting('max_threads')") != 1
    parameters = {"tenant": "t'1", "n": 3}
    result = plain.query("SELECT {tenant:String}, {n:UInt8} * 2", parameters=parameters)
    assert result.result_rows == [("t'1", 6)]


def test_session_keeps_set_statements(url: str) -> None:
    client = _client(url)  # clickhouse-connect opens a session (session_id) per client
    client.command("SET max_threads = 1")
    assert client.command("SELECT getSetting('max_threads')") == 1
    assert _client(url).command("SELECT getSetting('max_threads')") != 1


AVRO_SCHEMA = {
    "type": "record",
    "name": "Event",
    "fields": [
        {"name": "tenant", "type": "string"},
        {"name": "seq", "type": "long"},
        {
            "name": "actor",
            "type": {
                "type": "record",
                "name": "Actor",
                "fields": [{"name": "id", "type": "string"}, {"name": "ip", "type": "string"}],
            },
        },
    ],
}


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_avro_insert_lands(url: str, database: str, compression: str | None) -> None:
    client = _client(url, database=database)
    client.command(
        "CREATE TABLE avro_events (tenant String, seq Int64, actor Tuple(id String, ip String))"
        " ENGINE = MergeTree ORDER BY seq"
    )
    records = [
        {"tenant": f"t{n % 3}", "seq": n, "actor": {"id": f"u{n}", "ip": "10.0.0.1"}}
        for n in range(1000)
    ]
    buffer = io.BytesIO()
    fastavro.writer(buffer, AVRO_SCHEMA, records)
    block = buffer.getvalue()
    if compression == "lz4":
        block = lz4.frame.compress(block)
    client.raw_insert("avro_events", insert_block=block, fmt="Avro", compression=compression)
    assert client.command("SELECT count() FROM avro_events") == 1000
    row = client.query("SELECT tenant, seq, actor.id FROM avro_events WHERE seq = 7")
    assert row.result_rows == [("t1", 7, "u7")]


def _http(
    url: str, *, query: str | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    target = url.rstrip("/") + "/"
    if query is not None:
        target += "?" + urllib.parse.urlencode({"query": query})
    request = urllib.request.Request(target, data=body, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_curl_style_requests(url: str, database: str) -> None:
    status, _, body = _http(url.rstrip("/") + "/ping")
    assert (status, body) == (200, b"Ok.\n")
    assert _http(url, body=b"SELECT 1 + 1")[::2] == (200, b"2\n")
    status, headers, body = _http(url, query="SELECT 'x' AS a FORMAT JSONEachRow")
    assert (status, body, headers["X-ClickHouse-Format"]) == (200, b'{"a":"x"}\n', "JSONEachRow")
    table = f"{database}.kv"
    assert (
        _http(url, body=f"CREATE TABLE {table} (k UInt8, v String) ENGINE = Memory".encode())[0]
        == 200
    )
    assert _http(url, query=f"INSERT INTO {table} FORMAT TSV", body=b"1\tone\n2\ttwo\n")[0] == 200
    assert _http(url, query=f"INSERT INTO {table} VALUES", body=b"(3, 'three')")[0] == 200
    assert _http(url, body=f"INSERT INTO {table} FORMAT CSV\n4,four\n".encode())[0] == 200
    status, _, body = _http(url, query=f"SELECT k, v FROM {table} ORDER BY k FORMAT CSV")
    assert body == b'1,"one"\n2,"two"\n3,"three"\n4,"four"\n'
    status, headers, body = _http(url, query=f"DROP TABLE {table}")  # GET is read-only
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "164")
    assert b"readonly" in body
    status, headers, body = _http(url, body=b"SELECT * FROM no_such_table")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "60")
    assert body.startswith(b"Code: 60. DB::Exception:")
    assert _http(url, body=b" ")[0] == 400


def test_data_survives_a_restart(tmp_path: Path) -> None:
    port = processes.choose_port(0)
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    start_clickhouse(data_dir=tmp_path, port=port)
    start_s = time.perf_counter() - started
    try:
        client = _client(url)
        client.command("CREATE DATABASE kept")
        _events_table(client, "kept.events")
        client.insert("kept.events", _columns(1000), column_names=COLUMNS, column_oriented=True)
        client.close()
        assert stop_clickhouse(tmp_path)
        assert not clickhouse_ready(url)
        start_clickhouse(data_dir=tmp_path, port=port)
        assert _client(url).command("SELECT count() FROM kept.events") == 1000
    finally:
        stop_clickhouse(tmp_path)
    log = (tmp_path / "logs" / "clickhouse.out").read_text()
    startup = re.findall(r"clickhouse-gateway: development tooling, not a ClickHouse server.*", log)
    assert len(startup) == 2
    assert f"serving {url}" in startup[0]
    print(f"gateway start: {start_s:.2f} s")
