"""KafkaSecurity: librdkafka properties per protocol and mechanism, incoherent combinations
found with the setting named, secrets never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from auditlog.commands.topics import _remedies
from runtime.kafka_connection import KafkaConnection, KafkaSecurity
from runtime.topic_drift import Drift

PASSWORD = "pa55-word-7d1e"
CLIENT_SECRET = "client-secret-93c0"
KEY_PASSWORD = "key-password-5b2a"


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "file.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def test_plaintext_adds_only_the_protocol() -> None:
    assert KafkaConnection("k1:9092,k2:9092").properties() == {
        "bootstrap.servers": "k1:9092,k2:9092",
        "security.protocol": "PLAINTEXT",
    }


def test_sasl_ssl_scram_with_a_private_ca(pem: Path) -> None:
    security = KafkaSecurity(
        "SASL_SSL", "SCRAM-SHA-512", "alice", SecretStr(PASSWORD), ssl_ca_file=pem
    )
    assert security.problems() == []
    assert security.properties() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice",
        "sasl.password": PASSWORD,
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": str(pem),
    }


def test_mutual_tls_with_an_encrypted_key_and_no_hostname_check(pem: Path) -> None:
    security = KafkaSecurity(
        "SSL",
        ssl_cert_file=pem,
        ssl_key_file=pem,
        ssl_key_password=SecretStr(KEY_PASSWORD),
        ssl_verify_hostname=False,
    )
    assert security.problems() == []
    assert security.properties() == {
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "none",
        "ssl.certificate.location": str(pem),
        "ssl.key.location": str(pem),
        "ssl.key.password": KEY_PASSWORD,
    }


def test_oauthbearer_uses_librdkafkas_oidc_client_credentials() -> None:
    security = KafkaSecurity(
        "SASL_SSL",
        "OAUTHBEARER",
        oauth_token_url="https://idp.example.com/oauth2/token",
        oauth_client_id="auditlog",
        oauth_client_secret=SecretStr(CLIENT_SECRET),
        oauth_scope="kafka",
        oauth_extensions="logicalCluster=lkc-123,identityPoolId=pool-4",
    )
    assert security.problems() == []
    assert security.properties() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "OAUTHBEARER",
        "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.token.endpoint.url": "https://idp.example.com/oauth2/token",
        "sasl.oauthbearer.client.id": "auditlog",
        "sasl.oauthbearer.client.secret": CLIENT_SECRET,
        "sasl.oauthbearer.scope": "kafka",
        "sasl.oauthbearer.extensions": "logicalCluster=lkc-123,identityPoolId=pool-4",
        "ssl.endpoint.identification.algorithm": "https",
    }


def test_confluent_cloud_style_sasl_plain_over_system_cas() -> None:
    security = KafkaSecurity("SASL_SSL", "PLAIN", "API-KEY", SecretStr(PASSWORD))
    assert security.problems() == []
    assert "ssl.ca.location" not in security.properties()


def _named(field: str) -> str:
    return f"AUDITLOG_KAFKA_{field.upper()}"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"sasl_mechanism": "SCRAM-SHA-512"},
            [
                "AUDITLOG_KAFKA_SASL_MECHANISM is SCRAM-SHA-512 but "
                "AUDITLOG_KAFKA_SECURITY_PROTOCOL is PLAINTEXT, which does not use SASL: set "
                "AUDITLOG_KAFKA_SECURITY_PROTOCOL to SASL_SSL"
            ],
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": PASSWORD},
            ["AUDITLOG_KAFKA_SECURITY_PROTOCOL is SASL_SSL: set AUDITLOG_KAFKA_SASL_MECHANISM"],
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_password": PASSWORD},
            ["AUDITLOG_KAFKA_SASL_PASSWORD is set without AUDITLOG_KAFKA_SASL_USERNAME"],
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256"},
            [
                "SASL mechanism SCRAM-SHA-256 needs a user name and a password: set "
                "AUDITLOG_KAFKA_SASL_USERNAME and AUDITLOG_KAFKA_SASL_PASSWORD"
            ],
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            ["SASL mechanism PLAIN needs a password: set AUDITLOG_KAFKA_SASL_PASSWORD"],
        ),
        (
            {"security_protocol": "SSL", "sasl_username": "u"},
            ["AUDITLOG_KAFKA_SASL_USERNAME is only used with SASL mechanism PLAIN"],
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "OAUTHBEARER",
                "oauth_client_id": "c",
            },
            [
                "SASL mechanism OAUTHBEARER gets its tokens from an OIDC token endpoint with "
                "client credentials: "
                "set AUDITLOG_KAFKA_OAUTH_TOKEN_URL, AUDITLOG_KAFKA_OAUTH_CLIENT_SECRET"
            ],
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "OAUTHBEARER",
                "oauth_token_url": "idp.example.com/token",
                "oauth_client_id": "c",
                "oauth_client_secret": CLIENT_SECRET,
                "oauth_extensions": "logicalCluster lkc-1",
            },
            [
                "AUDITLOG_KAFKA_OAUTH_TOKEN_URL must be an https:// URL",
                "AUDITLOG_KAFKA_OAUTH_EXTENSIONS must be comma-separated key=value pairs",
            ],
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "OAUTHBEARER",
                "oauth_token_url": "http://idp.example.com/token",
                "oauth_client_id": "c",
                "oauth_client_secret": CLIENT_SECRET,
            },
            ["AUDITLOG_KAFKA_OAUTH_TOKEN_URL must be an https:// URL"],
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "u",
                "sasl_password": PASSWORD,
                "oauth_scope": "kafka",
            },
            ["AUDITLOG_KAFKA_OAUTH_SCOPE is only used with SASL mechanism OAUTHBEARER"],
        ),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "u",
                "sasl_password": PASSWORD,
                "ssl_ca_file": "PEM",
            },
            [
                "AUDITLOG_KAFKA_SSL_CA_FILE is set but AUDITLOG_KAFKA_SECURITY_PROTOCOL is "
                "SASL_PLAINTEXT, which does not use TLS: set it to SSL or SASL_SSL"
            ],
        ),
        (
            {"security_protocol": "SSL", "ssl_cert_file": "PEM"},
            ["AUDITLOG_KAFKA_SSL_CERT_FILE is set without AUDITLOG_KAFKA_SSL_KEY_FILE"],
        ),
        (
            {"security_protocol": "SSL", "ssl_key_file": "PEM", "ssl_key_password": KEY_PASSWORD},
            ["AUDITLOG_KAFKA_SSL_KEY_FILE is set without AUDITLOG_KAFKA_SSL_CERT_FILE"],
        ),
        (
            {"security_protocol": "SSL", "ssl_key_password": KEY_PASSWORD},
            ["AUDITLOG_KAFKA_SSL_KEY_PASSWORD is set without AUDITLOG_KAFKA_SSL_KEY_FILE"],
        ),
        (
            {"security_protocol": "SSL", "ssl_ca_file": "MISSING"},
            ["AUDITLOG_KAFKA_SSL_CA_FILE: {missing} does not exist: give the path of the PEM"],
        ),
        (
            {"security_protocol": "SSL", "ssl_cert_file": "DIR", "ssl_key_file": "PEM"},
            ["AUDITLOG_KAFKA_SSL_CERT_FILE: {dir} is not a file"],
        ),
    ],
)
def test_incoherent_settings_are_each_named_with_what_to_do(
    values: dict[str, Any], expected: list[str], pem: Path
) -> None:
    places = {"PEM": pem, "MISSING": pem.parent / "missing.pem", "DIR": pem.parent}

    def typed(name: str, value: str) -> Any:
        if name.endswith("_file"):
            return places[value]
        return SecretStr(value) if "password" in name or "secret" in name else value

    found = KafkaSecurity(**{k: typed(k, v) for k, v in values.items()}).problems(_named)
    wanted = [e.format(missing=places["MISSING"], dir=places["DIR"]) for e in expected]
    assert len(found) == len(wanted), found
    for problem, start in zip(found, wanted, strict=True):
        assert problem.startswith(start), problem
    for secret in (PASSWORD, CLIENT_SECRET, KEY_PASSWORD):
        assert not any(secret in problem for problem in found)


def test_a_ca_directory_is_accepted(tmp_path: Path) -> None:
    assert KafkaSecurity("SSL", ssl_ca_file=tmp_path).problems() == []


def test_secrets_never_show_in_repr_str_or_description(pem: Path) -> None:
    connection = KafkaConnection(
        "k:9093",
        KafkaSecurity(
            "SASL_SSL",
            "SCRAM-SHA-512",
            "alice",
            SecretStr(PASSWORD),
            oauth_client_secret=SecretStr(CLIENT_SECRET),
            ssl_cert_file=pem,
            ssl_key_file=pem,
            ssl_key_password=SecretStr(KEY_PASSWORD),
        ),
    )
    shown = [repr(connection), str(connection), repr(connection.security), f"{connection}"]
    for secret in (PASSWORD, CLIENT_SECRET, KEY_PASSWORD):
        assert not any(secret in text for text in shown)
    assert str(connection) == "k:9093 (SASL_SSL, SCRAM-SHA-512 as alice, client certificate)"


def test_topic_fixes_printed_for_a_secured_cluster_ask_for_its_client_settings() -> None:
    drift = [Drift("audit.events", "retention.ms", "604800000", "86400000", "retention")]
    plain = _remedies(KafkaConnection("k:9092"), "audit.events", drift, events=True)
    secured = _remedies(
        KafkaConnection("k:9096", KafkaSecurity("SSL")), "audit.events", drift, events=True
    )
    assert "--command-config" not in plain[0]
    assert secured[0].startswith(
        "fix: kafka-configs.sh --bootstrap-server k:9096 --command-config client.properties"
    )
