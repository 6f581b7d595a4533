"""The viewer the browser tests open: ``auditlog serve`` as a child process on the real
stack, with topics, a consumer group and a database of its own, a development secret for
tokens, and the :mod:`tests.stack.browser.seed` events published through the producer SDK
and stored by the writer (on a thread, kept running: the page's reads are audited through
it). As :mod:`tests.stack.test_viewer_service` does, for a whole test session.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditlog import wiring
from auditlog.commands.accounts import change_account
from auditlog.settings import AuditlogSettings
from auditlog.viewer_process import ViewerProcess, running_viewer
from deploy.stack.endpoints import StackEndpoints
from tests.stack.browser.seed import ACCOUNT_A, ACCOUNT_B, MANAGED, PARTNER, Seed, make_seed
from tests.stack.browser.seed import publishable as as_published
from tests.stack.viewer_support import drop, viewer_settings
from tests.waiting import wait_until
from viewer.dev_tokens import mint_development_token

DEV_SECRET = "dev-secret-of-the-browser-tests-0123456789"
SIGN_IN_TTL_S = 240  # the viewer refuses to sign in with a token valid longer than 300 s


@dataclass
class Viewer:
    """The running viewer, its settings and the seeded events."""

    settings: AuditlogSettings
    process: ViewerProcess
    seed: Seed

    @property
    def url(self) -> str:
        return self.process.url

    def token(
        self,
        account: str = ACCOUNT_A,
        user: str = "u-admin",
        *,
        roles: tuple[str, ...] = ("admin",),
        privileges: tuple[str, ...] = (),
        partner_id: str | None = None,
        name: str | None = None,
        ttl_s: int = SIGN_IN_TTL_S,
    ) -> str:
        """A fresh development token (a jti of its own: each can be exchanged once),
        short-lived as the sign-in wants it."""
        return mint_development_token(
            wiring.identity_config(self.settings),
            account_id=account,
            user_id=user,
            roles=roles,
            privileges=privileges,
            partner_id=partner_id,
            email=f"{user}@{account}.test",
            name=name or user,
            ttl_s=ttl_s,
        )

    def api(self, path_and_query: str, token: str | None = None) -> tuple[int, Any]:
        """``GET`` the API with a bearer token (an Admin of A's by default): status, JSON."""
        return self.process.get(path_and_query, token or self.token())

    def api_bytes(self, path_and_query: str, token: str | None = None) -> bytes:
        """``GET`` the API with a bearer token; the body as it came (exports)."""
        request = urllib.request.Request(
            self.url + path_and_query,
            headers={"Authorization": f"Bearer {token or self.token()}"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            body: bytes = answer.read()
            return body


def _accounts(settings: AuditlogSettings) -> None:
    """A and B bought the add-on; P manages the two others (on by default for them)."""
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        codes = [
            change_account(settings, account, actor="system:test", audit_log_add_on=True)
            for account in (ACCOUNT_A, ACCOUNT_B)
        ] + [
            change_account(settings, account, actor="system:test", partner_id=PARTNER)
            for account in MANAGED
        ]
    assert codes == [0] * len(codes), said.getvalue()


def _publish_and_store(settings: AuditlogSettings, seed: Seed) -> None:
    events = seed.all_events()
    with wiring.audit_producer(settings, client_id="test-page-seed") as producer:
        for event in events:
            event["event_id"] = producer.publish(as_published(event))
    ids = [event["event_id"] for event in events]
    client = wiring.clickhouse_client(settings)
    table = f"{settings.clickhouse_database}.events"

    def stored() -> bool:
        sql = f"SELECT uniqExact(event_id) FROM {table} WHERE event_id IN {{ids:Array(UUID)}}"
        return bool(client.query(sql, parameters={"ids": ids}).result_rows[0][0] == len(ids))

    try:
        wait_until(stored, 120, "the writer stored the seeded events")
    finally:
        client.close()


@contextlib.contextmanager
def running(stack: StackEndpoints, log_dir: Path) -> Iterator[Viewer]:
    """The seeded viewer; everything it made is stopped and dropped when the block ends."""
    settings = viewer_settings(stack, "page", DEV_SECRET, viewer_rate_limit_per_s=1_000.0)
    writer, dead_letters = wiring.writer(settings, exit_when_idle_s=None)
    thread = threading.Thread(target=writer.run, name="test-page-writer", daemon=True)
    thread.start()
    try:
        _accounts(settings)
        seed = make_seed(datetime.now(UTC))
        _publish_and_store(settings, seed)
        with running_viewer(settings.environment(), log_file=log_dir / "viewer.log") as process:
            yield Viewer(settings, process, seed)
    finally:
        writer.stop()
        thread.join(60)
        dead_letters.close()
        drop(settings)


def ndjson_ids(body: bytes) -> list[str]:
    return [json.loads(line)["id"] for line in body.decode().splitlines() if line.strip()]
