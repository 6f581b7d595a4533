"""What keyboard and screen-reader users rely on: every control has a name, the table is a
real table with a caption and column headers, status changes are announced, the detail
dialog is labelled, opens from the keyboard and gives focus back when it closes; times in
UTC from the URL (``tz=utc``) as from the switch."""

from __future__ import annotations

import re
from datetime import UTC

import pytest
from selenium.webdriver.common.keys import Keys

from tests.stack.browser.page import ViewerPage
from tests.stack.browser.seed import ACCOUNT_A
from tests.stack.browser.service import Viewer

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.browser]

# Each visible form control, and the name assistive technology reads for it (its label's
# text, aria-label or aria-labelledby), "" when it has none.
_CONTROL_NAMES = """
const named = [];
for (const control of document.querySelectorAll('#viewer input, #viewer select, #viewer button')) {
  if (control.type === 'hidden' || !control.getClientRects().length) continue;
  let name = control.getAttribute('aria-label') || '';
  const by = control.getAttribute('aria-labelledby');
  if (!name && by) {
    name = by.split(' ').map((id) => document.getElementById(id)?.textContent || '').join(' ');
  }
  if (!name && control.labels && control.labels.length) name = control.labels[0].textContent;
  if (!name && control.tagName === 'BUTTON') name = control.textContent;
  named.push([control.id || control.outerHTML.slice(0, 80), name.trim()]);
}
return named;
"""


def test_every_control_has_a_name_and_the_table_has_headers(
    page: ViewerPage, viewer: Viewer
) -> None:
    page.sign_in(viewer.token(), f"/?{viewer.seed.range_query()}")
    assert page.settled(since=0).state == "ready"
    unnamed = [control for control, name in page.js(_CONTROL_NAMES) if not name]
    assert unnamed == []
    assert page.js("return document.documentElement.lang") == "en"
    assert page.js("return document.querySelector('#events caption')?.textContent.trim()")
    headers = page.js(
        "return [...document.querySelectorAll('#events thead th')]"
        ".map((th) => [th.getAttribute('scope'), th.textContent.trim()]);"
    )
    assert [text for _, text in headers] == [
        "Time",
        "User",
        "Activity",
        "Resource",
        "Workspace",
        "Outcome",
        "IP address",
    ]
    assert {scope for scope, _ in headers} == {"col"}
    status = page.el("#status")
    assert status.get_attribute("aria-live") == "polite"
    assert status.get_attribute("role") == "status"
    skip = page.js("return document.querySelector('a.skip-link')?.getAttribute('href')")
    assert skip == "#events"
    page.assert_clean()


def test_an_event_opens_and_closes_from_the_keyboard(page: ViewerPage, viewer: Viewer) -> None:
    page.sign_in(viewer.token(), f"/?{viewer.seed.range_query()}")
    assert page.settled(since=0).state == "ready"
    first = page.row_ids()[0]
    button = page.row(first).find_element("css selector", ".c-time button.open")
    page.js("arguments[0].focus();", button)
    button.send_keys(Keys.ENTER)
    page.wait(lambda: page.look().dialog and page.shown("#detail-fields"), "the detail dialog")
    dialog = page.el("#detail")
    labelled_by = dialog.get_attribute("aria-labelledby")
    assert labelled_by == "detail-title"
    assert page.text("#detail-title")
    assert page.js("return document.getElementById('detail').contains(document.activeElement)")
    page.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    page.wait(lambda: not page.look().dialog, "the dialog to close on Escape")
    focused = page.js("return document.activeElement.closest('tr')?.dataset.eventId")
    assert focused == first, "focus went back to the row's button"
    page.assert_clean()


def test_times_in_utc_from_the_url_and_from_the_switch(page: ViewerPage, viewer: Viewer) -> None:
    seed = viewer.seed
    newest = seed.newest_first(ACCOUNT_A)[0]
    moment = newest["occurred_at"].astimezone(UTC)
    page.sign_in(viewer.token(), f"/?{seed.range_query()}&tz=utc")
    assert page.settled(since=0).state == "ready"
    assert page.el("#tz-utc").is_selected()
    shown = page.cells(newest["event_id"])["time"]
    assert "UTC" in shown
    twelve = moment.hour % 12 or 12  # the browser's locale may show a 12-hour clock
    minute = f"{moment.minute:02}"
    assert re.search(rf"\b0?{twelve}:{minute}\b|\b{moment.hour:02}:{minute}\b", shown), shown
    page.el("#tz-utc").click()
    page.wait(lambda: ("tz", "utc") not in page.query(), "tz=utc to leave the URL")
    page.el("#tz-utc").click()
    page.wait(lambda: ("tz", "utc") in page.query(), "tz=utc back in the URL")
    assert "UTC" in page.cells(newest["event_id"])["time"]
    page.assert_clean()
