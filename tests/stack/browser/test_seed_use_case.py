"""The seed's use case, with the page alone: an account's Admin finds when the recipe
"Onboard new employees" was last stopped, and by whom. The browser runs in India's time
zone (UTC+05:30), so a time shown in the wrong zone reads differently by half an hour."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.stack.browser.page import ViewerPage
from tests.stack.browser.seed import BOB, KIM, ONBOARDING
from tests.stack.browser.service import Viewer

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.browser]

ZONE = "Asia/Kolkata"


@pytest.fixture
def in_india(page: ViewerPage) -> Iterator[ViewerPage]:
    page.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ZONE})
    try:
        yield page
    finally:
        page.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})


def _clock(moment: datetime) -> tuple[str, str]:
    """The moment's hour and minute as a 24-hour and a 12-hour clock show them."""
    hour12 = moment.hour % 12 or 12
    return f"{moment:%H:%M}", f"{hour12}:{moment:%M}"


def _shows(text: str, moment: datetime) -> bool:
    return any(clock in text for clock in _clock(moment))


def test_an_admin_finds_who_stopped_the_recipe_and_when(
    in_india: ViewerPage, viewer: Viewer
) -> None:
    page = in_india
    stop = viewer.seed.marked("known-stop")
    earlier = viewer.seed.marked("first-stop")
    page.sign_in(viewer.token(name="Ada Admin"))
    assert page.settled(since=0).state == "ready"
    assert dict(page.query()).get("range", "7d") == "7d"

    page.set_field("#f-activity", "recipe.stopped")
    page.set_field("#f-q", "onboard")
    page.apply()
    query = page.query()
    assert ("include_event_types[]", "recipe.stopped") in query
    assert ("q", "onboard") in query
    # Both stops of that recipe, the last one first.
    assert page.row_ids() == [stop["event_id"], earlier["event_id"]]
    cells = page.cells(stop["event_id"])
    assert KIM["name"] in cells["user"] or KIM["email"] in cells["user"], cells
    assert ONBOARDING["name"] in cells["resource"]
    local = stop["occurred_at"].astimezone(ZoneInfo(ZONE))
    assert _shows(cells["time"], local), (cells["time"], local)
    assert not _shows(cells["time"], stop["occurred_at"]), "shown in UTC, not the browser's zone"
    earlier_cells = page.cells(earlier["event_id"])
    assert BOB["name"] in earlier_cells["user"] or BOB["email"] in earlier_cells["user"]

    page.open_event(stop["event_id"])
    details = page.text("#detail-fields")
    assert KIM["email"] in details
    assert ONBOARDING["name"] in details
    page.el("#detail-close").click()
    page.wait(lambda: not page.look().dialog, "the dialog to close")

    # In UTC, as the platform's support would read it.
    page.el("#tz-utc").click()

    def changed_time() -> str | None:
        shown = page.cells(stop["event_id"])["time"]
        return shown if shown != cells["time"] else None

    utc_time = page.wait(changed_time, "the times to be shown in UTC")
    assert _shows(utc_time, stop["occurred_at"]), (utc_time, stop["occurred_at"])
    assert ("tz", "utc") in page.query()
    page.screenshot("seed-use-case-found-in-utc")
    page.assert_clean()
