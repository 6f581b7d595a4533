"""``auditlog verify --account T [--from ISO] [--to ISO]``: check an account's log in
ClickHouse against its signed checkpoints and its stored events (docs/integrity.md,
:mod:`integrity.verification`). With a window, the tree and every checkpoint are still
checked over all leaves, but only the events that occurred in it are read (streamed) and
rehashed, and findings about events outside it are not reported.

The public keys come from the key store (``AUDITLOG_INTEGRITY_KEYS_DIR``) or, as a customer
or auditor would verify, from an exported key document (``--keys FILE``). Checkpoints the
customer already holds (``--checkpoint FILE``, repeatable) are checked too: a store rolled
back to an older, consistent state is found against them.

Exit codes: 0 verified; 1 tampering found (one line per finding, the first bad event
first); 2 refused (no keys, an unreadable key document or checkpoint file, an invalid
account); the setup codes of :mod:`auditlog.exit_codes` when ClickHouse or its schema is
not there.

``--s3 s3://bucket/prefix`` or ``--webhook-dir DIR`` verify a streamed copy instead
(:mod:`auditlog.commands.verify_copy`), offline, with the same exit codes.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditlog import startup_checks
from auditlog.commands.verify_copy import print_outcome, verify_copy
from auditlog.settings import AuditlogSettings
from consumers.retention import RetentionError, validate_tenant
from integrity.keys import KeyFormatError, KeyRing
from integrity.keystore import KeyStore, KeyStoreError, parse_public_document
from integrity.stored_log import read_log
from integrity.verification import DEFAULT_GRACE, Report, Retention, Window, check_log

VERIFIED, TAMPERED, REFUSED = 0, 1, 2


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "verify",
        help="check an account's audit log against its signed checkpoints",
        description=(
            "Recompute an account's Merkle log from ClickHouse, check every signed checkpoint "
            "and every stored event, and name the first bad event. Exit 0 verified, 1 "
            "tampering found, 2 refused, 10-17 a setup mistake (see the README)."
        ),
    )
    parser.add_argument(
        "--account", help="the account (tenant) id (with a copy: only this account's)"
    )
    copy = parser.add_mutually_exclusive_group()
    copy.add_argument(
        "--s3",
        metavar="s3://BUCKET/PREFIX",
        help="verify the streamed copy in this bucket and prefix instead of ClickHouse",
    )
    copy.add_argument(
        "--webhook-dir",
        type=Path,
        metavar="DIR",
        help="verify a directory of saved webhook payloads (or a downloaded copy) instead",
    )
    parser.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="the S3 endpoint of --s3 (default AUDITLOG_S3_ENDPOINT; empty: AWS)",
    )
    parser.add_argument(
        "--filtered",
        action="store_true",
        help="the copy is filtered: leaves whose events it lacks are not missing",
    )
    parser.add_argument(
        "--keys",
        type=Path,
        help="an exported key document (auditlog keys export); default: the key store",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a checkpoint you hold (a signed note), repeatable",
    )
    parser.add_argument(
        "--from",
        dest="start",
        type=_moment,
        metavar="ISO",
        help="check only events that occurred at or after this time (e.g. 2026-11-01 or "
        "2026-11-01T08:00:00Z); the tree and every checkpoint are still checked whole",
    )
    parser.add_argument(
        "--to",
        dest="end",
        type=_moment,
        metavar="ISO",
        help="check only events that occurred before this time",
    )
    parser.add_argument(
        "--grace-s",
        type=float,
        default=DEFAULT_GRACE.total_seconds(),
        help="an event stored this long before the newest checkpoint must be in the log "
        f"(default {DEFAULT_GRACE.total_seconds():.0f})",
    )
    parser.set_defaults(run=_verify)


def _refuse(message: str) -> int:
    print(f"auditlog: {message}", file=sys.stderr)
    return REFUSED


def _verify(args: argparse.Namespace, settings: AuditlogSettings) -> int:  # noqa: PLR0911
    copy = args.s3 is not None or args.webhook_dir is not None
    if args.account is None and not copy:
        return _refuse("give --account T (or --s3 URI / --webhook-dir DIR for a copy)")
    if args.account is not None:
        try:
            validate_tenant(args.account)
        except RetentionError as exc:
            return _refuse(str(exc))
    try:
        ring = _ring(args.keys, settings)
        held = [path.read_text(encoding="utf-8") for path in args.checkpoint]
    except (OSError, KeyStoreError, KeyFormatError, ValueError) as exc:
        return _refuse(str(exc))
    if not ring.keys:
        return _refuse(
            "no public keys to verify with: give --keys FILE (auditlog keys export) or set "
            "AUDITLOG_INTEGRITY_KEYS_DIR to the key store"
        )
    if copy:
        if held or args.start is not None or args.end is not None:
            return _refuse("--checkpoint, --from and --to are for the store, not a copy")
        return verify_copy(args, settings, ring)
    window = None
    if args.start is not None or args.end is not None:
        if args.start is not None and args.end is not None and args.start >= args.end:
            return _refuse(
                f"--from {args.start.isoformat()} is not before --to {args.end.isoformat()}: "
                "give a window that holds some time"
            )
        window = Window(args.start, args.end)
    client = startup_checks.clickhouse(settings)
    try:  # events are streamed while they are checked: the client stays open till the end
        log = read_log(client, settings.clickhouse_database, args.account, window)
        retention = (
            None if log.retention_days is None else Retention(log.retention_days, datetime.now(UTC))
        )
        report = check_log(
            log, ring, trusted=held, grace=timedelta(seconds=args.grace_s), retention=retention
        )
    finally:
        client.close()
    _print(report)
    return VERIFIED if report.ok else TAMPERED


def _moment(text: str) -> datetime:
    """An ISO 8601 date (midnight UTC) or time with a zone; refused otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time: write 2026-11-01 or 2026-11-01T08:00:00Z"
        ) from None
    if len(text) == 10:  # a date alone
        return moment.replace(tzinfo=UTC)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone: add Z for UTC (2026-11-01T08:00:00Z) or an offset"
        )
    return moment.astimezone(UTC)


def _ring(keys_file: Path | None, settings: AuditlogSettings) -> KeyRing:
    if keys_file is None:
        return KeyStore(settings.integrity_keys_dir).ring()
    try:
        document = json.loads(keys_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise KeyFormatError(f"{keys_file}: not JSON ({exc})") from exc
    return KeyRing(parse_public_document(document))


def _print(report: Report) -> None:
    newest = report.newest
    signed = (
        "no checkpoint yet"
        if newest is None
        else f"newest checkpoint size {newest.size} at "
        f"{datetime.fromtimestamp(newest.time_ms / 1000, UTC).isoformat(timespec='seconds')}"
    )
    expired = f" ({report.expired} past the retention)" if report.expired else ""
    summary = (
        f"{report.account}: {_count(report.leaves, 'leaf', 'leaves')}, "
        f"{_count(report.events, 'stored event', 'stored events')}{expired}, "
        f"{_count(report.checkpoints, 'checkpoint', 'checkpoints')} ({signed}), "
        f"{_retention(report)}"
    )
    if report.window is not None:
        summary += (
            f", events of {report.window} only (findings about events outside it are not reported)"
        )
    print_outcome(summary, report.findings)


def _retention(report: Report) -> str:
    """Where the retention days came from: a signed prune statement, or the store."""
    statement = report.retention_statement
    if statement is None:
        if report.retention_days is None:
            return "no retention known"
        return f"retention {report.retention_days} days from the store: no signed prune statement"
    signed_at = datetime.fromtimestamp(statement.time_ms / 1000, UTC)
    return (
        f"retention {statement.retention_days} days, pruned below leaf {report.pruned_below} "
        f"(signed prune statement of {signed_at.isoformat(timespec='seconds')})"
    )


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
