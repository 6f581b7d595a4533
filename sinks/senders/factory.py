"""One sender per destination, by the destination's kind.

:data:`SENDER_KINDS` maps a target kind to the function that builds its sender. Adding a
destination kind is one entry: to add Datadog logs, add its target to
:mod:`sinks.destinations.model`, write a sender (``sinks/senders/datadog.py``, on the
:class:`~sinks.senders.http.PinnedHttpClient` for an HTTP API), and register it here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sinks.destinations.model import Destination, S3Target
from sinks.destinations.secrets import SecretBox
from sinks.senders.base import Sender
from sinks.senders.http import PinnedHttpClient
from sinks.senders.s3 import S3Sender, make_s3_client
from sinks.senders.splunk_hec import SplunkHecSender
from sinks.senders.webhook import WebhookSender


@dataclass(frozen=True)
class SenderResources:
    """What senders share or are configured with: the worker's HTTP client (owned by the
    caller, shared by every HTTP sender) and the S3 request timeout."""

    http: PinnedHttpClient
    s3_timeout_s: float


SenderBuilder = Callable[[Destination, SecretBox, SenderResources], Sender]


def _s3(destination: Destination, secrets: SecretBox, resources: SenderResources) -> Sender:
    assert isinstance(destination.target, S3Target)
    client = make_s3_client(destination.target, secrets, timeout_s=resources.s3_timeout_s)
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
) -> Sender:
    """The sender for ``destination``; makes no request. Raises
    :class:`~sinks.senders.base.PermanentDeliveryError` when the destination cannot be set
    up (a secret that does not open, incomplete S3 keys): the worker treats that like a
    failed send; ``ValueError`` for a kind without a sender. The caller closes the sender
    (and, separately, ``http``)."""
    builder = SENDER_KINDS.get(destination.kind)
    if builder is None:
        raise ValueError(
            f"destination {destination.id}: no sender for kind {destination.kind!r} "
            f"(known: {', '.join(sorted(SENDER_KINDS))})"
        )
    return builder(destination, secrets, SenderResources(http, s3_timeout_s))
