"""The local stack's S3 server: MinIO, a real S3-compatible server, on loopback.

Development tooling. The binary comes from :mod:`deploy.stack.minio_binary`; it runs as
``minio server <data_dir>/data --address 127.0.0.1:<port>`` (one drive, no console, no
update checks) under :mod:`deploy.stack.processes`. Objects survive restarts, like Kafka's
and ClickHouse's data.

Layout of its directory (``data_dir``)::

    keys.json      the root (administrator) keys and the development user's, made on first
                   start (random secrets), mode 0600, kept across restarts: MinIO encrypts
                   its users and policies with the root keys
    data/          the drive: buckets, objects, MinIO's own metadata (.minio.sys)
    certs/         MinIO's certificate directory (empty: plain http)
    logs/s3.out    the server's output
    s3.pid         the running server

:func:`prepare` gives the development user the built-in ``readwrite`` policy and creates the
buckets the stack offers (:func:`ensure_bucket`; Object Lock where asked).
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from deploy.stack import processes
from deploy.stack.endpoints import S3Keys
from deploy.stack.errors import StackError
from deploy.stack.processes import ProcessRecord

ROOT_USER = "auditlog-root"
DEV_USER = "auditlog-dev"
DEV_POLICY = "readwrite"  # MinIO's built-in policy: every S3 action on every bucket


def _pid_file(data_dir: Path) -> Path:
    return data_dir / "s3.pid"


def _log_file(data_dir: Path) -> Path:
    return data_dir / "logs" / "s3.out"


def _keys_file(data_dir: Path) -> Path:
    return data_dir / "keys.json"


def new_keys(access_key: str) -> S3Keys:
    """``access_key`` with a new random secret."""
    return S3Keys(access_key, secrets.token_urlsafe(30))


def stack_keys(data_dir: Path) -> tuple[S3Keys, S3Keys]:
    """The server's (root, development user) keys, made and written (0600) on first use.
    Call it under the stack's lock (``stack up``); readers use :func:`existing_keys`."""
    found = existing_keys(data_dir)
    if found is not None:
        return found
    root, user = new_keys(ROOT_USER), new_keys(DEV_USER)
    data_dir.mkdir(parents=True, exist_ok=True)
    content = {"root": _as_dict(root), "user": _as_dict(user)}
    # Written whole to a private temporary file, then renamed: a crash never leaves a
    # half-written keys file that the server's data would then depend on.
    keys_file = _keys_file(data_dir)
    partial = keys_file.with_suffix(f".partial-{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(content, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, keys_file)
    return root, user


def existing_keys(data_dir: Path) -> tuple[S3Keys, S3Keys] | None:
    """The keys :func:`stack_keys` wrote, or None when there are none yet; never writes.
    Raises :class:`StackError` for an unreadable file."""
    keys_file = _keys_file(data_dir)
    try:
        raw = json.loads(keys_file.read_text())
        return S3Keys(**raw["root"]), S3Keys(**raw["user"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise StackError(
            f"{keys_file} is unreadable ({type(exc).__name__}); the S3 server's data depends "
            f"on those keys: delete {data_dir} to start the S3 server afresh"
        ) from exc


def _as_dict(keys: S3Keys) -> dict[str, str]:
    return {"access_key": keys.access_key, "secret_key": keys.secret_key}


def s3_ready(endpoint: str, timeout_s: float = 1.0) -> bool:
    """True if the server at ``endpoint`` says it is live (MinIO's health check)."""
    try:
        with urllib.request.urlopen(  # noqa: S310 - the stack's own http endpoint
            endpoint.rstrip("/") + "/minio/health/live", timeout=timeout_s
        ) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def start_s3(
    *, data_dir: Path, binary: Path, port: int, root: S3Keys, timeout_s: float = 60.0
) -> ProcessRecord:
    """Start MinIO (``binary``) on 127.0.0.1:``port`` with the ``root`` keys unless it
    already runs; block until it answers. Raises :class:`StackError` (after stopping what
    it started) on failure."""
    existing = processes.running(_pid_file(data_dir))
    if existing is not None:
        return existing
    log_file = _log_file(data_dir)
    argv = [
        str(binary),
        "server",
        str(data_dir / "data"),
        "--address",
        f"127.0.0.1:{port}",
        "--certs-dir",
        str(data_dir / "certs"),
        "--quiet",
    ]
    # Its own small environment: nothing of the caller's MINIO_* or AWS_* settings, and a
    # HOME of its own so that nothing is written to the user's.
    env = {
        "PATH": os.defpath,
        "HOME": str(data_dir),
        "MINIO_ROOT_USER": root.access_key,
        "MINIO_ROOT_PASSWORD": root.secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
    }
    record = processes.spawn(argv, pid_file=_pid_file(data_dir), log_file=log_file, env=env)
    try:
        processes.wait_until(
            lambda: s3_ready(f"http://127.0.0.1:{port}"),
            what="S3 server (MinIO)",
            timeout_s=timeout_s,
            alive=record.alive,
            log_file=log_file,
        )
    except BaseException:
        processes.stop(_pid_file(data_dir))
        raise
    return record


def stop_s3(data_dir: Path) -> bool:
    """Stop the S3 server; idempotent. True if it was running."""
    return processes.stop(_pid_file(data_dir), timeout_s=10.0)


def client(endpoint: str, keys: S3Keys, region: str = "us-east-1") -> Any:
    """A boto3 S3 client for the stack's server (path-style, one attempt per call)."""
    import boto3  # noqa: PLC0415 - boto3 is part of the local extra
    from botocore.config import Config  # noqa: PLC0415

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=keys.access_key,
        aws_secret_access_key=keys.secret_key,
        config=Config(s3={"addressing_style": "path"}),
    )


def ensure_bucket(
    endpoint: str, keys: S3Keys, bucket: str, *, lock_days: int | None = None
) -> None:
    """Create ``bucket`` unless it exists. ``lock_days``: with Object Lock, every new object
    version kept (COMPLIANCE mode: nobody can delete or shorten it) for that many days."""
    s3 = client(endpoint, keys)
    try:
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if lock_days is None:
            if bucket not in existing:
                s3.create_bucket(Bucket=bucket)
            return
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        # Set every time (idempotent): a start that stopped between creating the bucket
        # and this call would otherwise leave it without its default retention.
        s3.put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": lock_days}},
            },
        )
    finally:
        s3.close()
