"""Users and policies of the stack's MinIO server, through its admin API.

MinIO decides authenticated requests by the IAM policies of the user who signed them (a
bucket policy does not restrict its own users), so a user's rights are given here:
:func:`ensure_user` with MinIO's built-in policies (``readwrite``, ``readonly``...) or one
added with :func:`add_policy`. The admin API encrypts its payloads with the administrator's
secret; the ``minio`` package (Apache-2.0, part of the local extra) speaks it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from deploy.stack.endpoints import S3Keys
from deploy.stack.errors import StackError

if TYPE_CHECKING:
    from minio import MinioAdmin


def _admin(endpoint: str, admin: S3Keys) -> MinioAdmin:
    from minio import MinioAdmin  # noqa: PLC0415 - part of the local extra only
    from minio.credentials.providers import StaticProvider  # noqa: PLC0415

    parts = urlsplit(endpoint)
    return MinioAdmin(
        endpoint=parts.netloc,
        credentials=StaticProvider(admin.access_key, admin.secret_key),
        secure=parts.scheme == "https",
    )


def _call(what: str, call: Callable[..., str], *args: Any, **kwargs: Any) -> str:
    from minio.error import MinioAdminException  # noqa: PLC0415

    try:
        return call(*args, **kwargs)
    except (MinioAdminException, OSError) as exc:
        raise StackError(f"the S3 server (MinIO) refused to {what}: {exc}") from exc


def ensure_user(
    endpoint: str, admin: S3Keys, user: S3Keys, policies: Sequence[str] = ("readwrite",)
) -> None:
    """Create ``user`` (or reset its secret) with exactly ``policies`` attached; idempotent.
    Raises :class:`StackError` when the server refuses."""
    client = _admin(endpoint, admin)
    _call(f"add the user {user.access_key}", client.user_add, user.access_key, user.secret_key)
    info = json.loads(
        _call(f"describe the user {user.access_key}", client.user_info, user.access_key)
    )
    attached = {name for name in str(info.get("policyName", "")).split(",") if name}
    if extra := sorted(attached - set(policies)):
        _call("detach policies", client.detach_policy, extra, user=user.access_key)
    if missing := [name for name in policies if name not in attached]:
        _call(
            f"attach {missing} to {user.access_key}",
            client.attach_policy,
            missing,
            user=user.access_key,
        )


def add_policy(endpoint: str, admin: S3Keys, name: str, document: Mapping[str, Any]) -> None:
    """Add (or replace) the IAM policy ``name``; raises :class:`StackError` when refused."""
    _call(f"add the policy {name}", _admin(endpoint, admin).policy_add, name, policy=dict(document))
