"""The ClickHouse gateway's request handling without an engine: SQL scanning, URL
parameters, bodies and encodings, sessions, and the routing of requests to engine calls."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import lz4.frame  # type: ignore[import-untyped]
import pytest
from backports import zstd
from urllib3 import encode_multipart_formdata

from deploy.stack.chgateway import bodies, protocol, sql
from deploy.stack.chgateway.engine import Outcome
from deploy.stack.chgateway.protocol import ClientError, EngineError, RequestParams, Stats
from deploy.stack.chgateway.service import Gateway, HttpRequest, Response
from deploy.stack.chgateway.sessions import Sessions

# --- SQL scanning -------------------------------------------------------------------------


def test_split_insert_finds_head_format_and_data() -> None:
    buf = b"INSERT INTO db.t (a, b) FORMAT Native\n\x02\x00 binary"
    split = sql.split_insert(buf, at_eof=False)
    assert split == sql.InsertHead("INSERT INTO db.t (a, b)", "Native", buf.index(b"\x02"))


def test_split_insert_keeps_data_that_starts_with_blanks() -> None:
    buf = b"INSERT INTO t FORMAT RowBinary\n  \t\x00"
    split = sql.split_insert(buf, at_eof=True)
    assert isinstance(split, sql.InsertHead)
    assert buf[split.data_offset :] == b"  \t\x00"


@pytest.mark.parametrize(
    ("buf", "statement", "fmt", "data"),
    [
        (
            b"INSERT INTO t SETTINGS insert_deduplication_token='x FORMAT y' FORMAT TSV\n1\n",
            "INSERT INTO t SETTINGS insert_deduplication_token='x FORMAT y'",
            "TSV",
            b"1\n",
        ),
        (b"INSERT INTO t (format, b) FORMAT CSV\n1,2", "INSERT INTO t (format, b)", "CSV", b"1,2"),
        (
            b'/* FORMAT X */ INSERT INTO t -- FORMAT Y\n FORMAT JSONEachRow {"a":1}',
            "/* FORMAT X */ INSERT INTO t -- FORMAT Y",
            "JSONEachRow",
            b'{"a":1}',
        ),
        (b"insert into t format CSV\r\n1,2", "insert into t", "CSV", b"1,2"),
        (b"INSERT INTO `a``b` FORMAT Avro\n\n", "INSERT INTO `a``b`", "Avro", b"\n"),
    ],
)
def test_split_insert_skips_literals_comments_and_columns(
    buf: bytes, statement: str, fmt: str, data: bytes
) -> None:
    split = sql.split_insert(buf, at_eof=True)
    assert isinstance(split, sql.InsertHead)
    assert (split.statement, split.fmt, buf[split.data_offset :]) == (statement, fmt, data)


@pytest.mark.parametrize(
    "buf",
    [
        b"INSERT INTO t VALUES (1, 'FORMAT CSV')",
        b"INSERT INTO t SELECT * FROM s FORMAT CSV",
        b"SELECT 1 FORMAT CSV",
        b"CREATE TABLE t (a UInt8) ENGINE = Memory",
    ],
)
def test_split_insert_leaves_other_statements_to_the_engine(buf: bytes) -> None:
    assert sql.split_insert(buf, at_eof=False) is None


@pytest.mark.parametrize(
    "buf",
    [
        b"",
        b"  INS",
        b"INSERT INTO t FORMAT Nat",
        b"INSERT INTO t SETTINGS insert_deduplication_token='unterminated",
        b"INSERT INTO t /* comment",
        b"INSERT INTO t FORMAT CSV\r",
        b"INSERT INTO t FORMAT CSV  ",
    ],
)
def test_split_insert_waits_for_more_bytes(buf: bytes) -> None:
    assert sql.split_insert(buf, at_eof=False) is sql.NEED_MORE


def test_split_insert_at_end_of_stream_decides() -> None:
    assert sql.split_insert(b"INSERT INTO t FORMAT CSV", at_eof=True) == sql.InsertHead(
        "INSERT INTO t", "CSV", 24
    )
    assert sql.split_insert(b"INSERT INTO t", at_eof=True) is None


@pytest.mark.parametrize(
    ("query", "fmt"),
    [
        ("SELECT 1 FORMAT JSON", "JSON"),
        ("SELECT 1 FORMAT Native;", "Native"),
        ("SELECT 1 FORMAT JSONEachRow SETTINGS max_threads = 1", "JSONEachRow"),
        ("SELECT format FROM t", None),
        ("SELECT 'FORMAT CSV'", None),
        ("SELECT * FROM (SELECT 1 FORMAT TSV)", None),
        ("SELECT 1 -- FORMAT CSV", None),
    ],
)
def test_output_format(query: str, fmt: str | None) -> None:
    assert sql.output_format(query) == fmt


@pytest.mark.parametrize(
    ("query", "result"),
    [
        ("SELECT 1", True),
        ("  with x AS (SELECT 1) SELECT * FROM x", True),
        ("(SELECT 1)", True),
        ("SHOW TABLES", True),
        ("DESCRIBE TABLE t", True),
        ("CREATE TABLE t (a UInt8) ENGINE = Memory", False),
        ("INSERT INTO t VALUES (1)", False),
        ("SET max_threads = 1", False),
    ],
)
def test_produces_result(query: str, result: bool) -> None:
    assert sql.produces_result(query) is result


@pytest.mark.parametrize(
    ("query", "several"),
    [
        ("SELECT 1", False),
        ("SELECT 1;", False),
        ("SELECT 1; -- done", False),
        ("SELECT ';' ; ", False),
        ("SELECT 1; SELECT 2", True),
    ],
)
def test_has_several_statements(query: str, several: bool) -> None:
    assert sql.has_several_statements(query) is several


def test_quoting() -> None:
    assert sql.quote_identifier("a`b") == "`a\\`b`"
    assert sql.quote_literal("it's a \\") == "'it\\'s a \\\\'"


# --- URL parameters, errors, headers -----------------------------------------------------


def test_parse_params_sorts_settings_from_protocol_parameters() -> None:
    params = protocol.parse_params(
        [
            ("query", "SELECT {x:UInt8}"),
            ("database", "audit"),
            ("default_format", "JSONEachRow"),
            ("query_id", "q1"),
            ("session_id", "s1"),
            ("session_timeout", "5"),
            ("user", "default"),
            ("password", "secret"),
            ("wait_end_of_query", "1"),
            ("enable_http_compression", "1"),
            ("client_protocol_version", "54405"),
            ("param_x", "7"),
            ("max_threads", "1"),
            ("insert_deduplication_token", "first"),
            ("insert_deduplication_token", "last"),
        ]
    )
    assert params == RequestParams(
        query="SELECT {x:UInt8}",
        database="audit",
        default_format="JSONEachRow",
        query_id="q1",
        session_id="s1",
        session_timeout_s=5.0,
        settings=(("max_threads", "1"), ("insert_deduplication_token", "last")),
        query_params={"x": "7"},
    )


def test_parse_params_defaults() -> None:
    params = protocol.parse_params([])
    assert params.default_format == "TabSeparated"
    assert params.query is None
    assert params.settings == ()


@pytest.mark.parametrize(
    ("pairs", "code"),
    [
        ([("max threads", "1")], protocol.UNKNOWN_SETTING),
        ([("x;DROP", "1")], protocol.UNKNOWN_SETTING),
        ([("compress", "1")], None),
        ([("decompress", "true")], None),
        ([("session_timeout", "forever")], protocol.INVALID_SESSION_TIMEOUT),
        ([("session_timeout", "-1")], protocol.INVALID_SESSION_TIMEOUT),
    ],
)
def test_parse_params_rejects(pairs: list[tuple[str, str]], code: int | None) -> None:
    with pytest.raises(ClientError) as raised:
        protocol.parse_params(pairs)
    assert raised.value.code == code
    assert raised.value.status == 400


def test_setup_statements() -> None:
    params = protocol.parse_params([("database", "a`b"), ("max_threads", "1"), ("x_y", "it's")])
    assert protocol.setup_statements(params, read_only=False, session=["SET a = 1"]) == [
        "SET a = 1",
        "USE `a\\`b`",
        "SET max_threads = '1', x_y = 'it\\'s'",
    ]
    assert protocol.setup_statements(protocol.parse_params([]), read_only=True) == [
        "SET readonly = '2'"
    ]
    strict = protocol.parse_params([("readonly", "1")])
    assert protocol.setup_statements(strict, read_only=True) == ["SET readonly = '1'"]


@pytest.mark.parametrize(
    ("raw", "message", "code"),
    [
        ("Code: 62. DB::Exception: Syntax error", "Code: 62. DB::Exception: Syntax error", 62),
        (
            "Streaming insert finish failed: Code: 27. DB::Exception: Cannot parse input\n",
            "Code: 27. DB::Exception: Cannot parse input",
            27,
        ),
        ("Cannot run a query while an insert is active", None, protocol.STD_EXCEPTION),
    ],
)
def test_engine_error_message_and_code(raw: str, message: str | None, code: int) -> None:
    error = EngineError(raw)
    assert error.message == (message or raw)
    assert error.code == code
    assert protocol.exception_code(raw) == (code if message else None)


def test_summary_header_has_string_values() -> None:
    header = protocol.summary_header(Stats(1, 2, 3, 4, 5), 6)
    assert json.loads(header) == {
        "read_rows": "1",
        "read_bytes": "2",
        "written_rows": "3",
        "written_bytes": "4",
        "result_bytes": "6",
        "elapsed_ns": "5",
    }


def test_content_type() -> None:
    assert protocol.content_type("TabSeparatedWithNames").startswith("text/tab-separated")
    assert protocol.content_type("JSONEachRow").startswith("application/json")
    assert protocol.content_type("Native") == "application/octet-stream"


# --- bodies and encodings ----------------------------------------------------------------


def test_chunked_body_stops_at_its_end() -> None:
    stream = io.BytesIO(b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT")
    assert bodies.read_all(bodies.ChunkedBody(stream)) == b"Wikipedia"
    assert stream.read() == b"NEXT"


def test_chunked_body_malformed() -> None:
    with pytest.raises(ClientError):
        bodies.read_all(bodies.ChunkedBody(io.BytesIO(b"zz\r\nWiki\r\n")))


def test_length_body() -> None:
    stream = io.BytesIO(b"abcdefNEXT")
    assert bodies.read_all(bodies.LengthBody(stream, 6)) == b"abcdef"
    assert stream.read() == b"NEXT"
    with pytest.raises(ClientError):
        bodies.read_all(bodies.LengthBody(io.BytesIO(b"abc"), 6))


def _lz4_blocks(*blocks: bytes) -> bytes:
    """As clickhouse-connect sends an insert: one LZ4 frame per block."""
    out = b""
    for block in blocks:
        compressor = lz4.frame.LZ4FrameCompressor()
        out += compressor.begin(len(block)) + compressor.compress(block) + compressor.flush()
    return bytes(out)


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [
        ("lz4", _lz4_blocks(b"first block,", b"second block")),
        ("zstd", zstd.compress(b"first block,") + zstd.compress(b"second block")),
        ("gzip", gzip.compress(b"first block,") + gzip.compress(b"second block")),
        ("deflate", zlib.compress(b"first block,second block")),
        ("identity", b"first block,second block"),
    ],
)
def test_decode_concatenated_frames(encoding: str, encoded: bytes) -> None:
    for size in (1, 7, 1 << 20):
        source = bodies.decode(bodies.BytesBody(encoded), encoding)
        assert b"".join(bodies.chunks(source, size)) == b"first block,second block"


def test_decode_truncated_or_unknown() -> None:
    with pytest.raises(ClientError, match="truncated"):
        bodies.read_all(bodies.decode(bodies.BytesBody(_lz4_blocks(b"x" * 100)[:-6]), "lz4"))
    with pytest.raises(ClientError, match="cannot decode"):
        bodies.read_all(bodies.decode(bodies.BytesBody(b"not gzip at all"), "gzip"))
    with pytest.raises(ClientError, match="unsupported Content-Encoding"):
        bodies.decode(bodies.BytesBody(b""), "br")


def test_form_fields() -> None:
    body, content_type = encode_multipart_formdata({"query": "SELECT {x:String}", "param_x": "é"})
    assert bodies.form_fields(content_type, body) == [
        ("query", "SELECT {x:String}"),
        ("param_x", "é"),
    ]
    body, content_type = encode_multipart_formdata({"t": ("t.tsv", b"1\n", "text/plain")})
    with pytest.raises(ClientError, match="external data"):
        bodies.form_fields(content_type, body)


# --- sessions ----------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_sessions_keep_statements_until_they_expire() -> None:
    clock = _Clock()
    sessions = Sessions(clock=clock)
    with sessions.enter("s", timeout_s=10, check=False) as session:
        session.record("SET max_threads = 1")
    with sessions.enter("s", timeout_s=10, check=True) as session:
        assert session.statements == ["SET max_threads = 1"]
    clock.now += 11
    assert len(sessions) == 0
    with pytest.raises(ClientError) as raised:
        sessions.enter("s", timeout_s=10, check=True).__enter__()
    assert raised.value.code == protocol.SESSION_NOT_FOUND


def test_sessions_refuse_concurrent_use() -> None:
    sessions = Sessions()
    with sessions.enter("s", timeout_s=10, check=False):
        with pytest.raises(ClientError) as raised:
            sessions.enter("s", timeout_s=10, check=False).__enter__()
        assert raised.value.code == protocol.SESSION_IS_LOCKED
        with sessions.enter("other", timeout_s=10, check=False):
            pass


# --- routing requests to engine calls ----------------------------------------------------


@dataclass
class _Call:
    kind: str
    text: bytes | str
    fmt: str
    setup: list[str]
    params: dict[str, str] = field(default_factory=dict)


class FakeEngine:
    """Records engine calls; answers queries with ``answer`` or raises ``error``."""

    timezone = "UTC"

    def __init__(self, answer: bytes = b"", error: EngineError | None = None) -> None:
        self.calls: list[_Call] = []
        self.answer = answer
        self.error = error

    def query(
        self,
        sql: str | bytes,
        *,
        fmt: str,
        setup: Sequence[str] = (),
        params: Mapping[str, str] | None = None,
    ) -> Outcome:
        self.calls.append(_Call("query", sql, fmt, list(setup), dict(params or {})))
        if self.error is not None:
            raise self.error
        return Outcome(self.answer, Stats(read_rows=1, elapsed_ns=10))

    def insert(
        self, statement: str, fmt: str, data: Iterable[bytes], *, setup: Sequence[str] = ()
    ) -> Outcome:
        received = b"".join(data)
        self.calls.append(_Call("insert", statement, fmt, list(setup)))
        self.calls[-1].params["data"] = received.decode("latin-1")
        return Outcome(b"", Stats(written_rows=2, written_bytes=len(received)))


def _request(
    engine: FakeEngine,
    *,
    method: str = "POST",
    query_string: str = "",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    gateway: Gateway | None = None,
) -> Response:
    gateway = gateway or Gateway(engine)
    return gateway.handle(
        HttpRequest(method, "/", query_string, headers or {}, bodies.BytesBody(body))
    )


def test_ping_and_root() -> None:
    engine = FakeEngine()
    assert _request(engine, method="GET").body == b"Ok.\n"
    ping = Gateway(engine).handle(HttpRequest("GET", "/ping", "", {}, bodies.EmptyBody()))
    assert (ping.status, ping.body) == (200, b"Ok.\n")
    assert _request(engine, method="GET", query_string="max_threads=1").status == 400
    assert engine.calls == []


def test_insert_with_format_streams_the_data() -> None:
    engine = FakeEngine()
    data = b"\x01\x02\n binary"
    response = _request(
        engine,
        query_string="database=audit&insert_deduplication_token=t1",
        body=b"INSERT INTO events FORMAT RowBinary\n" + data,
    )
    assert response.status == 200
    [call] = engine.calls
    assert (call.kind, call.text, call.fmt) == ("insert", "INSERT INTO events", "RowBinary")
    assert call.params["data"] == data.decode("latin-1")
    assert call.setup == ["USE `audit`", "SET insert_deduplication_token = 't1'"]
    headers = dict(response.headers)
    assert "X-ClickHouse-Format" not in headers
    assert json.loads(headers["X-ClickHouse-Summary"])["written_rows"] == "2"


def test_insert_head_in_url_and_compressed_data_in_body() -> None:
    engine = FakeEngine()
    response = _request(
        engine,
        query_string="query=INSERT+INTO+t+FORMAT+Avro",
        body=_lz4_blocks(b"avro", b" bytes"),
        headers={"content-encoding": "lz4"},
    )
    assert response.status == 200
    [call] = engine.calls
    assert (call.text, call.fmt, call.params["data"]) == ("INSERT INTO t", "Avro", "avro bytes")


def test_values_insert_and_query_parameters_run_whole() -> None:
    engine = FakeEngine()
    _request(engine, query_string="query=INSERT+INTO+t+VALUES", body=b"(1),(2)")
    _request(engine, query_string="param_n=3", body=b"INSERT INTO t FORMAT CSV\n{n:UInt8}\n")
    assert [(c.kind, c.text, c.params) for c in engine.calls] == [
        ("query", b"INSERT INTO t VALUES\n(1),(2)", {}),
        ("query", b"INSERT INTO t FORMAT CSV\n{n:UInt8}\n", {"n": "3"}),
    ]


def test_select_reports_its_format_and_get_is_read_only() -> None:
    engine = FakeEngine(answer=b"1\n")
    response = _request(engine, method="GET", query_string="query=SELECT+1&default_format=CSV")
    assert (response.status, response.body) == (200, b"1\n")
    headers = dict(response.headers)
    assert headers["X-ClickHouse-Format"] == "CSV"
    assert headers["X-ClickHouse-Timezone"] == "UTC"
    assert headers["X-ClickHouse-Query-Id"]
    assert engine.calls[0].setup == ["SET readonly = '2'"]
    assert engine.calls[0].fmt == "CSV"
    explicit = _request(engine, body=b"SELECT 1 FORMAT JSONEachRow", query_string="query_id=q7")
    assert dict(explicit.headers)["X-ClickHouse-Format"] == "JSONEachRow"
    assert dict(explicit.headers)["X-ClickHouse-Query-Id"] == "q7"
    ddl = _request(engine, body=b"CREATE TABLE t (a UInt8) ENGINE = Memory")
    assert "X-ClickHouse-Format" not in dict(ddl.headers)


def test_engine_error_is_a_500_with_its_code() -> None:
    engine = FakeEngine(error=EngineError("Code: 60. DB::Exception: Unknown table t"))
    response = _request(engine, body=b"SELECT * FROM t")
    assert response.status == 500
    assert dict(response.headers)["X-ClickHouse-Exception-Code"] == "60"
    assert response.body == b"Code: 60. DB::Exception: Unknown table t\n"


@pytest.mark.parametrize(
    ("query_string", "body", "code"),
    [
        ("", b"", protocol.SYNTAX_ERROR),
        ("", b"  -- nothing\n", protocol.SYNTAX_ERROR),
        ("", b"SELECT 1; DROP TABLE t", protocol.SYNTAX_ERROR),
        ("compress=1", b"SELECT 1", None),
    ],
)
def test_bad_requests_are_400(query_string: str, body: bytes, code: int | None) -> None:
    engine = FakeEngine()
    response = _request(engine, query_string=query_string, body=body)
    assert response.status == 400
    assert dict(response.headers).get("X-ClickHouse-Exception-Code") == (
        str(code) if code else None
    )
    assert engine.calls == []


def test_session_replays_set_and_use_but_not_url_settings() -> None:
    engine = FakeEngine()
    gateway = Gateway(engine)
    _request(engine, gateway=gateway, query_string="session_id=s", body=b"SET max_threads = 1")
    _request(engine, gateway=gateway, query_string="session_id=s", body=b"USE audit")
    _request(engine, gateway=gateway, query_string="session_id=s&x=1", body=b"SELECT 1")
    _request(engine, gateway=gateway, query_string="session_id=s", body=b"SELECT 2")
    _request(engine, gateway=gateway, body=b"SELECT 3")
    assert [c.setup for c in engine.calls[2:]] == [
        ["SET max_threads = 1", "USE audit", "SET x = '1'"],
        ["SET max_threads = 1", "USE audit"],
        [],
    ]


def test_form_encoded_query() -> None:
    engine = FakeEngine()
    body, content_type = encode_multipart_formdata({"query": "SELECT {x:String}", "param_x": "y"})
    response = _request(engine, body=body, headers={"content-type": content_type})
    assert response.status == 200
    assert (engine.calls[0].text, engine.calls[0].params) == (b"SELECT {x:String}", {"x": "y"})
