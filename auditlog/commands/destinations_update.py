"""``auditlog destinations update | remove``: change a destination's settings, or remove it."""

from __future__ import annotations

import argparse

from auditlog.commands import destinations_common as common
from auditlog.commands.destination_options import OptionError, given
from auditlog.commands.destinations_announce import announce
from auditlog.commands.destinations_common import EXIT_INVALID, Refused, changed_fields
from auditlog.settings import AuditlogSettings
from sinks.destinations.model import Destination, S3Target

# What makes an S3 destination a different bucket location: changing it re-proves ownership.
_S3_LOCATION = ("bucket", "prefix_template", "endpoint_url")


def update(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = common.actor(args.actor)
    if not given(args):
        raise Refused(EXIT_INVALID, "update: give at least one setting to change")
    secrets = common.secret_box(settings)
    store = common.store(settings)
    try:
        current = common.load(store, args.id)
        if args.kind is not None and args.kind != current.kind:
            raise Refused(EXIT_INVALID, f"--kind: {current.id} is a {current.kind} destination")
        try:
            data = common.options(secrets).apply(
                args, current.kind, current.model_dump(mode="python")
            )
        except OptionError as exc:
            raise Refused(EXIT_INVALID, str(exc)) from None
        candidate = common.validated(data)
        changed = changed_fields(current, candidate)
        if not changed:
            print(f"{current.id}: nothing changed (revision {current.revision})")
            return 0
        common.checked(candidate, settings, secrets, current)
        updated = common.revised(candidate)
        moved = _moved(current, updated)
        if moved:
            updated = common.challenge(settings, secrets, updated)
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
    return announce(
        settings,
        updated,
        "audit_stream.destination_updated",
        actor,
        {"changed_fields": ",".join(changed)},
        before=current,
    )


def _moved(before: Destination, after: Destination) -> bool:
    """An S3 destination now writes to another bucket location."""
    old, new = before.target, after.target
    return (
        isinstance(old, S3Target)
        and isinstance(new, S3Target)
        and any(getattr(old, f) != getattr(new, f) for f in _S3_LOCATION)
    )


def remove(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = common.actor(args.actor)
    store = common.store(settings)
    try:
        current = common.load(store, args.id)
        store.remove(current.id, expected_revision=current.revision)
    finally:
        store.close()
    print(f"removed {current.id} of tenant {current.tenant_id}")
    return announce(
        settings,
        current,
        "audit_stream.destination_removed",
        actor,
        {"destination_type": current.kind},
    )
