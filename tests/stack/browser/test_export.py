"""Exporting the filtered range from the page: the browser saves the file the form's POST
answers with, and it holds the same events as the API's export of the same filters (asked
with a bearer token), and as the seed says."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stack.browser.page import ViewerPage, csv_ids
from tests.stack.browser.seed import ACCOUNT_A
from tests.stack.browser.service import Viewer, ndjson_ids

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.browser]

FILTERS = "categories[]=recipes&workspace_id=ws-main"


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_export_of_the_filtered_range(
    page: ViewerPage, viewer: Viewer, tmp_path: Path, fmt: str
) -> None:
    seed = viewer.seed
    page.sign_in(viewer.token(), f"/?{seed.range_query()}&{FILTERS}")
    assert page.settled(since=0).state == "ready"
    saved = page.download(f"#export-{fmt}", f".{fmt}", tmp_path / "saved")
    assert saved.name == f"audit-log-{ACCOUNT_A}.{fmt}"
    text = saved.read_text(encoding="utf-8")

    from_api = viewer.api_bytes(
        f"/api/activity_logs/export?format={fmt}&{seed.api_range_query()}&{FILTERS}"
    )
    if fmt == "csv":
        downloaded, exported = csv_ids(text), csv_ids(from_api.decode())
    else:
        downloaded, exported = ndjson_ids(text.encode()), ndjson_ids(from_api)
    expected = {
        e["event_id"]
        for e in seed.events[ACCOUNT_A]
        if e["action"].startswith("recipe.") and e["workspace"]["id"] == "ws-main"
    }
    assert len(downloaded) == len(set(downloaded)) == len(exported) == len(expected)
    assert set(downloaded) == set(exported) == expected
    assert page.total() == len(expected)
    # The page stayed as it was: a download, not a navigation.
    assert page.look().state == "ready"
    page.assert_clean()
