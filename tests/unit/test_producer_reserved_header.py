"""The producer SDK never publishes a record carrying the integrity log's reserved header:
events published through it are always events to the writer, the appender and the sinks."""

from __future__ import annotations

import pytest

from producers.config import ProducerConfig
from producers.delivery import PublishError
from producers.producer import AuditProducer
from runtime.kafka_connection import KafkaConnection
from schemas.headers import INTEGRITY_VALUE, RECORD_KIND
from tests.unit.http_receiver import closed_port


class _RecordingClient:
    def __init__(self) -> None:
        self.produced = 0

    def produce(self, *_args: object, **_kwargs: object) -> None:
        self.produced += 1

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        return 0

    def __len__(self) -> int:
        return 0


@pytest.mark.parametrize("value", [INTEGRITY_VALUE, b"anything"])
def test_an_event_with_the_reserved_header_is_refused_with_a_clear_error(value: bytes) -> None:
    with closed_port() as refusing:
        config = ProducerConfig(
            KafkaConnection(f"127.0.0.1:{refusing.getsockname()[1]}"), topic="t"
        )
        producer = AuditProducer(config)
        real, fake = producer._producer, _RecordingClient()
        producer._producer = fake  # type: ignore[assignment]
        try:
            with pytest.raises(PublishError, match="reserved for the integrity log"):
                producer._produce(
                    b"value",
                    b"acme",
                    [("auditlog-tenant", b"acme"), (RECORD_KIND, value)],
                    lambda _err, _msg: None,
                    "e-1",
                )
            assert fake.produced == 0
            producer._produce(
                b"value", b"acme", [("auditlog-tenant", b"acme")], lambda _e, _m: None, "e-2"
            )
            assert fake.produced == 1
        finally:
            producer._producer = real
            producer.close(timeout_s=5)
