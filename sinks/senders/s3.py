"""S3 (and S3-compatible) destinations: one object per payload.

Object keys and metadata: :mod:`sinks.senders.s3_objects`. Each payload is a single
``PutObject``: visible whole or not at all, with ``Content-MD5`` so that S3 refuses a body
corrupted on the way, and the payload's tenant, destination, partition, offsets and record
count in the object's metadata (``x-amz-meta-auditlog-*``).

Credentials (:func:`make_s3_client`): the destination's ``access_key_id`` and
``secret_access_key`` when given (S3-compatible stores; references confined by the
:class:`~sinks.destinations.secrets.SecretBox`'s policy); else, with ``role_arn``, the role
assumed through STS from the worker's own AWS credentials, with the external id the service
derives from the tenant (:func:`~sinks.senders.s3_confinement.role_external_id`, never one
the tenant chose), re-assumed by botocore's refreshable credentials 15 minutes before they
expire; else the worker's AWS credentials (the default chain) as they are, only where the
operator's :class:`~sinks.senders.s3_confinement.S3Policy` allows it. Every connection goes
to a vetted address (:mod:`sinks.senders.s3_confinement`). botocore does not retry (one
attempt per call): the worker owns retries.

Errors map onto the sender contract with what is wrong and what to do: a missing bucket,
refused access, unknown keys, a bad signature, a KMS key that cannot be used or a wrong
region are permanent; throttling (``SlowDown``), 5xx, timeouts and connection failures
are retryable.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    SSLError,
)

from sinks.destinations.model import Destination, S3Target, SecretValue
from sinks.destinations.secrets import SecretBox, SecretError
from sinks.senders.base import (
    DeliveryError,
    Payload,
    PermanentDeliveryError,
    Receipt,
    RetryableDeliveryError,
)
from sinks.senders.s3_confinement import S3Policy, pin_connections, role_external_id
from sinks.senders.s3_objects import copy_key, metadata, object_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import PutObjectRequestTypeDef

#: Writes of a partner batch's per-account objects at once (threads shared by every
#: sender of the process; a batch waits for all of its objects).
PART_WRITERS = 8
_PART_POOL = ThreadPoolExecutor(PART_WRITERS, thread_name_prefix="auditlog-s3-parts")
ROLE_SESSION_NAME = "auditlog-sink"
ROLE_SESSION_S = 3600
MESSAGE_CHARS = 300


_RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "OperationAborted",
        "BadDigest",  # the body did not arrive as sent: send it again
        "KMS.ThrottlingException",
        "KMS.LimitExceededException",
        "KMS.KMSInternalException",
        "KMS.DependencyTimeoutException",
    }
)


def _open(secrets: SecretBox, what: str, value: SecretValue) -> str:
    try:
        return secrets.open(value).decode()
    except (SecretError, UnicodeDecodeError) as exc:
        raise PermanentDeliveryError(f"the S3 {what} cannot be read: {exc}") from exc


class _AssumedRole(CredentialProvider):
    """Hands botocore the role's refreshable credentials (the only provider consulted)."""

    METHOD = "auditlog-assume-role"
    CANONICAL_NAME = "custom-auditlog-assume-role"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


def _assumed_role_session(
    target: S3Target, external_id: str, config: Config, session_name: str, sts: Any
) -> Any:
    """A boto3 session whose credentials come from assuming ``target.role_arn`` with
    ``external_id``, with ``sts`` (by default a client on the worker's own AWS
    credentials)."""
    assert target.role_arn is not None
    if sts is None:
        sts = boto3.session.Session(region_name=target.region).client("sts", config=config)
    request: dict[str, Any] = {
        "RoleArn": target.role_arn,
        "RoleSessionName": session_name,
        "DurationSeconds": ROLE_SESSION_S,
        "ExternalId": external_id,
    }

    def assume() -> dict[str, str]:
        issued = sts.assume_role(**request)["Credentials"]
        return {
            "access_key": str(issued["AccessKeyId"]),
            "secret_key": str(issued["SecretAccessKey"]),
            "token": str(issued["SessionToken"]),
            "expiry_time": issued["Expiration"].astimezone(UTC).isoformat(),
        }

    core = botocore.session.Session()
    credentials = DeferredRefreshableCredentials(refresh_using=assume, method=_AssumedRole.METHOD)
    core.register_component("credential_provider", CredentialResolver([_AssumedRole(credentials)]))
    return boto3.session.Session(botocore_session=core, region_name=target.region)


def make_s3_client(
    target: S3Target,
    secrets: SecretBox,
    *,
    tenant_id: str,
    policy: S3Policy,
    timeout_s: float,
    session_name: str = ROLE_SESSION_NAME,
    sts: Any = None,
    shared_session: boto3.session.Session | None = None,
) -> S3Client:
    """An S3 client for ``target``, a destination of ``tenant_id`` (credentials as in the
    module docstring; path-style addressing when ``endpoint_url`` is set; connections
    pinned to vetted addresses as ``policy`` says). ``shared_session``: a boto3 session to
    build on (its loaded service data is reused: about 19 ms of CPU per client instead of
    110 ms; the caller serialises calls that share one). Makes no request; with
    ``role_arn`` the role is assumed at the first request, with ``sts`` when given (tests).
    Raises :class:`PermanentDeliveryError` when a secret cannot be opened, only one of the
    two keys is given, the stored external id is not the service's, or the worker's own
    credentials would be used and ``policy`` does not allow it."""
    config_args: dict[str, Any] = {
        "region_name": target.region,
        "connect_timeout": timeout_s,
        "read_timeout": timeout_s,
        # total_max_attempts: botocore's max_attempts counts retries (1 would mean 2 tries).
        "retries": {"total_max_attempts": 1, "mode": "standard"},
        # Content-MD5 protects the body; no extra checksum headers that S3-compatible
        # stores may not know.
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
        "user_agent_extra": "auditlog-sink",
        # One client may serve many destinations from every delivery thread.
        "max_pool_connections": 32,
        # Not through HTTP(S)_PROXY: connections go to vetted addresses (s3_confinement).
        "proxies": {},
    }
    if target.endpoint_url:
        config_args["s3"] = {"addressing_style": "path"}
    config = Config(**config_args)

    if (target.access_key_id is None) != (target.secret_access_key is None):
        raise PermanentDeliveryError(
            "S3 destination: give both access_key_id and secret_access_key, or neither"
        )
    session: Any
    keys: dict[str, str] = {}
    if target.access_key_id is not None and target.secret_access_key is not None:
        # Keys go to the client, not the session, so a shared session stays unchanged.
        keys = {
            "aws_access_key_id": _open(secrets, "access key id", target.access_key_id),
            "aws_secret_access_key": _open(secrets, "secret access key", target.secret_access_key),
        }
        session = shared_session or boto3.session.Session()
    elif target.role_arn is not None:
        external_id = role_external_id(tenant_id)
        if target.external_id not in (None, external_id):
            raise PermanentDeliveryError(
                f"S3 destination: its external id {target.external_id!r} was not chosen by "
                f"the service; the workers assume {target.role_arn} with the external id "
                f"{external_id!r} only: require that one in the role's trust policy and unset "
                "the destination's (`destinations update ID --external-id ''`)"
            )
        session = _assumed_role_session(target, external_id, config, session_name, sts)
    elif not policy.allow_worker_credentials:
        raise PermanentDeliveryError(
            "S3 destination: it has neither access keys nor a role_arn, and the workers' own "
            "AWS credentials are not lent to destinations (AUDITLOG_SINK_S3_ALLOW_WORKER_"
            "CREDENTIALS is off): give it --role-arn, or --access-key-id-ref and "
            "--secret-access-key-ref"
        )
    else:
        session = shared_session or boto3.session.Session()
    client: S3Client = session.client(
        "s3", endpoint_url=target.endpoint_url, region_name=target.region, config=config, **keys
    )
    pin_connections(client, policy)
    return client


def content_md5(body: bytes) -> str:
    """The ``Content-MD5`` header of ``body`` (base64 of the digest)."""
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


_ACCESS_HINT = (
    "allow s3:PutObject on arn:aws:s3:::{bucket}/* to the worker's credentials (and "
    "kms:GenerateDataKey on the key, with SSE-KMS)"
)
_EXPIRED_HINT = "the AWS credentials are expired or invalid; renew them"
_REGION_HINT = "the bucket is in another region; set the destination's region to it"

# What to do about a permanent S3 error, by its code ({bucket} is filled in).
_PERMANENT_HINTS: Mapping[str, str] = {
    "NoSuchBucket": "the bucket does not exist; create it, or correct the destination's bucket",
    "AccessDenied": _ACCESS_HINT,
    "AllAccessDisabled": _ACCESS_HINT,
    "AccountProblem": _ACCESS_HINT,
    "Forbidden": _ACCESS_HINT,
    "InvalidAccessKeyId": "S3 does not know the access key id; check the destination's "
    "access_key_id (or the worker's AWS credentials)",
    "SignatureDoesNotMatch": "the secret access key does not match the access key id; check "
    "the destination's secret_access_key",
    "ExpiredToken": _EXPIRED_HINT,
    "InvalidToken": _EXPIRED_HINT,
    "TokenRefreshRequired": _EXPIRED_HINT,
    "PermanentRedirect": _REGION_HINT,
    "AuthorizationHeaderMalformed": _REGION_HINT,
    "IllegalLocationConstraintException": _REGION_HINT,
    "EntityTooLarge": "lower the destination's batch max_bytes",
    "RequestTimeTooSkewed": "the worker's clock is wrong; synchronise it",
}


def _permanent_hint(code: str) -> str | None:
    if code.startswith("KMS.") or "KMS" in code:
        return (
            "the KMS key for server-side encryption cannot be used; check the destination's "
            "kms_key_id, that the key is enabled, and that the worker may use it"
        )
    return _PERMANENT_HINTS.get(code)


def _client_error(exc: ClientError, bucket: str, key: str, action: str) -> DeliveryError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    said = _short(str(error.get("Message", "")))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    head = f"S3 {action} {where} failed ({code or f'HTTP {status}'}{': ' + said if said else ''})"
    if code in _RETRYABLE_CODES or status in (408, 429) or status >= 500:
        return RetryableDeliveryError(head)
    if exc.operation_name == "AssumeRole":
        return PermanentDeliveryError(
            f"cannot assume the destination's role ({code}: {said}): the role's trust policy "
            "must allow the worker's AWS identity, with the external id `destinations show` "
            "prints for the destination"
        )
    hint = _permanent_hint(code)
    return PermanentDeliveryError(f"{head}: {hint.format(bucket=bucket)}" if hint else head)


def delivery_error(
    exc: ClientError | BotoCoreError, bucket: str, key: str = "", action: str = "write to"
) -> DeliveryError:
    """What a botocore failure means for the delivery (see the module docstring)."""
    if isinstance(exc, ClientError):
        return _client_error(exc, bucket, key, action)
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    refused = exc.kwargs.get("error") if isinstance(exc, HTTPClientError) else None
    if isinstance(refused, DeliveryError):  # the endpoint's address was refused (or not found)
        return type(refused)(f"S3 {action} {where}: {refused}")
    return _transport_error(exc, where, action)


def _transport_error(exc: BotoCoreError, where: str, action: str) -> DeliveryError:
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return PermanentDeliveryError(
            f"S3 {action} {where}: no usable AWS credentials ({exc}); give the destination "
            "access keys or a role_arn, or give the worker AWS credentials"
        )
    if isinstance(exc, ParamValidationError):
        return PermanentDeliveryError(f"S3 {action} {where}: {_short(str(exc))}")
    if isinstance(exc, SSLError) and "certificate verify failed" in str(exc).lower():
        return PermanentDeliveryError(
            f"S3 {action} {where}: the endpoint's TLS certificate does not verify ({exc})"
        )
    if isinstance(exc, CredentialRetrievalError):
        return RetryableDeliveryError(f"S3 {action} {where}: {_short(str(exc))}")
    # Connection errors, timeouts, a connection closed early, and what else is transient.
    return RetryableDeliveryError(f"S3 {action} {where} failed: {_short(str(exc))}")


def write_object(
    client: S3Client,
    bucket: str,
    key: str,
    body: bytes,
    content_type: str,
    *,
    content_encoding: str | None = None,
    target: S3Target | None = None,
    object_metadata: dict[str, str] | None = None,
) -> None:
    """One ``PutObject`` with ``Content-MD5`` (and the server-side encryption ``target``
    asks for); raises :class:`DeliveryError` as mapped by :func:`delivery_error`. Also what
    the ownership challenge writes with."""
    request: PutObjectRequestTypeDef = {
        "Bucket": bucket,
        "Key": key,
        "Body": body,
        "ContentType": content_type,
        "ContentMD5": content_md5(body),
    }
    if content_encoding is not None:
        request["ContentEncoding"] = content_encoding
    if object_metadata:
        request["Metadata"] = object_metadata
    if target is not None and target.server_side_encryption is not None:
        request["ServerSideEncryption"] = target.server_side_encryption
        if target.server_side_encryption == "aws:kms" and target.kms_key_id is not None:
            request["SSEKMSKeyId"] = target.kms_key_id
    try:
        client.put_object(**request)
    except (ClientError, BotoCoreError) as exc:
        raise delivery_error(exc, bucket, key) from exc


def read_object(
    client: S3Client, bucket: str, key: str, *, max_bytes: int = 1 << 20
) -> bytes | None:
    """The first ``max_bytes`` of an object, or None when there is no such key; raises
    :class:`DeliveryError` as mapped by :func:`delivery_error`."""
    try:
        answer = client.get_object(Bucket=bucket, Key=key)
        with answer["Body"] as stream:
            return stream.read(max_bytes)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise delivery_error(exc, bucket, key, "read from") from exc
    except BotoCoreError as exc:
        raise delivery_error(exc, bucket, key, "read from") from exc


class S3Sender:
    """Delivers to an :class:`S3Target` with ``client`` (from :func:`make_s3_client`).
    ``owns_client``: ``close`` closes it (False for a client shared by several
    destinations, see :class:`~sinks.senders.factory.S3ClientCache`)."""

    def __init__(
        self, destination: Destination, client: S3Client, *, owns_client: bool = True
    ) -> None:
        if not isinstance(destination.target, S3Target):
            raise TypeError(f"destination {destination.id} is not an S3 destination")
        self._destination = destination
        self._target: S3Target = destination.target
        self._client = client
        self._owns_client = owns_client

    def send(self, payload: Payload) -> Receipt:
        """Write the payload's objects; a partner destination's payload: each account
        part's objects, :data:`PART_WRITERS` parts at a time, raising the first error once
        every write ended (a retry writes them all again, same keys)."""
        if payload.parts:
            futures = [_PART_POOL.submit(self._write, payload.part(p)) for p in payload.parts]
            errors = [f.exception() for f in futures]
            failed = next((e for e in errors if e is not None), None)
            if failed is not None:
                raise failed
            keys = [key for f in futures for key in f.result()]
            return Receipt(f"{len(keys)} objects in s3://{self._target.bucket}, last {keys[-1]}")
        return Receipt(" ".join(f"s3://{self._target.bucket}/{k}" for k in self._write(payload)))

    def _write(self, payload: Payload) -> list[str]:
        """The companion object of the integrity records first (when the payload has any),
        then the events object (unless the payload holds integrity records only): an events
        object never lacks its companion. The keys written, the events object's first."""
        key = object_key(self._target, payload)
        written = []
        if payload.copy_body is not None:
            companion = copy_key(key, payload)
            write_object(
                self._client,
                self._target.bucket,
                companion,
                payload.copy_body,
                "application/x-ndjson",
                content_encoding=payload.content_encoding,
                target=self._target,
                object_metadata=metadata(payload),
            )
            written.append(companion)
        if payload.copy_body is None or payload.record_count > 0:
            write_object(
                self._client,
                self._target.bucket,
                key,
                payload.body,
                payload.content_type,
                content_encoding=payload.content_encoding,
                target=self._target,
                object_metadata=metadata(payload),
            )
            written.append(key)
        return written[::-1]

    def close(self) -> None:
        if self._owns_client:
            self._client.close()
