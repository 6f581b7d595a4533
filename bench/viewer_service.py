"""A running viewer for the benchmark: ``auditlog serve`` as a child process, as operators
run it, on the benchmark's gateway and a broker of its own.

The viewer needs Kafka (the account facts it authorises with, and the audit events it
publishes for every read), so :func:`running_service` starts a private broker, creates
the topics (``auditlog topics ensure``), enables the audit log add-on of the accounts
asked for (the operator's ``auditlog accounts enable``), starts ``auditlog serve`` with
development tokens signed by a secret made here and cursors signed with ``cursor_key``,
no rate limit to speak of, and yields its URL and an Admin's tokens per account. All
of it stops when the block ends.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from auditlog import wiring
from auditlog.commands.accounts import change_account
from auditlog.settings import AuditlogSettings
from auditlog.viewer_process import running_viewer
from bench.common import private_kafka
from viewer.dev_tokens import mint_development_token

ADMIN = "bench-admin"


@dataclass(frozen=True)
class BenchViewer:
    """A running viewer: its URL, an Admin's day-long token per account, and ``mint``
    (account, ttl_s) -> a fresh token of that Admin (sign-in tokens must be short-lived)."""

    url: str
    tokens: dict[str, str]
    mint: Callable[[str, int], str]


@contextlib.contextmanager
def running_service(
    clickhouse_url: str,
    database: str,
    accounts: Sequence[str],
    *,
    cursor_key: str,
) -> Iterator[BenchViewer]:
    """``auditlog serve`` over ``database`` at ``clickhouse_url``. The server signs cursors
    with ``cursor_key.encode()`` (as ``auditlog serve`` reads ``AUDITLOG_VIEWER_CURSOR_KEY``)."""
    secret = secrets.token_hex(32)
    with private_kafka() as bootstrap, tempfile.TemporaryDirectory(prefix="bench-viewer-") as tmp:
        settings = AuditlogSettings(
            kafka_bootstrap=bootstrap,
            clickhouse_url=clickhouse_url,
            clickhouse_database=database,
            viewer_dev_secret=SecretStr(secret),
            viewer_cursor_key=SecretStr(cursor_key),
            viewer_rate_limit_per_s=1_000_000.0,
            viewer_rate_limit_burst=1_000_000,
            log_level="WARNING",
        )
        environment = {**settings.environment(), "AUDITLOG_LOG_LEVEL": "WARNING"}
        subprocess.run(
            [sys.executable, "-m", "auditlog.cli", "topics", "ensure"],
            env={**os.environ, **environment},
            check=True,
            capture_output=True,
        )
        said = io.StringIO()
        for account in accounts:
            with contextlib.redirect_stdout(said):
                code = change_account(
                    settings, account, actor="system:bench-viewer", audit_log_add_on=True
                )
            if code != 0:
                raise RuntimeError(f"enabling {account} failed ({code}): {said.getvalue()}")
        config = wiring.identity_config(settings)

        def mint(account: str, ttl_s: int) -> str:
            return mint_development_token(
                config, account_id=account, user_id=ADMIN, roles=["admin"], ttl_s=ttl_s
            )

        tokens = {account: mint(account, 86_400) for account in accounts}
        with running_viewer(environment, log_file=Path(tmp) / "viewer.log") as viewer:
            yield BenchViewer(viewer.url, tokens, mint)
