"""An HTTP proxy that lets a test cut a client off at an exact point: after the server did
the work, before the client heard so.

:class:`WithholdingProxy` listens on a free port of 127.0.0.1 and forwards every request to
``upstream`` (ClickHouse's HTTP interface, an S3 server), answering as the upstream answers.
Requests that ``matches`` selects are counted: the first ``let_through`` of them are answered
normally; the answers to later ones are *withheld*: the upstream has handled the request
(the insert landed, the object was written) but the client waits. That is the moment a
crash is hardest on exactly-once delivery, and a test can kill the client there for sure,
instead of killing it "some time after the first rows landed" and hoping it was not done
yet. :meth:`WithholdingProxy.wait_withheld` awaits it; :meth:`release` answers the held
requests and forwards everything from then on; :meth:`close` releases, stops the server
and joins its threads.

Hop-by-hop headers are dropped, request and response bodies are forwarded whole (chunked
request bodies are read and re-sent with a length), ``Host`` is kept as the client sent
it (S3 signatures cover it), and every answer closes its connection.
"""

from __future__ import annotations

import http.client
import subprocess
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.waiting import wait_until

HOLD_LIMIT_S = 120.0  # a withheld answer is given at the latest after this
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
)
_OWN = frozenset({"date", "server"})  # the proxy's own response sends these


@dataclass(frozen=True)
class Request:
    """What the client sent: ``target`` is the path with its query string."""

    method: str
    target: str
    body: bytes

    @property
    def query(self) -> str:
        """The URL's ``query`` parameter, decoded (ClickHouse's HTTP interface)."""
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.target).query)
        return params.get("query", [""])[0]


class WithholdingProxy:
    """See the module docstring. Use as a context manager."""

    def __init__(
        self, upstream: str, matches: Callable[[Request], bool], *, let_through: int
    ) -> None:
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self._upstream = (parts.hostname, parts.port)
        self._matches = matches
        self._let_through = let_through
        self._changed = threading.Condition()
        self._matched = 0
        self._withheld = 0
        self._released = False
        self._server = _Server(self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> WithholdingProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def answered(self) -> int:
        """Matching requests answered so far (withheld ones once released)."""
        with self._changed:
            return self._matched - self._withheld

    @property
    def withheld(self) -> int:
        """Matching requests the upstream handled whose answer is being held."""
        with self._changed:
            return self._withheld

    def wait_withheld(
        self, client: subprocess.Popen[Any] | None = None, timeout_s: float = 120.0
    ) -> None:
        """Until at least one answer is being withheld; fails as soon as ``client`` (the
        process whose requests these are) exits instead."""

        def exited() -> bool:
            return client is not None and client.poll() is not None

        wait_until(
            lambda: self.withheld > 0 or exited(),
            timeout_s,
            "a request whose answer is withheld",
        )
        assert not exited(), "the client exited before an answer was withheld"

    def release(self) -> None:
        """Give the withheld answers (their clients may be gone) and withhold no more."""
        with self._changed:
            self._released = True
            self._changed.notify_all()

    def rearm(self, let_through: int = 0) -> None:
        """Withhold again, from the matching request after the next ``let_through`` ones (a
        proxy that stays in front of a client across several faults)."""
        with self._changed:
            self._matched = self._withheld
            self._let_through = let_through
            self._released = False

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()  # joins the request threads
        self._thread.join()

    def forward(self, request: Request, headers: list[tuple[str, str]]) -> _Answer:
        connection = http.client.HTTPConnection(*self._upstream, timeout=HOLD_LIMIT_S)
        try:
            connection.request(request.method, request.target, request.body, dict(headers))
            response = connection.getresponse()
            body = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            return _Answer(response.status, kept, body)
        finally:
            connection.close()

    def hold_if_due(self, request: Request) -> None:
        """Count a matching request; hold its answer when it is past ``let_through``."""
        if not self._matches(request):
            return
        with self._changed:
            self._matched += 1
            if self._released or self._matched <= self._let_through:
                return
            self._withheld += 1
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._released, HOLD_LIMIT_S)
            self._withheld -= 1


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close joins the request threads
    block_on_close = True

    def __init__(self, proxy: WithholdingProxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed while waiting leaves a broken pipe: not a failure."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # answers ``Expect: 100-continue`` (boto3 sends it)
    timeout = 60.0

    def _relay(self) -> None:
        request = Request(self.command, self.path, self._body())
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        answer = self.server.proxy.forward(request, headers)
        self.server.proxy.hold_if_due(request)
        self.send_response(answer.status)
        for name, value in answer.headers:
            if name.lower() in _OWN:
                continue
            if name.lower() != "content-length" or self.command == "HEAD":
                self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)
        self.close_connection = True

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _relay

    def log_message(self, format: str, *args: Any) -> None:
        pass
