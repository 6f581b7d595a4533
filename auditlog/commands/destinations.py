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
from typing import Any

from auditlog.commands import (
    destinations_add,
    destinations_read,
    destinations_replay,
    destinations_sample,
    destinations_state,
    destinations_update,
)
from auditlog.commands.destination_options import KINDS, add_options
from auditlog.commands.destinations_common import actor_option, changed_fields, guarded
from auditlog.settings import AuditlogSettings
from sinks.destinations.secrets import generate_key

__all__ = ["changed_fields", "register"]


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

    add = actions.add_parser(
        "add", help="add a destination to a tenant (or, with --partner, to a partner)"
    )
    add.add_argument("tenant", nargs="?", help="the account whose events it receives")
    add.add_argument(
        "--partner",
        metavar="P",
        help="instead of a tenant: the partner whose managed accounts' events it receives",
    )
    add.add_argument("--kind", required=True, choices=KINDS)
    add.add_argument("--id", help="the destination's id (default: <kind>-<8 hex>)")
    add_options(add)
    actor_option(add)
    add.set_defaults(run=guarded(destinations_add.add))

    list_ = actions.add_parser("list", help="list destinations (of one tenant)")
    list_.add_argument("--tenant")
    list_.set_defaults(run=guarded(destinations_read.list_destinations))

    show = actions.add_parser("show", help="every setting of a destination and its health")
    show.add_argument("id")
    show.set_defaults(run=guarded(destinations_read.show))

    update = actions.add_parser(
        "update", help="change the given settings of a destination ('' unsets or empties)"
    )
    update.add_argument("id")
    update.add_argument("--kind", choices=KINDS, help=argparse.SUPPRESS)
    add_options(update)
    actor_option(update)
    update.set_defaults(run=guarded(destinations_update.update))

    for name, handler, text in (
        (
            "remove",
            destinations_update.remove,
            "remove a destination; nothing more is delivered to it",
        ),
        ("pause", destinations_state.pause, "stop deliveries; events are kept for resume"),
        ("resume", destinations_state.resume, "resume a paused destination where it stopped"),
        (
            "test",
            destinations_sample.send_sample,
            "send a sample event and print the destination's answer",
        ),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("id")
        if name == "pause":
            sub.add_argument("--reason", default="", help="why, for its state and audit event")
        actor_option(sub)
        sub.set_defaults(run=guarded(handler))

    replay = actions.add_parser("replay", help="re-send a destination's events from a time")
    replay.add_argument("id")
    replay.add_argument(
        "--account",
        action="append",
        metavar="A",
        help="partner destinations: only this managed account's events (repeatable)",
    )
    replay.add_argument(
        "--since",
        required=True,
        metavar="TIME",
        help="ISO 8601 time (UTC unless it says) or a time ago: 30m, 2h, 3d, 1w",
    )
    actor_option(replay)
    replay.set_defaults(run=guarded(destinations_replay.replay))

    verify = actions.add_parser(
        "verify", help="complete an S3 ownership challenge with the token from the bucket"
    )
    verify.add_argument("id")
    verify.add_argument("token", help="the first line of the challenge object ('-': stdin)")
    actor_option(verify)
    verify.set_defaults(run=guarded(destinations_state.verify))

    keygen = actions.add_parser("keygen", help="print a new key for AUDITLOG_SECRETS_KEY")
    keygen.set_defaults(run=_keygen)


def _keygen(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    print(generate_key())
    return 0
