"""Validation at the producer's edge: what is accepted, and errors naming field and rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from schemas.event import AuditEvent
from schemas.validation import EventValidator, InvalidEventError, ValidationPolicy
from schemas.wire import Decoder, SingleObjectEncoder
from tests.events import valid_event, valid_events

VALIDATOR = EventValidator()


def _rules(exc: pytest.ExceptionInfo[InvalidEventError]) -> set[tuple[str, str]]:
    return {(p.field, p.rule) for p in exc.value.problems}


def test_a_valid_event_gets_an_id_and_its_category() -> None:
    event = VALIDATOR.validate(valid_event())
    assert event.category == "recipes"
    assert event.event_id.version == 4
    assert event.occurred_at.tzinfo == UTC


def test_time_is_kept_in_utc_at_millisecond_precision() -> None:
    when = datetime.now(UTC).replace(microsecond=123_999) - timedelta(hours=1)
    local = when.astimezone(datetime.now().astimezone().tzinfo).isoformat()
    event = VALIDATOR.validate(valid_event(occurred_at=local))
    assert event.occurred_at == when.replace(microsecond=123_000)
    assert event.to_avro()["occurred_at"] % 1000 == 123


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(valid_events())
def test_generated_valid_events_validate_encode_and_decode_unchanged(data: dict[str, Any]) -> None:
    event = VALIDATOR.validate(data)
    datum = event.to_avro()
    decoded = Decoder().decode(SingleObjectEncoder().encode(datum))
    # fastavro reads the logical types back as UUID and datetime.
    assert decoded.pop("event_id") == event.event_id
    assert decoded.pop("occurred_at") == event.occurred_at
    assert decoded == {k: v for k, v in datum.items() if k not in ("event_id", "occurred_at")}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"action": "recipe.teleported"}, ("action", "unknown_action")),
        ({"action": "custom.widget.spun"}, ("action", "custom_action_not_allowed")),
        ({"action": "Recipe Stopped"}, ("action", "string_pattern_mismatch")),
        ({"category": "connections"}, ("category", "category_mismatch")),
        (
            {"resource": {"type": "connection", "id": "c"}},
            ("resource.type", "resource_type_mismatch"),
        ),
        ({"occurred_at": "2026-01-01T00:00:00"}, ("occurred_at", "timezone_aware")),
        ({"occurred_at": "2001-01-01T00:00:00Z"}, ("occurred_at", "too_old")),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, ("occurred_at", "in_future")),
        ({"tenant_id": "acme corp"}, ("tenant_id", "string_pattern_mismatch")),
        ({"tenant_id": "a" * 200}, ("tenant_id", "string_pattern_mismatch")),
        ({"actor": {"type": "robot", "id": "x"}}, ("actor.type", "literal_error")),
        ({"actor": {"type": "user", "id": ""}}, ("actor.id", "string_too_short")),
        (
            {"actor": {"type": "user", "id": "u", "email": "not-an-email"}},
            ("actor.email", "string_pattern_mismatch"),
        ),
        ({"request": {"ip": "999.1.1.1"}}, ("request.ip", "value_error")),
        ({"request": {"user_agent": "x" * 1025}}, ("request.user_agent", "string_too_long")),
        ({"outcome": {"status": "failure"}}, ("outcome", "value_error")),
        ({"outcome": {"status": "maybe"}}, ("outcome.status", "literal_error")),
        ({"details": {"Bad Key": "v"}}, ("details", "value_error")),
        ({"details": {f"k{i}": "v" for i in range(65)}}, ("details", "value_error")),
        ({"details": {"k": "v" * 2049}}, ("details.k", "string_too_long")),
        ({"details": {"k": 7}}, ("details.k", "string_type")),
        ({"changes": [{"field": "f"}] * 201}, ("changes", "too_long")),
        ({"surprise": 1}, ("surprise", "extra_forbidden")),
        ({"event_id": "not-a-uuid"}, ("event_id", "uuid_parsing")),
    ],
)
def test_invalid_input_names_the_field_and_the_rule(
    overrides: dict[str, Any], expected: tuple[str, str]
) -> None:
    with pytest.raises(InvalidEventError) as exc:
        VALIDATOR.validate(valid_event(**overrides))
    assert expected in _rules(exc)
    assert expected[0] in str(exc.value)


def test_missing_required_fields_are_all_reported() -> None:
    with pytest.raises(InvalidEventError) as exc:
        VALIDATOR.validate({"action": "recipe.stopped"})
    assert {
        ("tenant_id", "missing"),
        ("occurred_at", "missing"),
        ("actor", "missing"),
        ("resource", "missing"),
    } <= _rules(exc)


def test_custom_actions_pass_when_allowed() -> None:
    validator = EventValidator(ValidationPolicy(allow_custom_actions=True))
    event = validator.validate(
        valid_event(action="custom.widget.spun", resource={"type": "widget", "id": "w"})
    )
    assert event.category == "custom"
    with pytest.raises(InvalidEventError) as exc:
        validator.validate(valid_event(action="widget.spun"))
    assert ("action", "unknown_action") in _rules(exc)


def test_time_window_follows_the_policy_and_clock() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    validator = EventValidator(
        ValidationPolicy(max_future_skew=timedelta(seconds=30), max_age=timedelta(days=2)),
        clock=lambda: now,
    )
    validator.validate(valid_event(occurred_at="2026-11-25T12:00:29Z"))
    validator.validate(valid_event(occurred_at="2026-11-23T12:00:01Z"))
    with pytest.raises(InvalidEventError, match="in_future"):
        validator.validate(valid_event(occurred_at="2026-11-25T12:00:31Z"))
    with pytest.raises(InvalidEventError, match="too_old"):
        validator.validate(valid_event(occurred_at="2026-11-23T11:59:59Z"))


def test_ipv4_mapped_addresses_are_stored_as_ipv4() -> None:
    event = VALIDATOR.validate(valid_event(request={"ip": "::ffff:203.0.113.7"}))
    assert event.request.ip == "203.0.113.7"


def test_a_model_instance_is_validated_in_context_too() -> None:
    model = AuditEvent.model_validate(valid_event(action="recipe.teleported"))
    with pytest.raises(InvalidEventError, match="unknown_action"):
        VALIDATOR.validate(model)
