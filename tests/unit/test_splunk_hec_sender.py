"""Splunk HEC deliveries against a local receiver: the batch format, the token, the
channel, and HEC's error codes."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from sinks.destinations.model import Destination, SecretValue, SplunkHecTarget
from sinks.destinations.references import ReferencePolicy
from sinks.destinations.secrets import SecretBox
from sinks.encoding import assemble, event_json
from sinks.senders.base import Payload, PermanentDeliveryError, RetryableDeliveryError
from sinks.senders.factory import build_sender
from sinks.senders.http import PinnedHttpClient
from sinks.senders.s3_confinement import S3Policy
from sinks.senders.splunk_hec import CHANNEL_HEADER, SplunkHecSender, channel_id
from sinks.signing import IDEMPOTENCY_HEADER, idempotency_key
from tests.unit.http_receiver import Receiver, Reply

TOKEN = "11111111-2222-3333-4444-555555555555"
SECRETS = SecretBox([], {"AUDITLOG_DEST_SECRET_HEC": TOKEN}, references=ReferencePolicy())
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
PATH = "/services/collector/event"


def destination(url: str, index: str | None = "audit") -> Destination:
    return Destination(
        id="splunk-1",
        tenant_id="acme",
        target=SplunkHecTarget(
            url=url, token=SecretValue(ref="env:AUDITLOG_DEST_SECRET_HEC"), index=index
        ),
        created_at=NOW,
        updated_at=NOW,
    )


EVENTS: list[dict[str, Any]] = [
    {
        "event_id": "3f1c0d1e-0000-4000-8000-000000000001",
        "tenant_id": "acme",
        "occurred_at": datetime(2026, 11, 25, 9, 30, 0, 120_000, tzinfo=UTC),
        "action": "recipe.stopped",
        "actor": {"type": "user", "id": "u-17"},
    },
    {
        "event_id": "3f1c0d1e-0000-4000-8000-000000000002",
        "tenant_id": "acme",
        "occurred_at": datetime(2026, 11, 25, 9, 31, 5, 462_000, tzinfo=UTC),
        "action": "recipe.started",
        "actor": {"type": "user", "id": "u-18", "name": "Zoë"},
    },
]


def payload(compression: str = "gzip", fmt: str = "ndjson") -> Payload:
    encoded = assemble(
        [event_json(e) for e in EVENTS],
        "ndjson" if fmt == "ndjson" else "json_array",
        "gzip" if compression == "gzip" else "none",
    )
    return Payload(
        tenant_id="acme",
        destination_id="splunk-1",
        topic="audit.events",
        partition=1,
        first_offset=40,
        last_offset=41,
        record_count=2,
        first_event_at=EVENTS[0]["occurred_at"],
        body=encoded.body,
        content_type=encoded.content_type,
        content_encoding=encoded.content_encoding,
        file_extension=encoded.file_extension,
    )


def hec_objects(body: bytes) -> list[dict[str, Any]]:
    """Concatenated JSON objects, as HEC reads them."""
    decoder = json.JSONDecoder()
    text = body.decode()
    found: list[dict[str, Any]] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return found
        obj, at = decoder.raw_decode(text, at)
        found.append(obj)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def client() -> Iterator[PinnedHttpClient]:
    with PinnedHttpClient(allow_local=True, timeout_s=2.0) as local:
        yield local


def test_events_arrive_in_hec_batch_format_with_the_token(
    receiver: Receiver, client: PinnedHttpClient
) -> None:
    receiver.answer(PATH, Reply(200, body=b'{"text":"Success","code":0}'))
    sender = SplunkHecSender(destination(receiver.url(PATH)), SECRETS, client)
    receipt = sender.send(payload())

    assert receipt.detail == "HTTP 200 from 127.0.0.1"
    [got] = receiver.requests
    assert got.path == PATH
    assert got.headers["authorization"] == f"Splunk {TOKEN}"
    assert got.headers["content-encoding"] == "gzip"
    assert got.headers["content-type"] == "application/json"
    assert got.headers[CHANNEL_HEADER.lower()] == channel_id(destination(receiver.url(PATH)))
    uuid.UUID(got.headers[CHANNEL_HEADER.lower()])
    assert got.headers[IDEMPOTENCY_HEADER.lower()] == idempotency_key(
        "acme", "splunk-1", topic="audit.events", partition=1, first=40, last=41
    )
    raw = gzip.decompress(got.body)
    # Concatenated objects, not an array.
    assert b"},{" not in raw
    assert not raw.startswith(b"[")
    objects = hec_objects(raw)
    assert [o["time"] for o in objects] == [1795599000.12, 1795599065.462]
    assert {o["source"] for o in objects} == {"auditlog"}
    assert {o["sourcetype"] for o in objects} == {"auditlog:event"}
    assert {o["index"] for o in objects} == {"audit"}
    assert all("host" not in o for o in objects)
    assert [o["event"]["event_id"] for o in objects] == [e["event_id"] for e in EVENTS]
    assert objects[1]["event"]["actor"]["name"] == "Zoë"
    assert objects[0]["event"]["occurred_at"] == "2026-11-25T09:30:00.120Z"


def test_uncompressed_and_array_payloads_without_an_index(
    receiver: Receiver, client: PinnedHttpClient
) -> None:
    sender = SplunkHecSender(destination(receiver.url(PATH), index=None), SECRETS, client)
    sender.send(payload(compression="none", fmt="json_array"))
    [got] = receiver.requests
    assert "content-encoding" not in got.headers
    objects = hec_objects(got.body)
    assert len(objects) == 2
    assert all("index" not in o for o in objects)


def test_the_channel_is_stable_per_destination() -> None:
    first = channel_id(destination("https://splunk.example.com:8088" + PATH))
    again = channel_id(destination("https://other.example.com:8088" + PATH))
    assert first == again
    other = Destination(
        id="splunk-2",
        tenant_id="acme",
        target=SplunkHecTarget(
            url="https://x.example", token=SecretValue(ref="env:AUDITLOG_DEST_SECRET_HEC")
        ),
        created_at=NOW,
        updated_at=NOW,
    )
    assert channel_id(other) != first


@pytest.mark.parametrize(
    ("status", "reply", "words"),
    [
        (403, {"text": "Invalid token", "code": 4}, "check the destination's token"),
        (403, {"text": "Token disabled", "code": 1}, "the token is disabled"),
        (401, {"text": "Token is required", "code": 2}, "check the destination's token"),
        (400, {"text": "Invalid data format", "code": 6}, "could not parse"),
        (400, {"text": "Incorrect index", "code": 7, "invalid-event-number": 0}, "index"),
    ],
)
def test_hec_refusals_are_permanent_and_say_what_to_do(
    receiver: Receiver,
    client: PinnedHttpClient,
    status: int,
    reply: dict[str, Any],
    words: str,
) -> None:
    receiver.answer(PATH, Reply(status, body=json.dumps(reply).encode()))
    sender = SplunkHecSender(destination(receiver.url(PATH)), SECRETS, client)
    with pytest.raises(PermanentDeliveryError) as caught:
        sender.send(payload())
    message = str(caught.value)
    assert f"HTTP {status}, code {reply['code']} ({reply['text']})" in message
    assert words in message
    assert TOKEN not in message


def test_server_busy_is_retryable_with_retry_after(
    receiver: Receiver, client: PinnedHttpClient
) -> None:
    body = b'{"text":"Server is busy","code":9}'
    receiver.answer(PATH, Reply(503, {"Retry-After": "30"}, body))
    with pytest.raises(RetryableDeliveryError, match="server is busy") as caught:
        SplunkHecSender(destination(receiver.url(PATH)), SECRETS, client).send(payload())
    assert caught.value.retry_after_s == 30.0


def test_an_answer_that_is_not_hec_json_is_classified_by_status(
    receiver: Receiver, client: PinnedHttpClient
) -> None:
    receiver.answer(PATH, Reply(502, body=b"<html>Bad gateway</html>"))
    with pytest.raises(RetryableDeliveryError, match=r"HTTP 502.*Bad gateway"):
        SplunkHecSender(destination(receiver.url(PATH)), SECRETS, client).send(payload())


def test_an_echoed_token_is_redacted(receiver: Receiver, client: PinnedHttpClient) -> None:
    body = json.dumps({"text": f"Invalid token {TOKEN}", "code": 4}).encode()
    receiver.answer(PATH, Reply(403, body=body))
    with pytest.raises(PermanentDeliveryError) as caught:
        SplunkHecSender(destination(receiver.url(PATH)), SECRETS, client).send(payload())
    assert TOKEN not in str(caught.value)
    assert "[redacted]" in str(caught.value)


def test_an_unreadable_payload_is_permanent(client: PinnedHttpClient) -> None:
    broken = Payload(
        tenant_id="acme",
        destination_id="splunk-1",
        topic="audit.events",
        partition=1,
        first_offset=1,
        last_offset=1,
        record_count=1,
        first_event_at=NOW,
        body=b"not gzip",
        content_type="application/x-ndjson",
        content_encoding="gzip",
        file_extension="ndjson.gz",
    )
    sender = SplunkHecSender(destination("https://splunk.example.com" + PATH), SECRETS, client)
    with pytest.raises(PermanentDeliveryError, match="not readable NDJSON"):
        sender.send(broken)


def test_the_factory_builds_a_hec_sender_and_checks_the_token(client: PinnedHttpClient) -> None:
    url = "https://splunk.example.com:8088" + PATH
    sender = build_sender(
        destination(url), SECRETS, http=client, s3_timeout_s=1.0, s3_policy=S3Policy()
    )
    assert isinstance(sender, SplunkHecSender)
    with pytest.raises(PermanentDeliveryError, match="HEC token cannot be read"):
        build_sender(
            destination(url),
            SecretBox([], {}, references=ReferencePolicy()),
            http=client,
            s3_timeout_s=1.0,
            s3_policy=S3Policy(),
        )
