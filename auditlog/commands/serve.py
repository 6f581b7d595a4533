"""``auditlog serve``: the viewer service (activity log API), until SIGTERM or SIGINT.

Exit codes: 0 stopped by a signal; 2 the token settings are missing or do not go together
(each problem on a line naming its variable); 1 a service it
needs does not answer (ClickHouse, the account facts topic on Kafka) or its port is taken.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError
from prometheus_client import CollectorRegistry

from accounts.store import AccountDirectory
from auditlog import wiring
from auditlog.logging_setup import configure_json_logging
from auditlog.settings import AuditlogSettings
from runtime.compacted_table import TableError
from viewer.app import create_app
from viewer.identity import IdentityConfigError
from viewer.query.reader import EventReader
from viewer.rate_limit import RateLimiter
from viewer.routes import ViewerServices
from viewer.server import BindError, ServerConfig, bind, run
from viewer.viewing_audit import ViewingAudit

_LOG = logging.getLogger("auditlog.viewer")
MIN_CURSOR_KEY_BYTES = 32


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the viewer: the activity log API (and /health, /metrics, /docs)",
        description=(
            "Serve the activity audit log API on AUDITLOG_VIEWER_HOST:AUDITLOG_VIEWER_PORT. "
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


def _serve(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    try:
        verifier = wiring.token_verifier(settings)
    except IdentityConfigError as exc:
        for line in str(exc).splitlines():
            print(f"auditlog: {line}", file=sys.stderr)
        return 2
    cursor_key = _cursor_key(settings)
    if len(cursor_key) < MIN_CURSOR_KEY_BYTES:
        print(
            f"auditlog: AUDITLOG_VIEWER_CURSOR_KEY must be at least {MIN_CURSOR_KEY_BYTES} "
            "bytes: make one with `openssl rand -hex 32`",
            file=sys.stderr,
        )
        return 2
    configure_json_logging(settings.log_level)
    host = args.host or settings.viewer_host
    port = settings.viewer_port if args.port is None else args.port
    try:
        sock = bind(host, port)
    except BindError as exc:
        print(f"auditlog: viewer: {exc}", file=sys.stderr)
        return 1
    with sock:
        try:
            _check_events_table(settings)
        except (ClickHouseError, OSError) as exc:
            print(f"auditlog: {wiring.clickhouse_error(settings, exc)}", file=sys.stderr)
            return 1
        reader = EventReader(
            lambda: wiring.clickhouse_client(settings, session=False),
            database=settings.clickhouse_database,
            cursor_key=cursor_key,
            ingest_lag_s=settings.viewer_ingest_lag_s,
        )
        directory = AccountDirectory(
            wiring.kafka_connection(settings), settings.accounts_topic, client_id="auditlog-viewer"
        )
        try:
            directory.start()
        except TableError as exc:
            print(f"auditlog: account facts: {exc}", file=sys.stderr)
            return 1
        registry = CollectorRegistry()
        producer = wiring.audit_producer(settings, client_id="auditlog-viewer")
        try:
            services = ViewerServices(
                verifier=verifier,
                facts_of=directory.get,
                reader=reader,
                audit=ViewingAudit(producer, registry=registry),
                limiter=RateLimiter(
                    per_s=settings.viewer_rate_limit_per_s, burst=settings.viewer_rate_limit_burst
                ),
            )

            def health() -> dict[str, Any]:
                accounts_ok = directory.healthy()
                return {"status": "ok" if accounts_ok else "degraded", "accounts": accounts_ok}

            app = create_app(services, health=health, registry=registry)
            bound_host, bound_port = sock.getsockname()[:2]
            print(f"viewer at http://{_url_host(bound_host)}:{bound_port}", flush=True)
            _LOG.info("viewer listening", extra={"host": bound_host, "port": bound_port})
            run(
                app,
                ServerConfig(host, bound_port, settings.viewer_forwarded_allow_ips),
                sock,
            )
        finally:
            directory.stop()
            producer.close()
    return 0


def _check_events_table(settings: AuditlogSettings) -> None:
    """Raises when ClickHouse does not answer or the events table is missing."""
    client = wiring.clickhouse_client(settings)
    try:
        # The database name is checked by the settings (an identifier).
        client.query(f"SELECT 1 FROM {settings.clickhouse_database}.events WHERE 0")  # noqa: S608
    finally:
        client.close()


def _cursor_key(settings: AuditlogSettings) -> bytes:
    if settings.viewer_cursor_key is not None:
        return settings.viewer_cursor_key.get_secret_value().encode()
    logging.getLogger("auditlog.viewer").warning(
        "AUDITLOG_VIEWER_CURSOR_KEY is not set: cursors are signed with a key of this process "
        "only; they stop working at a restart and on other replicas"
    )
    return secrets.token_bytes(32)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
