"""``auditlog destinations replay``: re-send a destination's events from a time."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from auditlog import wiring
from auditlog.commands import destination_view as view
from auditlog.commands import destinations_common as common
from auditlog.commands.destinations_announce import announce
from auditlog.commands.destinations_common import EXIT_FAILED, EXIT_INVALID, Refused
from auditlog.settings import AuditlogSettings
from sinks.destinations.model import ACCOUNT_ID
from sinks.destinations.replay import ReplayError, find_replay_offsets, parse_since


def replay(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = common.actor(args.actor)
    now = datetime.now(UTC)
    try:
        since = parse_since(args.since, now=now)
    except ValueError as exc:
        raise Refused(EXIT_INVALID, str(exc)) from None
    accounts = frozenset(args.account or ())
    for account in accounts:
        if not ACCOUNT_ID.fullmatch(account):
            raise Refused(EXIT_INVALID, f"--account {account[:80]!r}: not an account id")
    store = common.store(settings)
    try:
        current = common.load(store, args.id)
        if accounts and current.partner_id is None:
            raise Refused(EXIT_INVALID, f"--account: {current.id} is not a partner destination")
        try:
            start = find_replay_offsets(
                wiring.kafka_connection(settings), settings.events_topic, since
            )
        except ReplayError as exc:
            raise Refused(EXIT_FAILED, str(exc)) from None
        request = start.request().model_copy(update={"accounts": accounts})
        replaying = common.revised(current, replay=request)
        store.put(replaying, expected_revision=current.revision)
    finally:
        store.close()
    print(
        f"replay {request.id} of {current.id} from {view.when(since)}: "
        f"{start.records} records of the topic (every tenant's) lie ahead in "
        f"{len(start.offsets)} partitions"
        + (f"; only accounts {', '.join(sorted(accounts))}" if accounts else "")
    )
    if current.partner_id is not None:
        print(
            "only events published while the partner managed their account are sent "
            "(docs/partners.md)"
        )
    if start.from_log_start:
        print(
            "the topic no longer holds events that old in partitions "
            f"{', '.join(map(str, start.from_log_start))} (retention "
            f"{settings.events_retention_hours} h): they replay from their oldest event"
        )
    if current.state != "active":
        print(f"{current.id} is {current.state}: the replay runs once it is active")
    return announce(
        settings,
        replaying,
        "audit_stream.destination_replay_requested",
        actor,
        {
            "replay_id": request.id,
            "since": since.isoformat(),
            "from_log_start": "true" if start.from_log_start else "false",
            **({"accounts": ",".join(sorted(accounts))} if accounts else {}),
        },
    )
