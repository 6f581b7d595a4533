"""``auditlog accounts show | list | enable | disable | set-partner | clear-partner``: the
account facts the viewer and the sinks rely on (whether an account has the audit log, and
which embedded partner manages it), kept in the accounts topic (:mod:`accounts.store`).

The audit log is an add-on for direct customers (``enable``/``disable`` set the add-on
flag) and on by default for accounts a partner manages (``set-partner``); an explicit
add-on setting wins over the default (:class:`accounts.model.AccountFacts`).

Every change is written to the store with a revision check, and only once the store
acknowledged it, published as audit events (:mod:`accounts.changes`): the account's own
event first, then, for a partner change, ``managed_account.added``/``removed`` in the
partners' logs. A change that changes nothing writes and publishes nothing.

Exit codes: 0 done (or nothing to change), 2 invalid input (checked before Kafka is
contacted), 1 the store could not be read or written, or another change came first
(nothing changed), 5 the change is stored but an audit event was not published.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from accounts.changes import KEEP, Keep, change_events, next_record
from accounts.model import AccountFacts
from accounts.record import AccountRecord, check_id
from accounts.store import ConcurrentUpdateError
from auditlog import startup_checks, wiring
from auditlog.commands.actor import parse_actor
from auditlog.settings import AuditlogSettings
from producers.delivery import DeliveryError, PublishError
from runtime.compacted_table import TableError
from schemas.validation import InvalidEventError

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_NOT_PUBLISHED = 5

DEFAULT_ACTOR = "system:auditlog-cli"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "accounts",
        help="show or change account facts: the audit log add-on and the managing partner",
        description=(
            "Account facts in the accounts topic: whether the account bought the audit log "
            "add-on, and which embedded partner manages it (managed accounts have the audit "
            "log unless the add-on is disabled). Every change is published as an audit "
            "event of the account. Exit 0 done, 2 invalid input, 1 store failure (nothing "
            "changed), 5 changed but not published."
        ),
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    show = actions.add_parser("show", help="an account's facts and whether its audit log is on")
    show.add_argument("account")
    show.set_defaults(run=_show)

    list_ = actions.add_parser("list", help="every account with stored facts")
    list_.add_argument("--partner", metavar="PARTNER", help="only the accounts it manages")
    list_.set_defaults(run=_list)

    changes: list[tuple[str, str, Callable[[argparse.Namespace, AuditlogSettings], int]]] = [
        ("enable", "enable the audit log add-on of an account", _enable),
        ("disable", "disable the audit log add-on (also for a managed account)", _disable),
        ("set-partner", "record the embedded partner that manages an account", _set_partner),
        ("clear-partner", "record that no partner manages an account", _clear_partner),
    ]
    for name, help_text, run in changes:
        action = actions.add_parser(name, help=help_text + "; publishes the change")
        action.add_argument("account")
        if name == "set-partner":
            action.add_argument("partner")
        action.add_argument(
            "--actor",
            default=DEFAULT_ACTOR,
            metavar="TYPE:ID",
            help=f"who makes the change, for its audit event (default: {DEFAULT_ACTOR})",
        )
        action.set_defaults(run=run)


class _Invalid(ValueError):
    """Input refused before anything is read or written (exit 2)."""


def _fail(message: str, code: int) -> int:
    print(f"auditlog: {message}", file=sys.stderr)
    return code


# --- reading ----------------------------------------------------------------------------


def _describe(account_id: str, record: AccountRecord | None) -> list[str]:
    facts = record.facts if record is not None else AccountFacts(account_id)
    add_on = {True: "enabled", False: "disabled", None: "unset"}[facts.audit_log_add_on]
    lines = [
        f"account: {account_id}",
        f"audit log: {facts.audit_log_status}",
        f"add-on: {add_on}",
        f"partner: {facts.partner_id or 'none'}",
    ]
    if record is None:
        lines.append("(no facts stored)")
    else:
        lines.append(
            f"revision {record.revision}, changed {record.updated_at:%Y-%m-%d %H:%M:%S} UTC "
            f"by {record.updated_by}"
        )
    return lines


def _show(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    try:
        account = check_id(args.account, "account")
    except ValueError as exc:
        return _fail(str(exc), EXIT_INVALID)
    startup_checks.check_kafka(settings, topics=[settings.accounts_topic])
    store = wiring.account_store(settings)
    try:
        record = store.get(account)
    except TableError as exc:
        return _fail(f"account store: {exc}", EXIT_FAILED)
    if account in store.invalid:
        return _fail(
            f"account {account} is stored but unreadable: {store.invalid[account]}", EXIT_FAILED
        )
    print("\n".join(_describe(account, record)))
    return 0


def _list(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    try:
        partner = None if args.partner is None else check_id(args.partner, "partner")
    except ValueError as exc:
        return _fail(str(exc), EXIT_INVALID)
    startup_checks.check_kafka(settings, topics=[settings.accounts_topic])
    store = wiring.account_store(settings)
    try:
        records = store.list(partner)
    except TableError as exc:
        return _fail(f"account store: {exc}", EXIT_FAILED)
    for name, reason in sorted(store.invalid.items()):
        print(f"auditlog: account {name} is stored but unreadable: {reason}", file=sys.stderr)
    if not records:
        print(f"no accounts managed by {partner}" if partner else "no accounts stored")
        return 0
    rows = [("ACCOUNT", "AUDIT LOG", "ADD-ON", "PARTNER", "REVISION")]
    for record in records:
        facts = record.facts
        rows.append(
            (
                record.account_id,
                "enabled" if facts.audit_log_enabled else "not-enabled",
                {True: "enabled", False: "disabled", None: "unset"}[facts.audit_log_add_on],
                facts.partner_id or "-",
                str(record.revision),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


# --- changing ---------------------------------------------------------------------------


def _enable(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    return _change(args, settings, audit_log_add_on=True)


def _disable(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    return _change(args, settings, audit_log_add_on=False)


def _set_partner(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    return _change(args, settings, partner_id=args.partner)


def _clear_partner(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    return _change(args, settings, partner_id=None)


def change_account(
    settings: AuditlogSettings,
    account: str,
    *,
    actor: str,
    audit_log_add_on: bool | Keep | None = KEEP,
    partner_id: str | Keep | None = KEEP,
) -> int:
    """The change ``enable``/``disable``/``set-partner``/``clear-partner`` make, for a caller
    in this process (the demo): prints what the command prints, returns its exit code."""
    args = argparse.Namespace(account=account, actor=actor)
    return _change(args, settings, audit_log_add_on=audit_log_add_on, partner_id=partner_id)


def _checked(args: argparse.Namespace, partner_id: str | Keep | None) -> tuple[str, dict[str, str]]:
    """The account id and the event's actor; raises :class:`_Invalid`."""
    try:
        account = check_id(args.account, "account")
        if isinstance(partner_id, str):
            check_id(partner_id, "partner")
            if partner_id == account:
                raise ValueError(f"account {account} cannot be its own partner")
        actor = parse_actor(args.actor)
    except ValueError as exc:
        raise _Invalid(str(exc)) from None
    return account, actor


def _change(
    args: argparse.Namespace,
    settings: AuditlogSettings,
    *,
    audit_log_add_on: bool | Keep | None = KEEP,
    partner_id: str | Keep | None = KEEP,
) -> int:
    try:
        account, actor = _checked(args, partner_id)
    except _Invalid as exc:
        return _fail(str(exc), EXIT_INVALID)
    # The change is written, then published: Kafka first.
    startup_checks.check_kafka(settings, topics=[settings.accounts_topic, settings.events_topic])
    store = wiring.account_store(settings)
    now = datetime.now(UTC)
    try:
        current = store.get(account)
        if account in store.invalid:
            return _fail(
                f"account {account} is stored but unreadable ({store.invalid[account]}): "
                "not changed",
                EXIT_FAILED,
            )
        record = next_record(
            current,
            account,
            updated_at=now,
            updated_by=args.actor,
            audit_log_add_on=audit_log_add_on,
            partner_id=partner_id,
        )
        if record is None:
            assert current is not None
            print(
                f"{account}: nothing changed (audit log: {current.facts.audit_log_status}); "
                "nothing published"
            )
            return 0
        store.put(record, expected_revision=0 if current is None else current.revision)
    except TableError as exc:
        return _fail(f"account store: {exc}; nothing changed", EXIT_FAILED)
    except ConcurrentUpdateError as exc:
        return _fail(f"{exc}; nothing changed", EXIT_FAILED)
    finally:
        with contextlib.suppress(TableError):  # every write was flushed and checked by put
            store.close()
    print(f"{account}: audit log: {record.facts.audit_log_status} (revision {record.revision})")
    return _publish(settings, change_events(current, record, actor=actor, occurred_at=now))


def _publish(settings: AuditlogSettings, events: list[dict[str, Any]]) -> int:
    """Publish the change's events in order; 0 when Kafka acknowledged every one, 5
    (saying which were published) when one was not."""
    published = 0
    try:
        with wiring.audit_producer(settings, client_id="auditlog-accounts") as producer:
            for event in events:
                event_id = producer.publish(event)
                published += 1
                print(f"published {event['action']} {event_id} (account {event['tenant_id']})")
    except (PublishError, DeliveryError, InvalidEventError, OSError) as exc:
        missing = ", ".join(
            f"{event['action']} (account {event['tenant_id']})" for event in events[published:]
        )
        return _fail(
            f"the change is stored, but its audit events were not all published: {missing}: {exc}",
            EXIT_NOT_PUBLISHED,
        )
    return 0
