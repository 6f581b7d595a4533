"""Setup mistakes as one line each: what is wrong, where, and the command that fixes it.

A :class:`SetupFailure` is raised where a command finds the mistake (mostly in
:mod:`auditlog.wiring`, at startup) and printed once by :func:`auditlog.cli.main` as
``auditlog: <service> at <address>: <what failed>: <what to try>``, ending the command with
its :class:`~auditlog.exit_codes.ExitCode`. The functions below build them; they do no I/O
and never put a password in the line (addresses go through :mod:`runtime.redaction`).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from pydantic import ValidationError
from urllib3.exceptions import NameResolutionError, NewConnectionError

from auditlog.exit_codes import ExitCode
from consumers.migrations.schema_check import SchemaCheck
from runtime.redaction import redact_text, redact_url

START_STACK = "start it (`auditlog stack up` for the local stack)"


class SetupFailure(Exception):
    """A command cannot start because of how things are set up (see the module)."""

    def __init__(self, code: ExitCode, where: str, problem: str, remedy: str) -> None:
        self.code = code
        self.line = redact_text(f"auditlog: {where}: {problem}: {remedy}")
        super().__init__(self.line)


def kafka_unreachable(kafka: str, waited_s: float) -> SetupFailure:
    return SetupFailure(
        ExitCode.KAFKA_UNREACHABLE,
        f"Kafka at {kafka}",
        f"no broker answered (waited up to {waited_s:g} s)",
        f"{START_STACK}, or set AUDITLOG_KAFKA_BOOTSTRAP to where it runs",
    )


def topics_missing(kafka: str, missing: Sequence[str]) -> SetupFailure:
    names = ", ".join(missing)
    return SetupFailure(
        ExitCode.TOPIC_MISSING,
        f"Kafka at {kafka}",
        f"topic{'s' if len(missing) > 1 else ''} {names} "
        f"{'do' if len(missing) > 1 else 'does'} not exist",
        "create the topics with `auditlog topics ensure`",
    )


def kafka_refused(message: str) -> SetupFailure:
    """From :class:`~runtime.kafka_refusal.KafkaRefusedError`'s message, which already says
    where, what Kafka answered and which settings to check."""
    where, _, rest = message.partition(": ")
    problem, _, remedy = rest.rpartition("; ")
    return SetupFailure(ExitCode.CREDENTIALS_REFUSED, where, problem or rest, remedy)


def clickhouse_unreachable(url: str, error: BaseException) -> SetupFailure | None:
    """The failure when ``error`` says nothing answered at ``url`` (refused, no such
    host, timed out), else None: the caller reports ``error`` as it is."""
    cause = connection_failure(error)
    if cause is None:
        return None
    return SetupFailure(
        ExitCode.CLICKHOUSE_UNREACHABLE,
        f"ClickHouse at {redact_url(url)}",
        f"not answering ({cause})",
        f"{START_STACK}, or set AUDITLOG_CLICKHOUSE_URL to where it runs",
    )


def clickhouse_refused(url: str, error: BaseException) -> SetupFailure | None:
    """The failure when ClickHouse refused the URL's user or password, else None."""
    text = str(error)
    if "AUTHENTICATION_FAILED" not in text and "Code: 516." not in text:
        return None
    return SetupFailure(
        ExitCode.CREDENTIALS_REFUSED,
        f"ClickHouse at {redact_url(url)}",
        "the user name or password was refused",
        "check the user and password in AUDITLOG_CLICKHOUSE_URL",
    )


def connection_failure(error: BaseException) -> str | None:
    """``"connection refused"``, ``"no such host"``, ``"timed out"`` or ``"cannot
    connect"`` when ``error`` (or an error in its chain) says nothing answered; None
    otherwise."""
    seen: BaseException | None = error
    for _ in range(12):
        if seen is None:
            return None
        kind = _failure_kind(seen)
        if kind is not None:
            return kind
        seen = seen.__cause__ or seen.__context__ or _reason(seen)
    return None


def _failure_kind(error: BaseException) -> str | None:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, NameResolutionError | socket.gaierror):
        return "no such host"
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, NewConnectionError):
        return "connection refused" if "refused" in str(error).lower() else "cannot connect"
    return None


def _reason(error: BaseException) -> BaseException | None:
    """urllib3's ``MaxRetryError`` keeps the last failure in ``reason``; clickhouse-connect
    wraps it in its own error's arguments."""
    reason = getattr(error, "reason", None)
    if isinstance(reason, BaseException):
        return reason
    for argument in error.args:
        if isinstance(argument, BaseException):
            return argument
    return None


def schema_not_current(url: str, check: SchemaCheck) -> SetupFailure | None:
    """The failure when the schema in ClickHouse is not the one this code expects (missing,
    behind, or newer), else None."""
    where = f"ClickHouse at {redact_url(url)}"
    if check.state == "current":
        return None
    if check.state == "ahead":
        return SetupFailure(
            ExitCode.SCHEMA_AHEAD,
            where,
            f"the schema of database {check.database} is newer than this code "
            f"(migration {check.newest_applied} applied, this code knows up to "
            f"{check.newest_known})",
            "run the auditlog version that migrated it, or upgrade this one",
        )
    problem = (
        f"database {check.database} has no schema"
        if check.state == "missing"
        else f"the schema of database {check.database} is behind this code "
        f"(migration {check.newest_applied} applied, {check.newest_known} expected)"
    )
    return SetupFailure(ExitCode.SCHEMA_BEHIND, where, problem, "run `auditlog migrate`")


def port_in_use(what: str, host: str, port: int, setting: str) -> SetupFailure:
    return SetupFailure(
        ExitCode.PORT_IN_USE,
        f"{what} at {host}:{port}",
        "the port is in use by another process",
        f"stop that process, or set {setting} to a free port (0: any free port)",
    )


def secrets_key_missing() -> SetupFailure:
    return SetupFailure(
        ExitCode.SECRETS_KEY_MISSING,
        "AUDITLOG_SECRETS_KEY",
        "not set, so destination secrets cannot be sealed or opened",
        "make a key with `auditlog destinations keygen` and export "
        "AUDITLOG_SECRETS_KEY=<key> (or pass the secret by reference, --secret-ref env:NAME)",
    )


def settings_lines(error: ValidationError) -> list[str]:
    """Why the settings did not load, one line each naming the variables (a value of a
    secret setting is never in pydantic's message)."""
    lines: list[str] = []
    for item in error.errors():
        if not item["loc"]:  # settings that do not go together; each line names them
            lines += item["msg"].splitlines()
            continue
        name = "AUDITLOG_" + "_".join(str(part) for part in item["loc"]).upper()
        lines.append(f"{name}: {item['msg']}")
    return lines
