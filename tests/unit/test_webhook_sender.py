"""Webhook deliveries against a local receiver: signed, idempotent, classified, and only
ever to the vetted, pinned address (no redirects, no private addresses, no rebinding)."""

from __future__ import annotations

import email.utils
import gzip
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sinks.address_guard import Resolver
from sinks.destinations.model import Destination, SecretValue, WebhookTarget
from sinks.destinations.references import ReferencePolicy
from sinks.destinations.secrets import SecretBox
from sinks.encoding import assemble, event_json
from sinks.senders.base import (
    DeliveryError,
    Payload,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from sinks.senders.factory import build_sender
from sinks.senders.http import PinnedHttpClient
from sinks.senders.s3_confinement import S3Policy
from sinks.senders.webhook import WebhookSender
from sinks.signing import IDEMPOTENCY_HEADER, idempotency_key, verify
from tests.unit.http_receiver import Receiver, Reply, closed_port, make_certificates

SECRET = "whsec-test-1234567890"
SECRETS = SecretBox([], {"AUDITLOG_DEST_SECRET_HOOK": SECRET}, references=ReferencePolicy())
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def destination(url: str, headers: dict[str, str] | None = None) -> Destination:
    return Destination(
        id="hooks-1",
        tenant_id="acme",
        target=WebhookTarget(
            url=url,
            signing_secret=SecretValue(ref="env:AUDITLOG_DEST_SECRET_HOOK"),
            headers=headers or {},
        ),
        created_at=NOW,
        updated_at=NOW,
    )


def payload(first: int = 100, last: int = 101) -> Payload:
    events = [
        event_json({"event_id": f"e-{n}", "action": "recipe.stopped", "occurred_at": NOW})
        for n in range(first, last + 1)
    ]
    encoded = assemble(events, "ndjson", "gzip")
    return Payload(
        tenant_id="acme",
        destination_id="hooks-1",
        topic="audit.events",
        partition=3,
        first_offset=first,
        last_offset=last,
        record_count=len(events),
        first_event_at=NOW,
        body=encoded.body,
        content_type=encoded.content_type,
        content_encoding=encoded.content_encoding,
        file_extension=encoded.file_extension,
    )


def resolver(table: dict[str, list[str]]) -> Resolver:
    def resolve(host: str, _port: int) -> list[str]:
        return table[host]

    return resolve


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def client() -> Iterator[PinnedHttpClient]:
    """Local-development mode: http and loopback allowed (the receiver is local)."""
    with PinnedHttpClient(allow_local=True, timeout_s=2.0) as local:
        yield local


@pytest.fixture
def strict_client() -> Iterator[PinnedHttpClient]:
    """Production mode: https to public addresses only; names resolve via the table."""
    table = {"hooks.example.com": ["93.184.215.14"], "evil.example.net": ["127.0.0.1"]}
    table["internal.example.net"] = ["10.0.0.1"]
    with PinnedHttpClient(allow_local=False, timeout_s=2.0, resolve=resolver(table)) as strict:
        yield strict


# Delivery


def test_a_delivery_is_signed_keyed_and_carries_the_extra_headers(
    receiver: Receiver, client: PinnedHttpClient
) -> None:
    sender = WebhookSender(
        destination(receiver.url("/hook?src=audit"), {"Authorization": "Bearer abc"}),
        SECRETS,
        client,
    )
    sent = payload()
    receipt = sender.send(sent)

    assert receipt.detail == "HTTP 200 from 127.0.0.1"
    [got] = receiver.requests
    assert got.path == "/hook?src=audit"
    assert got.body == sent.body
    assert json.loads(gzip.decompress(got.body).splitlines()[0])["event_id"] == "e-100"
    verify(got.body, got.headers, SECRET.encode())
    assert got.headers["content-type"] == "application/x-ndjson"
    assert got.headers["content-encoding"] == "gzip"
    assert got.headers["authorization"] == "Bearer abc"
    assert got.headers[IDEMPOTENCY_HEADER.lower()] == idempotency_key(
        "acme", "hooks-1", topic="audit.events", partition=3, first=100, last=101
    )
    assert got.headers["x-auditlog-tenant"] == "acme"
    assert got.headers["x-auditlog-destination"] == "hooks-1"
    assert got.headers["x-auditlog-record-count"] == "2"
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"


def test_the_same_events_carry_the_same_idempotency_key(
    receiver: Receiver, client: PinnedHttpClient
) -> None:
    sender = WebhookSender(destination(receiver.url()), SECRETS, client)
    sender.send(payload(100, 101))
    sender.send(payload(100, 101))
    sender.send(payload(102, 103))
    keys = [r.headers[IDEMPOTENCY_HEADER.lower()] for r in receiver.requests]
    assert keys[0] == keys[1]
    assert keys[2] != keys[0]


def test_the_pinned_connection_goes_to_the_vetted_address_with_the_host_name(
    receiver: Receiver,
) -> None:
    lookups: list[str] = []

    def resolve(host: str, _port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    with PinnedHttpClient(allow_local=True, timeout_s=2.0, resolve=resolve) as client:
        sender = WebhookSender(destination(receiver.url("/hook", "receiver.test")), SECRETS, client)
        receipt = sender.send(payload())
        sender.send(payload())

    assert receipt.detail == "HTTP 200 from receiver.test"
    assert [r.headers["host"] for r in receiver.requests] == [f"receiver.test:{receiver.port}"] * 2
    assert lookups == ["receiver.test"]  # vetted once, then from the cache; never re-resolved


def test_an_unreachable_address_falls_through_to_the_next_vetted_one(receiver: Receiver) -> None:
    # Nothing listens on 127.0.0.2 at the receiver's port (it is bound to 127.0.0.1).
    table = {"receiver.test": ["127.0.0.2", "127.0.0.1"]}
    with PinnedHttpClient(allow_local=True, timeout_s=2.0, resolve=resolver(table)) as client:
        WebhookSender(destination(receiver.url("/", "receiver.test")), SECRETS, client).send(
            payload()
        )
    assert len(receiver.requests) == 1


def test_senders_share_the_client_across_threads(
    receiver: Receiver, client: PinnedHttpClient
) -> None:
    sender = WebhookSender(destination(receiver.url()), SECRETS, client)
    failures: list[Exception] = []

    def deliver(first: int) -> None:
        try:
            for n in range(5):
                sender.send(payload(first + 10 * n, first + 10 * n + 1))
        except (DeliveryError, RuntimeError) as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=deliver, args=(1000 * t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len({r.headers[IDEMPOTENCY_HEADER.lower()] for r in receiver.requests}) == 40


# What answers mean


def test_500_is_retryable(receiver: Receiver, client: PinnedHttpClient) -> None:
    receiver.answer("/", Reply(500, body=b"database down"))
    with pytest.raises(RetryableDeliveryError, match=r"HTTP 500 from 127\.0\.0\.1.*database down"):
        WebhookSender(destination(receiver.url()), SECRETS, client).send(payload())


def test_429_with_retry_after_seconds(receiver: Receiver, client: PinnedHttpClient) -> None:
    receiver.answer("/", Reply(429, {"Retry-After": "7"}))
    with pytest.raises(RetryableDeliveryError) as caught:
        WebhookSender(destination(receiver.url()), SECRETS, client).send(payload())
    assert caught.value.retry_after_s == 7.0


def test_503_with_retry_after_as_an_http_date(receiver: Receiver, client: PinnedHttpClient) -> None:
    # The header has whole seconds; the sender counts from the moment it reads it.
    later = (datetime.now(UTC) + timedelta(seconds=120)).replace(microsecond=0)
    receiver.answer("/", Reply(503, {"Retry-After": email.utils.format_datetime(later, True)}))
    before = datetime.now(UTC)
    with pytest.raises(RetryableDeliveryError) as caught:
        WebhookSender(destination(receiver.url()), SECRETS, client).send(payload())
    after = datetime.now(UTC)
    assert caught.value.retry_after_s is not None
    assert (later - after).total_seconds() <= caught.value.retry_after_s
    assert caught.value.retry_after_s <= (later - before).total_seconds()


def test_400_is_permanent_with_a_snippet_of_the_body_and_no_secret(
    receiver: Receiver, client: PinnedHttpClient
) -> None:
    body = b'{"error": "schema mismatch", "you_sent_secret": "' + SECRET.encode() + b'"}'
    receiver.answer("/", Reply(400, body=body + b" " + b"x" * 10_000))
    with pytest.raises(PermanentDeliveryError) as caught:
        WebhookSender(destination(receiver.url()), SECRETS, client).send(payload())
    message = str(caught.value)
    assert "HTTP 400" in message
    assert "schema mismatch" in message
    assert SECRET not in message
    assert len(message) < 500


def test_413_says_to_lower_the_batch_size(receiver: Receiver, client: PinnedHttpClient) -> None:
    receiver.answer("/", Reply(413))
    with pytest.raises(PermanentDeliveryError, match="lower the destination's batch max_bytes"):
        WebhookSender(destination(receiver.url()), SECRETS, client).send(payload())


def test_a_redirect_is_permanent_and_never_followed(client: PinnedHttpClient) -> None:
    with Receiver() as origin, Receiver() as elsewhere:
        origin.answer("/", Reply(302, {"Location": elsewhere.url("/stolen")}))
        origin.answer("/meta", Reply(307, {"Location": "http://169.254.169.254/latest/"}))
        sender_to = WebhookSender(destination(origin.url()), SECRETS, client)
        with pytest.raises(PermanentDeliveryError, match="redirects are not followed"):
            sender_to.send(payload())
        meta = WebhookSender(destination(origin.url("/meta")), SECRETS, client)
        with pytest.raises(PermanentDeliveryError, match=r"169\.254\.169\.254"):
            meta.send(payload())
        assert len(origin.requests) == 2
        assert elsewhere.requests == []


def test_no_answer_within_the_timeout_is_retryable(receiver: Receiver) -> None:
    receiver.answer("/slow", Reply(hold=True))
    with PinnedHttpClient(allow_local=True, timeout_s=0.5) as client:
        sender = WebhookSender(destination(receiver.url("/slow")), SECRETS, client)
        with pytest.raises(
            RetryableDeliveryError, match=r"no answer from 127\.0\.0\.1 within 0\.5 s"
        ):
            sender.send(payload())
        assert receiver.answers == 0, "the client gave up before the receiver answered"
    assert receiver.arrived.is_set()


def test_a_refused_connection_is_retryable(client: PinnedHttpClient) -> None:
    sock = closed_port()
    try:
        port = sock.getsockname()[1]
        sender = WebhookSender(destination(f"http://127.0.0.1:{port}/"), SECRETS, client)
        with pytest.raises(RetryableDeliveryError, match=r"cannot connect to 127\.0\.0\.1"):
            sender.send(payload())
    finally:
        sock.close()


def test_a_header_that_would_split_the_request_is_permanent(
    receiver: Receiver, client: PinnedHttpClient
) -> None:
    sender = WebhookSender(
        destination(receiver.url(), {"X-Team": "a\r\nX-Injected: 1"}), SECRETS, client
    )
    with pytest.raises(PermanentDeliveryError, match="line break"):
        sender.send(payload())
    assert receiver.requests == []


# Where deliveries may go (SSRF)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.net/hook",  # resolves to 127.0.0.1
        "https://internal.example.net/hook",  # resolves to 10.0.0.1
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "http://hooks.example.com/hook",  # public, but not https
        "https://user:pw@hooks.example.com/hook",
    ],
)
def test_unsafe_urls_are_permanent(strict_client: PinnedHttpClient, url: str) -> None:
    sender = WebhookSender(destination(url), SECRETS, strict_client)
    with pytest.raises(PermanentDeliveryError):
        sender.send(payload())


def test_a_local_receiver_is_never_reached_outside_local_mode(receiver: Receiver) -> None:
    table = {"receiver.test": ["127.0.0.1"], "localhost": ["127.0.0.1", "::1"]}
    with PinnedHttpClient(allow_local=False, timeout_s=2.0, resolve=resolver(table)) as client:
        for url in (
            f"https://localhost:{receiver.port}/",
            f"https://receiver.test:{receiver.port}/",
            f"https://127.0.0.1:{receiver.port}/",
            receiver.url(),
        ):
            with pytest.raises(PermanentDeliveryError, match=r"refused|https"):
                WebhookSender(destination(url), SECRETS, client).send(payload())
    # The system resolver too (localhost comes from the hosts file, not the network).
    with PinnedHttpClient(allow_local=False, timeout_s=2.0) as client:
        sender = WebhookSender(destination(f"https://localhost:{receiver.port}/"), SECRETS, client)
        with pytest.raises(PermanentDeliveryError, match=r"refused|resolve"):
            sender.send(payload())
    assert receiver.requests == []


def test_a_name_that_rebinds_to_a_private_address_is_refused_once_the_cache_expires(
    receiver: Receiver,
) -> None:
    answers = iter([["93.184.215.14"], ["10.0.0.1"]])
    now = [1000.0]

    def rebinding(_host: str, _port: int) -> list[str]:
        return next(answers)

    with PinnedHttpClient(
        allow_local=False, timeout_s=2.0, resolve=rebinding, clock=lambda: now[0]
    ) as client:
        url = "https://rebind.example.net/hook"
        first = client.vetted(url)
        assert [str(a) for a in first.addresses] == ["93.184.215.14"]
        now[0] += 30.0
        assert client.vetted(url) is first  # pinned: no second lookup within the TTL
        now[0] += 31.0
        with pytest.raises(PermanentDeliveryError, match=r"10\.0\.0\.1.*refused"):
            WebhookSender(destination(url), SECRETS, client).send(payload())
    assert receiver.requests == []


# HTTPS: the certificate is checked against the host name, not the pinned address


def test_https_to_a_pinned_address_checks_the_certificate_for_the_host_name(
    tmp_path: Path,
) -> None:
    certs = make_certificates(tmp_path, "receiver.test", "other.test")
    table = {"receiver.test": ["127.0.0.1"]}
    with (
        Receiver(tls=certs.server_context()) as tls_receiver,
        PinnedHttpClient(
            allow_local=True, timeout_s=2.0, resolve=resolver(table), ca_certs=str(certs.ca_file)
        ) as client,
    ):
        url = tls_receiver.url("/hook", "receiver.test")
        receipt = WebhookSender(destination(url), SECRETS, client).send(payload())
        assert receipt.detail == "HTTP 200 from receiver.test"
        [got] = tls_receiver.requests
        assert got.server_name == "receiver.test"  # SNI
        assert got.headers["host"] == f"receiver.test:{tls_receiver.port}"
        verify(got.body, got.headers, SECRET.encode())


def test_a_certificate_for_another_name_is_permanent(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path, "receiver.test", "other.test")
    table = {"receiver.test": ["127.0.0.1"]}
    with (
        Receiver(tls=certs.server_context(other=True)) as tls_receiver,
        PinnedHttpClient(
            allow_local=True, timeout_s=2.0, resolve=resolver(table), ca_certs=str(certs.ca_file)
        ) as client,
    ):
        sender = WebhookSender(destination(tls_receiver.url("/", "receiver.test")), SECRETS, client)
        with pytest.raises(PermanentDeliveryError, match=r"certificate of receiver\.test"):
            sender.send(payload())
        assert tls_receiver.requests == []


def test_a_certificate_from_an_untrusted_authority_is_permanent(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path, "receiver.test", "other.test")
    table = {"receiver.test": ["127.0.0.1"]}
    with (
        Receiver(tls=certs.server_context()) as tls_receiver,
        PinnedHttpClient(allow_local=True, timeout_s=2.0, resolve=resolver(table)) as client,
    ):
        sender = WebhookSender(destination(tls_receiver.url("/", "receiver.test")), SECRETS, client)
        with pytest.raises(PermanentDeliveryError, match="does not verify"):
            sender.send(payload())
        assert tls_receiver.requests == []


# Setting up


def test_a_secret_that_cannot_be_opened_is_permanent(client: PinnedHttpClient) -> None:
    with pytest.raises(PermanentDeliveryError, match="signing secret cannot be read"):
        build_sender(
            destination("https://hooks.example.com/"),
            SecretBox([], {}, references=ReferencePolicy()),
            http=client,
            s3_timeout_s=1.0,
            s3_policy=S3Policy(),
        )


@pytest.mark.parametrize("name", ["AUDITLOG_SECRETS_KEY", "AWS_SECRET_ACCESS_KEY", "HOME"])
def test_a_reference_outside_the_policy_is_refused_before_it_is_read(
    client: PinnedHttpClient, name: str
) -> None:
    """A destination written straight into the store, bypassing the command's check: the
    worker refuses to open the reference, and the value never reaches a message."""
    stored = destination("https://hooks.example.com/").model_copy(
        update={
            "target": WebhookTarget(
                url="https://hooks.example.com/", signing_secret=SecretValue(ref=f"env:{name}")
            )
        }
    )
    worker_environment = {name: "the-operators-own-value"}
    with pytest.raises(PermanentDeliveryError, match=f"env:{name} is refused") as refused:
        build_sender(
            stored,
            SecretBox([], worker_environment, references=ReferencePolicy()),
            http=client,
            s3_timeout_s=1.0,
            s3_policy=S3Policy(),
        )
    assert "the-operators-own-value" not in str(refused.value)


def test_the_factory_builds_a_webhook_sender(client: PinnedHttpClient) -> None:
    sender = build_sender(
        destination("https://hooks.example.com/"),
        SECRETS,
        http=client,
        s3_timeout_s=1.0,
        s3_policy=S3Policy(),
    )
    assert isinstance(sender, WebhookSender)
    sender.close()


def test_a_closed_client_refuses_requests(receiver: Receiver) -> None:
    client = PinnedHttpClient(allow_local=True, timeout_s=1.0)
    sender = WebhookSender(destination(receiver.url()), SECRETS, client)
    sender.send(payload())
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        sender.send(payload())
