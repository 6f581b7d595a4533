"""Settings come from AUDITLOG_* variables, once, with clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from auditlog import wiring
from auditlog.cli import main
from auditlog.settings import AuditlogSettings
from deploy.stack.endpoints import S3Keys, StackEndpoints


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP", "CLICKHOUSE_URL", "S3_ENDPOINT", "TEST_STACK", "STACK_DIR"):
        monkeypatch.delenv(f"AUDITLOG_{name}", raising=False)
    settings = AuditlogSettings()
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.clickhouse_url == "http://127.0.0.1:18123"
    assert settings.test_stack == "auto"
    assert settings.stack_dir == Path(".stack")


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITLOG_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("AUDITLOG_TEST_STACK", "external")
    settings = AuditlogSettings()
    assert settings.kafka_bootstrap == "k1:9092,k2:9092"
    assert settings.test_stack == "external"


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITLOG_TEST_STACK", "kubernetes")
    with pytest.raises(ValidationError, match="test_stack"):
        AuditlogSettings()


def test_exports_round_trip_into_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoints = StackEndpoints(
        "127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3", S3Keys("dev", "s3cret-dev")
    )
    for line in endpoints.exports():
        name, value = line.removeprefix("export ").split("=", 1)
        monkeypatch.setenv(name, value)
    settings = AuditlogSettings()
    assert (settings.kafka_bootstrap, settings.clickhouse_url, settings.s3_endpoint) == (
        "127.0.0.1:1",
        "http://127.0.0.1:2",
        "http://127.0.0.1:3",
    )


def test_the_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [
        f"AUDITLOG_{name.upper()}"
        for name in AuditlogSettings.model_fields
        if f"`AUDITLOG_{name.upper()}`" not in readme
    ]
    assert missing == [], f"add these to the README's configuration table: {missing}"


SECRET = "do-not-show-7c41"


def test_kafka_security_settings_reach_every_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    for name, value in {
        "KAFKA_BOOTSTRAP": "b-1.msk.example.com:9096",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "auditlog",
        "KAFKA_SASL_PASSWORD": SECRET,
        "KAFKA_SSL_CA_FILE": str(ca),
    }.items():
        monkeypatch.setenv(f"AUDITLOG_{name}", value)
    settings = AuditlogSettings()
    assert wiring.kafka_connection(settings).properties() == {
        "bootstrap.servers": "b-1.msk.example.com:9096",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "auditlog",
        "sasl.password": SECRET,
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": str(ca),
    }
    for shown in (repr(settings), str(settings), repr(wiring.kafka_connection(settings))):
        assert SECRET not in shown


def test_incoherent_settings_stop_the_command_naming_each_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("AUDITLOG_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("AUDITLOG_KAFKA_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("AUDITLOG_CLICKHOUSE_CA_FILE", str(tmp_path / "missing.pem"))
    assert main(["topics", "show"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "auditlog: AUDITLOG_KAFKA_SASL_MECHANISM is SCRAM-SHA-256 but "
        "AUDITLOG_KAFKA_SECURITY_PROTOCOL is PLAINTEXT, which does not use SASL: set "
        "AUDITLOG_KAFKA_SECURITY_PROTOCOL to SASL_SSL (or SASL_PLAINTEXT on a network you "
        "trust), or unset the mechanism",
        "auditlog: AUDITLOG_KAFKA_SASL_PASSWORD is set without AUDITLOG_KAFKA_SASL_USERNAME: "
        "set the user name too, or unset the password",
        "auditlog: AUDITLOG_CLICKHOUSE_CA_FILE is set but AUDITLOG_CLICKHOUSE_URL is not https://: "
        "use an https URL, or unset it",
    ]
    with pytest.raises(ValidationError) as invalid:
        AuditlogSettings()
    assert SECRET not in str(invalid.value)


def test_clickhouse_tls_files_must_exist_and_go_together(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AUDITLOG_CLICKHOUSE_URL", "https://ch.example.com:8443")
    monkeypatch.setenv("AUDITLOG_CLICKHOUSE_CA_FILE", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("AUDITLOG_CLICKHOUSE_KEY_FILE", str(tmp_path))
    with pytest.raises(ValidationError) as invalid:
        AuditlogSettings()
    [error] = invalid.value.errors()
    assert error["msg"].splitlines() == [
        "AUDITLOG_CLICKHOUSE_KEY_FILE is set without AUDITLOG_CLICKHOUSE_CERT_FILE: give the "
        "client certificate too",
        f"AUDITLOG_CLICKHOUSE_CA_FILE: {tmp_path / 'missing.pem'} does not exist: give the "
        "path of the PEM file",
        f"AUDITLOG_CLICKHOUSE_KEY_FILE: {tmp_path} is not a file: give the path of the PEM file",
    ]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AUDITLOG_VIEWER_FRAME_ANCESTORS", "http://platform.test", "https:// origins"),
        ("AUDITLOG_VIEWER_FRAME_ANCESTORS", "https://a.test; script-src *", "https:// origins"),
        ("AUDITLOG_VIEWER_FRAME_ANCESTORS", "*", "https:// origins"),
        ("AUDITLOG_VIEWER_SESSION_KEY", "short", "at least 32 bytes"),
        ("AUDITLOG_VIEWER_SESSION_TTL_S", "20", "greater than or equal to 60"),
    ],
)
def test_the_page_settings_refuse_unsafe_values(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=message):
        AuditlogSettings()


def test_the_frame_ancestors_take_self_and_https_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITLOG_VIEWER_FRAME_ANCESTORS", " 'self' https://app.example.com:8443 ")
    assert AuditlogSettings().viewer_frame_ancestors == "'self' https://app.example.com:8443"
