"""Each filter of the form, and the page's URL (docs/viewer-page.md, "The page's URL"):
filling the form and applying it puts the API's parameter names in the URL and shows exactly
the seeded events that match; a URL with filters, loaded directly, fills the form and shows
the same. Every view is of the seeded range, where the set of events is known."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.stack.browser.page import ViewerPage
from tests.stack.browser.seed import (
    A_EVENTS,
    ACCOUNT_A,
    CI_CLIENT,
    IPS,
    LAB,
    ONBOARDING,
    PAGE_SIZE,
)
from tests.stack.browser.service import Viewer

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.browser]

Event = dict[str, Any]


@dataclass(frozen=True)
class Filter:
    field: str  # the form field's id
    value: str  # typed or chosen
    parameter: str  # what the URL must then carry
    matches: Callable[[Event], bool]


def _category(event: Event) -> str:
    return str(event["action"]).split(".")[0]


CATEGORY_OF = {
    "recipe": "recipes",
    "connection": "connections",
    "user": "account_security",
    "member": "members_roles",
    "folder": "folders_projects",
}

FILTERS = {
    "user-email": Filter(
        "#f-user",
        "Bob@Acme.test",
        "actor_emails[]",
        lambda e: str(e["actor"].get("email", "")).lower() == "bob@acme.test",
    ),
    "user-id": Filter(
        "#f-user", CI_CLIENT["id"], "users_ids[]", lambda e: e["actor"]["id"] == "ac-ci"
    ),
    "category": Filter(
        "#f-category",
        "account_security",
        "categories[]",
        lambda e: CATEGORY_OF[_category(e)] == "account_security",
    ),
    "activity": Filter(
        "#f-activity",
        "recipe.stopped",
        "include_event_types[]",
        lambda e: e["action"] == "recipe.stopped",
    ),
    "resource-type": Filter(
        "#f-resource-type",
        "connection",
        "include_resource_types[]",
        lambda e: e["resource"]["type"] == "connection",
    ),
    "resource": Filter(
        "#f-resource",
        ONBOARDING["id"],
        "resource_ids[]",
        lambda e: e["resource"]["id"] == ONBOARDING["id"],
    ),
    "workspace": Filter(
        "#f-workspace", LAB["id"], "workspace_id", lambda e: e["workspace"]["id"] == LAB["id"]
    ),
    "environment": Filter(
        "#f-environment",
        "dev",
        "environment",
        lambda e: e["workspace"]["environment"] == "dev",
    ),
    "outcome": Filter(
        "#f-outcome", "failure", "outcome", lambda e: e["outcome"]["status"] == "failure"
    ),
    "ip": Filter("#f-ip", IPS[1], "ip", lambda e: e["request"]["ip"] == IPS[1]),
    "text": Filter(
        "#f-q",
        "INVOICES",
        "q",
        lambda e: (
            "invoices" in str(e["resource"].get("name") or "").lower()
            or "invoices" in str(e["actor"].get("email") or "").lower()
        ),
    ),
}


def _expected(viewer: Viewer, *matches: Callable[[Event], bool]) -> list[Event]:
    return [e for e in viewer.seed.newest_first(ACCOUNT_A) if all(m(e) for m in matches)]


def _assert_shows(page: ViewerPage, expected: list[Event]) -> None:
    """The page shows the first page of ``expected`` (newest first), and its total."""
    assert 0 < len(expected) < A_EVENTS, "a filter must keep some events and drop others"
    assert page.look().state == "ready"
    assert page.total() == len(expected)
    assert page.row_ids() == [e["event_id"] for e in expected[:PAGE_SIZE]]


def _signed_in(page: ViewerPage, viewer: Viewer, query: str) -> None:
    page.sign_in(viewer.token(), f"/?{query}")
    look = page.settled(since=0)
    assert look.viewer, look


@pytest.mark.parametrize("name", list(FILTERS))
def test_each_filter_applied_from_the_form(page: ViewerPage, viewer: Viewer, name: str) -> None:
    chosen = FILTERS[name]
    _signed_in(page, viewer, viewer.seed.range_query())
    page.set_field(chosen.field, chosen.value)
    page.apply()
    query = page.query()
    values = [v for k, v in query if k == chosen.parameter]
    expected_value = chosen.value.lower() if name == "user-email" else chosen.value
    assert [v.lower() if name == "user-email" else v for v in values] == [expected_value], query
    # The range stayed the one loaded, and no other filter was added.
    names = {k for k, _ in query} - {"range", "from", "to", "tz", chosen.parameter}
    assert names == set(), query
    assert dict(query)["range"] == "custom"
    _assert_shows(page, _expected(viewer, chosen.matches))
    if name == "outcome":
        page.screenshot("filters-applied")
    page.assert_clean()


def test_filters_combine_and_clear(page: ViewerPage, viewer: Viewer) -> None:
    _signed_in(page, viewer, viewer.seed.range_query())
    for name in ("category", "outcome", "workspace"):
        page.set_field(FILTERS[name].field, FILTERS[name].value)
    page.apply()
    parameters = {k for k, _ in page.query()}
    assert {"categories[]", "outcome", "workspace_id"} <= parameters
    _assert_shows(
        page, _expected(viewer, *(FILTERS[n].matches for n in ("category", "outcome", "workspace")))
    )
    page.act(lambda: page.el("#clear").click())
    assert not {"categories[]", "outcome", "workspace_id"} & {k for k, _ in page.query()}
    for name in ("category", "outcome", "workspace"):
        assert page.field_value(FILTERS[name].field) == ""


@pytest.mark.parametrize(
    ("query", "fields", "names"),
    [
        (f"resource_id={ONBOARDING['id']}", {"#f-resource": ONBOARDING["id"]}, ["resource"]),
        (
            f"resource_ids[]={ONBOARDING['id']}&include_event_types[]=recipe.stopped",
            {"#f-resource": ONBOARDING["id"], "#f-activity": "recipe.stopped"},
            ["resource", "activity"],
        ),
        (
            "categories[]=account_security&outcome=failure&ip=" + quote(IPS[1]),
            {"#f-category": "account_security", "#f-outcome": "failure", "#f-ip": IPS[1]},
            ["category", "outcome", "ip"],
        ),
        (
            f"actor_emails[]=bob%40acme.test&workspace_id={LAB['id']}&environment=dev",
            {"#f-user": "bob@acme.test", "#f-workspace": LAB["id"], "#f-environment": "dev"},
            ["user-email", "workspace", "environment"],
        ),
        (
            "q=invoices&include_event_types[]=recipe.stopped",
            {"#f-q": "invoices", "#f-activity": "recipe.stopped"},
            ["text", "activity"],
        ),
        (
            "users_ids[]=ac-ci&include_resource_types[]=connection",
            {"#f-user": "ac-ci", "#f-resource-type": "connection"},
            ["user-id", "resource-type"],
        ),
    ],
    ids=[
        "resource_id",
        "resource-and-activity",
        "category-outcome-ip",
        "email-workspace-environment",
        "text-and-activity",
        "id-and-type",
    ],
)
def test_a_url_with_filters_fills_the_form_and_shows_matching_rows(
    page: ViewerPage, viewer: Viewer, query: str, fields: dict[str, str], names: list[str]
) -> None:
    _signed_in(page, viewer, f"{viewer.seed.range_query()}&{query}")
    for selector, value in fields.items():
        assert page.field_value(selector) == value, selector
    _assert_shows(page, _expected(viewer, *(FILTERS[n].matches for n in names)))
    page.assert_clean()


def test_a_filter_that_matches_nothing_says_so(page: ViewerPage, viewer: Viewer) -> None:
    _signed_in(page, viewer, f"{viewer.seed.range_query()}&q=no-such-thing-anywhere")
    assert page.look().state == "empty"
    assert page.row_ids() == []
    assert page.text("#status").strip()


def test_a_bad_parameter_shows_the_apis_message(page: ViewerPage, viewer: Viewer) -> None:
    _signed_in(page, viewer, f"{viewer.seed.range_query()}&ip=not-an-ip")
    status, answer = viewer.api(f"/api/activity_logs?{viewer.seed.api_range_query()}&ip=not-an-ip")
    assert status == 400
    assert page.look().state == "error"
    assert answer["error"]["message"] in page.text("#status")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_custom_range_typed_into_the_form(page: ViewerPage, viewer: Viewer) -> None:
    seed = viewer.seed
    since, until = seed.since + timedelta(hours=1), seed.since + timedelta(hours=2)
    page.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "UTC"})
    try:
        _signed_in(page, viewer, "")
        page.set_field("#f-range", "custom")
        for selector, moment in (("#f-from", since), ("#f-to", until)):
            page.js(
                "const input = document.querySelector(arguments[0]);"
                "input.value = arguments[1];"
                "input.dispatchEvent(new Event('input', {bubbles: true}));"
                "input.dispatchEvent(new Event('change', {bubbles: true}));",
                selector,
                moment.strftime("%Y-%m-%dT%H:%M"),
            )
        page.apply()
    finally:
        page.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})
    query = dict(page.query())
    assert query["range"] == "custom"
    assert (_instant(query["from"]), _instant(query["to"])) == (since, until)
    _assert_shows(page, _expected(viewer, lambda e: since <= e["occurred_at"] < until))


def test_a_preset_range_chosen_in_the_form(page: ViewerPage, viewer: Viewer) -> None:
    """The last hour, of recipes (the page's own reads, audited as they happen, are not
    recipes): the seeded recipe events of the last hour, none older."""
    _signed_in(page, viewer, "categories[]=recipes")
    page.set_field("#f-range", "1h")
    asked = datetime.now(UTC)
    page.apply()
    answered = datetime.now(UTC)
    assert dict(page.query())["range"] == "1h"
    shown = set(page.row_ids())
    recipes = [e for e in viewer.seed.events[ACCOUNT_A] if e["action"].startswith("recipe.")]
    inside = {e["event_id"] for e in recipes if e["occurred_at"] >= answered - timedelta(hours=1)}
    outside = {e["event_id"] for e in recipes if e["occurred_at"] < asked - timedelta(hours=1)}
    assert inside, "the seeded range reaches into the last hour"
    assert inside <= shown
    assert not shown & outside
