"""A broker of the Kafka security tests' own, with a SASL_SSL (SCRAM, PLAIN) listener and a
mutual-TLS listener, and the certificates it needs, made at test time."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditlog.settings import AuditlogSettings
from deploy.stack import certificates, kafka, processes
from deploy.stack.certificates import Issued

USER = "auditlog-test"
CLIENT_KEY_PASSWORD = "client-key-password"


@dataclass(frozen=True)
class SecureKafka:
    """Where the secure broker listens and what a client needs to reach it."""

    plaintext: str  # for test setup only
    sasl_ssl: str
    mtls: str
    ca_file: Path
    other_ca_file: Path  # a CA that did not sign the broker's certificate
    client: Issued  # its key is encrypted with CLIENT_KEY_PASSWORD
    password: str = field(repr=False)

    def sasl_env(self, **overrides: str) -> dict[str, str]:
        """``AUDITLOG_*`` variables for SASL_SSL with SCRAM-SHA-512 (upper-case overrides,
        without the prefix)."""
        env = {
            "KAFKA_BOOTSTRAP": self.sasl_ssl,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": USER,
            "KAFKA_SASL_PASSWORD": self.password,
            "KAFKA_SSL_CA_FILE": str(self.ca_file),
        }
        env.update(overrides)
        return {f"AUDITLOG_{name}": value for name, value in env.items()}

    def mtls_env(self) -> dict[str, str]:
        """``AUDITLOG_*`` variables for the SSL listener with the client certificate."""
        env = {
            "KAFKA_BOOTSTRAP": self.mtls,
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CA_FILE": str(self.ca_file),
            "KAFKA_SSL_CERT_FILE": str(self.client.cert_file),
            "KAFKA_SSL_KEY_FILE": str(self.client.key_file),
            "KAFKA_SSL_KEY_PASSWORD": CLIENT_KEY_PASSWORD,
        }
        return {f"AUDITLOG_{name}": value for name, value in env.items()}

    def settings(self, env: dict[str, str], **values: Any) -> AuditlogSettings:
        """Settings from ``env`` (as :meth:`sasl_env` gives) and ``values``."""
        fields = {
            name.removeprefix("AUDITLOG_").lower(): value
            for name, value in env.items()
            if name.startswith("AUDITLOG_")
        }
        return AuditlogSettings(**{**fields, **values})


@contextlib.contextmanager
def secure_kafka(root: Path, cache_dir: Path) -> Iterator[SecureKafka]:
    """Make a CA, the broker's and a client's certificates under ``root``, start a broker
    with the secure listeners, and stop it when the block ends."""
    certs = root / "certs"
    authority = certificates.new_authority(certs)
    other = certificates.new_authority(certs, "some other CA")
    server = certificates.issue(
        authority, certs, "broker", server_names=certificates.LOOPBACK_NAMES
    )
    client = certificates.issue(
        authority, certs, "auditlog client", key_password=CLIENT_KEY_PASSWORD
    )
    password = secrets.token_urlsafe(18)
    taken: list[int] = []
    for _ in range(4):
        taken.append(processes.choose_port(0, taken=taken))
    ports = kafka.KafkaPorts(broker=taken[0], controller=taken[1])
    listeners = kafka.SecureListeners(
        sasl_ssl_port=taken[2],
        mtls_port=taken[3],
        keystore_file=certificates.pem_keystore(server, certs / "broker.keystore.pem"),
        ca_file=authority.cert_file,
        users=(kafka.SaslUser(USER, password),),
    )
    data_dir = root / "kafka"
    try:
        kafka.start_kafka(
            data_dir=data_dir, cache_dir=cache_dir, ports=ports, heap_mb=384, secure=listeners
        )
        yield SecureKafka(
            plaintext=ports.bootstrap,
            sasl_ssl=f"127.0.0.1:{listeners.sasl_ssl_port}",
            mtls=f"127.0.0.1:{listeners.mtls_port}",
            ca_file=authority.cert_file,
            other_ca_file=other.cert_file,
            client=client,
            password=password,
        )
    finally:
        kafka.stop_kafka(data_dir)
