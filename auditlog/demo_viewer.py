"""The demo's last step: the viewer, used as an Admin of one demo account would use it.

The demo acts as the operator: it turns the audit log add-on on for the account whose
recipe was stopped last, starts ``auditlog serve`` (development tokens signed with a secret
made for this run), mints a token for an Admin of that account, and asks the API the seed's
question: which recipe was stopped last, when, and by whom. The answer must be the one the
analyst's SQL found. Then it shows that the read itself was recorded: the writer stores
the viewer's ``audit_log.queried`` event, and the API lists it.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pydantic import SecretStr

from auditlog import wiring
from auditlog.commands.accounts import change_account
from auditlog.settings import AuditlogSettings
from auditlog.viewer_process import ViewerProcess, running_viewer
from viewer.dev_tokens import mint_development_token

SEED_QUESTION = "/api/activity_logs?include_event_types[]=recipe.stopped&page[size]=1"
READS = "/api/activity_logs?include_event_types[]=audit_log.queried&page[size]=1"
DEMO_ADMIN = "demo-admin"


@dataclass
class ViewerReport:
    url: str = ""
    account: str = ""
    token: str = ""
    sign_in_link: str = ""
    another_link: str = ""  # the command that makes another sign-in link
    answer: str = ""
    stops_in_range: int = 0
    read_recorded: str = ""


@contextmanager
def demo_viewer(settings: AuditlogSettings, log_file: Path) -> Iterator[tuple[ViewerProcess, str]]:
    """``auditlog serve`` for the demo, and the development secret it accepts tokens of."""
    dev_secret = settings.viewer_dev_secret
    secret = dev_secret.get_secret_value() if dev_secret is not None else secrets.token_hex(32)
    environment = {
        **settings.environment(),
        "AUDITLOG_VIEWER_DEV_SECRET": secret,
        "AUDITLOG_LOG_LEVEL": "WARNING",
    }
    with running_viewer(environment, log_file=log_file) as viewer:
        yield viewer, secret


def ask(
    settings: AuditlogSettings,
    viewer: ViewerProcess,
    *,
    secret: str,
    last_stop: tuple[str, str, datetime, str],
    store_reads: Callable[[], None],
) -> ViewerReport:
    """Enable the audit log of the account of ``last_stop`` (account, recipe name, when, by
    whom: the SQL's answer), ask the seed's question as its Admin, and check the API gives
    the same answer; ``store_reads`` runs the writer so the viewer's own audit event
    reaches ClickHouse."""
    account = last_stop[0]
    said = io.StringIO()
    with redirect_stdout(said):
        code = change_account(
            settings, account, actor="system:auditlog-demo", audit_log_add_on=True
        )
    if code != 0:
        raise RuntimeError(
            f"enabling the audit log of {account} failed ({code}): {said.getvalue()}"
        )
    config = wiring.identity_config(
        settings.model_copy(update={"viewer_dev_secret": SecretStr(secret)})
    )
    admin = {
        "account_id": account,
        "user_id": DEMO_ADMIN,
        "roles": ["admin"],
        "email": "admin@demo.example",
        "name": "Demo Admin",
    }
    token = mint_development_token(config, **admin)  # type: ignore[arg-type]
    sign_in = mint_development_token(
        config,
        **admin,  # type: ignore[arg-type]
        ttl_s=settings.viewer_sign_in_max_ttl_s,
    )
    report = ViewerReport(
        url=viewer.url,
        account=account,
        token=token,
        sign_in_link=f"{viewer.url}/sign-in?{urlencode({'token': sign_in})}",
        another_link=(
            f"AUDITLOG_VIEWER_DEV_SECRET={secret} auditlog viewer token --account {account} "
            f"--user {DEMO_ADMIN} --role admin --sign-in {viewer.url}"
        ),
    )
    page_status = viewer.status("/")
    if page_status != 200:
        raise RuntimeError(f"the viewer page answered {page_status}")
    status, answer = viewer.get(SEED_QUESTION, token)
    if status != 200 or not answer["data"]:
        raise RuntimeError(f"the viewer answered {status}: {answer}")
    record: dict[str, Any] = answer["data"][0]
    who = record["user"].get("email") or record["user"]["type"]
    when = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
    found = (account, record["resource"].get("name") or "", when, who)
    if found != last_stop:
        raise RuntimeError(f"the viewer found {found}, the SQL {last_stop}")
    report.stops_in_range = int(answer["total"])
    report.answer = f"{found[1]!r} stopped at {record['timestamp']} by {who}"
    store_reads()
    status, reads = viewer.get(READS, token)
    if status != 200 or not reads["data"]:
        raise RuntimeError(f"the viewer's own audit event is not in the log: {status} {reads}")
    read = reads["data"][0]
    report.read_recorded = (
        f"audit_log.queried by {read['user'].get('email')} at {read['timestamp']} "
        f"(filters {read['details'].get('filters', '')})"
    )
    return report
