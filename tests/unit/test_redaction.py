"""Credentials never reach a terminal or a log: URLs shown without their password or
secret query values, whoever printed or logged them."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from auditlog.commands import destination_view
from auditlog.commands.destination_view import target_summary
from auditlog.logging_setup import configure_json_logging
from runtime.redaction import redact_text, redact_url
from sinks.address_guard import UnsafeDestinationError, vet_url
from sinks.destinations.auto_pause import AutoPauser
from sinks.destinations.model import Destination, SecretValue, WebhookTarget
from sinks.destinations.store import DestinationStore
from tests.unit.http_receiver import closed_port

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"http://bob:{SECRET}@ch.internal:8123", "http://bob:***@ch.internal:8123"),
        (f"https://:{SECRET}@ch.internal/db", "https://:***@ch.internal/db"),
        (f"http://bob:{SECRET}@[::1]:8123/", "http://bob:***@[::1]:8123/"),
        ("http://bob@ch.internal:8123", "http://bob@ch.internal:8123"),
        ("http://127.0.0.1:18123", "http://127.0.0.1:18123"),
        (
            f"https://hooks.example.com/in?team=ops&access_token={SECRET}",
            "https://hooks.example.com/in?team=ops&access_token=***",
        ),
        (
            f"https://b.s3.amazonaws.com/k?X-Amz-Signature={SECRET}&X-Amz-Expires=60",
            "https://b.s3.amazonaws.com/k?X-Amz-Signature=***&X-Amz-Expires=60",
        ),
    ],
)
def test_a_url_is_shown_without_its_secrets(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_password_with_an_at_sign_is_masked_whole() -> None:
    assert redact_url("http://bob:p@ss@host:1") == "http://bob:***@host:1"
    assert redact_text("at http://bob:p@ss@host:1/x failed") == "at http://bob:***@host:1/x failed"


def test_urls_inside_text_are_masked() -> None:
    text = (
        f"Error connecting to http://bob:{SECRET}@10.0.0.5:8123 "
        f"(registry https://svc:{SECRET}@sr.example.com, hook https://h.example.com/x?token={SECRET})"
    )
    masked = redact_text(text)
    assert SECRET not in masked
    assert "http://bob:***@10.0.0.5:8123" in masked
    assert "https://svc:***@sr.example.com" in masked
    assert "?token=***" in masked


def test_text_without_credentials_is_unchanged() -> None:
    for text in ("ann@acme.io logged in", "a=b&c=d", "partition 3: HTTP 500 from h.example.com"):
        assert redact_text(text) == text


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_json_logging("INFO", stream=stream)
    yield stream
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_json_logs_mask_credentials_in_messages_extras_and_tracebacks(
    json_log: io.StringIO,
) -> None:
    log = logging.getLogger("some.library")
    dsn = f"http://bob:{SECRET}@ch.internal:8123"
    log.warning("connecting to %s", dsn, extra={"url": dsn, "partition": 3, "ids": [1, 2]})
    try:
        raise ConnectionError(f"cannot reach {dsn}")
    except ConnectionError:
        log.exception("failed")
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert SECRET not in json_log.getvalue()
    assert lines[0]["message"] == "connecting to http://bob:***@ch.internal:8123"
    assert lines[0]["url"] == "http://bob:***@ch.internal:8123"
    assert lines[0]["partition"] == 3
    assert lines[0]["ids"] == [1, 2]
    assert "http://bob:***@ch.internal:8123" in lines[1]["exc_info"]


@pytest.mark.parametrize("command", [["migrate"], ["retention", "show"]])
def test_commands_print_the_clickhouse_url_without_its_password(command: list[str]) -> None:
    with closed_port() as refusing:  # held bound: nothing else can listen there meanwhile
        url = f"http://bob:{SECRET}@127.0.0.1:{refusing.getsockname()[1]}"
        done = subprocess.run(
            [sys.executable, "-m", "auditlog.cli", *command],
            env={"AUDITLOG_CLICKHOUSE_URL": url, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 12  # ClickHouse not answering (auditlog.exit_codes)
    assert SECRET not in done.stdout + done.stderr
    assert "ClickHouse at http://bob:***@127.0.0.1:" in done.stderr


def test_destination_listings_show_a_webhook_host_without_its_credentials() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    destination = Destination(
        id="ops-hook",
        tenant_id="acme",
        target=WebhookTarget(
            url=f"https://bob:{SECRET}@hooks.example.com:8443/in?token={SECRET}",
            signing_secret=SecretValue(encrypted="sealed"),
        ),
        created_at=now,
        updated_at=now,
    )
    assert target_summary(destination) == "hooks.example.com:8443"


def test_refused_urls_are_quoted_without_their_credentials() -> None:
    with pytest.raises(UnsafeDestinationError) as refused:
        vet_url(f"https://bob:{SECRET}@hooks.example.com/in")
    assert SECRET not in str(refused.value)
    assert "bob:***@hooks.example.com" in str(refused.value)


def test_destination_details_show_urls_without_query_secrets() -> None:
    shown = destination_view._value("url", f"https://hooks.example.com/in?token={SECRET}")
    assert shown == "https://hooks.example.com/in?token=***"


class _Store:
    def __init__(self, destination: Destination) -> None:
        self.destination = destination

    def get(self, _destination_id: str) -> Destination:
        return self.destination

    def put(self, destination: Destination, *, expected_revision: int) -> None:
        self.destination = destination


def test_an_automatic_pause_keeps_credentials_out_of_the_reason_and_the_event() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    destination = Destination(
        id="ops-hook",
        tenant_id="acme",
        target=WebhookTarget(
            url="https://hooks.example.com/in", signing_secret=SecretValue(encrypted="x")
        ),
        created_at=now,
        updated_at=now,
    )
    store = _Store(destination)
    published: list[Mapping[str, Any]] = []

    def publish(event: Mapping[str, Any]) -> str:
        published.append(event)
        return "event-id"

    pause = AutoPauser(cast(DestinationStore, store), publish)
    pause(destination, f"HTTP 500 from http://svc:{SECRET}@10.0.0.5/x?token={SECRET}", now)
    assert store.destination.state == "paused"
    assert SECRET not in store.destination.state_reason
    assert SECRET not in json.dumps(published[0]["details"])


def test_nested_log_extras_are_masked(json_log: io.StringIO) -> None:
    dsn = f"http://bob:{SECRET}@ch.internal:8123"
    logging.getLogger("some.library").warning(
        "nested", extra={"targets": [dsn, 3], "by": {"ch": dsn}}
    )
    line = json.loads(json_log.getvalue().splitlines()[-1])
    assert line["targets"] == ["http://bob:***@ch.internal:8123", 3]
    assert line["by"] == {"ch": "http://bob:***@ch.internal:8123"}
