"""``auditlog retention set TENANT DAYS | show [TENANT]``: how long a tenant's events live.

``set`` changes the setting and applies it to the events already stored (see
``deploy/clickhouse/RETENTION.md``), then publishes ``audit_log.retention_changed`` as an
audit event of the tenant, only once the change succeeded. Exit codes: 0 done, 2 invalid
tenant or days, 1 ClickHouse failed (nothing published), 5 the change is applied but its
audit event could not be published.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError

from auditlog import startup_checks, wiring
from auditlog.commands.actor import parse_actor
from auditlog.settings import AuditlogSettings
from consumers.retention import (
    DEFAULT_RETENTION_DAYS,
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    RetentionChange,
    RetentionError,
    get_retention,
    list_retention,
    set_retention,
    validate_days,
    validate_tenant,
)
from producers.delivery import DeliveryError, PublishError
from schemas.validation import InvalidEventError

EXIT_NOT_PUBLISHED = 5


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "retention",
        help="show or change how long a tenant's audit events are kept",
        description=(
            f"Per-tenant retention of the audit events in ClickHouse ({DEFAULT_RETENTION_DAYS} "
            "days unless set). A change applies to the events already stored."
        ),
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    set_ = actions.add_parser(
        "set",
        help="set a tenant's retention in days; applies to stored events; publishes the change",
    )
    set_.add_argument("tenant")
    set_.add_argument("days", type=int, help=f"{MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}")
    set_.add_argument(
        "--actor",
        default="system:auditlog-cli",
        metavar="TYPE:ID",
        help="who makes the change, for its audit event (default: system:auditlog-cli)",
    )
    set_.add_argument(
        "--no-wait",
        action="store_true",
        help="return once the rewrite of stored events is queued, not finished",
    )
    set_.set_defaults(run=_set)
    show = actions.add_parser(
        "show", help="a tenant's retention, or every tenant with a retention of its own"
    )
    show.add_argument("tenant", nargs="?")
    show.set_defaults(run=_show)


def _actor(text: str) -> dict[str, str]:
    try:
        return parse_actor(text)
    except ValueError as exc:
        raise RetentionError(str(exc)) from None


def _set(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    try:
        validate_tenant(args.tenant)
        validate_days(args.days)
        actor = _actor(args.actor)
    except RetentionError as exc:
        print(f"auditlog: {exc}", file=sys.stderr)
        return 2
    # Its audit event is published after the change.
    startup_checks.check_kafka(settings, topics=[settings.events_topic])
    try:
        client = startup_checks.clickhouse(settings)
        change = set_retention(
            client,
            args.tenant,
            args.days,
            database=settings.clickhouse_database,
            updated_by=args.actor,
            wait=not args.no_wait,
        )
    except (ClickHouseError, OSError) as exc:
        print(f"auditlog: {wiring.clickhouse_error(settings, exc)}", file=sys.stderr)
        return 1
    print(f"{change.tenant_id}: retention {change.old_days} -> {change.new_days} days")
    try:
        event_id = _publish(settings, change, actor)
    except (PublishError, DeliveryError, InvalidEventError, OSError) as exc:
        print(
            f"auditlog: the retention change is applied, but its audit event was not "
            f"published: {exc}",
            file=sys.stderr,
        )
        return EXIT_NOT_PUBLISHED
    print(f"published audit_log.retention_changed {event_id}")
    return 0


def _publish(settings: AuditlogSettings, change: RetentionChange, actor: dict[str, str]) -> str:
    """Publish the change as an audit event of the tenant; blocks until Kafka acknowledged
    it (raises :class:`PublishError` subclasses when it was not)."""
    event = {
        "tenant_id": change.tenant_id,
        "occurred_at": datetime.now(UTC),
        "action": "audit_log.retention_changed",
        "actor": actor,
        "resource": {"type": "audit_log", "id": change.tenant_id},
        "outcome": {"status": "success"},
        "details": {
            "old_retention_days": str(change.old_days),
            "new_retention_days": str(change.new_days),
        },
        "source": "auditlog-cli",
    }
    with wiring.audit_producer(settings, client_id="auditlog-retention") as producer:
        return producer.publish(event)


def _show(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    try:
        if args.tenant is not None:
            validate_tenant(args.tenant)
    except RetentionError as exc:
        print(f"auditlog: {exc}", file=sys.stderr)
        return 2
    try:
        client = startup_checks.clickhouse(settings)
        if args.tenant is not None:
            found = [get_retention(client, args.tenant, database=settings.clickhouse_database)]
        else:
            found = list_retention(client, database=settings.clickhouse_database)
    except (ClickHouseError, OSError) as exc:
        print(f"auditlog: {wiring.clickhouse_error(settings, exc)}", file=sys.stderr)
        return 1
    for item in found:
        if item.is_default:
            print(f"{item.tenant_id}: {item.retention_days} days (default)")
        else:
            when = f"{item.updated_at:%Y-%m-%d %H:%M:%S} UTC" if item.updated_at else ""
            by = f" by {item.updated_by}" if item.updated_by else ""
            print(f"{item.tenant_id}: {item.retention_days} days (set {when}{by})")
    if args.tenant is None:
        print(f"every other tenant: {DEFAULT_RETENTION_DAYS} days (default)")
    return 0
