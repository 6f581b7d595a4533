"""``auditlog destinations``: the streaming destinations of each tenant.

``add | update | remove | pause | resume | test | replay | verify`` change a destination
in the destination store (a compacted Kafka topic, see :mod:`sinks.destinations.store`),
which running sink workers follow, so a change takes effect without a restart. Each change
is then published as an audit event of the destination's tenant (``audit_stream.*``),
only once the change itself succeeded. ``list`` and ``show`` read the store (``show`` adds
the destination's delivery health); ``keygen`` prints a new key for
``AUDITLOG_SECRETS_KEY``. Secrets are sealed with that key or stored as ``env:NAME``
references, and are never printed; a reference must name a variable the operator allows
(:mod:`sinks.destinations.references`). An S3 destination brings its own keys or a role
(assumed with the service's external id), unless the operator lends the workers'
credentials (``AUDITLOG_SINK_S3_ALLOW_WORKER_CREDENTIALS``).

Exit codes: 0 done (or nothing to change), 1 Kafka, S3 or the destination failed (for
``test``: the destination did not accept the sample), 2 invalid input, 4 no such
destination, 5 the change is stored but its audit event was not published.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from auditlog import startup_checks, wiring
from auditlog.commands import destination_view as view
from auditlog.commands.actor import parse_actor
from auditlog.commands.destination_options import (
    KINDS,
    OptionError,
    OptionReader,
    add_options,
    flag_of,
    given,
)
from auditlog.settings import AuditlogSettings
from producers.delivery import DeliveryError, PublishError
from runtime.compacted_table import TableError
from runtime.redaction import redact_text
from schemas.catalog import load_catalog
from schemas.event import TenantId
from schemas.validation import InvalidEventError
from sinks.destinations import ownership
from sinks.destinations.model import Destination, S3Target
from sinks.destinations.replay import ReplayError, find_replay_offsets, parse_since
from sinks.destinations.rules import DestinationRefused, check
from sinks.destinations.sample import sample_payload
from sinks.destinations.secrets import SecretBox, SecretError, SecretsKeyMissing, generate_key
from sinks.destinations.store import ConcurrentUpdateError, DestinationStore
from sinks.progress import destination_health
from sinks.senders.base import DeliveryError as SendError

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_NOT_FOUND = 4
EXIT_NOT_PUBLISHED = 5
# What makes an S3 destination a different bucket location: changing it re-proves ownership.
_S3_LOCATION = ("bucket", "prefix_template", "endpoint_url")

_tenant_id: TypeAdapter[str] = TypeAdapter(TenantId)


class Refused(Exception):
    """Stops a command: ``message`` goes to stderr as ``auditlog: ...``, ``code`` is the
    exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


Handler = Callable[[argparse.Namespace, AuditlogSettings], int]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "destinations",
        help="add, change, test or replay a tenant's streaming destinations",
        description=(
            "A tenant's streaming destinations (S3, webhooks, Splunk HEC). Changes reach "
            "running sink workers without a restart and are published as audit events of "
            "the tenant."
        ),
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="add a destination to a tenant")
    add.add_argument("tenant")
    add.add_argument("--kind", required=True, choices=KINDS)
    add.add_argument("--id", help="the destination's id (default: <kind>-<8 hex>)")
    add_options(add)
    _actor_option(add)
    add.set_defaults(run=_guarded(_add))

    list_ = actions.add_parser("list", help="list destinations (of one tenant)")
    list_.add_argument("--tenant")
    list_.set_defaults(run=_guarded(_list))

    show = actions.add_parser("show", help="every setting of a destination and its health")
    show.add_argument("id")
    show.set_defaults(run=_guarded(_show))

    update = actions.add_parser(
        "update", help="change the given settings of a destination ('' unsets or empties)"
    )
    update.add_argument("id")
    update.add_argument("--kind", choices=KINDS, help=argparse.SUPPRESS)
    add_options(update)
    _actor_option(update)
    update.set_defaults(run=_guarded(_update))

    for name, handler, text in (
        ("remove", _remove, "remove a destination; nothing more is delivered to it"),
        ("pause", _pause, "stop deliveries; events are kept for resume"),
        ("resume", _resume, "resume a paused destination where it stopped"),
        ("test", _test, "send a sample event and print the destination's answer"),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("id")
        if name == "pause":
            sub.add_argument("--reason", default="", help="why, for its state and audit event")
        _actor_option(sub)
        sub.set_defaults(run=_guarded(handler))

    replay = actions.add_parser("replay", help="re-send a destination's events from a time")
    replay.add_argument("id")
    replay.add_argument(
        "--since",
        required=True,
        metavar="TIME",
        help="ISO 8601 time (UTC unless it says) or a time ago: 30m, 2h, 3d, 1w",
    )
    _actor_option(replay)
    replay.set_defaults(run=_guarded(_replay))

    verify = actions.add_parser(
        "verify", help="complete an S3 ownership challenge with the token from the bucket"
    )
    verify.add_argument("id")
    verify.add_argument("token", help="the first line of the challenge object ('-': stdin)")
    _actor_option(verify)
    verify.set_defaults(run=_guarded(_verify))

    keygen = actions.add_parser("keygen", help="print a new key for AUDITLOG_SECRETS_KEY")
    keygen.set_defaults(run=_keygen)


def _actor_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor",
        default="system:auditlog-cli",
        metavar="TYPE:ID",
        help="who makes the change, for its audit event (default: system:auditlog-cli)",
    )


def _guarded(handler: Handler) -> Handler:
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


def _store(settings: AuditlogSettings) -> DestinationStore:
    """The destination store, once the command's input was read and checked: Kafka is
    asked first, so a setup mistake gives one line (:func:`auditlog.startup_checks.check_kafka`),
    but a typo never waits for a broker."""
    startup_checks.check_kafka(
        settings, topics=[settings.destinations_topic, settings.events_topic]
    )
    return wiring.destination_store(settings)


# --- reading input ------------------------------------------------------------------------


def _actor(text: str) -> dict[str, str]:
    try:
        return parse_actor(text)
    except ValueError as exc:
        raise Refused(EXIT_INVALID, str(exc)) from None


def _secret_box(settings: AuditlogSettings) -> SecretBox:
    try:
        return wiring.secret_box(settings)
    except SecretError as exc:
        raise Refused(EXIT_INVALID, str(exc)) from None


def _options(secrets: SecretBox) -> OptionReader:
    return OptionReader(secrets, load_catalog(), environ=os.environ, stdin=sys.stdin)


def _validated(data: dict[str, Any]) -> Destination:
    try:
        return Destination.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'] if p not in KINDS) or 'destination'}: "
            f"{error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise Refused(EXIT_INVALID, f"invalid destination: {problems}") from None


def _checked(
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


def _load(store: DestinationStore, destination_id: str) -> Destination:
    found = store.get(destination_id)
    if found is None:
        reason = store.invalid.get(destination_id)
        if reason is not None:
            raise Refused(
                EXIT_FAILED, f"destination {destination_id} is stored but unreadable: {reason}"
            )
        raise Refused(EXIT_NOT_FOUND, f"no destination {destination_id}")
    return found


def _revised(current: Destination, **changes: Any) -> Destination:
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


# --- publishing ---------------------------------------------------------------------------


def _publish(
    settings: AuditlogSettings,
    destination: Destination,
    action: str,
    actor: Mapping[str, str],
    details: Mapping[str, str],
    *,
    failure: str | None = None,
) -> str:
    """Publish ``action`` as an audit event of the destination's tenant; blocks until
    Kafka acknowledged it (raises :class:`PublishError` subclasses when it did not)."""
    event = {
        "tenant_id": destination.tenant_id,
        "occurred_at": datetime.now(UTC),
        "action": action,
        "actor": dict(actor),
        "resource": {
            "type": "audit_stream",
            "id": destination.id,
            "name": destination.name or None,
        },
        "outcome": {"status": "failure", "reason": failure[:1024]}
        if failure
        else {"status": "success"},
        "details": {key: value[:2048] for key, value in details.items()},
        "source": "auditlog-cli",
    }
    with wiring.audit_producer(settings, client_id="auditlog-destinations") as producer:
        return producer.publish(event)


def _announce(
    settings: AuditlogSettings,
    destination: Destination,
    action: str,
    actor: Mapping[str, str],
    details: Mapping[str, str],
    *,
    failure: str | None = None,
    code: int = 0,
) -> int:
    """Publish the change; ``code`` when published, 5 when not (the change stays)."""
    try:
        event_id = _publish(settings, destination, action, actor, details, failure=failure)
    except (PublishError, DeliveryError, InvalidEventError, OSError) as exc:
        print(
            f"auditlog: the change is stored, but its audit event was not published: {exc}",
            file=sys.stderr,
        )
        return code or EXIT_NOT_PUBLISHED
    print(f"published {action} {event_id}")
    return code


# --- the actions --------------------------------------------------------------------------


def _add(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = _actor(args.actor)
    try:
        tenant = _tenant_id.validate_python(args.tenant)
    except ValidationError:
        raise Refused(
            EXIT_INVALID,
            f"{args.tenant!r} is not a tenant id (letters, digits and . _ : @ -, at most 128)",
        ) from None
    secrets = _secret_box(settings)
    now = datetime.now(UTC)
    destination_id = args.id or f"{args.kind.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    target: dict[str, Any] = {"kind": args.kind}
    if args.kind == "s3":
        target["region"] = settings.s3_region
    base = {
        "id": destination_id,
        "tenant_id": tenant,
        "target": target,
        "created_at": now,
        "updated_at": now,
    }
    try:
        data = _options(secrets).apply(args, args.kind, base)
    except OptionError as exc:
        raise Refused(EXIT_INVALID, str(exc)) from None
    _require_add_options(args.kind, data["target"])
    destination = _validated(data)
    _checked(destination, settings, secrets, None)

    store = _store(settings)
    try:
        if store.get(destination.id) is not None:
            raise Refused(EXIT_INVALID, f"destination {destination.id} exists already")
        if isinstance(destination.target, S3Target):
            destination = _challenge(settings, secrets, destination)
        store.put(destination, expected_revision=0)
    finally:
        store.close()
    print(
        f"added {destination.kind} destination {destination.id} of tenant "
        f"{destination.tenant_id}: {view.target_summary(destination)} ({destination.state})"
    )
    if isinstance(destination.target, S3Target) and destination.target.role_arn is not None:
        print(
            f"role: the workers assume {destination.target.role_arn} with external id "
            f"{view.external_id(destination)}; its trust policy must require that id"
        )
    if destination.ownership is not None:
        print(
            f"ownership: a challenge object was written to s3://{_bucket(destination)}/"
            f"{destination.ownership.challenge_key}; nothing is delivered until you run "
            f"`auditlog destinations verify {destination.id} TOKEN` with the token in it"
        )
    return _announce(
        settings,
        destination,
        "audit_stream.destination_added",
        actor,
        {"destination_type": destination.kind, "scope": "account", "state": destination.state},
    )


def _require_add_options(kind: str, target: Mapping[str, Any]) -> None:
    if kind == "s3" and not target.get("bucket"):
        raise Refused(EXIT_INVALID, "an s3 destination needs --bucket")
    if kind in ("webhook", "splunk_hec") and not target.get("url"):
        raise Refused(EXIT_INVALID, f"a {kind} destination needs --url")
    if kind == "webhook" and "signing_secret" not in target:
        raise Refused(
            EXIT_INVALID,
            "a webhook needs a signing secret: --secret-env NAME, --secret-ref env:NAME "
            "or --secret-stdin",
        )
    if kind == "splunk_hec" and "token" not in target:
        raise Refused(
            EXIT_INVALID,
            "a splunk_hec destination needs its token: --token-env NAME, --token-ref env:NAME "
            "or --token-stdin",
        )


def _bucket(destination: Destination) -> str:
    return destination.target.bucket if isinstance(destination.target, S3Target) else ""


def _challenge(
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


def _list(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    store = _store(settings)
    found = store.list(args.tenant)
    if found:
        for line in view.table(found):
            print(line)
    else:
        print("no destinations" + (f" of tenant {args.tenant}" if args.tenant else ""))
    for name, reason in sorted(store.invalid.items()):
        print(f"auditlog: destination {name} is unreadable and left out: {reason}", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    destination = _load(_store(settings), args.id)
    for line in view.details(destination):
        print(line)
    print("health:")
    for line in _health(settings, destination.id):
        print(f"  {line}")
    return 0


def _health(settings: AuditlogSettings, destination_id: str) -> list[str]:
    """The destination's delivery health as the sink workers recorded it."""
    try:
        health = destination_health(
            wiring.kafka_connection(settings), settings.sink_progress_topic, destination_id
        )
    except TableError as exc:
        return [f"unavailable: {exc}"]
    return health.lines()


def _update(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = _actor(args.actor)
    if not given(args):
        raise Refused(EXIT_INVALID, "update: give at least one setting to change")
    secrets = _secret_box(settings)
    store = _store(settings)
    try:
        current = _load(store, args.id)
        if args.kind is not None and args.kind != current.kind:
            raise Refused(EXIT_INVALID, f"--kind: {current.id} is a {current.kind} destination")
        try:
            data = _options(secrets).apply(args, current.kind, current.model_dump(mode="python"))
        except OptionError as exc:
            raise Refused(EXIT_INVALID, str(exc)) from None
        candidate = _validated(data)
        changed = changed_fields(current, candidate)
        if not changed:
            print(f"{current.id}: nothing changed (revision {current.revision})")
            return 0
        _checked(candidate, settings, secrets, current)
        updated = _revised(candidate)
        moved = _moved(current, updated)
        if moved:
            updated = _challenge(settings, secrets, updated)
            changed.append("ownership")
        store.put(updated, expected_revision=current.revision)
    finally:
        store.close()
    print(f"updated {updated.id} (revision {updated.revision}): {', '.join(changed)}")
    if moved:
        print(
            "ownership: a new challenge object was written to the bucket; nothing is "
            f"delivered until `auditlog destinations verify {updated.id} TOKEN`"
        )
    return _announce(
        settings,
        updated,
        "audit_stream.destination_updated",
        actor,
        {"changed_fields": ",".join(changed)},
    )


def _moved(before: Destination, after: Destination) -> bool:
    """An S3 destination now writes to another bucket location."""
    old, new = before.target, after.target
    return (
        isinstance(old, S3Target)
        and isinstance(new, S3Target)
        and any(getattr(old, f) != getattr(new, f) for f in _S3_LOCATION)
    )


def _remove(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = _actor(args.actor)
    store = _store(settings)
    try:
        current = _load(store, args.id)
        store.remove(current.id, expected_revision=current.revision)
    finally:
        store.close()
    print(f"removed {current.id} of tenant {current.tenant_id}")
    return _announce(
        settings,
        current,
        "audit_stream.destination_removed",
        actor,
        {"destination_type": current.kind},
    )


def _pause(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = _actor(args.actor)
    store = _store(settings)
    try:
        current = _load(store, args.id)
        if current.state == "paused":
            print(f"{current.id} is paused already" + _reason(current))
            return 0
        reason = args.reason or f"paused by {args.actor}"
        paused = _revised(current, state="paused", state_reason=reason)
        store.put(paused, expected_revision=current.revision)
    finally:
        store.close()
    print(f"paused {paused.id}: events are kept and delivered on resume")
    return _announce(settings, paused, "audit_stream.destination_paused", actor, {"reason": reason})


def _reason(destination: Destination) -> str:
    return f" ({destination.state_reason})" if destination.state_reason else ""


def _resume(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = _actor(args.actor)
    store = _store(settings)
    try:
        current = _load(store, args.id)
        if current.state != "paused":
            print(f"{current.id} is not paused (it is {current.state})")
            return 0
        state = "active" if ownership.is_verified(current) else "pending_verification"
        resumed = _revised(current, state=state, state_reason="")
        store.put(resumed, expected_revision=current.revision)
    finally:
        store.close()
    print(f"resumed {resumed.id} ({resumed.state}); it was paused{_reason(current)}")
    return _announce(
        settings,
        resumed,
        "audit_stream.destination_resumed",
        actor,
        {},
    )


def _test(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = _actor(args.actor)
    secrets = _secret_box(settings)
    destination = _load(_store(settings), args.id)
    payload = sample_payload(
        destination,
        topic=settings.events_topic,
        actor=actor,
        now=datetime.now(UTC),
        validator=wiring.validator(settings),
    )
    error: str | None = None
    with wiring.http_client(settings) as http:
        try:
            sender = wiring.destination_sender(settings, destination, secrets, http=http)
            try:
                answer = sender.send(payload).detail
            finally:
                sender.close()
        except (SendError, SecretError) as exc:
            error = redact_text(str(exc)) or type(exc).__name__
    if error is None:
        print(f"{destination.id} accepted the sample event: {answer}")
        details = {"result": "succeeded", "answer": answer}
    else:
        print(
            f"auditlog: {destination.id} did not accept the sample event: {error}",
            file=sys.stderr,
        )
        details = {"result": "failed", "error": error}
    return _announce(
        settings,
        destination,
        "audit_stream.destination_tested",
        actor,
        details,
        failure=error,
        code=EXIT_FAILED if error else 0,
    )


def _replay(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = _actor(args.actor)
    now = datetime.now(UTC)
    try:
        since = parse_since(args.since, now=now)
    except ValueError as exc:
        raise Refused(EXIT_INVALID, str(exc)) from None
    store = _store(settings)
    try:
        current = _load(store, args.id)
        try:
            start = find_replay_offsets(
                wiring.kafka_connection(settings), settings.events_topic, since
            )
        except ReplayError as exc:
            raise Refused(EXIT_FAILED, str(exc)) from None
        request = start.request()
        replaying = _revised(current, replay=request)
        store.put(replaying, expected_revision=current.revision)
    finally:
        store.close()
    print(
        f"replay {request.id} of {current.id} from {view.when(since)}: "
        f"{start.records} records of the topic (every tenant's) lie ahead in "
        f"{len(start.offsets)} partitions"
    )
    if start.from_log_start:
        print(
            "the topic no longer holds events that old in partitions "
            f"{', '.join(map(str, start.from_log_start))} (retention "
            f"{settings.events_retention_hours} h): they replay from their oldest event"
        )
    if current.state != "active":
        print(f"{current.id} is {current.state}: the replay runs once it is active")
    return _announce(
        settings,
        replaying,
        "audit_stream.destination_replay_requested",
        actor,
        {
            "replay_id": request.id,
            "since": since.isoformat(),
            "from_log_start": "true" if start.from_log_start else "false",
        },
    )


def _verify(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = _actor(args.actor)
    from_stdin = args.token == "-"  # noqa: S105 - "-" means stdin, not a password
    token: str = sys.stdin.readline().strip() if from_stdin else args.token
    store = _store(settings)
    try:
        current = _load(store, args.id)
        try:
            verified = ownership.verify(current, token, now=datetime.now(UTC))
        except ownership.OwnershipError as exc:
            raise Refused(EXIT_INVALID, str(exc)) from None
        verified = _revised(verified)
        store.put(verified, expected_revision=current.revision)
    finally:
        store.close()
    print(f"verified {verified.id}: s3://{_bucket(verified)} is proven; state {verified.state}")
    return _announce(
        settings,
        verified,
        "audit_stream.destination_verified",
        actor,
        {"bucket": _bucket(verified)},
    )


def _keygen(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    print(generate_key())
    return 0
