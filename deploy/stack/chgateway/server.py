"""The threaded HTTP server around :class:`~deploy.stack.chgateway.service.Gateway`, and
the command line.

HTTP/1.1 with keep-alive (an idle connection closes after a minute), one thread per
connection. The handler only frames the request
body (Content-Length or chunked), hands the request to the gateway, drains whatever body
is left (so the client reads the answer instead of a broken pipe, and the connection stays
usable), and writes the buffered response.

With ``--tls-cert`` and ``--tls-key`` it serves https instead (``--tls-client-ca``: and
requires a client certificate signed by that CA), so the product's ClickHouse TLS settings
can be tried against it; the handshake runs on the connection's own thread.

SIGTERM and SIGINT stop the server: no new connections, running engine calls finish (up
to 30 s), the engine closes, the process exits 0.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from deploy.stack.chgateway import bodies
from deploy.stack.chgateway.engine import Engine, EngineUnavailable
from deploy.stack.chgateway.protocol import ClientError
from deploy.stack.chgateway.service import Gateway, HttpRequest, Response

log = logging.getLogger("clickhouse-gateway")

SHUTDOWN_GRACE_S = 30.0
IDLE_TIMEOUT_S = 60.0


class GatewayServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that carries the gateway its handlers serve."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        super().__init__(address, _Handler)
        self.gateway = gateway

    def serve_tls(self, context: ssl.SSLContext) -> None:
        """Serve https: connections are TLS, their handshake done by the handler's thread
        on its first read (not by the accepting thread)."""
        self.socket = context.wrap_socket(
            self.socket, server_side=True, do_handshake_on_connect=False
        )

    def handle_error(self, request: object, client_address: object) -> None:
        """A failed TLS handshake is one log line, not a traceback."""
        failure = sys.exc_info()[1]
        if isinstance(failure, ssl.SSLError | ConnectionError):
            log.warning("connection from %s failed: %s", client_address, failure)
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "clickhouse-gateway"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    timeout = IDLE_TIMEOUT_S  # socket timeout: idle keep-alive connections close
    server: GatewayServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        started = time.perf_counter()
        url = urlsplit(self.path)
        raw: bodies.ByteSource = bodies.EmptyBody()
        try:
            raw = self._framed_body()
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = HttpRequest(self.command, url.path, url.query, headers, raw)
            response = self.server.gateway.handle(request)
        except ClientError as ex:
            response = Response(400, (), ex.message.encode() + b"\n")
        except Exception as ex:
            log.exception("internal error")
            message = f"clickhouse-gateway: internal error: {type(ex).__name__}: {ex}\n"
            response = Response(500, (), message.encode())
        keep_alive = self._drain(raw)
        self._write(response, keep_alive=keep_alive)
        query_id = dict(response.headers).get("X-ClickHouse-Query-Id", "-")
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.info(
            "%s %s %d %.1f ms query_id=%s",
            self.command,
            url.path,
            response.status,
            elapsed_ms,
            query_id,
        )
        if response.status >= 500:
            log.warning("%s", response.body.decode(errors="replace").strip()[:2000])

    def _framed_body(self) -> bodies.ByteSource:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return bodies.ChunkedBody(self.rfile)
        length = self.headers.get("Content-Length")
        if not length:
            return bodies.EmptyBody()
        try:
            return bodies.LengthBody(self.rfile, int(length))
        except ValueError:
            raise ClientError(f"clickhouse-gateway: bad Content-Length {length!r}") from None

    def _drain(self, raw: bodies.ByteSource) -> bool:
        """Read the rest of the request body; False if the connection must close."""
        try:
            bodies.drain(raw)
        except (ClientError, OSError):
            return False
        return True

    def _write(self, response: Response, *, keep_alive: bool) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, _header_value(value))
        if not any(name == "Content-Type" for name, _ in response.headers):
            self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(response.body)))
        if not keep_alive:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(response.body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged once they are answered, in :meth:`_serve`."""

    def log_message(self, format: str, *args: object) -> None:
        log.info(format, *args)


def _header_value(value: str) -> str:
    """A header value that cannot break the response: one latin-1 line."""
    flat = value.replace("\r", " ").replace("\n", " ")
    return flat.encode("latin-1", "replace").decode("latin-1")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.stack.clickhouse_gateway",
        description="Development tooling, not a ClickHouse server: serves the embedded "
        "ClickHouse engine (chdb) over the ClickHouse HTTP protocol subset that "
        "clickhouse-connect and curl use.",
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="engine data directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="0 picks a free port")
    parser.add_argument("--max-concurrent-queries", type=int, default=16)
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate (chain): serve https")
    parser.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    parser.add_argument(
        "--tls-client-ca", type=Path, help="require client certificates signed by this CA (PEM)"
    )
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        parser.error("--tls-client-ca needs --tls-cert and --tls-key")
    return args


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server's TLS context from the arguments; None for plain http."""
    if args.tls_cert is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    if args.tls_client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(args.tls_client_ca)
    return context


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gateway until SIGTERM/SIGINT. Returns the process exit status: 0 after a
    clean stop, 2 if the engine or the port cannot be opened (the reason on stderr)."""
    args = _arguments(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    os.environ["TZ"] = "UTC"  # before the engine loads: the server time zone of the stack
    time.tzset()
    try:
        tls = _tls_context(args)
    except OSError as ex:  # ssl.SSLError is one too
        print(f"clickhouse-gateway: cannot use the TLS certificate or key: {ex}", file=sys.stderr)
        return 2
    try:
        engine = Engine(args.data_dir, max_concurrent=args.max_concurrent_queries)
    except EngineUnavailable as ex:
        print(f"clickhouse-gateway: {ex}", file=sys.stderr, flush=True)
        return 2
    try:
        server = GatewayServer((args.host, args.port), Gateway(engine))
        if tls is not None:
            server.serve_tls(tls)
    except OSError as ex:
        engine.close()
        print(
            f"clickhouse-gateway: cannot listen on {args.host}:{args.port}: {ex}", file=sys.stderr
        )
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    faulthandler.register(signal.SIGUSR1)  # kill -USR1 <pid>: thread stacks to the log
    threading.Thread(target=server.serve_forever, name="http-accept", daemon=True).start()
    host, port = server.server_address[:2]
    print(
        "clickhouse-gateway: development tooling, not a ClickHouse server; "
        f"chdb engine {engine.version} at {engine.data_dir}, "
        f"serving {'https' if tls else 'http'}://{host!s}:{port}",
        flush=True,
    )
    while not stop.wait(1.0):
        pass
    server.shutdown()
    server.server_close()
    idle = engine.close(timeout_s=SHUTDOWN_GRACE_S)
    print(
        f"clickhouse-gateway: stopped{'' if idle else ' (queries were still running)'}", flush=True
    )
    return 0
