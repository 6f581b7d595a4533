"""One sender per destination, by the destination's kind.

:data:`SENDER_KINDS` maps a target kind to the function that builds its sender. Adding a
destination kind is one entry: to add Datadog logs, add its target to
:mod:`sinks.destinations.model`, write a sender (``sinks/senders/datadog.py``, on the
:class:`~sinks.senders.http.PinnedHttpClient` for an HTTP API), and register it here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3

from sinks.destinations.model import Destination, S3Target
from sinks.destinations.secrets import SecretBox
from sinks.senders.base import Sender
from sinks.senders.http import PinnedHttpClient
from sinks.senders.s3 import S3Sender, make_s3_client
from sinks.senders.s3_confinement import S3Policy, role_external_id
from sinks.senders.splunk_hec import SplunkHecSender
from sinks.senders.webhook import WebhookSender

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3ClientCache:
    """One S3 client per set of connection settings (endpoint, region, credentials or
    role and its external id), shared by every destination that has them: a boto3 client
    costs tens of milliseconds and megabytes to build, and a worker may serve thousands of
    destinations in one account's buckets. Every client follows ``policy``. Thread-safe;
    :meth:`close` closes every client."""

    def __init__(self, policy: S3Policy) -> None:
        self._policy = policy
        self._clients: dict[tuple[object, ...], S3Client] = {}
        self._lock = threading.Lock()
        # Clients are built under the lock, so they may share one botocore session (and
        # the service data it loaded once).
        self._session = boto3.session.Session()

    @property
    def policy(self) -> S3Policy:
        return self._policy

    def client(
        self, target: S3Target, secrets: SecretBox, *, tenant_id: str, timeout_s: float
    ) -> S3Client:
        key = (
            target.endpoint_url,
            target.region,
            target.role_arn,
            # A role is assumed with the tenant's external id: one client per tenant.
            role_external_id(tenant_id) if target.role_arn else None,
            target.external_id,
            target.access_key_id,
            target.secret_access_key,
        )
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                found = self._clients[key] = make_s3_client(
                    target,
                    secrets,
                    tenant_id=tenant_id,
                    policy=self._policy,
                    timeout_s=timeout_s,
                    shared_session=self._session,
                )
            return found

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


@dataclass(frozen=True)
class SenderResources:
    """What senders share or are configured with: the worker's HTTP client (owned by the
    caller, shared by every HTTP sender), the S3 request timeout and the operator's S3
    policy, and optionally shared S3 clients (owned by the caller, same policy)."""

    http: PinnedHttpClient
    s3_timeout_s: float
    s3_policy: S3Policy
    s3_clients: S3ClientCache | None = None


SenderBuilder = Callable[[Destination, SecretBox, SenderResources], Sender]


def _s3(destination: Destination, secrets: SecretBox, resources: SenderResources) -> Sender:
    assert isinstance(destination.target, S3Target)
    if resources.s3_clients is not None:
        shared = resources.s3_clients.client(
            destination.target,
            secrets,
            tenant_id=destination.tenant_id,
            timeout_s=resources.s3_timeout_s,
        )
        return S3Sender(destination, shared, owns_client=False)
    client = make_s3_client(
        destination.target,
        secrets,
        tenant_id=destination.tenant_id,
        policy=resources.s3_policy,
        timeout_s=resources.s3_timeout_s,
    )
    return S3Sender(destination, client)


def _webhook(destination: Destination, secrets: SecretBox, resources: SenderResources) -> Sender:
    return WebhookSender(destination, secrets, resources.http)


def _splunk_hec(destination: Destination, secrets: SecretBox, resources: SenderResources) -> Sender:
    return SplunkHecSender(destination, secrets, resources.http)


SENDER_KINDS: Mapping[str, SenderBuilder] = {
    "s3": _s3,
    "webhook": _webhook,
    "splunk_hec": _splunk_hec,
}


def build_sender(
    destination: Destination,
    secrets: SecretBox,
    *,
    http: PinnedHttpClient,
    s3_timeout_s: float,
    s3_policy: S3Policy,
    s3_clients: S3ClientCache | None = None,
) -> Sender:
    """The sender for ``destination``; makes no request. Raises
    :class:`~sinks.senders.base.PermanentDeliveryError` when the destination cannot be set
    up (a secret that does not open or a reference the policy refuses, incomplete S3 keys,
    S3 credentials ``s3_policy`` does not allow): the worker treats that like a failed
    send; ``ValueError`` for a kind without a sender. ``s3_clients``, when given, must
    follow ``s3_policy``. The caller closes the sender (and, separately, ``http``)."""
    builder = SENDER_KINDS.get(destination.kind)
    if builder is None:
        raise ValueError(
            f"destination {destination.id}: no sender for kind {destination.kind!r} "
            f"(known: {', '.join(sorted(SENDER_KINDS))})"
        )
    if s3_clients is not None and s3_clients.policy != s3_policy:
        raise ValueError("the shared S3 clients follow another S3 policy")
    return builder(destination, secrets, SenderResources(http, s3_timeout_s, s3_policy, s3_clients))
