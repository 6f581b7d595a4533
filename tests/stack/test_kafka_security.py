"""Every Kafka client of the product through a broker's SASL_SSL (SCRAM) and mutual-TLS
listeners, with certificates made for the test; and one clear error, quickly, when Kafka
refuses the password or we do not trust its certificate."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from consumers.migrations import apply_pending
from deploy.stack.endpoints import StackEndpoints
from producers.config import ProducerConfig
from producers.delivery import DeliveryError
from producers.producer import AuditProducer
from runtime.kafka_connection import KafkaConnection, KafkaSecurity
from runtime.kafka_refusal import KafkaRefusedError, check_kafka
from sinks.reader import PartitionReader
from tests.events import valid_event
from tests.stack.secure_kafka import USER, SecureKafka, secure_kafka
from tests.stack.sink_support import (
    drop_topics,
    publish,
    put_destinations,
    running_worker,
    sink_settings,
    tenant_events,
    webhook_destination,
    webhook_receiver,
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
WRONG_PASSWORD = "not-the-password-3f9a"


@pytest.fixture(scope="module")
def broker(
    settings: AuditlogSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureKafka]:
    with secure_kafka(tmp_path_factory.mktemp("secure-kafka"), settings.cache_dir.resolve()) as b:
        yield b


def _topics_env(suffix: str) -> dict[str, str]:
    return {
        "AUDITLOG_EVENTS_TOPIC": f"test.secure.{suffix}",
        "AUDITLOG_DEAD_LETTER_TOPIC": f"test.secure.{suffix}.dlq",
        "AUDITLOG_DESTINATIONS_TOPIC": f"test.secure.{suffix}.destinations",
        "AUDITLOG_SINK_PROGRESS_TOPIC": f"test.secure.{suffix}.progress",
        "AUDITLOG_ACCOUNTS_TOPIC": f"test.secure.{suffix}.accounts",
        "AUDITLOG_TOPIC_PARTITIONS": "3",
    }


def _auditlog(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command with ``env`` on top of a clean environment (no AUDITLOG_* of ours).
    Its timeout is the "no hang" check: a refused connection must not wait out Kafka."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLOG_")}
    return subprocess.run(
        [sys.executable, "-m", "auditlog.cli", *args],
        env={**environment, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_topics_producer_and_writer_work_through_sasl_ssl_scram(
    broker: SecureKafka, stack_endpoints: StackEndpoints
) -> None:
    suffix = uuid.uuid4().hex[:10]
    env = {**broker.sasl_env(), **_topics_env(suffix)}

    ensured = _auditlog(env, "topics", "ensure")
    assert ensured.returncode == 0, ensured.stderr
    assert ensured.stdout.count("created") == 5

    settings = broker.settings(
        env, clickhouse_url=stack_endpoints.clickhouse_url, clickhouse_database=f"sec_{suffix}"
    )
    clickhouse = wiring.clickhouse_client(settings)
    apply_pending(clickhouse, database=settings.clickhouse_database)
    try:
        with wiring.audit_producer(settings, client_id="test-secure") as producer:
            ids = {producer.publish(valid_event()) for _ in range(50)}
        writer, dead_letters = wiring.writer(settings, exit_when_idle_s=1.0)
        try:
            stats = writer.run()
        finally:
            dead_letters.close()
        assert stats.rows == 50
        stored = clickhouse.query(
            f"SELECT toString(event_id) FROM {settings.clickhouse_database}.events"
        ).result_rows
        assert {row[0] for row in stored} == ids
    finally:
        clickhouse.command(f"DROP DATABASE IF EXISTS {settings.clickhouse_database}")
        drop_topics(settings)


def test_a_sink_worker_streams_through_sasl_ssl_scram(
    broker: SecureKafka, stack_endpoints: StackEndpoints, monkeypatch: Any
) -> None:
    env = broker.sasl_env()
    security = {
        name.removeprefix("AUDITLOG_").lower(): value
        for name, value in env.items()
        if name != "AUDITLOG_KAFKA_BOOTSTRAP"
    }
    endpoints = dataclasses.replace(stack_endpoints, kafka_bootstrap=broker.sasl_ssl)
    settings = sink_settings(endpoints, **security)
    try:
        with webhook_receiver() as receiver:
            hook = webhook_destination("acme", receiver.url + "/acme")
            put_destinations(settings, hook)  # the destination store writes and reads
            ids = publish(settings, tenant_events("acme", 40))
            with running_worker(settings, monkeypatch):
                receiver.wait_for_ids(set(ids), "/acme")
        assert sorted(receiver.ids("/acme")) == sorted(ids)
    finally:
        drop_topics(settings)


def test_mutual_tls_publishes_and_reads_with_a_client_certificate(broker: SecureKafka) -> None:
    topic = f"test.mtls.{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": broker.plaintext})
    admin.create_topics([NewTopic(topic, 1)])[topic].result(timeout=30)
    kafka = wiring.kafka_connection(broker.settings(broker.mtls_env()))
    try:
        with AuditProducer(ProducerConfig(kafka, topic=topic)) as producer:
            sent = [producer.publish(valid_event()) for _ in range(5)]
        reader = PartitionReader.connect(kafka, topic, 0, 0, client_id="test-mtls")
        read: list[Any] = []

        def all_read() -> bool:
            read.extend(reader.read(100))
            return len(read) >= len(sent)

        try:
            wait_until(all_read, 120, "the records, through the mTLS listener")
        finally:
            reader.close()
        assert [dict(m.headers() or [])["auditlog-event-id"].decode() for m in read] == sent
    finally:
        admin.delete_topics([topic])[topic].result(timeout=30)


def test_without_a_client_certificate_the_mtls_listener_refuses(broker: SecureKafka) -> None:
    without = KafkaConnection(broker.mtls, KafkaSecurity("SSL", ssl_ca_file=broker.ca_file))
    with pytest.raises(KafkaRefusedError, match="client certificate") as refused:
        check_kafka(without)
    assert refused.value.kind == "client_certificate"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"])
def test_every_password_mechanism_authenticates(broker: SecureKafka, mechanism: str) -> None:
    settings = broker.settings(broker.sasl_env(KAFKA_SASL_MECHANISM=mechanism))
    assert check_kafka(wiring.kafka_connection(settings))


def test_a_wrong_password_is_one_clear_error_from_the_command(broker: SecureKafka) -> None:
    env = {**broker.sasl_env(KAFKA_SASL_PASSWORD=WRONG_PASSWORD), **_topics_env("refused")}
    done = _auditlog(env, "topics", "ensure", "--timeout-s", "600")
    assert done.returncode == 17  # credentials refused (auditlog/exit_codes.py)
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"auditlog: Kafka at {broker.sasl_ssl} (SASL_SSL, SCRAM-SHA-512 as")
    assert "Authentication failed" in line
    assert "AUDITLOG_KAFKA_SASL_PASSWORD" in line
    assert WRONG_PASSWORD not in line


def test_an_untrusted_broker_certificate_stops_the_writer_with_one_clear_error(
    broker: SecureKafka, stack_endpoints: StackEndpoints
) -> None:
    env = {
        **broker.sasl_env(KAFKA_SSL_CA_FILE=str(broker.other_ca_file)),
        **_topics_env("untrusted"),
        "AUDITLOG_CLICKHOUSE_URL": stack_endpoints.clickhouse_url,
        "AUDITLOG_METRICS_PORT": "0",
    }
    done = _auditlog(env, "consume")
    assert done.returncode == 17  # certificate refused (auditlog/exit_codes.py)
    [line] = done.stderr.splitlines()
    assert "certificate verify failed" in line
    assert "AUDITLOG_KAFKA_SSL_CA_FILE" in line
    assert broker.password not in line


def test_the_producer_fails_queued_events_at_once_when_refused(broker: SecureKafka) -> None:
    settings = broker.settings(broker.sasl_env(KAFKA_SASL_PASSWORD=WRONG_PASSWORD))
    config = ProducerConfig(
        wiring.kafka_connection(settings), topic="never.created", delivery_timeout_s=300
    )
    producer = AuditProducer(config)
    queued = [producer.publish(valid_event()) for _ in range(3)]
    with pytest.raises(DeliveryError) as failed:
        producer.close(timeout_s=30)  # well before the delivery timeout
    report = failed.value.report
    assert sorted(r.event_id for r in report.failed) == sorted(queued)
    assert report.pending == 0
    for result in report.failed:
        assert result.error is not None
        assert result.error.startswith("Kafka refused the connection")
        assert "Authentication failed" in result.error
        assert WRONG_PASSWORD not in result.error


def test_secrets_stay_out_of_what_the_settings_show(broker: SecureKafka) -> None:
    settings = broker.settings(broker.sasl_env())
    kafka = wiring.kafka_connection(settings)
    for shown in (repr(settings), str(settings), repr(kafka), str(kafka)):
        assert broker.password not in shown
    assert str(kafka) == f"{broker.sasl_ssl} (SASL_SSL, SCRAM-SHA-512 as {USER})"
    assert kafka.security.sasl_password == SecretStr(broker.password)
