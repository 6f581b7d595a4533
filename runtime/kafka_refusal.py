"""Kafka refusing a client for good: wrong credentials, an untrusted certificate.

librdkafka treats a failed SASL authentication or TLS handshake like any broken
connection: it reports it to the client's error callback, logs it, and tries again every
few hundred milliseconds, forever, while produce and poll calls wait for a connection that
will never come. :func:`refusal` picks out these errors; :func:`check_kafka` asks a cluster
for its metadata once, with a quiet client, and raises :class:`KafkaRefusedError` as soon
as one arrives, so a command stops with one clear sentence instead of a hang and a log
flood.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from runtime.kafka_connection import KafkaConnection

RefusalKind = Literal["authentication", "server_certificate", "client_certificate"]

_HINTS: dict[RefusalKind, str] = {
    "authentication": "check the SASL mechanism, user name and password",
    "server_certificate": (
        "the broker's certificate is not trusted: give the CA file that signed it "
        "(or check the host name it was issued for)"
    ),
    "client_certificate": (
        "the broker refused the TLS handshake: it may require a client certificate "
        "signed by a CA it trusts"
    ),
}
_METADATA_WAIT_S = 0.5
# librdkafka ends its connection errors with "(after 321ms in state AUTH_REQ)": noise here.
_AFTER = re.compile(r"\s*\(after \d+ms in state \w+\)$")


@dataclass(frozen=True)
class Refusal:
    """What kind of refusal, and librdkafka's own sentence about it."""

    kind: RefusalKind
    detail: str


class KafkaRefusedError(ConnectionError):
    """Kafka refused this client (credentials, certificates): retrying will not help.
    ``kind`` says which settings to look at; the message never holds a secret."""

    def __init__(
        self, connection: KafkaConnection, refused: Refusal, hint: str | None = None
    ) -> None:
        super().__init__(
            f"Kafka at {connection} refused the connection: {refused.detail}; "
            f"{hint or _HINTS[refused.kind]}"
        )
        self.kind: RefusalKind = refused.kind


def refusal(error: KafkaError) -> Refusal | None:
    """The refusal ``error`` reports, or None for errors that may pass (a broker down, a
    timeout). librdkafka reports a failed SASL exchange as ``_AUTHENTICATION``, a broker
    certificate it cannot verify as ``_SSL``, and a TLS alert sent by the broker (no
    client certificate, or one it does not trust) as a transport error naming the alert."""
    code, text = error.code(), _AFTER.sub("", error.str())
    if code == KafkaError._AUTHENTICATION:
        return Refusal("authentication", text)
    if code == KafkaError._SSL:
        return Refusal("server_certificate", text)
    if code == KafkaError._TRANSPORT and "ssl/tls alert" in text.lower():
        return Refusal("client_certificate", text)
    return None


def check_kafka(
    connection: KafkaConnection,
    *,
    timeout_s: float = 10.0,
    hints: Mapping[RefusalKind, str] | None = None,
) -> bool:
    """Ask the cluster for its metadata with a client that logs nothing.

    Returns True once a broker answered, False when none answered within ``timeout_s`` or
    all are down. Raises as :func:`cluster_topics`, which it calls.
    """
    return cluster_topics(connection, timeout_s=timeout_s, hints=hints) is not None


def cluster_topics(
    connection: KafkaConnection,
    *,
    timeout_s: float = 10.0,
    hints: Mapping[RefusalKind, str] | None = None,
) -> frozenset[str] | None:
    """The names of the cluster's topics, asked with a client that logs nothing.

    Returns them once a broker answered, None when none answered within ``timeout_s`` or
    all are down (a closed port: at once). Raises :class:`KafkaRefusedError` as soon as
    Kafka refuses the credentials or certificates (within about a second), its advice
    taken from ``hints`` when given (the command line names its settings there). Blocks at
    most about ``timeout_s``.
    """
    errors: list[KafkaError] = []
    quiet: dict[str, Any] = {"log_level": 0, "error_cb": errors.append}
    admin = AdminClient({**connection.properties(), **quiet})
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            wait_s = max(0.0, min(_METADATA_WAIT_S, deadline - time.monotonic()))
            metadata = admin.list_topics(timeout=wait_s)
            if metadata.brokers:
                return frozenset(metadata.topics)
        except KafkaException:
            pass
        admin.poll(0)  # serves the error callbacks queued meanwhile
        for error in errors:
            found = refusal(error)
            if found is not None:
                raise KafkaRefusedError(connection, found, (hints or {}).get(found.kind))
        if time.monotonic() >= deadline or any(
            e.code() == KafkaError._ALL_BROKERS_DOWN for e in errors
        ):
            return None
        errors.clear()
