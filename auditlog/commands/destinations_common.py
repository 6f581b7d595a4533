"""What every ``auditlog destinations`` subcommand shares: exit codes, :class:`Refused`,
reading and checking input, loading a destination from the store, the next revision."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from auditlog import startup_checks, wiring
from auditlog.commands.actor import parse_actor
from auditlog.commands.destination_options import KINDS, OptionReader, flag_of
from auditlog.settings import AuditlogSettings
from runtime.compacted_table import TableError
from schemas.catalog import load_catalog
from schemas.event import TenantId
from sinks.destinations import ownership
from sinks.destinations.model import Destination, S3Target
from sinks.destinations.rules import DestinationRefused, check
from sinks.destinations.secrets import SecretBox, SecretError, SecretsKeyMissing
from sinks.destinations.store import ConcurrentUpdateError, DestinationStore
from sinks.senders.base import DeliveryError as SendError

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_NOT_FOUND = 4
EXIT_NOT_PUBLISHED = 5

tenant_id: TypeAdapter[str] = TypeAdapter(TenantId)


class Refused(Exception):
    """Stops a command: ``message`` goes to stderr as ``auditlog: ...``, ``code`` is the
    exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


Handler = Callable[[argparse.Namespace, AuditlogSettings], int]


def actor_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor",
        default="system:auditlog-cli",
        metavar="TYPE:ID",
        help="who makes the change, for its audit event (default: system:auditlog-cli)",
    )


def guarded(handler: Handler) -> Handler:
    """Runs ``handler``, turning :class:`Refused` and store failures into exit codes."""

    def run(args: argparse.Namespace, settings: AuditlogSettings) -> int:
        try:
            return handler(args, settings)
        except Refused as exc:
            print(f"auditlog: {exc}", file=sys.stderr)
            return exc.code
        except TableError as exc:
            print(f"auditlog: destination store: {exc}", file=sys.stderr)
            return EXIT_FAILED
        except ConcurrentUpdateError as exc:
            print(f"auditlog: {exc}", file=sys.stderr)
            return EXIT_FAILED

    return run


def store(settings: AuditlogSettings) -> DestinationStore:
    """The destination store, once the command's input was read and checked: Kafka is
    asked first, so a setup mistake gives one line (:func:`auditlog.startup_checks.check_kafka`),
    but a typo never waits for a broker."""
    startup_checks.check_kafka(
        settings, topics=[settings.destinations_topic, settings.events_topic]
    )
    return wiring.destination_store(settings)


# --- reading input ------------------------------------------------------------------------


def actor(text: str) -> dict[str, str]:
    try:
        return parse_actor(text)
    except ValueError as exc:
        raise Refused(EXIT_INVALID, str(exc)) from None


def secret_box(settings: AuditlogSettings) -> SecretBox:
    try:
        return wiring.secret_box(settings)
    except SecretError as exc:
        raise Refused(EXIT_INVALID, str(exc)) from None


def options(secrets: SecretBox) -> OptionReader:
    return OptionReader(secrets, load_catalog(), environ=os.environ, stdin=sys.stdin)


def validated(data: dict[str, Any]) -> Destination:
    try:
        return Destination.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'] if p not in KINDS) or 'destination'}: "
            f"{error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise Refused(EXIT_INVALID, f"invalid destination: {problems}") from None


def checked(
    destination: Destination,
    settings: AuditlogSettings,
    secrets: SecretBox,
    before: Destination | None,
) -> None:
    """The rules beyond the model (:mod:`sinks.destinations.rules`), options named as flags."""
    policy = wiring.destination_policy(settings, secrets.references)
    try:
        check(destination, policy=policy, catalog=load_catalog(), before=before)
    except DestinationRefused as exc:
        raise Refused(EXIT_INVALID, exc.render(flag_of)) from None


def load(store: DestinationStore, destination_id: str) -> Destination:
    found = store.get(destination_id)
    if found is None:
        reason = store.invalid.get(destination_id)
        if reason is not None:
            raise Refused(
                EXIT_FAILED, f"destination {destination_id} is stored but unreadable: {reason}"
            )
        raise Refused(EXIT_NOT_FOUND, f"no destination {destination_id}")
    return found


def revised(current: Destination, **changes: Any) -> Destination:
    """``current`` with ``changes``, the next revision, updated now."""
    return current.model_copy(
        update={**changes, "revision": current.revision + 1, "updated_at": datetime.now(UTC)}
    )


def changed_fields(before: Destination, after: Destination) -> list[str]:
    """Names of the settings that differ (``target.url``, ``filters.include_actions``...),
    not counting the revision and the time of the change."""
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    changed: list[str] = []
    for name in type(after).model_fields:
        if name in ("revision", "updated_at") or old.get(name) == new.get(name):
            continue
        if name in ("target", "filters", "batch") and isinstance(new.get(name), dict):
            inner_old, inner_new = old.get(name) or {}, new[name]
            changed += [
                f"{name}.{key}"
                for key in sorted(set(inner_old) | set(inner_new))
                if inner_old.get(key) != inner_new.get(key)
            ]
        else:
            changed.append(name)
    return changed


def bucket(destination: Destination) -> str:
    return destination.target.bucket if isinstance(destination.target, S3Target) else ""


def challenge(
    settings: AuditlogSettings, secrets: SecretBox, destination: Destination
) -> Destination:
    """Write a new ownership challenge to the destination's bucket (exit 1 if it fails)."""
    assert isinstance(destination.target, S3Target)
    try:
        client = wiring.s3_client(settings, destination, secrets)
        return ownership.issue(client, destination)
    except SecretsKeyMissing:
        raise  # a setup mistake: one line and its own exit code (auditlog.cli)
    except (ownership.ChallengeWriteError, SendError, SecretError) as exc:
        raise Refused(EXIT_FAILED, str(exc)) from None
