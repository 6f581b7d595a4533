"""``auditlog serve``: the viewer service (activity log API), until SIGTERM or SIGINT.

Exit codes: 0 stopped by a signal, every read's audit event delivered; 2 the token settings
are missing or do not go together (one line per problem, naming its variable); 1 read
events still queued at the stop could not be delivered, or the account facts could not be
read; and the setup failures of :mod:`auditlog.exit_codes` (Kafka or ClickHouse not
answering, a topic missing, the schema missing, behind or newer, the port taken).
"""

from __future__ import annotations

import argparse
import errno
import logging
import secrets
import socket
import sys
from typing import Any

from prometheus_client import CollectorRegistry

from accounts.store import AccountDirectory
from auditlog import setup_failures, startup_checks, wiring
from auditlog.logging_setup import configure_json_logging
from auditlog.settings import AuditlogSettings
from integrity.proofs import ProofReader
from producers.delivery import DeliveryError
from producers.producer import AuditProducer
from runtime.compacted_table import TableError
from schemas.catalog.model import load_catalog
from viewer.app import create_app
from viewer.export_slots import ExportSlots
from viewer.identity import IdentityConfigError, TokenVerifier
from viewer.page import PageServices
from viewer.query.reader import DEFAULT_MAX_EVENT_AGE_S, EventReader
from viewer.rate_limit import RateLimiter
from viewer.routes import ViewerServices
from viewer.security_headers import NO_FRAMING
from viewer.server import BindError, ServerConfig, bind, run
from viewer.session import SessionCodec, SignInLedger, session_key
from viewer.viewing_audit import ViewingAudit

_LOG = logging.getLogger("auditlog.viewer")
MIN_CURSOR_KEY_BYTES = 32


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the viewer: the activity log page and API (and /health, /metrics)",
        description=(
            "Serve the activity audit log page and API on "
            "AUDITLOG_VIEWER_HOST:AUDITLOG_VIEWER_PORT. "
            "Tokens are verified with AUDITLOG_VIEWER_JWT_SECRET, AUDITLOG_VIEWER_JWKS_FILE or "
            "AUDITLOG_VIEWER_JWKS_URL (and development tokens with AUDITLOG_VIEWER_DEV_SECRET)."
        ),
    )
    parser.add_argument("--host", help="address to listen on (default AUDITLOG_VIEWER_HOST)")
    parser.add_argument(
        "--port",
        type=int,
        help="port to listen on, 0 for any free one (default AUDITLOG_VIEWER_PORT)",
    )
    parser.set_defaults(run=_serve)


class _Refused(Exception):
    """The viewer cannot start: ``lines`` say why, ``code`` is the exit code."""

    def __init__(self, code: int, *lines: str) -> None:
        super().__init__(*lines)
        self.code = code
        self.lines = lines


def _serve(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    try:
        verifier, cursor_key = _identity(settings)
        configure_json_logging(settings.log_level)
        if settings.viewer_cursor_key is None:
            _LOG.warning(
                "AUDITLOG_VIEWER_CURSOR_KEY is not set: cursors are signed with a key of this "
                "process only; they stop working at a restart and on other replicas"
            )
        host = args.host or settings.viewer_host
        port = settings.viewer_port if args.port is None else args.port
        try:
            sock = bind(host, port)
        except BindError as exc:
            cause = exc.__cause__
            if not isinstance(cause, OSError) or cause.errno != errno.EADDRINUSE:
                raise _Refused(1, f"viewer: {exc}") from None
            raise setup_failures.port_in_use(
                "viewer", host, port, "AUDITLOG_VIEWER_PORT (or --port)"
            ) from None
        with sock:
            startup_checks.clickhouse(settings).close()
            startup_checks.check_kafka(
                settings, topics=[settings.accounts_topic, settings.events_topic]
            )
            directory = AccountDirectory(
                wiring.kafka_connection(settings),
                settings.accounts_topic,
                client_id="auditlog-viewer",
            )
            try:
                directory.start()
            except TableError as exc:
                raise _Refused(1, f"account facts: {exc}") from None
            try:
                undelivered = _run(
                    settings,
                    sock,
                    host,
                    verifier=verifier,
                    cursor_key=cursor_key,
                    directory=directory,
                )
            finally:
                directory.stop()
    except _Refused as refused:
        for line in refused.lines:
            print(f"auditlog: {line}", file=sys.stderr)
        return refused.code
    if undelivered:
        print(f"auditlog: viewer: {undelivered}", file=sys.stderr)
        return 1
    return 0


def _identity(settings: AuditlogSettings) -> tuple[TokenVerifier, bytes]:
    try:
        verifier = wiring.token_verifier(settings)
    except IdentityConfigError as exc:
        raise _Refused(2, *str(exc).splitlines()) from None
    cursor_key = _cursor_key(settings)
    if len(cursor_key) < MIN_CURSOR_KEY_BYTES:
        raise _Refused(
            2,
            f"AUDITLOG_VIEWER_CURSOR_KEY must be at least {MIN_CURSOR_KEY_BYTES} bytes: make "
            "one with `openssl rand -hex 32`",
        )
    return verifier, cursor_key


def _run(
    settings: AuditlogSettings,
    sock: socket.socket,
    host: str,
    *,
    verifier: TokenVerifier,
    cursor_key: bytes,
    directory: AccountDirectory,
) -> str | None:
    """Serve until SIGTERM or SIGINT; what was not delivered of the reads' events."""
    registry = CollectorRegistry()
    reader = EventReader(
        lambda: wiring.clickhouse_client(settings, session=False),
        database=settings.clickhouse_database,
        cursor_key=cursor_key,
        ingest_lag_s=settings.viewer_ingest_lag_s,
        # An event may reach the store as late as the producer's age limit plus the time
        # it can wait in the topic: polls must look that far back behind their cursor.
        max_event_age_s=DEFAULT_MAX_EVENT_AGE_S + settings.events_retention_hours * 3600,
    )
    producer = wiring.audit_producer(settings, client_id="auditlog-viewer")
    page = _page_services(settings, cursor_key, directory)
    try:
        services = ViewerServices(
            verifier=verifier,
            facts_of=directory.get,
            reader=reader,
            audit=ViewingAudit(producer, registry=registry),
            limiter=RateLimiter(
                per_s=settings.viewer_rate_limit_per_s, burst=settings.viewer_rate_limit_burst
            ),
            exports=ExportSlots(
                per_user=settings.viewer_exports_per_user,
                total=max(settings.viewer_exports_total, settings.viewer_exports_per_user),
            ),
            sessions=page.sessions,
            proofs=ProofReader(
                lambda: wiring.clickhouse_client(settings, session=False),
                settings.clickhouse_database,
            ),
        )

        def health() -> dict[str, Any]:
            accounts_ok = directory.healthy()
            return {"status": "ok" if accounts_ok else "degraded", "accounts": accounts_ok}

        app = create_app(
            services,
            health=health,
            registry=registry,
            page=page,
            frame_ancestors=settings.viewer_frame_ancestors,
        )
        bound_host, bound_port = sock.getsockname()[:2]
        print(f"viewer at http://{_url_host(bound_host)}:{bound_port}", flush=True)
        _LOG.info("viewer listening", extra={"host": bound_host, "port": bound_port})
        run(app, ServerConfig(host, bound_port, settings.viewer_forwarded_allow_ips), sock)
    finally:
        reader.close()
        undelivered = _close(producer)
    return undelivered


def _page_services(
    settings: AuditlogSettings, cursor_key: bytes, directory: AccountDirectory
) -> PageServices:
    configured = settings.viewer_session_key
    key = session_key(
        None if configured is None else configured.get_secret_value().encode(), cursor_key
    )
    return PageServices(
        sessions=SessionCodec(key, ttl_s=settings.viewer_session_ttl_s),
        sign_ins=SignInLedger(),
        managed_by=directory.accounts_managed_by,
        catalog=load_catalog(),
        sign_in_max_ttl_s=settings.viewer_sign_in_max_ttl_s,
        cookie_secure=settings.viewer_cookie_secure,
        embedded=settings.viewer_frame_ancestors not in (NO_FRAMING, "'self'"),
    )


def _close(producer: AuditProducer) -> str | None:
    """Flush the read events still queued; what was not delivered, if anything."""
    try:
        producer.close()
    except DeliveryError as exc:
        return f"audit events of reads were not delivered: {exc}"
    return None


def _cursor_key(settings: AuditlogSettings) -> bytes:
    """The configured key, or one of this process (warned about once logging is set up)."""
    if settings.viewer_cursor_key is not None:
        return settings.viewer_cursor_key.get_secret_value().encode()
    return secrets.token_bytes(32)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
