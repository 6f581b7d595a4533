"""The HTTP endpoint of a long-running process (the ClickHouse writer, a sink worker, the
integrity appender): ``/metrics`` for Prometheus and ``/health`` for probes.

The process owns a :class:`HealthState` and updates it as it goes (assignment, pauses,
inserts, errors, shutdown); :class:`HealthServer` only reads it. The server runs the
standard library's ``ThreadingHTTPServer`` in one background thread, one short-lived thread
per request; :meth:`HealthServer.stop` joins all of them and closes the socket.

``/health`` answers 200 while the process is ``ok`` and 503 while it is ``degraded`` (inserts
keep failing: ClickHouse slow or down) or ``stopping``. A degraded process is not broken: it
stays in its group, pauses and retries, so use ``/health`` as a readiness signal or for
alerts, not as a liveness probe that restarts the process.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Literal, cast
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

log = logging.getLogger("auditlog.writer.health")

HealthStatus = Literal["ok", "degraded", "stopping"]
TopicPartition = tuple[str, int]

_MAX_ERROR_CHARS: Final = 1000


@dataclass(frozen=True)
class HealthSnapshot:
    """The writer's state at one instant, as ``/health`` reports it."""

    status: HealthStatus
    group: str
    member_id: str | None
    assigned: tuple[TopicPartition, ...]
    paused: tuple[TopicPartition, ...]
    last_insert_at: datetime | None
    last_error: str | None
    consecutive_insert_failures: int

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``/health``; timestamps in ISO 8601, UTC."""
        return {
            "status": self.status,
            "group": self.group,
            "member_id": self.member_id,
            "assigned": [list(tp) for tp in self.assigned],
            "paused": [list(tp) for tp in self.paused],
            "last_insert_at": (
                None if self.last_insert_at is None else self.last_insert_at.isoformat()
            ),
            "last_error": self.last_error,
            "consecutive_insert_failures": self.consecutive_insert_failures,
        }


class HealthState:
    """What the writer tells the health endpoint; every method is thread-safe and cheap.

    The status is ``stopping`` once :meth:`stopping` was called, otherwise ``degraded``
    while at least ``degraded_after_failures`` inserts in a row have failed, otherwise
    ``ok``. A member with no partitions (more members than partitions) is ``ok``.
    ``last_error`` keeps the most recent error after recovery, for the operator.
    """

    def __init__(self, group: str, *, degraded_after_failures: int = 3) -> None:
        if degraded_after_failures < 1:
            raise ValueError("degraded_after_failures must be at least 1")
        self._group = group
        self._degraded_after = degraded_after_failures
        self._lock = threading.Lock()
        self._member_id: str | None = None
        self._assigned: set[TopicPartition] = set()
        self._paused: set[TopicPartition] = set()
        self._last_insert_at: datetime | None = None
        self._last_error: str | None = None
        self._failures = 0
        self._stopping = False

    def set_member_id(self, member_id: str | None) -> None:
        with self._lock:
            self._member_id = member_id

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions added to this member (cooperative rebalancing adds incrementally)."""
        with self._lock:
            self._assigned.update(partitions)

    def revoke(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions taken away (revoked or lost); they are no longer paused either."""
        gone = set(partitions)
        with self._lock:
            self._assigned -= gone
            self._paused -= gone

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        with self._lock:
            self._paused.update(partitions)

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        gone = set(partitions)
        with self._lock:
            self._paused -= gone

    def insert_succeeded(self, at: datetime | None = None) -> None:
        """ClickHouse acknowledged an insert (``at``: when; now by default)."""
        when = at if at is not None else datetime.now(UTC)
        with self._lock:
            self._last_insert_at = when
            self._failures = 0

    def insert_failed(self, error: BaseException | str) -> None:
        """An insert attempt failed; counts towards ``degraded``."""
        text = _describe(error)
        with self._lock:
            self._failures += 1
            self._last_error = text

    def note_error(self, error: BaseException | str) -> None:
        """Any other error worth showing (a Kafka error, a commit failure)."""
        text = _describe(error)
        with self._lock:
            self._last_error = text

    def stopping(self) -> None:
        """The writer is shutting down (a signal, a fatal error, idle exit)."""
        with self._lock:
            self._stopping = True

    def snapshot(self) -> HealthSnapshot:
        with self._lock:
            if self._stopping:
                status: HealthStatus = "stopping"
            elif self._failures >= self._degraded_after:
                status = "degraded"
            else:
                status = "ok"
            return HealthSnapshot(
                status=status,
                group=self._group,
                member_id=self._member_id,
                assigned=tuple(sorted(self._assigned)),
                paused=tuple(sorted(self._paused)),
                last_insert_at=self._last_insert_at,
                last_error=self._last_error,
                consecutive_insert_failures=self._failures,
            )


def _describe(error: BaseException | str) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return text[:_MAX_ERROR_CHARS]


class _Server(ThreadingHTTPServer):
    # Request threads are joined by server_close(), so stop() leaves none behind; the
    # handler's socket timeout bounds how long a stalled client can delay that.
    daemon_threads = False
    block_on_close = True

    def __init__(
        self, address: tuple[str, int], state: HealthState, registry: CollectorRegistry
    ) -> None:
        self.state = state
        self.registry = registry
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    timeout = 5.0  # seconds a client may take to send its request
    server_version = "auditlog-writer"

    def do_GET(self) -> None:
        server = cast(_Server, self.server)
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._reply(HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(server.registry))
        elif path == "/health":
            snapshot = server.state.snapshot()
            code = HTTPStatus.OK if snapshot.status == "ok" else HTTPStatus.SERVICE_UNAVAILABLE
            body = json.dumps(snapshot.to_json()).encode()
            self._reply(code, "application/json", body)
        else:
            self._reply(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")

    def _reply(self, code: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class HealthServer:
    """Serves ``/metrics`` (``registry``'s exposition) and ``/health`` (``state``).

    :meth:`start` binds and returns at once; requests are answered on background threads.
    :meth:`stop` blocks until the server thread and every request thread have ended and
    the listening socket is closed. A server is started at most once.
    """

    def __init__(self, state: HealthState, registry: CollectorRegistry = REGISTRY) -> None:
        self._state = state
        self._registry = registry
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._started = False

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind ``host:port`` (port 0: any free port) and serve; returns the bound port.

        Raises ``OSError`` when the address cannot be bound, ``RuntimeError`` when called
        twice.
        """
        if self._started:
            raise RuntimeError("a HealthServer is started once")
        self._started = True
        server = _Server((host, port), self._state, self._registry)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="auditlog-writer-health",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        bound_port: int = server.server_address[1]
        log.info("health endpoint listening", extra={"host": host, "port": bound_port})
        return bound_port

    def stop(self) -> None:
        """Stop serving, join every thread, close the socket. Idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join()
        server.server_close()
