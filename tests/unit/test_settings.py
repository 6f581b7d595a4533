"""Settings come from AUDITLOG_* variables, once, with clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from auditlog.settings import AuditlogSettings
from deploy.stack.endpoints import StackEndpoints


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
    endpoints = StackEndpoints("127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3")
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
