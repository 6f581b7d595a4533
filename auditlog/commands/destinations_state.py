"""``auditlog destinations pause | resume | verify``: a destination's delivery state."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from auditlog.commands import destinations_common as common
from auditlog.commands.destinations_announce import announce
from auditlog.commands.destinations_common import EXIT_INVALID, Refused
from auditlog.settings import AuditlogSettings
from sinks.destinations import ownership
from sinks.destinations.model import Destination


def pause(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = common.actor(args.actor)
    store = common.store(settings)
    try:
        current = common.load(store, args.id)
        if current.state == "paused":
            print(f"{current.id} is paused already" + _reason(current))
            return 0
        reason = args.reason or f"paused by {args.actor}"
        paused = common.revised(current, state="paused", state_reason=reason)
        store.put(paused, expected_revision=current.revision)
    finally:
        store.close()
    print(f"paused {paused.id}: events are kept and delivered on resume")
    return announce(settings, paused, "audit_stream.destination_paused", actor, {"reason": reason})


def _reason(destination: Destination) -> str:
    return f" ({destination.state_reason})" if destination.state_reason else ""


def resume(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = common.actor(args.actor)
    store = common.store(settings)
    try:
        current = common.load(store, args.id)
        if current.state != "paused":
            print(f"{current.id} is not paused (it is {current.state})")
            return 0
        state = "active" if ownership.is_verified(current) else "pending_verification"
        resumed = common.revised(current, state=state, state_reason="")
        store.put(resumed, expected_revision=current.revision)
    finally:
        store.close()
    print(f"resumed {resumed.id} ({resumed.state}); it was paused{_reason(current)}")
    return announce(
        settings,
        resumed,
        "audit_stream.destination_resumed",
        actor,
        {},
    )


def verify(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = common.actor(args.actor)
    from_stdin = args.token == "-"  # noqa: S105 - "-" means stdin, not a password
    token: str = sys.stdin.readline().strip() if from_stdin else args.token
    store = common.store(settings)
    try:
        current = common.load(store, args.id)
        try:
            verified = ownership.verify(current, token, now=datetime.now(UTC))
        except ownership.OwnershipError as exc:
            raise Refused(EXIT_INVALID, str(exc)) from None
        verified = common.revised(verified)
        store.put(verified, expected_revision=current.revision)
    finally:
        store.close()
    print(
        f"verified {verified.id}: s3://{common.bucket(verified)} is proven; state {verified.state}"
    )
    return announce(
        settings,
        verified,
        "audit_stream.destination_verified",
        actor,
        {"bucket": common.bucket(verified)},
    )
