"""The destination rules every front end applies (sinks.destinations.rules): what each one
refuses and says, what a change does not judge again; no command line, no DNS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.catalog import load_catalog
from sinks.address_guard import UnsafeDestinationError
from sinks.destinations.model import Destination
from sinks.destinations.references import ReferencePolicy
from sinks.destinations.rules import (
    DestinationPolicy,
    DestinationRefused,
    Setting,
    check,
    check_filter_values,
)

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
CATALOG = load_catalog()
REF = {"ref": "env:AUDITLOG_DEST_SECRET_X"}
ROLE = "arn:aws:iam::123456789012:role/r"
# Names and the addresses they resolve to; anything else does not resolve.
ADDRESSES = {"hooks.example.com": ["93.184.216.34"], "hooks.internal": ["10.0.0.7"]}


class Resolver:
    """Resolves from :data:`ADDRESSES` and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in ADDRESSES:
            raise UnsafeDestinationError(f"{host} does not resolve")
        return ADDRESSES[host]


def policy(resolver: Resolver | None = None, **changes: Any) -> DestinationPolicy:
    return DestinationPolicy(
        references=ReferencePolicy(), resolve=resolver or Resolver(), **changes
    )


def destination(target: dict[str, Any], **fields: Any) -> Destination:
    return Destination.model_validate(
        {
            "id": "dest-1",
            "tenant_id": "acme",
            "target": target,
            "created_at": NOW,
            "updated_at": NOW,
            **fields,
        }
    )


def webhook(
    url: str = "https://hooks.example.com/in",
    secret: dict[str, str] = REF,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> Destination:
    target = {"kind": "webhook", "url": url, "signing_secret": secret, "headers": headers or {}}
    return destination(target, **fields)


def s3(**target: Any) -> Destination:
    return destination({"kind": "s3", "bucket": "b-1", "role_arn": ROLE, **target})


def splunk(**fields: Any) -> Destination:
    target = {"kind": "splunk_hec", "url": "https://hooks.example.com:8088", "token": REF}
    return destination(target, **fields)


def refusal(candidate: Destination, **kwargs: Any) -> DestinationRefused:
    with pytest.raises(DestinationRefused) as refused:
        check(candidate, policy=kwargs.pop("policy", policy()), catalog=CATALOG, **kwargs)
    return refused.value


@pytest.mark.parametrize(
    "candidate",
    [
        webhook(),
        webhook(filters={"include_categories": ["recipes"], "exclude_actions": ["custom.x"]}),
        splunk(),
        s3(),
        s3(role_arn=None, access_key_id=REF, secret_access_key=REF),
        s3(server_side_encryption="aws:kms", kms_key_id="k"),
        s3(external_id="auditlog:acme"),
    ],
    ids=lambda d: f"{d.kind}",
)
def test_a_destination_that_keeps_the_rules_passes(candidate: Destination) -> None:
    check(candidate, policy=policy(), catalog=CATALOG)


@pytest.mark.parametrize(
    ("candidate", "message", "settings"),
    [
        (
            splunk(format="json_array"),
            "Splunk HEC takes format ndjson only",
            ("format",),
        ),
        (
            s3(server_side_encryption="AES256", kms_key_id="k"),
            "target.kms_key_id needs target.server_side_encryption aws:kms",
            ("target.kms_key_id", "target.server_side_encryption"),
        ),
        (
            s3(access_key_id=REF),
            "give both target.access_key_id and target.secret_access_key, or neither (then "
            "the workers' own credentials or target.role_arn are used)",
            ("target.access_key_id", "target.secret_access_key", "target.role_arn"),
        ),
        (
            s3(external_id="theirs"),
            "target.external_id 'theirs': the external id is chosen by the service, not the "
            "tenant; the workers send 'auditlog:acme' for tenant acme: require it in the "
            "role's trust policy and leave target.external_id out",
            ("target.external_id", "target.external_id"),
        ),
        (
            s3(role_arn=None),
            "an s3 destination needs credentials of its own: target.role_arn, or "
            "target.access_key_id and target.secret_access_key (the workers' own AWS "
            "credentials are lent only with AUDITLOG_SINK_S3_ALLOW_WORKER_CREDENTIALS)",
            ("target.role_arn", "target.access_key_id", "target.secret_access_key"),
        ),
        (
            webhook(filters={"include_categories": ["recipe"]}),
            "filters.include_categories 'recipe': not a category (known: ",
            ("filters.include_categories",),
        ),
        (
            webhook(filters={"exclude_actions": ["user.flew"]}),
            "filters.exclude_actions 'user.flew': not an action of the activity catalog "
            "(docs/activities.md) nor a custom.* action",
            ("filters.exclude_actions",),
        ),
        (
            webhook(secret={"ref": "env:HOME"}),
            "secret reference env:HOME is refused: references may name only environment "
            "variables starting with AUDITLOG_DEST_SECRET_ (AUDITLOG_SINK_SECRET_REF_PREFIX, "
            "AUDITLOG_SINK_SECRET_REF_NAMES)",
            (),
        ),
        (
            webhook(headers={"X-Env": "prod\r\nX-Forged: 1"}),
            "target.headers X-Env: the value may not span lines nor hold NUL",
            ("target.headers",),
        ),
        (
            webhook(headers={"Bad Name": "x"}),
            "target.headers 'Bad Name': not an HTTP header name",
            ("target.headers",),
        ),
        (
            webhook("http://hooks.example.com/in"),
            "destinations must use https (http only in local-development mode)",
            (),
        ),
        (
            webhook("https://hooks.internal/in"),
            "hooks.internal resolves to 10.0.0.7: private, loopback, link-local, metadata and "
            "other non-public addresses are refused",
            (),
        ),
        (
            s3(endpoint_url="https://169.254.169.254"),
            "https://169.254.169.254: 169.254.169.254 resolves to 169.254.169.254",
            (),
        ),
    ],
)  # fmt: skip
def test_each_rule_says_what_is_wrong_and_what_to_do(
    candidate: Destination, message: str, settings: tuple[str, ...]
) -> None:
    refused = refusal(candidate)
    assert message in str(refused)
    assert refused.settings == settings


def test_a_front_end_names_the_settings_its_own_way() -> None:
    refused = refusal(s3(server_side_encryption="AES256", kms_key_id="k"))
    flags = {"target.kms_key_id": "--kms-key-id", "target.server_side_encryption": "--sse"}
    assert refused.render(flags.__getitem__) == "--kms-key-id needs --sse aws:kms"
    assert refused.parts[0] == Setting("target.kms_key_id")


def test_the_operator_may_lend_the_workers_credentials_and_allow_local_addresses() -> None:
    lenient = policy(s3_worker_credentials=True, allow_local=True)
    check(s3(role_arn=None), policy=lenient, catalog=CATALOG)
    check(webhook("http://hooks.internal/in"), policy=lenient, catalog=CATALOG)


def test_a_change_vets_a_url_only_when_it_is_new() -> None:
    resolver = Resolver()
    stored = webhook("https://hooks.internal/in")  # stored while the name was public
    renamed = stored.model_copy(update={"name": "the hook"})
    check(renamed, policy=policy(resolver), catalog=CATALOG, before=stored)
    assert resolver.asked == []
    moved = webhook("https://hooks.internal/other")
    refusal(moved, policy=policy(resolver), before=stored)
    assert resolver.asked == ["hooks.internal"]


def test_an_s3_endpoint_is_vetted_only_when_set_and_new() -> None:
    resolver = Resolver()
    check(s3(), policy=policy(resolver), catalog=CATALOG)
    stored = s3(endpoint_url="https://hooks.internal")
    check(
        stored.model_copy(update={"name": "x"}),
        policy=policy(resolver),
        catalog=CATALOG,
        before=stored,
    )
    assert resolver.asked == []
    check(s3(endpoint_url="https://hooks.example.com"), policy=policy(resolver), catalog=CATALOG)
    assert resolver.asked == ["hooks.example.com"]


def test_a_change_does_not_judge_the_filters_it_keeps_again() -> None:
    stored = webhook(filters={"include_actions": ["user.retired_action"]})
    kept = stored.model_copy(update={"name": "renamed"})
    check(kept, policy=policy(), catalog=CATALOG, before=stored)
    added = webhook(filters={"include_actions": ["user.retired_action", "user.flew"]})
    assert "'user.flew'" in str(refusal(added, before=stored))


def test_filter_values_are_checked_one_filter_at_a_time() -> None:
    check_filter_values("filters.include_categories", [], CATALOG)
    check_filter_values("filters.include_actions", ["custom.deploy"], CATALOG)
    with pytest.raises(DestinationRefused, match="not a category"):
        check_filter_values("filters.exclude_categories", ["nope"], CATALOG)
