"""The ``auditlog`` command. Settings are read here, once, and passed down."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from auditlog.commands import (
    accounts,
    consume,
    demo,
    destinations,
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
from auditlog.settings import AuditlogSettings
from deploy.stack.errors import StackError
from runtime.kafka_refusal import KafkaRefusedError


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = AuditlogSettings()
    except ValidationError as exc:
        for error in exc.errors():
            if not error["loc"]:  # settings that do not go together; each line names them
                for line in error["msg"].splitlines():
                    print(f"auditlog: {line}", file=sys.stderr)
                continue
            name = "AUDITLOG_" + "_".join(str(part) for part in error["loc"]).upper()
            print(f"auditlog: {name}: {error['msg']}", file=sys.stderr)
        return 2
    try:
        code: int = args.run(args, settings)
    except (StackError, KafkaRefusedError) as exc:
        print(f"auditlog: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
