"""Who sees what in the page: an ordinary member is told why not; the holder of the
activity audit privilege sees the log; another account's Admin sees their own account only,
even with A's id in the URL; a partner's admin picks a managed account and sees its events."""

from __future__ import annotations

import pytest
from selenium.webdriver.support.ui import Select

from tests.stack.browser.chrome import DESKTOP, TABLET
from tests.stack.browser.page import ViewerPage
from tests.stack.browser.seed import ACCOUNT_A, ACCOUNT_B, MANAGED, PARTNER
from tests.stack.browser.service import Viewer

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.browser]


def test_an_ordinary_member_is_told_why_not(page: ViewerPage, viewer: Viewer) -> None:
    page.sign_in(viewer.token(user="u-member", roles=("member",)))
    look = page.settled(since=0)
    assert look.forbidden
    assert not look.viewer
    reason = page.text("#forbidden")
    assert "you need the Admin role or the activity audit privilege" in reason, reason
    assert ACCOUNT_A in reason
    assert page.row_ids() == []
    page.screenshot("forbidden")
    page.assert_clean()


def test_the_holder_of_the_audit_privilege_sees_the_log(page: ViewerPage, viewer: Viewer) -> None:
    token = viewer.token(user="u-auditor", roles=("member",), privileges=("activity_audit",))
    page.sign_in(token, f"/?{viewer.seed.range_query()}")
    look = page.settled(since=0)
    assert look.viewer
    assert look.state == "ready"
    assert page.total() == len(viewer.seed.events[ACCOUNT_A])


def test_another_accounts_admin_sees_their_own_account_only(
    page: ViewerPage, viewer: Viewer
) -> None:
    seed = viewer.seed
    page.sign_in(viewer.token(ACCOUNT_B, "u-globex-admin"), f"/?{seed.range_query()}")
    assert page.settled(since=0).state == "ready"
    shown = page.row_ids()
    assert set(shown) == seed.ids(ACCOUNT_B)
    assert page.total() == len(seed.events[ACCOUNT_B])
    assert not page.shown("#account-picker")
    # Naming A in the URL shows the API's refusal, not A's events.
    page.open(f"/?{seed.range_query()}&account_id={ACCOUNT_A}")
    status, refused = viewer.api(
        f"/api/activity_logs?account_id={ACCOUNT_A}", viewer.token(ACCOUNT_B, "u-globex-admin")
    )
    assert status == 403
    assert page.look().state == "error"
    assert refused["error"]["message"] in page.text("#status")
    assert not set(page.row_ids()) & seed.ids(ACCOUNT_A)
    page.assert_clean()


def test_a_partners_admin_picks_a_managed_account(page: ViewerPage, viewer: Viewer) -> None:
    seed = viewer.seed
    token = viewer.token(PARTNER, "u-partner-admin", partner_id=PARTNER)
    page.sign_in(token, f"/?{seed.range_query()}")
    look = page.settled(since=0)
    assert look.viewer, look
    assert page.shown("#account-picker")
    picker = Select(page.el("#account-picker"))
    assert [o.get_attribute("value") for o in picker.options] == sorted(MANAGED)
    first, second = sorted(MANAGED)
    assert set(page.row_ids()) == seed.ids(first)
    page.act(lambda: picker.select_by_value(second))
    assert ("account_id", second) in page.query()
    assert set(page.row_ids()) == seed.ids(second)
    assert page.total() == len(seed.events[second])
    page.screenshot("partner-picker")
    page.assert_clean()


def test_the_page_at_tablet_width(page: ViewerPage, viewer: Viewer) -> None:
    page.driver.set_window_size(*TABLET)
    try:
        page.sign_in(viewer.token(), f"/?{viewer.seed.range_query()}")
        assert page.settled(since=0).state == "ready"
        assert page.js("return window.innerWidth;") <= TABLET[0]
        for selector in ("#filters", "#apply", "#events", "#total", "#next-page"):
            assert page.shown(selector), selector
        page.screenshot("table-tablet-768")
        # Still usable: the next page, at this width.
        page.turn("#next-page")
        assert len(page.row_ids()) == 50
    finally:
        page.driver.set_window_size(*DESKTOP)
