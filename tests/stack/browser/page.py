"""The viewer page as the tests see it: the element ids of docs/viewer-page.md, and waits on
conditions only (the probe of :mod:`tests.stack.browser.chrome`, ``#status[data-state]``,
a dialog's ``open``), never sleeps."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, quote, urlsplit

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.stack.browser.chrome import allow_downloads

WAIT_S = 30.0
SETTLED_STATES = ("ready", "empty", "error")
T = TypeVar("T")

# One look at the page, taken in one script so that it is consistent.
_LOOK = """
const shown = (sel) => {
  const el = document.querySelector(sel);
  return !!el && !el.closest('[hidden]') && el.getClientRects().length > 0;
};
const probe = window.__probe || {started: -1, inflight: -1};
const status = document.getElementById('status');
return {
  started: probe.started, inflight: probe.inflight,
  state: status ? status.dataset.state || null : null,
  signedOut: shown('#signed-out'), forbidden: shown('#forbidden'), viewer: shown('#viewer'),
  dialog: !!document.querySelector('#detail[open]'),
};
"""


@dataclass(frozen=True)
class Look:
    started: int
    inflight: int
    state: str | None
    signed_out: bool
    forbidden: bool
    viewer: bool
    dialog: bool


class ViewerPage:
    """One browser on the viewer at ``base_url``."""

    def __init__(self, driver: WebDriver, base_url: str, shots: Path, downloads: Path) -> None:
        self.driver = driver
        self.base_url = base_url
        self.shots = shots
        self.downloads = downloads

    # -- navigation --------------------------------------------------------------------------

    def sign_in(self, token: str, next_path: str = "/") -> None:
        """The platform's link: ``GET /sign-in?token=...&next=...``, its 303 followed and the
        page loaded (its requests may still be under way: :meth:`settled` waits for them)."""
        self.driver.get(f"{self.base_url}/sign-in?token={quote(token)}&next={quote(next_path)}")

    def open(self, path: str) -> Look:
        """Load ``path`` of the viewer and wait until the page has settled."""
        self.driver.get(self.base_url + path)
        return self.settled(since=0)

    def look(self) -> Look:
        raw = self.driver.execute_script(_LOOK)
        return Look(
            raw["started"],
            raw["inflight"],
            raw["state"],
            raw["signedOut"],
            raw["forbidden"],
            raw["viewer"],
            raw["dialog"],
        )

    def settled(self, *, since: int) -> Look:
        """Wait until the page has asked the API something after ``since`` requests, has
        its answers in, and shows a result: rows, empty, an error, or the signed-out or
        forbidden view. Returns that look."""

        last: list[Look] = []

        def done() -> Look | None:
            look = self.look()
            last[:] = [look]
            asked = look.started > since and look.inflight == 0
            shown = look.state in SETTLED_STATES or look.signed_out or look.forbidden
            return look if asked and shown else None

        try:
            return self.wait(done, "the page to settle")
        except TimeoutException:
            raise AssertionError(f"the page did not settle: {last} (since {since})") from None

    def act(self, action: Callable[[], object]) -> Look:
        """Do ``action`` (a click...) and wait for the page to settle after it."""
        before = self.look().started
        action()
        return self.settled(since=before)

    def turn(self, button: str) -> list[str]:
        """Click a paging button and wait until other rows are shown and settled (whether
        the page asks the API again or shows a page it kept); returns their ids."""
        before = self.row_ids()
        self.el(button).click()

        def turned() -> list[str] | None:
            look = self.look()
            rows = self.row_ids()
            settled = look.inflight == 0 and look.state in SETTLED_STATES
            return rows if settled and rows != before else None

        return self.wait(turned, f"other rows after clicking {button}")

    def wait(self, condition: Callable[[], T | None], what: str, timeout_s: float = WAIT_S) -> T:
        """WebDriverWait on ``condition`` (stale elements count as "not yet")."""

        def check(_driver: WebDriver) -> T | None:
            try:
                return condition()
            except StaleElementReferenceException:
                return None

        result = WebDriverWait(self.driver, timeout_s, poll_frequency=0.05).until(
            check, f"timed out waiting for {what}"
        )
        return cast(T, result)

    # -- what is shown -----------------------------------------------------------------------

    def el(self, selector: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def els(self, selector: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def shown(self, selector: str) -> bool:
        found = self.els(selector)
        return bool(found) and found[0].is_displayed()

    def text(self, selector: str) -> str:
        return str(self.el(selector).text)

    def row_ids(self) -> list[str]:
        return [
            str(row.get_attribute("data-event-id"))
            for row in self.els("#events tbody tr[data-event-id]")
        ]

    def row(self, event_id: str) -> WebElement:
        return self.el(f'#events tbody tr[data-event-id="{event_id}"]')

    def cells(self, event_id: str) -> dict[str, str]:
        """The text of each cell (``.c-time`` ... ``.c-ip``) of the event's row."""
        row = self.row(event_id)
        names = ("time", "user", "activity", "resource", "workspace", "outcome", "ip")
        return {name: str(row.find_element(By.CSS_SELECTOR, f".c-{name}").text) for name in names}

    def total(self) -> int:
        """``#total`` as a number ("1,234 events" -> 1234)."""
        text = self.text("#total")
        found = re.search(r"\d[\d,.\u202f\u00a0 ]*", text)
        assert found, f"#total shows no number: {text!r}"
        return int(re.sub(r"\D", "", found.group()))

    def query(self) -> list[tuple[str, str]]:
        """The page URL's query parameters, in order."""
        return parse_qsl(urlsplit(self.driver.current_url).query, keep_blank_values=True)

    def field_value(self, selector: str) -> str:
        return str(self.el(selector).get_attribute("value") or "")

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def probe(self) -> dict[str, Any]:
        found: dict[str, Any] = self.js(
            "const p = window.__probe; return p ? {csp: p.csp, errors: p.errors, "
            "alerts: p.alerts} : null;"
        )
        assert found is not None, "the probe is missing from the page"
        return found

    def console_problems(self) -> list[str]:
        """What the browser's console said about CSP or uncaught script errors since the
        last call (failed requests, 401s and 403s the page expects, are not problems)."""
        problems = []
        for entry in self.driver.get_log("browser"):  # type: ignore[no-untyped-call]
            message = str(entry.get("message", ""))
            if (
                "Content Security Policy" in message
                or entry.get("source") == "javascript"
                or "Uncaught" in message
            ):
                problems.append(message)
        return problems

    def assert_clean(self) -> None:
        """No CSP violation, no uncaught error, no alert, in the page or its console."""
        probe = self.probe()
        assert probe == {"csp": [], "errors": [], "alerts": []}, probe
        assert self.console_problems() == []

    # -- the form ----------------------------------------------------------------------------

    def set_field(self, selector: str, value: str) -> None:
        """Type into an input, or choose the ``<select>`` option of that value."""
        element = self.el(selector)
        if element.tag_name.lower() == "select":
            Select(element).select_by_value(value)
        elif element.get_attribute("type") == "checkbox":
            if element.is_selected() != (value == "on"):
                element.click()
        else:
            element.clear()
            element.send_keys(value)

    def apply(self) -> Look:
        return self.act(lambda: self.el("#apply").click())

    # -- the detail dialog -------------------------------------------------------------------

    def open_event(self, event_id: str) -> None:
        """Click the event's time button and wait for the dialog with its details."""
        before = self.look().started
        self.row(event_id).find_element(By.CSS_SELECTOR, ".c-time button.open").click()
        self.wait(
            lambda: (
                (look := self.look()).dialog
                and look.inflight == 0
                and look.started >= before
                and self.shown("#detail-fields")
            ),
            "the detail dialog",
        )

    def dl(self, selector: str) -> dict[str, str]:
        """A ``<dl>``'s terms and descriptions."""
        pairs = self.js(
            "const out = {}; let term = null;"
            "for (const el of document.querySelector(arguments[0]).children) {"
            "  if (el.tagName === 'DT') term = el.textContent.trim();"
            "  else if (el.tagName === 'DD' && term !== null) out[term] = el.textContent;"
            "  else if (el.tagName === 'DIV') {"
            "    const dt = el.querySelector('dt'), dd = el.querySelector('dd');"
            "    if (dt && dd) out[dt.textContent.trim()] = dd.textContent; }"
            "} return out;",
            selector,
        )
        return {str(k): str(v) for k, v in pairs.items()}

    def changes(self) -> list[tuple[str, str, str]]:
        """``#detail-changes``' rows: (field, before, after), as text."""
        rows = self.js(
            "return [...document.querySelectorAll('#detail-changes tr')]"
            ".filter(tr => tr.querySelector('.c-field'))"
            ".map(tr => ['.c-field', '.c-before', '.c-after']"
            ".map(s => tr.querySelector(s).textContent.trim()));"
        )
        return [(str(f), str(b), str(a)) for f, b, a in rows]

    # -- screenshots and downloads -----------------------------------------------------------

    def screenshot(self, name: str) -> Path:
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def download(self, button: str, suffix: str, into: Path, timeout_s: float = 60) -> Path:
        """Click ``button`` and wait for the browser to have saved one ``*suffix`` file in
        ``into`` (a directory of the caller's own, empty)."""
        allow_downloads(self.driver, into)
        self.el(button).click()

        def saved() -> Path | None:
            names = list(into.iterdir())
            if any(n.name.endswith(".crdownload") for n in names):
                return None
            done = [n for n in names if n.name.endswith(suffix)]
            return done[0] if len(done) == 1 else None

        found = self.wait(saved, f"a downloaded {suffix} file", timeout_s=timeout_s)
        allow_downloads(self.driver, self.downloads)
        return found


def csv_ids(text: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text)))
    header, records = rows[0], rows[1:]
    column = header.index("id")
    return [record[column] for record in records]
