"""``auditlog doctor [--json] [--strict]``: check the whole deployment at once and say, for
each problem, what is wrong and the command that fixes it (:mod:`auditlog.doctor`).

Unlike the other commands, a service that does not answer is not the end: it is that
check's FAIL, the checks that need the service are skipped, and the others still run.
Every read waits at most ``--timeout-s``. Exit codes: 0 nothing failed (warnings allowed
unless ``--strict``), 1 a check failed, 2 the settings do not load (nothing else checked),
3 only warnings, with ``--strict``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import ValidationError

from auditlog import setup_failures
from auditlog.doctor import report
from auditlog.doctor.checks_settings import refused
from auditlog.doctor.model import INVALID, LagThresholds, exit_code
from auditlog.doctor.runner import DoctorOptions, LiveProbes, run_checks
from auditlog.settings import AuditlogSettings

DEFAULT_TIMEOUT_S = 5.0


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check settings, Kafka, topics, ClickHouse, lag, destinations and keys",
        description=(
            "Check the settings, the brokers, every topic against its spec, the ClickHouse "
            "schema, the lag of the writer, the sinks and the integrity appender, every "
            "destination's health and the signing keys; print ok/warn/FAIL per check and how "
            "to fix each problem. Exit 0 nothing failed, 1 a check failed, 2 the settings do "
            "not load, 3 warnings only (with --strict)."
        ),
    )
    parser.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    parser.add_argument(
        "--strict", action="store_true", help="exit 3 when a check warns and none failed"
    )
    parser.add_argument(
        "--timeout-s",
        type=_positive,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"longest wait for each answer of Kafka or ClickHouse (default {DEFAULT_TIMEOUT_S:g})",
    )
    defaults = LagThresholds()
    for flag, default, outcome in (
        ("--lag-warn", defaults.warn_records, "warns"),
        ("--lag-fail", defaults.fail_records, "fails"),
    ):
        parser.add_argument(
            flag,
            type=int,
            default=default,
            metavar="RECORDS",
            help=f"a group this many records behind {outcome} (default {default})",
        )
    parser.set_defaults(run=_doctor, on_invalid_settings=_invalid_settings)


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _doctor(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    try:
        thresholds = LagThresholds(args.lag_warn, args.lag_fail)
    except ValueError as exc:
        print(f"auditlog: {exc}", file=sys.stderr)
        return INVALID
    results = run_checks(
        settings, LiveProbes(settings, args.timeout_s), DoctorOptions(thresholds=thresholds)
    )
    code = exit_code(results, strict=args.strict)
    _print(args, results, code)
    return code


def _invalid_settings(args: argparse.Namespace, error: ValidationError) -> int:
    """The settings did not load: the same lines every command prints, as the settings
    check's problems; exit 2."""
    results = [refused(setup_failures.settings_lines(error))]
    _print(args, results, INVALID)
    return INVALID


def _print(args: argparse.Namespace, results: list[Any], code: int) -> None:
    if args.json:
        print(report.document(results, code))
    else:
        print("\n".join(report.text(results, code)))
