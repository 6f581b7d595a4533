"""What a tenant's S3 settings cannot make a worker do: the operator's :class:`S3Policy`.

**Where it connects.** The destination's ``endpoint_url`` is the tenant's, so every S3
client the product builds has its connections pinned (:func:`pin_connections`): each new
connection resolves its host once, vets the URL and *every* address it resolves to with
the webhooks' guard (:func:`sinks.address_guard.vet_url`: https only, and loopback,
private, link-local, cloud-metadata and other non-public addresses refused, unless
``allow_local``), and opens the socket to one of those vetted addresses itself. botocore
goes on as usual over that socket: the ``Host`` header it signs, TLS SNI and the certificate
check use the host name. So what is guaranteed:

- every connection a worker (or ``destinations add``/``test``) opens for an S3 destination
  goes to an address vetted at the moment it was opened, however the destination got into
  the store (the command vets too, but a worker does not rely on that) and whatever the
  name resolved to before: there is no window between the check and the connection
  (no DNS rebinding), and redirects (S3's region redirects) are vetted the same way;
- a kept-alive connection is reused without a new check: it goes to the address that was
  vetted when it was opened;
- environment proxies (``HTTPS_PROXY``) are not used for S3: through a proxy the guard
  could not see, nor choose, the address.

The STS client that assumes a destination's role talks to AWS's own endpoint (only the
region is the tenant's, and botocore accepts only a region-shaped name there); it is not
pinned.

**With which credentials.** A destination with neither its own keys nor a role would be
signed with the worker's own AWS credentials, which the tenant did not give: refused unless
the operator sets ``allow_worker_credentials``. A role is assumed with the worker's
credentials and an external id that the service chooses, not the tenant
(:func:`role_external_id`, AWS's guidance against the confused deputy): one tenant cannot
name another customer's role and pass its trust policy's external-id condition.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from botocore.awsrequest import (
    AWSHTTPConnection,
    AWSHTTPConnectionPool,
    AWSHTTPSConnection,
    AWSHTTPSConnectionPool,
)
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

from sinks.address_guard import Resolver, resolve_with_dns, vet_url
from sinks.senders.base import PermanentDeliveryError
from sinks.senders.http import vetting_error

SocketOptions = list[tuple[int, int, int | bytes]] | None
# (address, port), timeout, source address, socket options -> a connected socket.
Connector = Callable[
    [tuple[str, int], float | None, tuple[str, int] | None, SocketOptions], socket.socket
]
EXTERNAL_ID_PREFIX = "auditlog:"


def connect_directly(
    address: tuple[str, int],
    timeout: float | None,
    source_address: tuple[str, int] | None,
    socket_options: SocketOptions,
) -> socket.socket:
    """urllib3's own connect, to an address that is already an IP (no lookup)."""
    return create_connection(
        address, timeout, source_address=source_address, socket_options=socket_options
    )


@dataclass(frozen=True)
class S3Policy:
    """The operator's rules for S3 destinations, built once at the edge. ``allow_local``:
    endpoints may use http and local addresses (local development); ``resolve`` and
    ``connect`` are seams for tests."""

    allow_local: bool = False
    allow_worker_credentials: bool = False
    resolve: Resolver = resolve_with_dns
    connect: Connector = connect_directly


def role_external_id(tenant_id: str) -> str:
    """The external id the workers send when they assume a tenant's role: chosen by the
    service, unique per tenant (tenant ids are unique, and fit STS's character set)."""
    return f"{EXTERNAL_ID_PREFIX}{tenant_id}"


def open_vetted(
    policy: S3Policy,
    scheme: str,
    connection: Any,
) -> socket.socket:
    """A socket to a vetted address of ``connection``'s host (see the module docstring).
    Raises the sender's :class:`PermanentDeliveryError` (refused) or
    :class:`RetryableDeliveryError` (a temporary DNS failure), and urllib3's connection
    errors when no vetted address answers (which botocore maps, and the sender retries)."""
    if getattr(connection, "_tunnel_host", None):
        raise PermanentDeliveryError("S3 endpoints are not reached through a proxy")
    host: str = connection.host
    port: int = connection.port
    shown = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{shown}:{port}/"
    try:
        vetted = vet_url(url, allow_local=policy.allow_local, resolve=policy.resolve)
    except ValueError as exc:
        raise vetting_error(exc, url) from exc
    failures: list[str] = []
    for address in vetted.addresses:
        try:
            return policy.connect(
                (str(address), port),
                connection.timeout,
                connection.source_address,
                connection.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                connection, f"Connection to {host} ({address}) timed out"
            ) from exc
        except OSError as exc:
            failures.append(f"{address}: {exc.strerror or exc}")
    raise NewConnectionError(
        connection, f"Failed to establish a new connection: {'; '.join(failures)}"
    )


class _PinnedHTTPConnection(AWSHTTPConnection):
    policy: ClassVar[S3Policy]

    def _new_conn(self) -> socket.socket:
        return open_vetted(self.policy, "http", self)


class _PinnedHTTPSConnection(AWSHTTPSConnection):
    policy: ClassVar[S3Policy]

    def _new_conn(self) -> socket.socket:
        return open_vetted(self.policy, "https", self)


def pin_connections(client: Any, policy: S3Policy) -> None:
    """Make every new connection of the botocore ``client`` go through :func:`open_vetted`
    (before its first request). Raises ``RuntimeError`` if botocore no longer has the
    pool classes this replaces (then nothing could be guaranteed)."""
    try:
        classes: dict[str, type] = client._endpoint.http_session._pool_classes_by_scheme
    except AttributeError as exc:
        raise RuntimeError(f"cannot pin this botocore's S3 connections: {exc}") from exc
    classes.update(_pool_classes(policy))


@functools.lru_cache(maxsize=8)
def _pool_classes(policy: S3Policy) -> dict[str, type]:
    """Pool classes whose connections follow ``policy`` (made once per policy: a worker has
    one)."""
    http_cls = type("PinnedHTTPConnection", (_PinnedHTTPConnection,), {"policy": policy})
    https_cls = type("PinnedHTTPSConnection", (_PinnedHTTPSConnection,), {"policy": policy})
    return {
        "http": type("PinnedHTTPPool", (AWSHTTPConnectionPool,), {"ConnectionCls": http_cls}),
        "https": type("PinnedHTTPSPool", (AWSHTTPSConnectionPool,), {"ConnectionCls": https_cls}),
    }
