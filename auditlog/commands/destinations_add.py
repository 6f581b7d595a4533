"""``auditlog destinations add``: a new destination of a tenant."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from auditlog.commands import destination_view as view
from auditlog.commands import destinations_common as common
from auditlog.commands.destination_options import OptionError
from auditlog.commands.destinations_announce import announce
from auditlog.commands.destinations_common import EXIT_INVALID, Refused
from auditlog.settings import AuditlogSettings
from sinks.destinations.model import S3Target


def add(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    actor = common.actor(args.actor)
    if (args.tenant is None) == (args.partner is None):
        raise Refused(EXIT_INVALID, "add: give a tenant or --partner P, exactly one of them")
    owner = args.tenant if args.partner is None else args.partner
    try:
        owner = common.tenant_id.validate_python(owner)
    except ValidationError:
        what = "tenant" if args.partner is None else "partner"
        raise Refused(
            EXIT_INVALID,
            f"{owner[:80]!r} is not a {what} id (letters, digits and . _ : @ -, at most 128)",
        ) from None
    if args.partner is None and (args.include_account or args.exclude_account):
        raise Refused(
            EXIT_INVALID, "--include-account and --exclude-account are for --partner destinations"
        )
    secrets = common.secret_box(settings)
    now = datetime.now(UTC)
    destination_id = args.id or f"{args.kind.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    target: dict[str, Any] = {"kind": args.kind}
    if args.kind == "s3":
        target["region"] = settings.s3_region
    base = {
        "id": destination_id,
        "tenant_id": owner if args.partner is None else None,
        "partner_id": owner if args.partner is not None else None,
        "target": target,
        "created_at": now,
        "updated_at": now,
    }
    try:
        data = common.options(secrets).apply(args, args.kind, base)
    except OptionError as exc:
        raise Refused(EXIT_INVALID, str(exc)) from None
    _require_add_options(args.kind, data["target"])
    destination = common.validated(data)
    common.checked(destination, settings, secrets, None)

    store = common.store(settings)
    try:
        if store.get(destination.id) is not None:
            raise Refused(EXIT_INVALID, f"destination {destination.id} exists already")
        if isinstance(destination.target, S3Target):
            destination = common.challenge(settings, secrets, destination)
        store.put(destination, expected_revision=0)
    finally:
        store.close()
    print(
        f"added {destination.kind} destination {destination.id} of "
        f"{'partner' if destination.is_partner else 'tenant'} "
        f"{destination.tenant_id}: {view.target_summary(destination)} ({destination.state})"
    )
    if isinstance(destination.target, S3Target) and destination.target.role_arn is not None:
        print(
            f"role: the workers assume {destination.target.role_arn} with external id "
            f"{view.external_id(destination)}; its trust policy must require that id"
        )
    if destination.ownership is not None:
        print(
            f"ownership: a challenge object was written to s3://{common.bucket(destination)}/"
            f"{destination.ownership.challenge_key}; nothing is delivered until you run "
            f"`auditlog destinations verify {destination.id} TOKEN` with the token in it"
        )
    return announce(
        settings,
        destination,
        "audit_stream.destination_added",
        actor,
        {
            "destination_type": destination.kind,
            "scope": destination.scope,
            "state": destination.state,
        },
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
