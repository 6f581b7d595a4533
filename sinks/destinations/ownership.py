"""Proof that whoever adds an S3 destination can read the bucket (as Cloudflare Logpush
does it).

Adding an S3 destination writes a challenge object,
``{prefix}/auditlog-ownership-challenge-{destination_id}.txt``, holding a random token,
to the bucket, and keeps only the token's SHA-256 in the destination
(:class:`~sinks.destinations.model.Ownership`), whose state is ``pending_verification``.
The token is never printed: the customer reads it from their bucket and hands it back
(``auditlog destinations verify ID TOKEN``); :func:`verify` compares digests in constant
time and makes the destination ``active``. Workers deliver only to active destinations,
so a bucket receives audit events only once someone who can read it asked for them.
Changing an S3 destination's bucket, prefix or endpoint issues a new challenge.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from sinks.destinations.model import Destination, Ownership, S3Target

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHALLENGE_FILE = "auditlog-ownership-challenge-{destination_id}.txt"
TOKEN_BYTES = 32


class OwnershipError(ValueError):
    """The ownership challenge cannot be completed (wrong token, nothing to verify)."""


class ChallengeWriteError(RuntimeError):
    """The challenge object could not be written; the message names the object and why."""


@dataclass(frozen=True)
class Challenge:
    """A challenge about to be written: the object's key and body, and what the
    destination keeps of it (the digest, never the token)."""

    key: str
    body: bytes
    ownership: Ownership


def render_prefix(target: S3Target, *, tenant_id: str, destination_id: str) -> str:
    """The target's key prefix with its placeholders filled in (no leading or trailing /)."""
    return (
        target.prefix_template.replace("{tenant_id}", tenant_id)
        .replace("{destination_id}", destination_id)
        .strip("/")
    )


def challenge_key(destination: Destination) -> str:
    target = _s3_target(destination)
    prefix = render_prefix(target, tenant_id=destination.tenant_id, destination_id=destination.id)
    name = CHALLENGE_FILE.format(destination_id=destination.id)
    return f"{prefix}/{name}" if prefix else name


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_token(body: bytes) -> str:
    """The token in a challenge object's body (its first line)."""
    return body.decode().splitlines()[0].strip() if body.strip() else ""


def new_challenge(destination: Destination, *, token: str | None = None) -> Challenge:
    """A fresh challenge for ``destination`` (an S3 destination); ``token`` for tests."""
    token = token if token is not None else secrets.token_urlsafe(TOKEN_BYTES)
    key = challenge_key(destination)
    body = (
        f"{token}\n"
        f"auditlog ownership challenge for destination {destination.id} of {destination.tenant_id}:"
        f" complete it with `auditlog destinations verify {destination.id} <the first line>`.\n"
    ).encode()
    return Challenge(key, body, Ownership(challenge_key=key, token_sha256=token_digest(token)))


def write_challenge(client: S3Client, destination: Destination, challenge: Challenge) -> None:
    """Put the challenge object (with the target's server-side encryption, as bucket
    policies may require it). Blocks for the request; raises :class:`ChallengeWriteError`."""
    target = _s3_target(destination)
    extra: dict[str, Any] = {}
    if target.server_side_encryption is not None:
        extra["ServerSideEncryption"] = target.server_side_encryption
        if target.kms_key_id is not None:
            extra["SSEKMSKeyId"] = target.kms_key_id
    try:
        client.put_object(
            Bucket=target.bucket,
            Key=challenge.key,
            Body=challenge.body,
            ContentType="text/plain; charset=utf-8",
            **extra,
        )
    except (BotoCoreError, ClientError) as exc:
        raise ChallengeWriteError(
            f"writing the ownership challenge s3://{target.bucket}/{challenge.key}: {exc}"
        ) from exc


def issue(client: S3Client, destination: Destination) -> Destination:
    """Write a new challenge to the destination's bucket; returns the destination with its
    digest, pending verification (a paused destination stays paused). Raises
    :class:`ChallengeWriteError`."""
    challenge = new_challenge(destination)
    write_challenge(client, destination, challenge)
    state = "paused" if destination.state == "paused" else "pending_verification"
    return destination.model_copy(update={"ownership": challenge.ownership, "state": state})


def verify(destination: Destination, token: str, *, now: datetime) -> Destination:
    """The destination with its ownership verified at ``now`` and, unless paused, active.
    Raises :class:`OwnershipError` when there is nothing to verify or the token is wrong."""
    ownership = destination.ownership
    if ownership is None:
        raise OwnershipError(
            f"destination {destination.id} has no ownership challenge (only S3 destinations do)"
        )
    if ownership.verified_at is not None:
        raise OwnershipError(
            f"destination {destination.id} was verified already, at "
            f"{ownership.verified_at.isoformat()}"
        )
    if not hmac.compare_digest(token_digest(token.strip()), ownership.token_sha256):
        raise OwnershipError(
            f"the token does not match the challenge of destination {destination.id}: use "
            f"the first line of the object {ownership.challenge_key} in its bucket"
        )
    state = "paused" if destination.state == "paused" else "active"
    return destination.model_copy(
        update={"ownership": ownership.model_copy(update={"verified_at": now}), "state": state}
    )


def is_verified(destination: Destination) -> bool:
    """True unless the destination has a challenge that was not completed."""
    return destination.ownership is None or destination.ownership.verified_at is not None


def _s3_target(destination: Destination) -> S3Target:
    if not isinstance(destination.target, S3Target):
        raise OwnershipError(
            f"destination {destination.id} is a {destination.kind} destination; "
            "ownership challenges are for S3"
        )
    return destination.target
