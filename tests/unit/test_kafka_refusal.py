"""Which librdkafka errors mean "Kafka refuses this client for good", and what the error
says then (the real broker's answers are in tests/stack/test_kafka_security.py)."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import KafkaError, Message
from pydantic import SecretStr

from producers.config import ProducerConfig
from producers.producer import AuditProducer
from runtime.kafka_connection import KafkaConnection, KafkaSecurity
from runtime.kafka_refusal import KafkaRefusedError, Refusal, check_kafka, refusal
from tests.unit.http_receiver import closed_port

BROKER = "sasl_ssl://k1:9096/bootstrap"


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (
            KafkaError._AUTHENTICATION,
            f"{BROKER}: SASL authentication error: Authentication failed during authentication "
            "due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 312ms in "
            "state AUTH_REQ)",
            Refusal(
                "authentication",
                f"{BROKER}: SASL authentication error: Authentication failed during "
                "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
            ),
        ),
        (
            KafkaError._SSL,
            f"{BROKER}: SSL handshake failed: error:0A000086:SSL routines::certificate verify "
            "failed (after 3ms in state SSL_HANDSHAKE)",
            Refusal(
                "server_certificate",
                f"{BROKER}: SSL handshake failed: error:0A000086:SSL routines::certificate "
                "verify failed",
            ),
        ),
        (
            KafkaError._TRANSPORT,
            "ssl://k1:9094/bootstrap: Receive failed: error:0A000412:SSL routines::ssl/tls "
            "alert bad certificate: SSL alert number 42 (after 0ms in state APIVERSION_QUERY)",
            Refusal(
                "client_certificate",
                "ssl://k1:9094/bootstrap: Receive failed: error:0A000412:SSL routines::ssl/tls "
                "alert bad certificate: SSL alert number 42",
            ),
        ),
        (KafkaError._TRANSPORT, "k1:9092/bootstrap: Connect to ipv4#10.0.0.1:9092 failed", None),
        (KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down", None),
        (KafkaError._TIMED_OUT, "request timed out", None),
    ],
)
def test_only_credentials_and_certificates_are_refusals(
    code: int, text: str, expected: Refusal | None
) -> None:
    assert refusal(KafkaError(code, text)) == expected


def test_the_error_names_the_connection_and_advice_but_no_secret() -> None:
    connection = KafkaConnection(
        "k1:9096", KafkaSecurity("SASL_SSL", "PLAIN", "API-KEY", SecretStr("api-secret-x1"))
    )
    error = KafkaRefusedError(
        connection, Refusal("authentication", "SASL authentication error"), "check the key"
    )
    assert str(error) == (
        "Kafka at k1:9096 (SASL_SSL, PLAIN as API-KEY) refused the connection: "
        "SASL authentication error; check the key"
    )
    assert error.kind == "authentication"


def test_a_broker_that_is_down_is_not_a_refusal() -> None:
    with closed_port() as refusing:  # held bound: nothing else can listen there meanwhile
        port = refusing.getsockname()[1]
        assert check_kafka(KafkaConnection(f"127.0.0.1:{port}"), timeout_s=5) is False


class _RecordingClient:
    """Stands in for the SDK's librdkafka producer: records purges; polls do nothing."""

    def __init__(self) -> None:
        self.purges = 0

    def purge(self, **_flags: bool) -> None:
        self.purges += 1

    def poll(self, timeout: float) -> int:
        threading.Event().wait(timeout)  # a client with nothing to report
        return 0


def test_the_producer_purges_only_on_refusals_in_a_row() -> None:
    """One broker refusing while others deliver must not fail every queued event: only a
    refusal repeated with no delivery in between does, and a delivery resets it."""
    with closed_port() as refusing:
        config = ProducerConfig(
            KafkaConnection(f"127.0.0.1:{refusing.getsockname()[1]}"), topic="t"
        )
        producer = AuditProducer(config)
        real, fake = producer._producer, _RecordingClient()
        producer._producer = fake  # type: ignore[assignment]
        refused = KafkaError(
            KafkaError._AUTHENTICATION,
            f"{BROKER}: SASL authentication error: Authentication failed",
        )
        try:
            producer._on_client_error(refused)
            assert fake.purges == 0
            producer._report_delivery("e-1", "acme", None, None, Message(topic="t", offset=1))
            producer._on_client_error(refused)
            assert fake.purges == 0, "a delivery in between: the cluster still takes us"
            producer._on_client_error(refused)
            assert fake.purges == 1
        finally:
            producer._producer = real
            producer.close(timeout_s=5)
