"""Leaf data v1: the same bytes from every form of an event; what changes it and what not."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from integrity.leaf import (
    CONTRACT_FIELDS,
    LEAF_PREFIX,
    LEAF_VERSION,
    canonical_event,
    event_leaf_hash,
    fast_canonical_event,
    leaf_data,
    reference_canonical_event,
)
from schemas.event import AuditEvent
from schemas.wire import Decoder, SingleObjectEncoder
from sinks.encoding import event_json

HOSTILE = "<script>alert('x')</script>\"\\\u0000\u001f\u2028\u2029\U0001f600 é \ufeff"


def _event(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_id": "7C7E0EE6-6B14-44FE-923C-7F90FA095CB5",
        "tenant_id": "acme",
        "occurred_at": "2026-11-25T09:30:00.120Z",
        "action": "recipe.updated",
        "category": "recipe",
        "actor": {"type": "user", "id": "u-17", "name": "Zoë", "email": "ann@acme.io"},
        "resource": {"type": "recipe", "id": "r-42", "name": HOSTILE},
        "workspace": {"id": "w-1", "environment": "prod"},
        "request": {"ip": "203.0.113.7", "user_agent": HOSTILE, "session_id": "s-1"},
        "outcome": {"status": "failure", "reason": "denied"},
        "details": {"recipe_version": "7", "note": "日本語"},
        "changes": [{"field": "schedule.cron", "before": "0 * * * *", "after": None}],
        "source": "recipes",
    }
    fields.update(overrides)
    return fields


def _avro_datum(event: dict[str, Any]) -> dict[str, Any]:
    """The event through the real wire encoder and decoder: uuid.UUID, aware datetime."""
    model = AuditEvent.model_validate(event)
    return Decoder().decode(SingleObjectEncoder().encode(model.to_avro()))


def _clickhouse_row(datum: dict[str, Any]) -> dict[str, Any]:
    """What the stack hands over from a ClickHouse row: the same nested shape, extra
    columns, Nullable columns as None, occurred_at a datetime in UTC."""
    row = copy.deepcopy(datum)
    row["ingested_at"] = datetime(2026, 11, 25, 9, 30, 1, tzinfo=UTC)
    row["retention_days"] = 365
    row["workspace"] = {**row["workspace"], "name": None}
    return row


def test_the_three_forms_give_the_same_bytes() -> None:
    datum = _avro_datum(_event())
    assert isinstance(datum["event_id"], uuid.UUID)
    assert isinstance(datum["occurred_at"], datetime)
    as_json = json.loads(event_json(datum))
    expected = canonical_event(datum)
    assert canonical_event(as_json) == expected
    assert canonical_event(_clickhouse_row(datum)) == expected
    assert canonical_event(_event()) == expected  # an upper-case id, as a producer may send
    assert leaf_data(as_json) == LEAF_PREFIX + expected
    assert event_leaf_hash(as_json) == hashlib.sha256(b"\x00" + LEAF_PREFIX + expected).digest()
    assert LEAF_VERSION == 1


def test_the_canonical_form_is_sorted_compact_and_without_empties() -> None:
    datum = _avro_datum(
        _event(
            workspace={},
            request={},
            details={},
            changes=[],
            source=None,
            actor={"type": "system", "id": "u"},
        )
    )
    assert canonical_event(datum) == (
        b'{"action":"recipe.updated","actor":{"id":"u","type":"system"},"category":"recipe",'
        b'"event_id":"7c7e0ee6-6b14-44fe-923c-7f90fa095cb5","occurred_at":"2026-11-25T09:30:00.120Z",'
        b'"outcome":{"reason":"denied","status":"failure"},'
        b'"resource":{"id":"r-42","name":"<script>alert(\'x\')</script>\\"\\\\\\u0000\\u001f'
        + "\u2028\u2029\U0001f600 é \ufeff".encode()
        + b'","type":"recipe"},"tenant_id":"acme"}'
    )


@pytest.mark.parametrize(
    "later",
    [
        {
            "changes": [
                {"field": "schedule.cron", "before": "0 * * * *", "after": None, "why": None}
            ]
        },
        {"workspace": {"id": "w-1", "environment": "prod", "region": None}},
        {"request": {"ip": "203.0.113.7", "user_agent": HOSTILE, "session_id": "s-1", "geo": {}}},
        {
            "actor": {
                "type": "user",
                "id": "u-17",
                "name": "Zoë",
                "email": "ann@acme.io",
                "roles": [],
            }
        },
        {"labels": {"team": "x"}},  # not a contract field: never in the leaf
        {"ingested_at": "2026-11-25T09:30:01.000Z"},
    ],
)
def test_an_optional_field_added_later_leaves_the_leaf_unchanged(later: dict[str, Any]) -> None:
    assert canonical_event(_event(**later)) == canonical_event(_event())


def _changed_everywhere() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("event_id", {"event_id": "7c7e0ee6-6b14-44fe-923c-7f90fa095cb6"}),
        ("tenant_id", {"tenant_id": "acme2"}),
        ("occurred_at", {"occurred_at": "2026-11-25T09:30:00.121Z"}),
        ("action", {"action": "recipe.stopped"}),
        ("category", {"category": "other"}),
        ("actor", {"actor": {"type": "user", "id": "u-18", "name": "Zoë", "email": "ann@acme.io"}}),
        ("resource", {"resource": {"type": "recipe", "id": "r-42", "name": "x"}}),
        ("workspace", {"workspace": {"id": "w-1", "environment": "dev"}}),
        ("request", {"request": {"ip": "203.0.113.8"}}),
        ("outcome", {"outcome": {"status": "success"}}),
        ("details", {"details": {"recipe_version": "8", "note": "日本語"}}),
        ("changes", {"changes": [{"field": "schedule.cron", "before": "0 * * * *", "after": ""}]}),
        ("source", {"source": "other"}),
    ]


@pytest.mark.parametrize(("name", "change"), _changed_everywhere())
def test_changing_any_field_changes_the_leaf(name: str, change: dict[str, Any]) -> None:
    assert name in CONTRACT_FIELDS
    assert event_leaf_hash(_event(**change)) != event_leaf_hash(_event())


def test_the_same_instant_in_another_zone_is_the_same_leaf() -> None:
    utc = datetime(2026, 11, 25, 9, 30, 0, 120000, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    assert canonical_event(_event(occurred_at=paris)) == canonical_event(_event(occurred_at=utc))
    assert canonical_event(_event(occurred_at=utc)) == canonical_event(_event())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"event_id": "{7c7e0ee6-6b14-44fe-923c-7f90fa095cb5}"}, "event_id"),
        ({"event_id": 17}, "event_id"),
        ({"occurred_at": "2026-11-25T09:30:00Z"}, "occurred_at"),
        ({"occurred_at": "2026-11-25T09:30:00.120+00:00"}, "occurred_at"),
        ({"occurred_at": "2026-02-30T09:30:00.120Z"}, "occurred_at"),
        ({"occurred_at": 1764063000120}, "occurred_at"),
        ({"occurred_at": datetime(2026, 11, 25, 9, 30)}, "occurred_at: a datetime without"),
        ({"occurred_at": datetime(2026, 11, 25, 9, 30, 0, 1, tzinfo=UTC)}, "finer than"),
        ({"details": {"n": 7}}, r"details\.n: expected a string"),
        ({"changes": [{"field": True}]}, r"changes\[0\]\.field"),
        ({"resource": {"type": "r", "id": "\ud800"}}, r"resource\.id: a lone surrogate"),
        ({"details": {1: "x"}}, "details: a key that is not a string"),
        ({"action": None}, "action: missing"),
    ],
)
def test_values_that_do_not_fit_are_refused_naming_the_field(
    change: dict[str, Any], message: str
) -> None:
    event = _event(**change)
    with pytest.raises(ValueError, match=message):
        canonical_event(event)


def test_a_missing_required_field_is_refused() -> None:
    event = _event()
    del event["outcome"]
    with pytest.raises(ValueError, match="outcome: missing"):
        canonical_event(event)


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_optional = st.none() | _text


@st.composite
def _events(draw: st.DrawFn) -> dict[str, Any]:
    return _event(
        tenant_id=draw(_text),
        actor={"type": "user", "id": draw(_text), "name": draw(_optional)},
        resource={"type": draw(_text), "id": draw(_text), "name": draw(_optional)},
        details=draw(st.dictionaries(_text, _text, max_size=4)),
        changes=draw(
            st.lists(
                st.fixed_dictionaries({"field": _text, "before": _optional, "after": _optional}),
                max_size=3,
            )
        ),
        occurred_at=draw(
            st.datetimes(
                min_value=datetime(1970, 1, 1),
                max_value=datetime(9999, 12, 31),
                timezones=st.just(UTC),
            ).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
        ),
        event_id=draw(st.uuids()),
    )


@settings(max_examples=200, deadline=None)
@given(event=_events())
def test_json_and_python_forms_agree_on_any_event(event: dict[str, Any]) -> None:
    as_json = orjson.loads(event_json(event))
    canonical = canonical_event(event)
    assert canonical_event(as_json) == canonical
    # canonical JSON parses back to the pruned event, and is its own canonical form
    parsed = json.loads(canonical)
    assert parsed["event_id"] == str(event["event_id"])
    assert canonical_event(parsed) == canonical
    with_empties = {
        **event,
        "source": None,
        "workspace": {"id": None},
        "details": {**event["details"]},
    }
    assert canonical_event(with_empties) == canonical_event(
        {**event, "source": None, "workspace": {}}
    )


@settings(max_examples=100, deadline=None)
@given(event=_events(), other=_text)
def test_a_different_resource_name_is_a_different_leaf(event: dict[str, Any], other: str) -> None:
    changed = {**event, "resource": {**event["resource"], "name": other}}
    if event["resource"]["name"] != other:  # an empty string is kept: only None is left out
        assert event_leaf_hash(changed) != event_leaf_hash(event)


# -- the fast path (orjson) against the reference (rfc8785) -----------------------------


def test_orjson_escapes_every_code_point_as_rfc8785() -> None:
    """Escaping is per character, so one string of every scalar value settles it: \\b \\f
    \\n \\r \\t \\" \\\\ escaped, other controls as lower-case \\u00xx, '/', DEL, U+2028,
    U+2029 and everything else as UTF-8."""
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert orjson.dumps(every) == rfc8785.dumps(every)
    assert orjson.dumps('\x08\x0c\n\r\t"\\\x00\x1f\x7f/\u2028\u2029') == (
        b'"\\b\\f\\n\\r\\t\\"\\\\\\u0000\\u001f\x7f/\xe2\x80\xa8\xe2\x80\xa9"'
    )


def test_a_key_that_sorts_differently_by_utf16_takes_the_reference() -> None:
    # U+1F600 is D83D DE00 in UTF-16: before U+E000 there, after it by code point.
    details = {"\ue000": "a", "\U0001f600": "b", "z": "c"}
    event = _event(details=details)
    assert fast_canonical_event(event) is None
    canonical = canonical_event(event)
    assert canonical == reference_canonical_event(event)
    assert canonical.index("\U0001f600".encode()) < canonical.index("\ue000".encode())


@pytest.mark.parametrize(
    "change",
    [
        {"details": {"clé": "x"}},  # not ASCII
        {"resource": {"type": "r", "id": "\ud800"}},  # a lone surrogate
        {"details": {"n": 7}},  # not a string
        {"details": {1: "x"}},
        {"changes": ({"field": "f"},), "details": type("D", (dict,), {})(a="b")},  # a subclass
        {"source": type("S", (str,), {})("x")},
        {"action": None},
        {"outcome": {}},
        {"event_id": "not-a-uuid"},
    ],
)
def test_the_fast_path_declines_what_it_cannot_promise(change: dict[str, Any]) -> None:
    event = _event(**change)
    assert fast_canonical_event(event) is None
    try:
        expected = reference_canonical_event(event)
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc).split(":")[0]):
            canonical_event(event)
    else:
        assert canonical_event(event) == expected


# Control characters, non-BMP characters, characters around the surrogate block, empty strings.
_any_text = st.text(
    st.characters(exclude_categories=["Cs"])
    | st.sampled_from(["\x00", "\x1f", "\x7f", "\u2028", "\ufeff", "\ue000", "\U0001f600", "/"]),
    max_size=10,
)
_ascii_key = st.text(st.characters(max_codepoint=0x7F), max_size=8)
_key = _ascii_key | _any_text
_leaf_value = st.none() | _any_text
_nested = st.recursive(
    _leaf_value,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_key, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def _wide_events(draw: st.DrawFn) -> dict[str, Any]:
    event = draw(_events())
    event["details"] = draw(st.dictionaries(_key, _leaf_value, max_size=5))
    event["workspace"] = draw(st.dictionaries(_key, _nested, max_size=3))
    event["request"] = draw(st.none() | st.dictionaries(_ascii_key, _nested, max_size=3))
    event["changes"] = draw(
        st.lists(st.dictionaries(_key, _leaf_value, max_size=3) | st.none(), max_size=3)
    )
    event["source"] = draw(_leaf_value)
    return event


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return list(value) + [k for v in value.values() for k in _keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


@settings(max_examples=400, deadline=None)
@given(event=_wide_events())
def test_the_fast_path_is_byte_identical_to_rfc8785_or_declines(event: dict[str, Any]) -> None:
    reference = reference_canonical_event(event)
    fast = fast_canonical_event(event)
    if all(k.isascii() for k in _keys(event)):
        assert fast == reference
    else:
        assert fast in (None, reference)  # a non-ASCII key that was pruned away is fine
    assert canonical_event(event) == reference
    assert canonical_event(orjson.loads(event_json(event))) == reference


@settings(max_examples=200, deadline=None)
@given(event=_events())
def test_every_form_takes_the_fast_path_for_a_valid_event(event: dict[str, Any]) -> None:
    event["details"] = {k: v for k, v in event["details"].items() if k.isascii()}
    assert fast_canonical_event(event) == reference_canonical_event(event)
