"""The detail view: an event opened from its row shows who, what, where from and the
field-level changes, before and after, each in its own cell."""

from __future__ import annotations

import pytest

from tests.stack.browser.page import ViewerPage
from tests.stack.browser.seed import ACCOUNT_A, IPS, KIM, ONBOARDING, ONBOARDING_CHANGES
from tests.stack.browser.service import Viewer

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.browser]


def test_the_detail_shows_the_event_and_its_changes(page: ViewerPage, viewer: Viewer) -> None:
    event = viewer.seed.marked("onboarding-updated")
    page.sign_in(viewer.token(), f"/?{viewer.seed.range_query()}&resource_id={ONBOARDING['id']}")
    assert page.settled(since=0).state == "ready"
    page.open_event(event["event_id"])
    assert page.text("#detail-title").strip()
    fields = page.text("#detail-fields")
    for shown in (KIM["email"], ONBOARDING["name"], "Main"):
        assert shown in fields, (shown, fields)
    request = page.text("#detail-request")
    assert IPS[1] in request
    assert event["request"]["user_agent"] in request
    changes = page.changes()
    assert [field for field, _, _ in changes] == [c["field"] for c in ONBOARDING_CHANGES]
    for (_, before, after), change in zip(changes, ONBOARDING_CHANGES, strict=True):
        assert after == change["after"]
        if change["before"] is None:
            assert before not in ("None", "null", "undefined"), before
        else:
            assert before == change["before"]
    page.screenshot("detail-dialog")
    page.el("#detail-close").click()
    page.wait(lambda: not page.look().dialog, "the dialog to close")
    page.assert_clean()


def test_a_failure_shows_its_reason_and_the_table_its_outcome(
    page: ViewerPage, viewer: Viewer
) -> None:
    failed = next(
        e for e in viewer.seed.newest_first(ACCOUNT_A) if e["action"] == "connection.connect_failed"
    )
    page.sign_in(viewer.token(), f"/?{viewer.seed.range_query()}&outcome=failure")
    assert page.settled(since=0).state == "ready"
    cells = page.cells(failed["event_id"])
    assert cells["ip"] == failed["request"]["ip"]
    assert failed["resource"]["name"] in cells["resource"]
    assert cells["outcome"].strip()
    failure_text = cells["outcome"]
    page.open_event(failed["event_id"])
    assert "timeout" in page.text("#detail-fields")
    assert page.changes() == []
    page.el("#detail-close").click()
    page.wait(lambda: not page.look().dialog, "the dialog to close")
    # A success reads differently from a failure.
    page.sign_in(viewer.token(), f"/?{viewer.seed.range_query()}&outcome=success")
    assert page.settled(since=0).state == "ready"
    assert page.cells(page.row_ids()[0])["outcome"] != failure_text
