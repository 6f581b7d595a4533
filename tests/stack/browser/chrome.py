"""Debian's Chromium, headless, driven by its ChromeDriver through Selenium (no Selenium
Manager: both binaries are given, so nothing is ever downloaded).

:func:`chrome` starts one browser with a fresh profile in a temporary directory, downloads
going to ``download_dir``, the browser's console kept for the tests, and :data:`PROBE`
installed in every document before the page's own scripts run; the browser and its driver
are stopped when the block ends, whatever happened.

:data:`PROBE` gives tests signals instead of sleeps: ``window.__probe.started`` and
``inflight`` count the page's ``fetch`` calls and the reading of their bodies (so "the page
asked and has rendered what it got" is ``inflight == 0`` after ``started`` moved), and it
records CSP violations, uncaught errors and any ``alert``/``confirm``/``prompt`` (which it
answers instead of showing).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = Path(os.environ.get("AUDITLOG_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("AUDITLOG_CHROMEDRIVER", "/usr/bin/chromedriver"))
DESKTOP = (1280, 800)
TABLET = (768, 1024)

# Without the background-networking flags Chromium keeps calling Google's hosts, which the
# machine's closed network refuses (polyglot.md).
ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--lang=en-US",
)

PROBE = """
(() => {
  const probe = {started: 0, inflight: 0, csp: [], errors: [], alerts: []};
  Object.defineProperty(window, '__probe', {value: probe});
  const track = (promise) => {
    probe.started += 1;
    probe.inflight += 1;
    return promise.finally(() => { probe.inflight -= 1; });
  };
  const fetch = window.fetch.bind(window);
  window.fetch = (...args) => track(fetch(...args));
  for (const name of ['json', 'text', 'blob', 'arrayBuffer', 'formData']) {
    const read = Response.prototype[name];
    Response.prototype[name] = function () { return track(read.call(this)); };
  }
  document.addEventListener('securitypolicyviolation', (e) => {
    probe.csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
  });
  window.addEventListener('error', (e) => { probe.errors.push(String(e.message)); });
  window.addEventListener('unhandledrejection', (e) => {
    probe.errors.push(`unhandled rejection: ${e.reason}`);
  });
  window.alert = (m) => { probe.alerts.push(`alert: ${m}`); };
  window.confirm = (m) => { probe.alerts.push(`confirm: ${m}`); return false; };
  window.prompt = (m) => { probe.alerts.push(`prompt: ${m}`); return null; };
})();
"""


def missing_binaries() -> list[str]:
    """The binaries of :data:`CHROMIUM` and :data:`CHROMEDRIVER` that are not there."""
    return [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]


@contextlib.contextmanager
def chrome(
    download_dir: Path, *, size: tuple[int, int] = DESKTOP, probe: bool = True
) -> Iterator[WebDriver]:
    """A headless Chromium of its own (fresh profile), with :data:`PROBE` unless told
    otherwise; quit when the block ends."""
    with tempfile.TemporaryDirectory(prefix="auditlog-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in (
            *ARGUMENTS,
            f"--user-data-dir={profile}",
            "--window-size={},{}".format(*size),
        ):
            options.add_argument(argument)
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(download_dir),
                "download.prompt_for_download": False,
                "download.directory_upgrade": True,
                "safebrowsing.enabled": False,
            },
        )
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        try:
            driver.set_window_size(*size)
            allow_downloads(driver, download_dir)
            if probe:
                driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
            yield driver
        finally:
            driver.quit()


def allow_downloads(driver: WebDriver, download_dir: Path) -> None:
    """Save downloads in ``download_dir`` without asking (headless needs it said by CDP)."""
    download_dir.mkdir(parents=True, exist_ok=True)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior",
        {"behavior": "allow", "downloadPath": str(download_dir), "eventsEnabled": True},
    )
