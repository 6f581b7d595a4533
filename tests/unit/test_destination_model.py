"""The destination model: ids, confined prefixes, reserved headers, secrets, filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from sinks.destinations.model import (
    BatchLimits,
    Destination,
    Filters,
    S3Target,
    SecretValue,
    WebhookTarget,
)

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
SECRET = SecretValue(ref="env:HOOK_SECRET")


def _webhook(**changes: Any) -> Destination:
    values: dict[str, Any] = {
        "id": "webhook-1",
        "tenant_id": "acme",
        "target": {
            "kind": "webhook",
            "url": "https://hooks.example.com/a",
            "signing_secret": SECRET,
        },
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(changes)
    return Destination.model_validate(values)


@pytest.mark.parametrize("good", ["abc", "s3-1a2b3c4d", "a" * 63, "0-tenant-archive"])
def test_destination_ids_that_are_accepted(good: str) -> None:
    assert _webhook(id=good).id == good


@pytest.mark.parametrize(
    "bad", ["ab", "Upper-case", "-leading", "under_score", "a" * 64, "a/b", ""]
)
def test_destination_ids_that_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="destination id"):
        _webhook(id=bad)


@pytest.mark.parametrize(
    "template",
    [
        "/absolute/{tenant_id}",
        "logs/../other-tenant",
        "..",
        "logs//{tenant_id}",
        "logs/{bucket}",
        "logs/{tenant_id!r}",
        "logs/{}",
    ],
)
def test_prefix_templates_stay_under_the_bucket_root(template: str) -> None:
    with pytest.raises(ValidationError, match="prefix template"):
        S3Target(bucket="auditlog-dev", prefix_template=template)


def test_prefix_template_is_trimmed_and_keeps_known_placeholders() -> None:
    target = S3Target(bucket="auditlog-dev", prefix_template="audit/{tenant_id}/{destination_id}/")
    assert target.prefix_template == "audit/{tenant_id}/{destination_id}"
    assert S3Target(bucket="auditlog-dev", prefix_template="").prefix_template == ""


@pytest.mark.parametrize("bucket", ["A-Upper", "x", "-start", "has_underscore"])
def test_bucket_names_follow_s3_rules(bucket: str) -> None:
    with pytest.raises(ValidationError):
        S3Target(bucket=bucket)


@pytest.mark.parametrize(
    "header", ["Host", "content-type", "Content-Length", "Content-Encoding", "X-Auditlog-Signature"]
)
def test_headers_set_by_the_sender_cannot_be_overridden(header: str) -> None:
    with pytest.raises(ValidationError, match="cannot be overridden"):
        WebhookTarget(url="https://x.example.com", signing_secret=SECRET, headers={header: "v"})


def test_other_headers_are_kept() -> None:
    target = WebhookTarget(
        url="https://x.example.com", signing_secret=SECRET, headers={"X-Env": "prod"}
    )
    assert target.headers == {"X-Env": "prod"}


@pytest.mark.parametrize(
    "values",
    [{}, {"encrypted": "gAAAA", "ref": "env:X"}],
)
def test_a_secret_is_exactly_one_of_encrypted_or_reference(values: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="not both or neither"):
        SecretValue(**values)


@pytest.mark.parametrize("ref", ["X", "env:", "env:1ABC", "file:/etc/passwd", "env:A-B"])
def test_secret_references_are_env_names(ref: str) -> None:
    with pytest.raises(ValidationError, match="env:NAME"):
        SecretValue(ref=ref)


def test_secret_description_never_holds_the_secret() -> None:
    assert SecretValue(ref="env:HOOK").describe() == "reference env:HOOK"
    assert SecretValue(encrypted="gAAAAsecret-token").describe() == "encrypted"


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        _webhook(colour="blue")


def test_a_destination_survives_its_json() -> None:
    destination = _webhook(
        filters=Filters(include_categories=frozenset({"recipes"})),
        batch=BatchLimits(max_records=10, max_age_s=1.5),
        format="json_array",
    )
    again = Destination.model_validate_json(destination.model_dump_json())
    assert again == destination
    assert again.kind == "webhook"
    assert again.deliverable


@pytest.mark.parametrize(
    ("limits", "ok"),
    [
        ({"max_records": 0}, False),
        ({"max_bytes": 100}, False),
        ({"max_age_s": 0}, False),
        ({"max_age_s": 3601}, False),
        ({"max_records": 1, "max_bytes": 1024, "max_age_s": 0.1}, True),
    ],
)
def test_batch_limits_are_bounded(limits: dict[str, float], ok: bool) -> None:
    if ok:
        BatchLimits.model_validate(limits)
    else:
        with pytest.raises(ValidationError):
            BatchLimits.model_validate(limits)


def test_only_active_destinations_are_deliverable() -> None:
    assert not _webhook(state="paused").deliverable
    assert not _webhook(state="pending_verification").deliverable


# --- filters ------------------------------------------------------------------------------


def test_empty_filters_accept_everything() -> None:
    assert Filters().accepts("recipes", "recipe.stopped")


def test_include_lists_accept_by_category_or_action() -> None:
    filters = Filters(
        include_categories=frozenset({"account_security"}),
        include_actions=frozenset({"recipe.stopped"}),
    )
    assert filters.accepts("account_security", "user.login")
    assert filters.accepts("recipes", "recipe.stopped")
    assert not filters.accepts("recipes", "recipe.started")


def test_an_exclude_wins_over_an_include() -> None:
    filters = Filters(
        include_categories=frozenset({"account_security"}),
        exclude_actions=frozenset({"user.logout"}),
    )
    assert filters.accepts("account_security", "user.login")
    assert not filters.accepts("account_security", "user.logout")
    only_excludes = Filters(exclude_categories=frozenset({"audit_access"}))
    assert only_excludes.accepts("recipes", "recipe.started")
    assert not only_excludes.accepts("audit_access", "audit_log.viewed")
