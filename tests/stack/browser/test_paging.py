"""Paging through a range to its end: every event once, as many as ``#total`` says and the
API counts, newest first; back again with ``#prev-page``."""

from __future__ import annotations

import pytest

from tests.stack.browser.page import ViewerPage
from tests.stack.browser.seed import A_EVENTS, ACCOUNT_A, PAGE_SIZE
from tests.stack.browser.service import Viewer

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.browser]


def _disabled(page: ViewerPage, selector: str) -> bool:
    button = page.el(selector)
    return not button.is_enabled() or button.get_attribute("aria-disabled") == "true"


def test_paging_to_the_end_of_a_range_and_back(page: ViewerPage, viewer: Viewer) -> None:
    seed = viewer.seed
    page.sign_in(viewer.token(), f"/?{seed.range_query()}")
    assert page.settled(since=0).state == "ready"
    status, counted = viewer.api(f"/api/activity_logs?{seed.api_range_query()}&page[size]=1")
    assert status == 200, counted
    assert page.total() == counted["total"] == A_EVENTS
    assert _disabled(page, "#prev-page")

    pages = [page.row_ids()]
    info = [page.text("#page-info")]
    while not _disabled(page, "#next-page"):
        assert len(pages) <= A_EVENTS // PAGE_SIZE + 1, "the next button never disabled itself"
        pages.append(page.turn("#next-page"))
        info.append(page.text("#page-info"))
        assert page.total() == A_EVENTS  # the total does not change while paging

    seen = [event_id for shown in pages for event_id in shown]
    assert [len(shown) for shown in pages] == [50, 50, 30]
    assert len(set(seen)) == len(seen) == page.total() == counted["total"]
    assert seen == [event["event_id"] for event in seed.newest_first(ACCOUNT_A)]
    assert len(set(info)) == len(info), f"#page-info did not change: {info}"

    assert page.turn("#prev-page") == pages[-2]
    assert not _disabled(page, "#next-page")
    assert page.turn("#prev-page") == pages[0]
    assert _disabled(page, "#prev-page")
    page.assert_clean()
