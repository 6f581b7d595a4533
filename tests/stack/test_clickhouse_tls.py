"""ClickHouse over https with a private CA and a client certificate: the development
gateway serves TLS with certificates made for the test; the product connects with the
CA and refuses, with one clear error, without it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditlog import wiring
from auditlog.cli import main
from auditlog.settings import AuditlogSettings
from consumers.clickhouse_connection import ClickHouseTlsError
from deploy.stack import certificates, clickhouse, processes
from deploy.stack.certificates import Authority, Issued

pytestmark = pytest.mark.stack


@dataclass(frozen=True)
class TlsGateway:
    url: str  # with the user a client certificate logs in as
    authority: Authority
    client: Issued


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsGateway]:
    """A gateway of this module's own serving https, requiring client certificates."""
    root = tmp_path_factory.mktemp("clickhouse-tls")
    authority = certificates.new_authority(root / "certs")
    server = certificates.issue(
        authority, root / "certs", "gateway", server_names=certificates.LOOPBACK_NAMES
    )
    client = certificates.issue(authority, root / "certs", "auditlog")
    port = processes.choose_port(0)
    tls = clickhouse.GatewayTls(server.cert_file, server.key_file, authority.cert_file)
    clickhouse.start_clickhouse(data_dir=root / "clickhouse", port=port, tls=tls)
    try:
        yield TlsGateway(f"https://auditlog@127.0.0.1:{port}", authority, client)
    finally:
        clickhouse.stop_clickhouse(root / "clickhouse")


def _settings(gateway: TlsGateway, *, ca: Path | None, client: bool) -> AuditlogSettings:
    return AuditlogSettings(
        clickhouse_url=gateway.url,
        clickhouse_ca_file=ca,
        clickhouse_cert_file=gateway.client.cert_file if client else None,
        clickhouse_key_file=gateway.client.key_file if client else None,
    )


def test_connects_with_the_ca_and_the_client_certificate(gateway: TlsGateway) -> None:
    settings = _settings(gateway, ca=gateway.authority.cert_file, client=True)
    client = wiring.clickhouse_client(settings)
    assert client.command("SELECT 1") == 1


def test_an_untrusted_certificate_is_one_clear_error(gateway: TlsGateway) -> None:
    with pytest.raises(ClickHouseTlsError) as refused:
        wiring.clickhouse_client(_settings(gateway, ca=None, client=True))
    message = str(refused.value)
    assert message.startswith("TLS handshake with 127.0.0.1:")
    assert "certificate verify failed" in message or "self-signed certificate" in message
    assert "AUDITLOG_CLICKHOUSE_CA_FILE" in message


def test_without_a_client_certificate_the_server_refuses(gateway: TlsGateway) -> None:
    with pytest.raises(ClickHouseTlsError, match="a client certificate if the server requires"):
        wiring.clickhouse_client(_settings(gateway, ca=gateway.authority.cert_file, client=False))


def test_commands_use_the_tls_settings(
    gateway: TlsGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUDITLOG_CLICKHOUSE_URL", gateway.url)
    monkeypatch.setenv("AUDITLOG_CLICKHOUSE_CERT_FILE", str(gateway.client.cert_file))
    monkeypatch.setenv("AUDITLOG_CLICKHOUSE_KEY_FILE", str(gateway.client.key_file))
    monkeypatch.setenv("AUDITLOG_CLICKHOUSE_DATABASE", "tls_check")

    assert main(["migrate", "--dry-run"]) == 1  # the system's CAs do not know ours
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"auditlog: ClickHouse at {gateway.url}: TLS handshake with")

    monkeypatch.setenv("AUDITLOG_CLICKHOUSE_CA_FILE", str(gateway.authority.cert_file))
    assert main(["migrate", "--dry-run"]) == 0
    assert "pending" in capsys.readouterr().out
