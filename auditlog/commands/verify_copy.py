"""``auditlog verify --s3 s3://bucket/prefix`` and ``auditlog verify --webhook-dir DIR``:
check a streamed copy offline with only the public keys (docs/integrity.md, "Verifying a
streamed copy"; :mod:`integrity.copy_verification`).

S3: the objects under the prefix that the S3 sender named (events objects and their
``.integrity.ndjson[.gz]`` companions), read with boto3's usual credentials
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance role) from
``--s3-endpoint`` or ``AUDITLOG_S3_ENDPOINT`` (empty: AWS) in ``AUDITLOG_S3_REGION``. A
directory: every regular file under it (NDJSON or JSON-array bodies, gzip or not), in
path order.

Exit codes as ``auditlog verify``: 0 verified; 1 tampering found; 2 refused (no keys, an
unreadable copy, nothing of the account in it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditlog.settings import AuditlogSettings
from integrity.copy_reading import CopyReader, CopyReadError, read_directory, read_s3, split_s3_uri
from integrity.copy_verification import CopyReport, check_copy
from integrity.keys import KeyRing
from integrity.verify_model import Finding

VERIFIED, TAMPERED, REFUSED = 0, 1, 2
SHOWN_FINDINGS = 20


def _s3_client(endpoint: str | None, settings: AuditlogSettings) -> Any:
    import boto3  # noqa: PLC0415 - boto3 comes with the local extra
    from botocore.config import Config  # noqa: PLC0415

    url = settings.s3_endpoint if endpoint is None else endpoint
    return boto3.client(
        "s3",
        endpoint_url=url or None,
        region_name=settings.s3_region,
        config=Config(s3={"addressing_style": "path"} if url else {}, retries={"max_attempts": 3}),
    )


def verify_copy(args: argparse.Namespace, settings: AuditlogSettings, ring: KeyRing) -> int:
    """Read the copy ``args`` names, check every account in it (or ``--account``'s)."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - only for --s3

    reader = CopyReader(account=args.account)
    try:
        if args.s3 is not None:
            bucket, prefix = split_s3_uri(args.s3)
            where = f"s3://{bucket}/{prefix}"
            read = read_s3(reader, _s3_client(args.s3_endpoint, settings), bucket, prefix)
        else:
            where = str(args.webhook_dir)
            read = read_directory(reader, Path(args.webhook_dir))
    except (CopyReadError, OSError) as exc:
        return _refuse(str(exc))
    except (BotoCoreError, ClientError) as exc:  # no credentials, no bucket, refused
        return _refuse(f"{type(exc).__name__}: {str(exc)[:300]}")
    if not reader.copies:
        return _refuse(
            f"{where}: {read} objects or files read, no event nor integrity record of "
            + (f"account {args.account}" if args.account else "any account")
        )
    status = VERIFIED
    for skipped in reader.skipped[:5]:
        print(f"auditlog: not read: {skipped}", file=sys.stderr)
    for account in sorted(reader.copies):
        report = check_copy(reader.copies[account], ring, filtered=args.filtered)
        report.findings[:0] = [Finding("bad-record", line) for line in reader.unattributed]
        _print(report, where)
        if not report.ok:
            status = TAMPERED
    return status


def _refuse(message: str) -> int:
    print(f"auditlog: {message}", file=sys.stderr)
    return REFUSED


def _print(report: CopyReport, where: str) -> None:
    newest = report.newest
    signed = (
        "no checkpoint"
        if newest is None
        else f"newest checkpoint size {newest.size} at "
        f"{datetime.fromtimestamp(newest.time_ms / 1000, UTC).isoformat(timespec='seconds')}"
    )
    start = "" if not report.first_leaf else f" from leaf {report.first_leaf} (mid-log)"
    notes = [
        f"{report.proven} proven",
        f"{report.unproven_leaves} not yet proven (after the newest checkpoint)",
    ]
    if report.duplicates:
        notes.append(f"{report.duplicates} duplicate events")
    if report.unlisted_events:
        notes.append(f"{report.unlisted_events} events at the copy's ends not listed yet")
    if report.before_copy:
        notes.append(f"{report.before_copy} leaves before the copy's first event")
    if report.filtered:
        notes.append(f"{report.filtered} leaves left out by the filter")
    summary = (
        f"{report.account} in {where}: {report.events} events, {report.leaves} leaves listed"
        f"{start}, {report.checkpoints} checkpoints ({signed}); {', '.join(notes)}"
    )
    print_outcome(summary, report.findings)


def print_outcome(summary: str, findings: Sequence[Finding]) -> None:
    """``summary: verified`` on stdout, or the summary and the first findings on stderr (the
    store's verify and a copy's print the same way)."""
    if not findings:
        print(f"{summary}: verified")
        return
    print(f"{summary}: {len(findings)} problems", file=sys.stderr)
    for finding in findings[:SHOWN_FINDINGS]:
        print(f"  {finding.line()}", file=sys.stderr)
    if len(findings) > SHOWN_FINDINGS:
        print(f"  ... and {len(findings) - SHOWN_FINDINGS} more", file=sys.stderr)
