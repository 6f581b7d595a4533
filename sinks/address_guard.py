"""Where a webhook, a log service or an S3 endpoint may be sent to: https to public
addresses only (server-side request forgery guard).

:func:`vet_url` resolves the destination's host and refuses private, loopback,
link-local (cloud metadata among them), multicast, reserved and unspecified addresses,
IPv4 addresses hidden in IPv6, and any name with one such address among its records. It
returns the vetted addresses: the sender connects to one of them (sending the host name
in ``Host`` and TLS SNI) instead of resolving again, so a DNS answer that changes between
the check and the connection (rebinding) cannot redirect it (webhooks:
:mod:`sinks.senders.http`; S3: :mod:`sinks.senders.s3_confinement`). Redirects are not
followed.
``allow_local`` (local development only) permits http and local addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from runtime.redaction import redact_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

# Instance-metadata endpoints that are not covered by the address classes above.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)


class UnsafeDestinationError(ValueError):
    """The URL may not receive audit events; the message says why."""


@dataclass(frozen=True)
class VettedTarget:
    """A destination that passed: connect to ``addresses`` (in order), not to ``host``."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def resolve_with_dns(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (every A and AAAA record)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeDestinationError(f"{host} does not resolve: {exc}") from exc
    return [str(info[4][0]) for info in infos]


def is_public(address: IPAddress) -> bool:
    """True for an address on the public internet."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = (
            address.ipv4_mapped
            or address.sixtofour
            or (address.teredo[1] if address.teredo else None)
        )
        if embedded is not None:
            return is_public(embedded)
    if address in METADATA_ADDRESSES:
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def vet_url(
    url: str, *, allow_local: bool = False, resolve: Resolver = resolve_with_dns
) -> VettedTarget:
    """Check ``url`` and resolve its host once; raises :class:`UnsafeDestinationError`."""
    parts = urlsplit(url)
    shown = repr(redact_url(url))  # a refused URL is quoted without its credentials
    allowed = {"https", "http"} if allow_local else {"https"}
    if parts.scheme not in allowed:
        raise UnsafeDestinationError(
            f"{shown}: destinations must use https (http only in local-development mode)"
        )
    if parts.username or parts.password:
        raise UnsafeDestinationError(f"{shown}: credentials in the URL are not accepted")
    host = parts.hostname
    if not host:
        raise UnsafeDestinationError(f"{shown}: no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    found = (
        [literal] if literal is not None else [ipaddress.ip_address(a) for a in resolve(host, port)]
    )
    if not found:
        raise UnsafeDestinationError(f"{host} resolves to no address")
    if not allow_local:
        refused = sorted({str(a) for a in found if not is_public(a)})
        if refused:
            raise UnsafeDestinationError(
                f"{host} resolves to {', '.join(refused)}: private, loopback, link-local, "
                "metadata and other non-public addresses are refused"
            )
    return VettedTarget(url, parts.scheme, host, port, tuple(dict.fromkeys(found)))
