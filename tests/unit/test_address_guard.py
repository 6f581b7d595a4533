"""Webhook URLs: https to public addresses only, checked on what the name resolves to."""

from __future__ import annotations

import ipaddress

import pytest

from sinks.address_guard import Resolver, UnsafeDestinationError, is_public, vet_url


def _resolver(table: dict[str, list[str]]) -> Resolver:
    def resolve(host: str, _port: int) -> list[str]:
        return table[host]

    return resolve


PUBLIC = _resolver(
    {"hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]}
)


def test_a_public_https_url_passes_with_its_addresses_pinned() -> None:
    target = vet_url("https://hooks.example.com/audit", resolve=PUBLIC)
    assert target.host == "hooks.example.com"
    assert target.port == 443
    assert [str(a) for a in target.addresses] == [
        "93.184.215.14",
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://172.16.0.1/x",
        "https://192.168.1.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://100.100.100.200/",
        "https://[::1]/x",
        "https://[fd00:ec2::254]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://0.0.0.0/x",
        "https://224.0.0.1/x",
    ],
)
def test_non_public_literals_are_refused(url: str) -> None:
    with pytest.raises(UnsafeDestinationError, match="refused"):
        vet_url(url)


def test_a_hostname_resolving_to_loopback_is_refused() -> None:
    evil = _resolver({"rebind.example.net": ["127.0.0.1"]})
    with pytest.raises(UnsafeDestinationError, match=r"127\.0\.0\.1"):
        vet_url("https://rebind.example.net/hook", resolve=evil)


def test_localhost_through_real_dns_is_refused() -> None:
    with pytest.raises(UnsafeDestinationError, match="refused"):
        vet_url("https://localhost:8443/hook")


def test_one_private_record_among_public_ones_is_enough_to_refuse() -> None:
    mixed = _resolver({"mixed.example.com": ["93.184.215.14", "10.0.0.5"]})
    with pytest.raises(UnsafeDestinationError, match=r"10\.0\.0\.5"):
        vet_url("https://mixed.example.com/", resolve=mixed)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/", "must use https"),
        ("ftp://hooks.example.com/", "must use https"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https:///nohost", "no host"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(UnsafeDestinationError, match=message):
        vet_url(url, resolve=PUBLIC)


def test_local_development_mode_allows_http_to_loopback() -> None:
    target = vet_url("http://127.0.0.1:8080/hook", allow_local=True)
    assert target.scheme == "http"
    assert target.port == 8080


def test_address_classes() -> None:
    assert is_public(ipaddress.ip_address("8.8.8.8"))
    assert not is_public(ipaddress.ip_address("100.64.0.1"))  # carrier-grade NAT
    assert not is_public(ipaddress.ip_address("fe80::1"))
    assert not is_public(ipaddress.ip_address("2002:7f00:1::"))  # 6to4 of 127.0.0.1
