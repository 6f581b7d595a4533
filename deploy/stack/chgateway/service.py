"""One HTTP request in, one engine call, one response out.

The query text is the ``query`` URL parameter, the POST body, or both (then the body
follows the parameter after a line break, as in ClickHouse: for an insert it is the data).
An ``INSERT ... FORMAT X`` head followed by data is streamed into the engine piece by
piece; any other statement (including ``INSERT ... VALUES`` with inline data) is read whole
and run as one query. Responses are buffered: the gateway behaves as
``wait_end_of_query=1`` always.

:meth:`Gateway.handle` never raises for a bad request or an engine error: those become 400
and 500 responses carrying ``X-ClickHouse-Exception-Code``. It may leave part of the
request body unread; the caller drains it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Protocol
from urllib.parse import parse_qsl

from deploy.stack.chgateway import bodies, protocol, sql
from deploy.stack.chgateway.engine import Outcome
from deploy.stack.chgateway.protocol import ClientError, EngineError, RequestParams
from deploy.stack.chgateway.sessions import Session, Sessions

MAX_HEAD_BYTES = 16 << 20  # an INSERT head longer than this is run as a plain query
DISPLAY_NAME = "clickhouse-gateway"
_OK = b"Ok.\n"


class QueryEngine(Protocol):
    """What the gateway needs of an engine (:class:`~deploy.stack.chgateway.engine.Engine`)."""

    @property
    def timezone(self) -> str: ...

    def query(
        self,
        sql: str | bytes,
        *,
        fmt: str,
        setup: Sequence[str] = (),
        params: Mapping[str, str] | None = None,
    ) -> Outcome: ...

    def insert(
        self, statement: str, fmt: str, data: Iterable[bytes], *, setup: Sequence[str] = ()
    ) -> Outcome: ...


@dataclass(frozen=True)
class HttpRequest:
    """The parts of an HTTP request the gateway reads. ``headers`` keys are lower-case;
    ``body`` is the framed, still encoded body."""

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bodies.ByteSource


@dataclass(frozen=True)
class Response:
    """A complete response; ``body`` is sent with a Content-Length."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class _Answer:
    outcome: Outcome
    fmt: str | None  # the output format, for statements that answer with a result set


class Gateway:
    """Serves requests from one engine."""

    def __init__(self, engine: QueryEngine, sessions: Sessions | None = None) -> None:
        self._engine = engine
        self._sessions = sessions or Sessions()

    def handle(self, request: HttpRequest) -> Response:
        """Answer ``request``: readiness, a query's result, or an error response."""
        if request.path.rstrip("/").endswith("/ping") or (
            request.method == "GET" and not request.query_string
        ):
            return Response(200, (("Content-Type", "text/plain; charset=UTF-8"),), _OK)
        pairs = parse_qsl(request.query_string, keep_blank_values=True)
        query_id = dict(pairs).get("query_id") or str(uuid.uuid4())
        common = (
            ("X-ClickHouse-Query-Id", query_id),
            ("X-ClickHouse-Server-Display-Name", DISPLAY_NAME),
            ("X-ClickHouse-Timezone", self._engine.timezone),
        )
        try:
            answer = self._answer(request, pairs)
        except ClientError as ex:
            return _error(ex.status, ex.code, ex.message, common)
        except EngineError as ex:
            return _error(500, ex.code, ex.message, common)
        body = answer.outcome.body
        headers = [
            *common,
            ("Content-Type", protocol.content_type(answer.fmt or "")),
            ("X-ClickHouse-Summary", protocol.summary_header(answer.outcome.stats, len(body))),
        ]
        if answer.fmt:
            headers.append(("X-ClickHouse-Format", answer.fmt))
        return Response(200, tuple(headers), body)

    def _answer(self, request: HttpRequest, pairs: list[tuple[str, str]]) -> _Answer:
        body = bodies.decode(request.body, request.headers.get("content-encoding"))
        if request.method != "POST":
            body = bodies.EmptyBody()
        content_type = request.headers.get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            pairs = [*pairs, *bodies.form_fields(content_type, bodies.read_all(body))]
            body = bodies.EmptyBody()
        params = protocol.parse_params(pairs)
        with self._session(params) as session:
            setup = protocol.setup_statements(
                params,
                read_only=request.method != "POST",
                session=session.statements if session else (),
            )
            has_body = not isinstance(body, bodies.EmptyBody)
            answer, statement = self._run(params, body, setup, has_body=has_body)
            if session is not None and statement is not None:
                session.record(statement)
            return answer

    @contextlib.contextmanager
    def _session(self, params: RequestParams) -> Iterator[Session | None]:
        if params.session_id is None:
            yield None
            return
        with self._sessions.enter(
            params.session_id, timeout_s=params.session_timeout_s, check=params.session_check
        ) as session:
            yield session

    def _run(
        self,
        params: RequestParams,
        body: bodies.ByteSource,
        setup: Sequence[str],
        *,
        has_body: bool,
    ) -> tuple[_Answer, str | None]:
        """Run the request's statement. Also returns the statement text if it is a
        ``SET``/``USE`` statement that a session must remember."""
        head = bytearray(params.query.encode() if params.query else b"")
        if head and has_body:
            head += b"\n"  # the body continues the query on the next line
        at_eof = False
        while True:
            try:
                split = sql.split_insert(bytes(head), at_eof=at_eof)
            except UnicodeDecodeError:
                raise ClientError("clickhouse-gateway: the query is not valid UTF-8") from None
            if split is not sql.NEED_MORE or at_eof or len(head) > MAX_HEAD_BYTES:
                break
            piece = body.read(bodies.READ_SIZE)
            at_eof = not piece
            head += piece
        if isinstance(split, sql.InsertHead):
            return self._insert(params, split, bytes(head), body, setup), None
        return self._query(params, bytes(head) + bodies.read_all(body), setup)

    def _insert(
        self,
        params: RequestParams,
        split: sql.InsertHead,
        head: bytes,
        body: bodies.ByteSource,
        setup: Sequence[str],
    ) -> _Answer:
        first = head[split.data_offset :]
        if params.query_params:  # send_insert takes no query parameters: run it whole
            text = f"{split.statement} FORMAT {split.fmt}\n".encode() + first
            outcome = self._engine.query(
                text + bodies.read_all(body),
                fmt=params.default_format,
                setup=setup,
                params=params.query_params,
            )
            return _Answer(outcome, None)
        data = chain([first] if first else [], bodies.chunks(body))
        return _Answer(self._engine.insert(split.statement, split.fmt, data, setup=setup), None)

    def _query(
        self, params: RequestParams, text: bytes, setup: Sequence[str]
    ) -> tuple[_Answer, str | None]:
        query = text.decode("utf-8", errors="replace")
        keyword = sql.first_keyword(query)
        if keyword is None:
            raise ClientError(
                protocol.gateway_error(protocol.SYNTAX_ERROR, "SYNTAX_ERROR", "Empty query"),
                code=protocol.SYNTAX_ERROR,
            )
        fmt: str | None = None
        if keyword != "INSERT":
            if sql.has_several_statements(query):
                raise ClientError(
                    protocol.gateway_error(
                        protocol.SYNTAX_ERROR,
                        "SYNTAX_ERROR",
                        "Multi-statements are not allowed",
                    ),
                    code=protocol.SYNTAX_ERROR,
                )
            fmt = sql.output_format(query)
            if fmt is None and sql.produces_result(query):
                fmt = params.default_format
        outcome = self._engine.query(
            text, fmt=params.default_format, setup=setup, params=params.query_params
        )
        remembered = query.strip() if keyword in ("SET", "USE") else None
        return _Answer(outcome, fmt), remembered


def _error(
    status: int, code: int | None, message: str, common: tuple[tuple[str, str], ...]
) -> Response:
    headers = [*common, ("Content-Type", "text/plain; charset=UTF-8")]
    if code is not None:
        headers.append(("X-ClickHouse-Exception-Code", str(code)))
    return Response(status, tuple(headers), message.encode() + b"\n")
