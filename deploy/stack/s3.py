"""An S3-compatible endpoint for the sink workers: moto's server mode.

Development tooling: moto keeps objects in memory, so they do not survive a restart of
the stack (Kafka and ClickHouse data do). Buckets are created on demand with
:func:`ensure_bucket`.
"""

from __future__ import annotations

import importlib.util
import sys
import urllib.error
import urllib.request
from pathlib import Path

from deploy.stack import processes
from deploy.stack.errors import StackError
from deploy.stack.processes import ProcessRecord

# Static credentials the local server accepts; real deployments use their own.
LOCAL_ACCESS_KEY = "auditlog-local"
LOCAL_SECRET_KEY = "auditlog-local-secret"  # noqa: S105 - a development-only placeholder


def _pid_file(data_dir: Path) -> Path:
    return data_dir / "s3.pid"


def _log_file(data_dir: Path) -> Path:
    return data_dir / "logs" / "s3.out"


def s3_ready(endpoint: str, timeout_s: float = 1.0) -> bool:
    """True if the endpoint answers an S3 ListBuckets request with HTTP 200."""
    try:
        with urllib.request.urlopen(endpoint.rstrip("/") + "/", timeout=timeout_s) as resp:  # noqa: S310
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def start_s3(*, data_dir: Path, port: int, timeout_s: float = 60.0) -> ProcessRecord:
    """Start moto's S3 server on 127.0.0.1:``port`` unless it already runs; block until it
    answers. Raises :class:`StackError` (after stopping what it started) on failure."""
    existing = processes.running(_pid_file(data_dir))
    if existing is not None:
        return existing
    if importlib.util.find_spec("moto") is None:
        raise StackError(
            "moto is not installed: install the local extra (pip install -e '.[local]')"
        )
    log_file = _log_file(data_dir)
    record = processes.spawn(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        pid_file=_pid_file(data_dir),
        log_file=log_file,
    )
    try:
        processes.wait_until(
            lambda: s3_ready(f"http://127.0.0.1:{port}"),
            what="S3 server (moto)",
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


def ensure_bucket(endpoint: str, bucket: str, region: str = "us-east-1") -> None:
    """Create ``bucket`` at ``endpoint`` unless it exists (the local server's credentials)."""
    import boto3  # noqa: PLC0415 - boto3 is part of the local extra only

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=LOCAL_ACCESS_KEY,
        aws_secret_access_key=LOCAL_SECRET_KEY,
    )
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
