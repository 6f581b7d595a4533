"""The ClickHouse HTTP protocol as the gateway speaks it: URL parameters, errors, headers.

Pure functions and values, no I/O. A URL parameter is either a protocol parameter (the
query, the database, the output format, ids, sessions, credentials, ``param_*`` query
parameters, HTTP-only switches) or a ClickHouse setting applied to that request only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from deploy.stack.chgateway.sql import quote_identifier, quote_literal

# Parameters of the HTTP interface itself; never sent to the engine as settings.
PROTOCOL_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "close_session",
        "compress",
        "decompress",
        "user",
        "password",
        "quota_key",
        "role",
        "buffer_size",
        "client_protocol_version",
        "stacktrace",
    }
)

# Settings that only steer ClickHouse's HTTP layer. The gateway always behaves as
# ``wait_end_of_query=1`` with uncompressed responses and no progress headers, so these
# are accepted and not forwarded.
HTTP_ONLY_SETTINGS = frozenset(
    {
        "enable_http_compression",
        "http_zlib_compression_level",
        "wait_end_of_query",
        "http_wait_end_of_query",
        "http_response_buffer_size",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "cancel_http_readonly_queries_on_client_close",
    }
)

QUERY_PARAM_PREFIX = "param_"
DEFAULT_FORMAT = "TabSeparated"
DEFAULT_SESSION_TIMEOUT_S = 60.0
MAX_SESSION_TIMEOUT_S = 3600.0

# ClickHouse error codes the gateway reports itself.
SYNTAX_ERROR = 62
STD_EXCEPTION = 1001
UNKNOWN_SETTING = 115
SESSION_NOT_FOUND = 372
SESSION_IS_LOCKED = 373
INVALID_SESSION_TIMEOUT = 374

_SETTING_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CODE_RE = re.compile(r"Code: (\d+)\.")
_TRUE = frozenset({"1", "true", "True"})


class ClientError(Exception):
    """The request itself is wrong (HTTP 400), or the gateway refuses it.

    ``code`` is the ClickHouse error code reported in ``X-ClickHouse-Exception-Code``
    when there is a fitting one.
    """

    def __init__(self, message: str, *, code: int | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class EngineError(Exception):
    """The engine rejected the query (HTTP 500). ``message`` starts ``Code: N.`` when the
    engine said so; ``code`` is N (or STD_EXCEPTION when the message has no code)."""

    def __init__(self, message: str) -> None:
        self.message = engine_message(message)
        self.code = exception_code(self.message) or STD_EXCEPTION
        super().__init__(self.message)


def exception_code(message: str) -> int | None:
    """The N of the first ``Code: N.`` in an engine message, or None."""
    match = _CODE_RE.search(message)
    return int(match.group(1)) if match else None


def engine_message(raw: str) -> str:
    """The ClickHouse exception in a chdb error text: from ``Code: N.`` on, when present
    (chdb prefixes streaming-insert errors with its own words)."""
    start = raw.find("Code: ")
    return (raw[start:] if start >= 0 else raw).strip()


def gateway_error(code: int, name: str, text: str) -> str:
    """A message in the engine's style for an error the gateway raises itself."""
    return f"Code: {code}. DB::Exception: {text} (clickhouse-gateway). ({name})"


@dataclass(frozen=True)
class RequestParams:
    """The URL parameters of one request, sorted into what they mean."""

    query: str | None = None
    database: str | None = None
    default_format: str = DEFAULT_FORMAT
    query_id: str | None = None
    session_id: str | None = None
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S
    session_check: bool = False
    settings: tuple[tuple[str, str], ...] = ()
    query_params: Mapping[str, str] = field(default_factory=dict)


def parse_params(pairs: Iterable[tuple[str, str]]) -> RequestParams:
    """Sort URL (or form) parameters; a repeated name keeps its last value.

    Raises :class:`ClientError` for a setting name that is not an identifier, a bad
    ``session_timeout``, and ``compress=1``/``decompress=1`` (ClickHouse's own block
    compression, which the gateway does not speak: use ``Content-Encoding`` instead).
    """
    values: dict[str, str] = {}
    for name, value in pairs:
        values[name] = value
    settings: dict[str, str] = {}
    query_params: dict[str, str] = {}
    for name, value in values.items():
        if name.startswith(QUERY_PARAM_PREFIX):
            query_params[name[len(QUERY_PARAM_PREFIX) :]] = value
        elif name in PROTOCOL_PARAMS or name in HTTP_ONLY_SETTINGS:
            continue
        elif _SETTING_NAME_RE.fullmatch(name):
            settings[name] = value
        else:
            raise ClientError(
                gateway_error(UNKNOWN_SETTING, "UNKNOWN_SETTING", f"Invalid setting name {name!r}"),
                code=UNKNOWN_SETTING,
            )
    for name in ("compress", "decompress"):
        if values.get(name, "0") in _TRUE:
            raise ClientError(
                f"clickhouse-gateway: {name}=1 (ClickHouse's native block compression) is not "
                "supported; compress HTTP bodies with Content-Encoding instead"
            )
    return RequestParams(
        query=values.get("query") or None,
        database=values.get("database") or None,
        default_format=values.get("default_format") or DEFAULT_FORMAT,
        query_id=values.get("query_id") or None,
        session_id=values.get("session_id") or None,
        session_timeout_s=_session_timeout(values.get("session_timeout")),
        session_check=values.get("session_check", "0") in _TRUE,
        settings=tuple(settings.items()),
        query_params=query_params,
    )


def _session_timeout(raw: str | None) -> float:
    if not raw:
        return DEFAULT_SESSION_TIMEOUT_S
    try:
        timeout_s = float(raw)
    except ValueError:
        timeout_s = -1.0
    if not 0 <= timeout_s <= MAX_SESSION_TIMEOUT_S:
        raise ClientError(
            gateway_error(
                INVALID_SESSION_TIMEOUT,
                "INVALID_SESSION_TIMEOUT",
                f"Invalid session timeout {raw!r}: between 0 and {MAX_SESSION_TIMEOUT_S:.0f} s",
            ),
            code=INVALID_SESSION_TIMEOUT,
        )
    return timeout_s


def setup_statements(
    params: RequestParams, *, read_only: bool, session: Sequence[str] = ()
) -> list[str]:
    """What runs on a request's fresh engine connection before its query: the session's
    recorded statements, ``USE database``, one ``SET`` with the URL settings, and
    ``readonly = 2`` for GET requests (as ClickHouse does, unless readonly=1 was asked)."""
    statements = list(session)
    if params.database:
        statements.append(f"USE {quote_identifier(params.database)}")
    settings = list(params.settings)
    if read_only and dict(settings).get("readonly") != "1":
        settings.append(("readonly", "2"))
    if settings:
        statements.append(
            "SET " + ", ".join(f"{name} = {quote_literal(value)}" for name, value in settings)
        )
    return statements


@dataclass(frozen=True)
class Stats:
    """What the engine reports about one query, for ``X-ClickHouse-Summary``."""

    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    elapsed_ns: int = 0


def summary_header(stats: Stats, result_bytes: int) -> str:
    """``X-ClickHouse-Summary``: JSON with string values, as ClickHouse sends it."""
    return json.dumps(
        {
            "read_rows": str(stats.read_rows),
            "read_bytes": str(stats.read_bytes),
            "written_rows": str(stats.written_rows),
            "written_bytes": str(stats.written_bytes),
            "result_bytes": str(result_bytes),
            "elapsed_ns": str(stats.elapsed_ns),
        },
        separators=(",", ":"),
    )


_CONTENT_TYPES = (
    ("TabSeparated", "text/tab-separated-values; charset=UTF-8"),
    ("TSV", "text/tab-separated-values; charset=UTF-8"),
    ("CSV", "text/csv; charset=UTF-8"),
    ("JSON", "application/json; charset=UTF-8"),
    ("Pretty", "text/plain; charset=UTF-8"),
    ("Values", "text/plain; charset=UTF-8"),
    ("Vertical", "text/plain; charset=UTF-8"),
    ("Markdown", "text/markdown; charset=UTF-8"),
    ("XML", "application/xml; charset=UTF-8"),
)


def content_type(fmt: str) -> str:
    """The ``Content-Type`` for a response in output format ``fmt``."""
    for prefix, value in _CONTENT_TYPES:
        if fmt.startswith(prefix):
            return value
    return "application/octet-stream"
