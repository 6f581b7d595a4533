"""ClickHouse TLS files: which combinations make sense for a URL, and what clickhouse-connect
is given (the handshakes themselves are in tests/stack/test_clickhouse_tls.py)."""

from __future__ import annotations

from pathlib import Path

from consumers.clickhouse_connection import ClickHouseTls


def _named(field: str) -> str:
    return f"AUDITLOG_CLICKHOUSE_{field.upper()}"


def test_files_are_passed_as_clickhouse_connect_options(tmp_path: Path) -> None:
    pem = tmp_path / "x.pem"
    pem.write_text("pem")
    tls = ClickHouseTls(ca_file=pem, cert_file=pem, key_file=pem)
    assert tls.problems("https://writer@ch.example.com:8443") == []
    assert tls.client_options() == {
        "ca_cert": str(pem),
        "client_cert": str(pem),
        "client_cert_key": str(pem),
    }
    assert ClickHouseTls().client_options() == {}


def test_a_client_certificate_logs_in_as_the_urls_user(tmp_path: Path) -> None:
    pem = tmp_path / "both.pem"  # certificate and key in one file
    pem.write_text("pem")
    assert ClickHouseTls(cert_file=pem).problems("https://ch.example.com:8443", _named) == [
        "AUDITLOG_CLICKHOUSE_CERT_FILE: a client certificate logs in as a ClickHouse user: put "
        "the user name in AUDITLOG_CLICKHOUSE_URL (https://USER@host:port)"
    ]


def test_tls_files_need_an_https_url(tmp_path: Path) -> None:
    assert ClickHouseTls(ca_file=tmp_path).problems("http://ch:8123", _named) == [
        "AUDITLOG_CLICKHOUSE_CA_FILE is set but AUDITLOG_CLICKHOUSE_URL is not https://: use "
        "an https URL, or unset it"
    ]
