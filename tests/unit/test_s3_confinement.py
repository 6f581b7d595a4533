"""An S3 destination cannot make a worker connect where webhooks may not, nor sign with the
worker's own credentials: checked when it sends, whatever the stored destination says.

Name resolution and the socket connect are seams (``S3Policy.resolve`` and ``connect``),
so names like ``s3.rebind.test`` resolve as each test says and no packet leaves the
machine; the tests that do connect reach a receiver on 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sinks.destinations.model import Destination, S3Target, SecretValue
from sinks.destinations.references import ReferencePolicy
from sinks.destinations.secrets import SecretBox
from sinks.senders.base import Payload, PermanentDeliveryError, RetryableDeliveryError
from sinks.senders.factory import S3ClientCache, build_sender
from sinks.senders.http import PinnedHttpClient
from sinks.senders.s3 import S3Sender, make_s3_client
from sinks.senders.s3_confinement import S3Policy, SocketOptions
from tests.unit.http_receiver import Receiver, make_certificates

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
SECRETS = SecretBox(
    [],
    {"AUDITLOG_DEST_SECRET_K": "AKIDLOCAL", "AUDITLOG_DEST_SECRET_S": "local-secret"},
    references=ReferencePolicy(),
)


def keyed(endpoint: str | None, **changes: Any) -> S3Target:
    return S3Target(
        bucket="audit-bucket",
        endpoint_url=endpoint,
        access_key_id=SecretValue(ref="env:AUDITLOG_DEST_SECRET_K"),
        secret_access_key=SecretValue(ref="env:AUDITLOG_DEST_SECRET_S"),
        **changes,
    )


def destination(target: S3Target) -> Destination:
    """As a worker finds it in the store: nothing here went through the command's checks."""
    return Destination(
        id="s3-dest", tenant_id="acme", target=target, created_at=NOW, updated_at=NOW
    )


def payload() -> Payload:
    return Payload(
        tenant_id="acme",
        destination_id="s3-dest",
        topic="audit.events",
        partition=0,
        first_offset=1,
        last_offset=1,
        record_count=1,
        first_event_at=NOW,
        body=b'{"a":1}\n',
        content_type="application/x-ndjson",
        content_encoding=None,
        file_extension="ndjson",
    )


class Dns:
    """Answers each look-up of a name with the next of its answers (the last repeats)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host: str, _port: int) -> list[str]:
        self.asked.append(host)
        queue = self.answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]


class Connects:
    """Records where a socket would be opened, and refuses every one (nothing is sent)."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int]] = []

    def __call__(
        self,
        address: tuple[str, int],
        _timeout: float | None,
        _source: tuple[str, int] | None,
        _options: SocketOptions,
    ) -> socket.socket:
        self.attempts.append(address)
        raise ConnectionRefusedError(111, "Connection refused")


def sender(target: S3Target, policy: S3Policy) -> S3Sender:
    client = make_s3_client(target, SECRETS, tenant_id="acme", policy=policy, timeout_s=2.0)
    return S3Sender(destination(target), client)


@pytest.mark.parametrize(
    ("endpoint", "refused"),
    [
        ("https://127.0.0.1:9000", "127.0.0.1"),
        ("https://169.254.169.254", "169.254.169.254"),
        ("https://[::ffff:169.254.169.254]", "::ffff:a9fe:a9fe"),
        ("https://10.0.0.5", "10.0.0.5"),
        ("https://metadata.internal.test", "169.254.169.254"),
        ("https://mixed.test", "192.168.1.7"),  # one private address among public ones
    ],
)
def test_a_stored_endpoint_that_is_not_public_is_refused_at_send_time(
    endpoint: str, refused: str
) -> None:
    dns = Dns(
        {
            "metadata.internal.test": [["169.254.169.254"]],
            "mixed.test": [["8.8.8.8", "192.168.1.7"]],
        }
    )
    connects = Connects()
    s3 = sender(keyed(endpoint), S3Policy(resolve=dns, connect=connects))
    with pytest.raises(PermanentDeliveryError, match="non-public addresses are refused") as info:
        s3.send(payload())
    s3.close()
    assert refused in str(info.value)
    assert "s3://audit-bucket/" in str(info.value)
    assert connects.attempts == [], "no socket is opened to a refused address"


def test_http_is_refused_outside_local_development() -> None:
    connects = Connects()
    s3 = sender(keyed("http://8.8.8.8"), S3Policy(connect=connects))
    with pytest.raises(PermanentDeliveryError, match="must use https"):
        s3.send(payload())
    s3.close()
    assert connects.attempts == []


def test_a_name_that_resolves_elsewhere_later_is_vetted_again_and_refused() -> None:
    """DNS rebinding: the first connection goes to the address vetted for it (it is
    refused by the fake network, so the pool keeps nothing); when the name later resolves
    to the metadata address, the next connection is refused before any socket opens."""
    dns = Dns({"s3.rebind.test": [["8.8.8.8"], ["169.254.169.254"]]})
    connects = Connects()
    s3 = sender(keyed("https://s3.rebind.test"), S3Policy(resolve=dns, connect=connects))

    with pytest.raises(RetryableDeliveryError, match="Could not connect"):
        s3.send(payload())
    assert connects.attempts == [("8.8.8.8", 443)]

    with pytest.raises(PermanentDeliveryError, match=r"169\.254\.169\.254"):
        s3.send(payload())
    s3.close()
    assert connects.attempts == [("8.8.8.8", 443)]
    assert dns.asked == ["s3.rebind.test", "s3.rebind.test"]


def test_the_factory_and_the_shared_clients_apply_the_policy() -> None:
    connects = Connects()
    policy = S3Policy(connect=connects)
    stored = destination(keyed("https://169.254.169.254"))
    cache = S3ClientCache(policy)
    with PinnedHttpClient(allow_local=False, timeout_s=1.0) as http:
        for shared in (None, cache):
            built = build_sender(
                stored, SECRETS, http=http, s3_timeout_s=1.0, s3_policy=policy, s3_clients=shared
            )
            with pytest.raises(PermanentDeliveryError, match=r"169\.254\.169\.254"):
                built.send(payload())
            built.close()
    cache.close()
    assert connects.attempts == []


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[Receiver, Path]]:
    certificates = make_certificates(tmp_path, "s3.pinned.test", "other.test")
    context = certificates.server_context()
    # botocore sends PUTs with "Expect: 100-continue", which S3 answers and this receiver
    # does not; TLS 1.3's session ticket, arriving after the handshake, would make botocore
    # wait for that answer until its read timeout.
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with Receiver(context) as receiver:
        yield receiver, certificates.ca_file


def test_the_connection_goes_to_the_vetted_address_with_the_host_name_kept(
    tls_receiver: tuple[Receiver, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``s3.pinned.test`` exists only in the test's resolver: the request arrives at the
    address it answered, with the name in ``Host``, in TLS SNI and in the certificate
    botocore verified. Environment proxies are not used (they would see the name, not the
    vetted address)."""
    receiver, ca_file = tls_receiver
    monkeypatch.setenv("AWS_CA_BUNDLE", str(ca_file))
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    dns = Dns({"s3.pinned.test": [["127.0.0.1"]]})
    endpoint = f"https://s3.pinned.test:{receiver.port}"
    s3 = sender(keyed(endpoint), S3Policy(allow_local=True, resolve=dns))

    receipt = s3.send(payload())
    s3.close()

    assert receipt.detail.startswith("s3://audit-bucket/auditlog/acme/s3-dest/")
    [put] = receiver.requests
    assert put.method == "PUT"
    assert put.headers["host"] == f"s3.pinned.test:{receiver.port}"
    assert put.server_name == "s3.pinned.test"
    assert put.path.startswith("/audit-bucket/auditlog/acme/")
    assert dns.asked == ["s3.pinned.test"]


def test_local_addresses_need_local_development_mode(
    tls_receiver: tuple[Receiver, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver, ca_file = tls_receiver
    monkeypatch.setenv("AWS_CA_BUNDLE", str(ca_file))
    dns = Dns({"s3.pinned.test": [["127.0.0.1"]]})
    s3 = sender(keyed(f"https://s3.pinned.test:{receiver.port}"), S3Policy(resolve=dns))
    with pytest.raises(PermanentDeliveryError, match=r"resolves to 127\.0\.0\.1"):
        s3.send(payload())
    s3.close()
    assert receiver.requests == []


# Credentials


def test_the_workers_own_credentials_are_not_lent_unless_allowed() -> None:
    bare = S3Target(bucket="audit-bucket")
    with pytest.raises(PermanentDeliveryError, match="neither access keys nor a role_arn"):
        make_s3_client(bare, SECRETS, tenant_id="acme", policy=S3Policy(), timeout_s=1.0)
    allowed = S3Policy(allow_worker_credentials=True)
    make_s3_client(bare, SECRETS, tenant_id="acme", policy=allowed, timeout_s=1.0).close()


def test_a_stored_external_id_the_service_did_not_choose_is_refused() -> None:
    role = S3Target(
        bucket="audit-bucket",
        role_arn="arn:aws:iam::123456789012:role/someone-elses",
        external_id="auditlog:other-tenant",
    )
    with pytest.raises(PermanentDeliveryError, match="'auditlog:acme' only"):
        make_s3_client(role, SECRETS, tenant_id="acme", policy=S3Policy(), timeout_s=1.0)
    own = role.model_copy(update={"external_id": "auditlog:acme"})
    make_s3_client(own, SECRETS, tenant_id="acme", policy=S3Policy(), timeout_s=1.0).close()


def test_a_reference_outside_the_policy_is_refused_when_the_worker_opens_it() -> None:
    target = keyed(None).model_copy(
        update={"secret_access_key": SecretValue(ref="env:AWS_SECRET_ACCESS_KEY")}
    )
    worker = SecretBox(
        [],
        {"AUDITLOG_DEST_SECRET_K": "AKIDLOCAL", "AWS_SECRET_ACCESS_KEY": "workers-own"},
        references=ReferencePolicy(),
    )
    with pytest.raises(PermanentDeliveryError, match="env:AWS_SECRET_ACCESS_KEY is refused") as e:
        make_s3_client(target, worker, tenant_id="acme", policy=S3Policy(), timeout_s=1.0)
    assert "workers-own" not in str(e.value)
