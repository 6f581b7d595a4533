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

_U = uuid.uuid4()
_TIMES: list[Any] = [
    "2026-01-01T00:00:00",
    (NOW - timedelta(minutes=3)).isoformat(),
    (NOW + timedelta(minutes=5)).isoformat(),
    (NOW + timedelta(minutes=5, microseconds=1)).isoformat(),
    (NOW + timedelta(minutes=5, milliseconds=1)).isoformat(),
    (NOW - timedelta(days=30)).isoformat(),
    (NOW - timedelta(days=30, microseconds=1)).isoformat(),
    (NOW - timedelta(days=30, milliseconds=1)).isoformat(),
    (NOW - timedelta(days=30) + timedelta(microseconds=999)).isoformat(),
    (NOW - timedelta(hours=1)).astimezone(timezone(timedelta(hours=5, minutes=30))),
    (NOW - timedelta(hours=1)).astimezone(timezone(timedelta(hours=-3, seconds=7))),
    (NOW - timedelta(hours=1)).replace(tzinfo=None),
    (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
    (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "-07:00"),
    int((NOW - timedelta(hours=1)).timestamp()),
    (NOW - timedelta(hours=1)).timestamp(),
    "1969-12-31T23:59:59.9995Z",
]
_DETAILS: list[Any] = [
    {"reason": "manual"},
    {"Bad Key": "v"},
    {"a" * 64: "v"},
    {"a" * 65: "v"},
    {"\u00e9t\u00e9": "v"},
    {"k": 7},
    {"k": None},
    {"k": "v" * 2048},
    {"k": "v" * 2049},
    {f"k{i}": "v" for i in range(64)},
    {f"k{i}": "v" for i in range(65)},
    dict.fromkeys("abcdefgh", "\U0001f600" * 511),
    dict.fromkeys("abcdefgh", "\U0001f600" * 512),
]
# Near misses per path (the key is removed when the value is _DELETE).
_DELETE = object()
_NEAR: dict[tuple[str, ...], list[Any]] = {
    ("event_id",): [
        _DELETE,
        str(_U),
        str(_U).upper(),
        "{" + str(_U) + "}",
        _U.hex,
        "urn:uuid:" + str(_U),
        _U,
        "not-a-uuid",
        str(_U) + "\n",
    ],
    ("tenant_id",): ["acme corp", "acme\n", "a" * 128, "a" * 129, "ACME-1:x@y", b"acme", "\u00e9"],
    ("occurred_at",): _TIMES,
    ("action",): [
        "recipe.started",
        "recipe.teleported",
        "custom.widget.spun",
        "Recipe.Stopped",
        "user.login",
        "recipe.stopped\n",
        "a." + "b" * 127,
    ],
    ("category",): [_DELETE, "connections", "recipes", "custom", "Bad", "x" * 65],
    ("actor",): [
        {"type": "user", "id": "u"},
        {"type": "robot", "id": "u"},
        {"type": "user"},
        {"type": "user", "id": "u", "extra": 1},
    ],
    ("actor", "type"): ["user", "robot", "system"],
    ("actor", "id"): ["x" * 256, "x" * 257, "\U0001f600" * 256],
    ("actor", "email"): ["a@b", "not-an-email", "a b@c", "x" * 316 + "@a.io"],
    ("resource",): [
        {"type": "recipe", "id": "r"},
        {"type": "user", "id": "u"},
        {"type": "connection", "id": "c", "name": None},
    ],
    ("resource", "type"): ["recipe", "connection", "Recipe", "user", "widget"],
    ("workspace",): [{"id": None, "name": "n"}, {"environment": ""}, {"extra": 1}],
    ("workspace", "environment"): ["x" * 64, "x" * 65],
    ("request",): [{"ip": "10.0.0.1", "session_id": "s"}, {"zzz": 1}],
    ("request", "ip"): [
        "1.2.3.4",
        "1.2.3.04",
        "001.2.3.4",
        "256.1.1.1",
        " 1.2.3.4",
        "1.2.3.4\n",
        "1.2.3",
        "1.2.3.4.5",
        "0x1.2.3.4",
        "\uff11.2.3.4",
        "::ffff:203.0.113.7",
        "::ffff:1.2.3.4",
        "2001:DB8::1",
        "2001:db8:0:0:0:0:0:1",
        "fe80::1%eth0",
        "::",
        "1.2.3.4\x00",
    ],
    ("request", "user_agent"): ["x" * 1024, "x" * 1025],
    ("outcome",): [
        {"status": "failure"},
        {"status": "failure", "reason": "boom"},
        {"status": "failure", "reason": None},
        {"status": "success", "reason": "ok"},
        {"status": "maybe"},
        {},
    ],
    ("outcome", "status"): ["failure", "success", "maybe"],
    ("outcome", "reason"): [_DELETE, "x" * 1024, "x" * 1025],
    ("details",): _DETAILS,
    ("changes",): [
        [{"field": "f", "before": None, "after": "x"}],
        [{"field": ""}],
        [{"field": "f", "extra": 1}],
        [{"field": "f", "before": "x" * 4097}],
        [{"field": "f"}] * 200,
        [{"field": "f"}] * 201,
        ({"field": "f"},),
    ],
    ("source",): ["x" * 128, "x" * 129],
    ("surprise",): [1],
}
_ANY: list[Any] = [_DELETE, None, "", " ", 0, 1.5, True, b"x", [], {}, "\U0001f600"]
_PATHS = list(_NEAR)


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
    # the validators' clock is NOW (fixed at import): the event's time must follow it, or a
    # long test run would make every event "in the future" for both paths alike
    age_ms = draw(st.integers(min_value=0, max_value=29 * 24 * 3600 * 1000))
    event["occurred_at"] = (NOW - timedelta(milliseconds=age_ms)).isoformat()
    event["event_id"] = draw(
        st.uuids().map(str) | st.uuids() | st.uuids().map(lambda u: str(u).upper())
    )
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 1, 2, 3]))):
        path = draw(st.sampled_from(_PATHS))
        near = st.sampled_from(_NEAR[path])
        value = draw(st.one_of(near, near, near, st.sampled_from(_ANY)))
        _set(event, path, copy.deepcopy(value), value is _DELETE)
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


_SINGLE = [
    (path, value, failed)
    for path, values in _NEAR.items()
    for value in values + _ANY
    for failed in (False, True)
]


@pytest.mark.parametrize(
    ("path", "value", "failed"),
    _SINGLE,
    ids=[f"{'.'.join(p)}-{i}-{f}" for i, (p, _, f) in enumerate(_SINGLE)],
)
def test_every_near_miss_alone_agrees_with_the_model(
    path: tuple[str, ...], value: Any, failed: bool
) -> None:
    data = valid_event(
        event_id=str(_U), occurred_at=(NOW - timedelta(minutes=1)).isoformat(), details={}
    )
    if failed:
        data["outcome"] = {"status": "failure", "reason": "boom"}
    _set(data, path, copy.deepcopy(value), value is _DELETE)
    for validator in (STRICT, CUSTOM):
        expected = _model_result(validator, data)
        fast = validator._fast.datum(copy.deepcopy(data))
        if fast is not None:
            assert isinstance(expected, bytes), f"fast path accepted: {expected}"
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
    event = valid_event(occurred_at=(NOW - timedelta(minutes=1)).isoformat())
    ids = {STRICT.validate_datum(event)["event_id"] for _ in range(100)}
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
    # STRICT's clock is NOW, fixed when this module was imported: the event's time too
    data = valid_event(**{"occurred_at": (NOW - timedelta(minutes=1)).isoformat(), **overrides})
    with pytest.raises(InvalidEventError) as model:
        STRICT.validate(data)
    with pytest.raises(InvalidEventError) as fast:
        STRICT.validate_datum(data)
    assert str(fast.value) == str(model.value)
    assert rule in {p.rule for p in fast.value.problems}
