"""Webhook destinations: one signed POST per payload (see :mod:`sinks.signing`).

Each POST carries the payload's body as it is (``Content-Type`` and ``Content-Encoding``
from the payload), the destination's own extra headers, and:

- ``X-Auditlog-Timestamp`` and ``X-Auditlog-Signature``: HMAC-SHA256 over the timestamp
  and the body, with the destination's signing secret;
- ``X-Auditlog-Idempotency-Key``: the same for every delivery of the same events (same
  tenant, destination, topic, partition and offsets), so a receiver can drop a retry or a
  replay it already has;
- ``X-Auditlog-Tenant``, ``X-Auditlog-Destination``, ``X-Auditlog-Record-Count``: for the
  receiver's logs and routing.

A 2xx answer is a delivery; anything else is classified by :mod:`sinks.retry`.
"""

from __future__ import annotations

from sinks.destinations.model import Destination, SecretValue, WebhookTarget
from sinks.destinations.secrets import SecretBox, SecretError
from sinks.senders.base import Payload, PermanentDeliveryError, Receipt
from sinks.senders.http import PinnedHttpClient, check_answer
from sinks.signing import IDEMPOTENCY_HEADER, idempotency_key, sign

TENANT_HEADER = "X-Auditlog-Tenant"
DESTINATION_HEADER = "X-Auditlog-Destination"
RECORD_COUNT_HEADER = "X-Auditlog-Record-Count"


def open_secret(
    secrets: SecretBox, destination: Destination, what: str, value: SecretValue
) -> bytes:
    """A destination's secret in clear; :class:`PermanentDeliveryError` (naming the
    destination and ``what``, never the secret) when it cannot be opened."""
    try:
        return secrets.open(value)
    except SecretError as exc:
        raise PermanentDeliveryError(
            f"destination {destination.id}: its {what} cannot be read: {exc}"
        ) from exc


class WebhookSender:
    """Delivers to a :class:`WebhookTarget`. The signing secret is opened here, once:
    raises :class:`PermanentDeliveryError` when it cannot be. ``client`` is shared and
    owned by the caller (``close`` leaves it open)."""

    def __init__(
        self, destination: Destination, secrets: SecretBox, client: PinnedHttpClient
    ) -> None:
        if not isinstance(destination.target, WebhookTarget):
            raise TypeError(f"destination {destination.id} is not a webhook destination")
        self._destination = destination
        self._target: WebhookTarget = destination.target
        self._secret = open_secret(
            secrets, destination, "signing secret", destination.target.signing_secret
        )
        self._client = client

    def headers(self, payload: Payload) -> dict[str, str]:
        """Every header of the POST for ``payload`` (signed now)."""
        headers = dict(self._target.headers)
        headers["Content-Type"] = payload.content_type
        if payload.content_encoding is not None:
            headers["Content-Encoding"] = payload.content_encoding
        headers.update(sign(payload.body, [self._secret]))
        headers[IDEMPOTENCY_HEADER] = idempotency_key(
            payload.tenant_id,
            payload.destination_id,
            topic=payload.topic,
            partition=payload.partition,
            first=payload.first_offset,
            last=payload.last_offset,
            replay_id=payload.replay_id,
        )
        headers[TENANT_HEADER] = payload.tenant_id
        headers[DESTINATION_HEADER] = payload.destination_id
        headers[RECORD_COUNT_HEADER] = str(payload.record_count)
        return headers

    def send(self, payload: Payload) -> Receipt:
        answer = self._client.post(self._target.url, payload.body, self.headers(payload))
        check_answer(answer, redact=[self._secret])
        return Receipt(f"HTTP {answer.status} from {answer.host}")

    def close(self) -> None:
        """Nothing to release: the HTTP client belongs to the caller."""
