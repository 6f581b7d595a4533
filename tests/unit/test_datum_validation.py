"""The fast path of ``EventValidator.validate_datum`` against the model it stands in for:
whatever it accepts, the model accepts and encodes to the same bytes; whatever the model
rejects, ``validate_datum`` rejects with the model's own problems, word for word."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.validation import EventValidator, InvalidEventError, ValidationPolicy
from schemas.wire import SingleObjectEncoder
from tests.events import valid_event, valid_events

NOW = datetime.now(UTC).replace(microsecond=654_321)
STRICT = EventValidator(clock=lambda: NOW)
CUSTOM = EventValidator(ValidationPolicy(allow_custom_actions=True), clock=lambda: NOW)
ENCODE = SingleObjectEncoder().encode

_PATHS = [
    ("event_id",),
    ("tenant_id",),
    ("occurred_at",),
    ("action",),
    ("category",),
    ("actor",),
    ("actor", "type"),
    ("actor", "id"),
    ("actor", "name"),
    ("actor", "email"),
    ("resource",),
    ("resource", "type"),
    ("resource", "id"),
    ("workspace",),
    ("workspace", "environment"),
    ("request",),
    ("request", "ip"),
    ("request", "user_agent"),
    ("request", "request_id"),
    ("outcome",),
    ("outcome", "status"),
    ("outcome", "reason"),
    ("details",),
    ("changes",),
    ("source",),
    ("surprise",),
]
_ODD_VALUES: list[Any] = [
    None,
    "",
    " ",
    0,
    1.5,
    True,
    b"acme",
    [],
    {},
    "x" * 65,
    "x" * 257,
    "x" * 1025,
    "Ann\u00e9e \U0001f600",
    "recipe.started",
    "recipe",
    "connections",
    "custom.widget.spun",
    "Recipe.Stopped",
    "user",
    "failure",
    "success",
    "a@b",
    "not-an-email",
    "1.2.3.4",
    "1.2.3.04",
    "001.2.3.4",
    "256.1.1.1",
    " 1.2.3.4",
    "1.2.3.4\n",
    "::ffff:203.0.113.7",
    "2001:DB8::1",
    "fe80::1%eth0",
    "1.2.3",
    "acme corp",
    "acme\n",
    "ACME-1:x@y",
    str(uuid.uuid4()),
    str(uuid.uuid4()).upper(),
    "{" + str(uuid.uuid4()) + "}",
    uuid.uuid4().hex,
    uuid.uuid4(),
    "2026-01-01T00:00:00",
    (NOW - timedelta(minutes=3)).isoformat(),
    (NOW + timedelta(minutes=5)).isoformat(),
    (NOW + timedelta(minutes=5, milliseconds=1)).isoformat(),
    (NOW - timedelta(days=30)).isoformat(),
    (NOW - timedelta(days=30, milliseconds=1)).isoformat(),
    (NOW - timedelta(days=30) + timedelta(microseconds=999)).isoformat(),
    (NOW - timedelta(hours=1)).astimezone(timezone(timedelta(hours=5, minutes=30))),
    (NOW - timedelta(hours=1)).replace(tzinfo=None),
    (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
    int((NOW - timedelta(hours=1)).timestamp()),
    {"type": "user", "id": "u"},
    {"type": "recipe", "id": "r"},
    {"status": "failure"},
    {"status": "failure", "reason": "boom"},
    {"ip": "10.0.0.1", "session_id": "s"},
    {"id": None, "name": "n"},
    {"reason": "manual"},
    {"Bad Key": "v"},
    {"k": 7},
    {"k": "v" * 2049},
    {f"k{i}": "v" for i in range(65)},
    {f"k{i}": "\U0001f600" * 2000 for i in range(3)},
    [{"field": "f", "before": None, "after": "x"}],
    [{"field": ""}],
    [{"field": "f", "extra": 1}],
    [{"field": "f"}] * 201,
]


def _set(event: dict[str, Any], path: tuple[str, ...], value: Any, delete: bool) -> None:
    node = event
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    if delete:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """Valid events, with an id in any form the model takes, some of them mutated at a
    few paths (a value from a list of near misses, or the key removed)."""
    event = draw(valid_events())
    event["event_id"] = draw(
        st.uuids().map(str) | st.uuids() | st.uuids().map(lambda u: str(u).upper())
    )
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        path = draw(st.sampled_from(_PATHS))
        delete = draw(st.booleans()) and draw(st.booleans())
        _set(event, path, copy.deepcopy(draw(st.sampled_from(_ODD_VALUES))), delete)
    return event


def _encode(datum: dict[str, Any], data: dict[str, Any]) -> bytes:
    """The encoding, with a fixed id when the input had none (both paths draw one)."""
    if "event_id" not in data:
        datum = {**datum, "event_id": "00000000-0000-4000-8000-000000000000"}
    return ENCODE(datum)


def _model_result(validator: EventValidator, data: dict[str, Any]) -> bytes | str:
    try:
        return _encode(validator.validate(copy.deepcopy(data)).to_avro(), data)
    except InvalidEventError as exc:
        return str(exc)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(events(), st.sampled_from([STRICT, CUSTOM]))
def test_the_fast_path_accepts_only_what_the_model_accepts_and_encodes_it_alike(
    data: dict[str, Any], validator: EventValidator
) -> None:
    expected = _model_result(validator, data)
    fast = validator._fast.datum(copy.deepcopy(data))
    if fast is not None:
        assert isinstance(expected, bytes), f"fast path accepted what the model rejects: {expected}"
        assert _encode(fast, data) == expected
    try:
        got: bytes | str = _encode(validator.validate_datum(copy.deepcopy(data)), data)
    except InvalidEventError as exc:
        got = str(exc)
    assert got == expected


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(valid_events(), st.uuids())
def test_valid_plain_events_take_the_fast_path(data: dict[str, Any], event_id: uuid.UUID) -> None:
    data["event_id"] = str(event_id)
    fast = EventValidator()._fast.datum(data)
    assert fast is not None
    assert ENCODE(fast) == ENCODE(EventValidator().validate(data).to_avro())


def test_an_event_without_an_id_gets_a_random_version_4_id() -> None:
    ids = {STRICT.validate_datum(valid_event())["event_id"] for _ in range(100)}
    assert len(ids) == 100
    for text in ids:
        assert str(uuid.UUID(text)) == text
        assert uuid.UUID(text).version == 4
        assert uuid.UUID(text).variant == uuid.RFC_4122


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"action": "recipe.teleported"}, "unknown_action"),
        ({"category": "connections"}, "category_mismatch"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "in_future"),
        ({"request": {"ip": "1.2.3.04"}}, "value_error"),
        ({"outcome": {"status": "failure"}}, "value_error"),
        ({"details": dict.fromkeys("abc", "\U0001f600" * 2000)}, "value_error"),
    ],
)
def test_rejections_are_the_models_word_for_word(overrides: dict[str, Any], rule: str) -> None:
    data = valid_event(**overrides)
    with pytest.raises(InvalidEventError) as model:
        STRICT.validate(data)
    with pytest.raises(InvalidEventError) as fast:
        STRICT.validate_datum(data)
    assert str(fast.value) == str(model.value)
    assert rule in {p.rule for p in fast.value.problems}
