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
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_certificates(directory: Path, hostname: str, other_hostname: str) -> Certificates:
    """A test CA and two server certificates it issued (for ``hostname`` and for
    ``other_hostname``), written as PEM files under ``directory``."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auditlog test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def leaf(name: str, stem: str) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        cert_file = directory / f"{stem}.pem"
        key_file = directory / f"{stem}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_file)
        return cert_file, key_file

    cert_file, key_file = leaf(hostname, "server")
    other_cert_file, other_key_file = leaf(other_hostname, "other")
    return Certificates(ca_file, cert_file, key_file, other_cert_file, other_key_file)
