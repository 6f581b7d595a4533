"""Fixtures of the browser tests.

- ``viewer``: one ``auditlog serve`` on the real stack with the seeded events
  (:mod:`tests.stack.browser.service`), for all the browser tests (stopped after the last
  one): every module reads the same data, whose range no read changes.
- ``browser``: one headless Chromium per module (:mod:`tests.stack.browser.chrome`).
- ``page``: the viewer page in that browser for one test: cookies cleared before (so each
  test signs in as whom it needs), a screenshot saved when the test failed.

Screenshots go to ``$AUDITLOG_ARTIFACTS_DIR/screenshots/`` (default: ``.artifacts/`` at the
repository's root).
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from deploy.stack.endpoints import StackEndpoints
from tests.stack.browser import service
from tests.stack.browser.chrome import chrome, missing_binaries
from tests.stack.browser.page import ViewerPage

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def screenshots() -> Path:
    root = Path(os.environ.get("AUDITLOG_ARTIFACTS_DIR") or REPO / ".artifacts")
    path = root / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="package")
def viewer(
    stack_endpoints: StackEndpoints, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[service.Viewer]:
    with service.running(stack_endpoints, tmp_path_factory.mktemp("page-viewer")) as running:
        yield running


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    missing = missing_binaries()
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: run tests/stack/browser/ensure_chromium.sh as root",
            pytrace=False,
        )
    with chrome(tmp_path_factory.mktemp("downloads")) as driver:
        yield driver


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_FAILED, False)
    if report.failed:
        item.stash[_FAILED] = True
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(
    request: pytest.FixtureRequest,
    browser: WebDriver,
    viewer: service.Viewer,
    screenshots: Path,
    tmp_path: Path,
) -> Iterator[ViewerPage]:
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.get("about:blank")
    browser.get_log("browser")  # type: ignore[no-untyped-call]  # earlier tests' console
    viewer_page = ViewerPage(browser, viewer.url, screenshots, tmp_path / "downloads")
    yield viewer_page
    if request.node.stash.get(_FAILED, False):
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.nodeid.split("::", 1)[-1])
        viewer_page.screenshot(f"failed-{name}")
