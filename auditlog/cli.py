"""The ``auditlog`` command. Settings are read here, once, and passed down."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from auditlog import setup_failures
from auditlog.commands import (
    accounts,
    consume,
    demo,
    destinations,
    doctor,
    generate,
    integrity,
    keys,
    migrate,
    produce,
    retention,
    serve,
    stack,
    topics,
    verify,
    viewer,
)
from auditlog.commands import sink as sink_command
from auditlog.exit_codes import ExitCode
from auditlog.logging_setup import route_library_logs
from auditlog.settings import AuditlogSettings
from auditlog.setup_failures import SetupFailure
from deploy.stack.errors import StackError
from runtime.kafka_refusal import KafkaRefusedError
from sinks.destinations.secrets import SecretsKeyMissing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditlog",
        description="Per-tenant activity audit log on Kafka and ClickHouse.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    stack.register(commands)
    demo.register(commands)
    topics.register(commands)
    produce.register(commands)
    generate.register(commands)
    consume.register(commands)
    integrity.register(commands)
    migrate.register(commands)
    retention.register(commands)
    destinations.register(commands)
    accounts.register(commands)
    sink_command.register(commands)
    serve.register(commands)
    viewer.register(commands)
    keys.register(commands)
    verify.register(commands)
    doctor.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code (:class:`ExitCode`). A setup
    mistake is one line on stderr (:mod:`auditlog.setup_failures`); the libraries' own log
    lines go to the JSON log at debug level, never to the terminal."""
    route_library_logs()
    args = build_parser().parse_args(argv)
    try:
        settings = AuditlogSettings()
    except ValidationError as exc:
        on_invalid = getattr(args, "on_invalid_settings", None)
        if on_invalid is not None:  # `doctor` reports it as its settings check
            invalid: int = on_invalid(args, exc)
            return invalid
        for line in setup_failures.settings_lines(exc):
            print(f"auditlog: {line}", file=sys.stderr)
        return ExitCode.INVALID
    try:
        code: int = args.run(args, settings)
    except (SetupFailure, KafkaRefusedError, SecretsKeyMissing, StackError) as exc:
        line, code = _one_line(exc)
        print(line, file=sys.stderr)
    except KeyboardInterrupt:
        print("auditlog: interrupted (Ctrl-C): stopped before it finished", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    return code


def _one_line(exc: Exception) -> tuple[str, int]:
    """The line to print and the exit code for a failure that ends a command."""
    failure: SetupFailure | None = None
    if isinstance(exc, SetupFailure):
        failure = exc
    elif isinstance(exc, KafkaRefusedError):
        failure = setup_failures.kafka_refused(str(exc))
    elif isinstance(exc, SecretsKeyMissing):
        failure = setup_failures.secrets_key_missing()
    if failure is not None:
        return failure.line, failure.code
    return f"auditlog: {exc}", ExitCode.FAILED  # the local stack could not start or stop


if __name__ == "__main__":
    sys.exit(main())
