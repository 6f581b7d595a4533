"""A local HTTP(S) receiver for sender tests: records what arrives, answers as told.

:class:`Receiver` listens on 127.0.0.1 on a free port, in a thread, and answers each POST
(or PUT) with the :class:`Reply` set for its path (200 by default). A reply with ``hold`` waits
until the receiver is closed (or :attr:`Receiver.release` is set) before answering, to
test timeouts without sleeping; :attr:`Receiver.answers` counts the replies written.
``close`` releases held requests, stops the server and joins every thread it started.
:func:`make_certificates` makes a CA and server certificates with ``cryptography`` for
HTTPS tests.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from deploy.stack.certificates import issue, new_authority

HOLD_LIMIT_S = 10.0  # a held request is answered at the latest after this


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hold: bool = False


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    server_name: str | None  # TLS SNI (the latest the receiver saw), for HTTPS


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close joins the request threads
    block_on_close = True

    def __init__(self, receiver: Receiver, tls: ssl.SSLContext | None) -> None:
        self.receiver = receiver
        self.tls = tls
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(5.0)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return  # the client refused our certificate: nothing to serve
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout tests) leaves a broken pipe: not a failure."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 5.0

    def do_POST(self) -> None:
        self._receive("POST")

    def do_PUT(self) -> None:
        self._receive("PUT")

    def _receive(self, method: str) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        received = Received(
            method,
            self.path,
            {name.lower(): value for name, value in self.headers.items()},
            body,
            receiver.last_sni,
        )
        reply = receiver.record(received)
        if reply.hold:
            receiver.release.wait(HOLD_LIMIT_S)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body)
        receiver.answered()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Receiver:
    """See the module docstring. Use as a context manager, or call :meth:`close`."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._lock = threading.Lock()
        self._requests: list[Received] = []
        self._answered = 0
        self._replies: dict[str, Reply] = {}
        self.release = threading.Event()
        self.arrived = threading.Event()
        self.last_sni: str | None = None
        if tls is not None:
            tls.sni_callback = self._on_sni
        self._server = _Server(self, tls)
        self.port = int(self._server.server_address[1])
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _on_sni(self, _sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        with self._lock:
            self.last_sni = name

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def answer(self, path: str, reply: Reply) -> None:
        with self._lock:
            self._replies[path] = reply

    def record(self, received: Received) -> Reply:
        with self._lock:
            self._requests.append(received)
            reply = self._replies.get(received.path.split("?", 1)[0], Reply())
        self.arrived.set()
        return reply

    def answered(self) -> None:
        with self._lock:
            self._answered += 1

    @property
    def answers(self) -> int:
        """Replies written so far (a held request counts once it is answered)."""
        with self._lock:
            return self._answered

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()  # joins the request threads
        self._thread.join()


def closed_port() -> socket.socket:
    """A socket bound to a port on 127.0.0.1 that does not listen: connecting to it is
    refused while the socket is open. Close it after the test."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass(frozen=True)
class Certificates:
    ca_file: Path  # the CA certificate (PEM): what the client trusts
    cert_file: Path  # the server's chain for ``hostname``
    key_file: Path
    other_cert_file: Path  # a server certificate for another name, same CA
    other_key_file: Path

    def server_context(self, *, other: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if other:
            context.load_cert_chain(self.other_cert_file, self.other_key_file)
        else:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_certificates(directory: Path, hostname: str, other_hostname: str) -> Certificates:
    """A test CA and two server certificates it issued (for ``hostname`` and for
    ``other_hostname``), written as PEM files under ``directory``."""
    authority = new_authority(directory, days=1)
    server = issue(authority, directory, hostname, server_names=(hostname,), days=1)
    other = issue(authority, directory, other_hostname, server_names=(other_hostname,), days=1)
    return Certificates(
        authority.cert_file, server.cert_file, server.key_file, other.cert_file, other.key_file
    )
