"""Audit events for tests: a valid one to vary, and a hypothesis strategy of valid ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from schemas.catalog import load_catalog


def valid_event(**overrides: Any) -> dict[str, Any]:
    """A valid event in NDJSON form (``occurred_at`` a minute ago); keys overridden as given."""
    event: dict[str, Any] = {
        "tenant_id": "acme",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "action": "recipe.stopped",
        "actor": {"type": "user", "id": "u-1", "name": "Ann Lee", "email": "ann@acme.io"},
        "resource": {"type": "recipe", "id": "r-42", "name": "Onboard new hires"},
        "workspace": {"id": "w-1", "name": "Main", "environment": "prod"},
        "request": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "request_id": "q-1"},
        "outcome": {"status": "success"},
        "details": {"reason": "manual"},
        "source": "recipes-service",
    }
    event.update(overrides)
    return event


_ACTIVITIES = load_catalog().activities
_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40
)
_optional_text = st.none() | _text
_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,30}", fullmatch=True)


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """Events the validator must accept: any catalog activity, any sizes within limits."""
    activity = draw(st.sampled_from(_ACTIVITIES))
    age = draw(st.integers(min_value=0, max_value=29 * 24 * 3600 * 1000))
    occurred = datetime.now(UTC) - timedelta(milliseconds=age)
    failed = draw(st.booleans())
    return {
        "tenant_id": draw(_ids),
        "occurred_at": occurred.isoformat(),
        "action": activity.action,
        "actor": {
            "type": draw(st.sampled_from(["user", "api_client", "system", "unknown"])),
            "id": draw(_text),
            "name": draw(_optional_text),
            "email": draw(st.none() | st.emails()),
        },
        "resource": {
            "type": activity.resource_type,
            "id": draw(_text),
            "name": draw(_optional_text),
        },
        "workspace": {"id": draw(_optional_text), "environment": draw(st.none() | _text)},
        "request": {
            "ip": draw(st.none() | st.ip_addresses().map(str)),
            "user_agent": draw(_optional_text),
            "session_id": draw(_optional_text),
        },
        "outcome": {"status": "failure", "reason": draw(_text)}
        if failed
        else {"status": "success"},
        "details": draw(
            st.dictionaries(
                st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True), _text, max_size=5
            )
        ),
        "changes": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"field": _text, "before": _optional_text, "after": _optional_text}
                ),
                max_size=3,
            )
        ),
        "source": draw(_optional_text),
    }
