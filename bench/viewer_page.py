"""Benchmark: the viewer page's first page in a browser, on the viewer benchmark's data set
(10M generated events, :mod:`bench.viewer_dataset`, built or reused as
:mod:`bench.viewer_queries` does).

Starts the engine (chdb gateway) on the cached data, a broker of its own and
``auditlog serve`` as operators run it, signs in once in Debian's headless Chromium
(:mod:`tests.stack.browser.chrome`) as an Admin of one account (``--account-rank``, 1: the
largest), then loads ``/?range=7d`` ``--runs`` times (after ``--warmup`` untimed loads) and
measures, in the page's own clock (``performance.now()``, 0 = navigation start), the moment
the first row of ``#events`` is in the document and ``#total`` shows the count: a
MutationObserver installed before the page's scripts run (CDP
``Page.addScriptToEvaluateOnNewDocument``), and the next animation frame after it
(``painted``). Beside it, the phases the browser saw (the document, the page's requests to
``/api/session``, ``/api/activities`` and ``/api/activity_logs``), and the same first page
through the API alone (``GET /api/activity_logs?from=<7 days ago>&page[size]=50`` with a
bearer token, one keep-alive connection), for the same account: the page's p95 over the
API's, and whether the page's p95 is under 1 s.

Prints one JSON object.

    python -m bench.viewer_page                         # 10M events, 1,000 accounts, 20 runs
    python -m bench.viewer_page --events 200000 --accounts 100 --runs 10   # quick
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from bench.common import REPO, machine
from bench.latency import summary
from bench.viewer_dataset import DatasetSpec, cache_dir, read_loaded
from bench.viewer_queries import DATABASE, prepare
from bench.viewer_service import running_service
from deploy.stack import processes
from deploy.stack.clickhouse import engine_dir, start_clickhouse, stop_clickhouse
from tests.stack.browser.chrome import chrome, missing_binaries

PAGE_SIZE = 50  # the page's
TARGET_P95_MS = 1000.0

# Installed in every document before its scripts: when the first row and the total are
# there, note the time (and the next frame's); then the browser's own timings of the phases.
FIRST_PAGE_PROBE = """
(() => {
  if (location.pathname !== '/') return;
  const seen = {};
  Object.defineProperty(window, '__firstPage', {value: seen});
  const check = () => {
    const row = document.querySelector('#events tbody tr[data-event-id]');
    const total = document.getElementById('total');
    if (!row || !total || !total.textContent.trim() || !total.getClientRects().length) {
      return false;
    }
    seen.at = performance.now();
    seen.rows = document.querySelectorAll('#events tbody tr[data-event-id]').length;
    seen.total = total.textContent.trim();
    requestAnimationFrame(() => { seen.painted = performance.now(); });
    return true;
  };
  const observer = new MutationObserver(() => { if (check()) observer.disconnect(); });
  observer.observe(document, {subtree: true, childList: true, characterData: true});
})();
"""

PHASES = """
const done = window.__firstPage;
const nav = performance.getEntriesByType('navigation')[0];
const ends = {};
for (const entry of performance.getEntriesByType('resource')) {
  const path = new URL(entry.name).pathname;
  if (path.startsWith('/api/')) {
    ends[path] = {start: entry.startTime, end: entry.responseEnd};
  }
}
return {
  at: done.at, painted: done.painted, rows: done.rows, total: done.total,
  document_ms: nav.responseEnd, dom_content_loaded_ms: nav.domContentLoadedEventEnd,
  api: ends,
};
"""


def _load(driver: WebDriver, url: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """One load of the page's first page; its timings (ms since navigation start)."""
    driver.get(url)
    WebDriverWait(driver, timeout_s, poll_frequency=0.02).until(
        lambda d: d.execute_script(
            "const s = window.__firstPage; return !!s && s.painted !== undefined;"
        ),
        "the first page was not shown",
    )
    found: dict[str, Any] = driver.execute_script(PHASES)
    return found


def through_page(
    driver: WebDriver, base_url: str, token: str, *, runs: int, warmup: int
) -> dict[str, Any]:
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FIRST_PAGE_PROBE})
    driver.get(f"{base_url}/sign-in?token={quote(token)}&next={quote('/?range=7d')}")
    url = f"{base_url}/?range=7d"
    for _ in range(warmup):
        _load(driver, url)
    loads = [_load(driver, url) for _ in range(runs)]
    phases: dict[str, list[float]] = {"document_ms": [], "dom_content_loaded_ms": []}
    for load in loads:
        phases["document_ms"].append(load["document_ms"])
        phases["dom_content_loaded_ms"].append(load["dom_content_loaded_ms"])
        for path, span in load["api"].items():
            phases.setdefault(f"{path} ends_ms", []).append(span["end"])
            phases.setdefault(f"{path} took_ms", []).append(span["end"] - span["start"])
    return {
        "first_row_and_total": summary([load["at"] for load in loads]),
        "painted": summary([load["painted"] for load in loads]),
        "phases_p50_ms": {
            name: summary(values)["p50_ms"] for name, values in sorted(phases.items())
        },
        "rows_shown": sorted({load["rows"] for load in loads}),
        "total_shown": sorted({load["total"] for load in loads}),
    }


def through_api(base_url: str, token: str, *, runs: int, warmup: int) -> dict[str, Any]:
    """The same first page (7 days back from each request, 50 records) on one keep-alive
    connection."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    headers = {"Authorization": f"Bearer {token}"}
    answers: list[dict[str, Any]] = []

    def one() -> float:
        since = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        path = "/api/activity_logs?" + urlencode({"from": since + "Z", "page[size]": PAGE_SIZE})
        began = time.perf_counter()
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        body = answer.read()
        took = (time.perf_counter() - began) * 1000.0
        if answer.status != 200:
            raise RuntimeError(f"GET {path}: {answer.status} {body[:300]!r}")
        answers.append(json.loads(body))
        return took

    try:
        for _ in range(warmup):
            one()
        samples = [one() for _ in range(runs)]
    finally:
        connection.close()
    return summary(samples) | {
        "records": sorted({len(a["data"]) for a in answers}),
        "total": sorted({a["total"] for a in answers})[-1],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    missing = missing_binaries()
    if missing:
        raise SystemExit(f"bench.viewer_page: {', '.join(missing)} missing: make browser-deps")
    spec = DatasetSpec(events=args.events, accounts=args.accounts)
    data_dir = cache_dir(args.cache_dir, spec)
    if read_loaded(data_dir) is None and engine_dir(data_dir).exists():
        stop_clickhouse(data_dir)  # an interrupted load: start again
        shutil.rmtree(engine_dir(data_dir))
    data_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"machine": machine(), "loadavg_1m_before": os.getloadavg()[0]}
    port = processes.choose_port(0)
    start_clickhouse(data_dir=data_dir, port=port)
    url = f"http://127.0.0.1:{port}"
    try:
        loaded, facts = prepare(url, data_dir, spec)
        result["dataset"] = facts | {"spec": vars(spec), "data_dir": str(data_dir)}
        rank = min(args.account_rank, len(loaded.account_sizes))
        account, size = loaded.account_sizes[rank - 1]
        anchor = datetime.fromtimestamp(loaded.anchor_ms / 1000, UTC)
        result["account"] = {"id": account, "rank": rank, "events": size}
        result["dataset_age_h"] = round((datetime.now(UTC) - anchor).total_seconds() / 3600, 1)
        began = time.perf_counter()
        with (
            running_service(url, DATABASE, [account], cursor_key=secrets.token_hex(32)) as viewer,
            tempfile.TemporaryDirectory(prefix="bench-page-downloads-") as downloads,
            chrome(Path(downloads), probe=False) as driver,
        ):
            result["service_start_s"] = round(time.perf_counter() - began, 1)
            sign_in = viewer.mint(account, 120)
            page = through_page(driver, viewer.url, sign_in, runs=args.runs, warmup=args.warmup)
            api = through_api(
                viewer.url, viewer.tokens[account], runs=args.runs, warmup=args.warmup
            )
    finally:
        stop_clickhouse(data_dir)
    p95 = page["first_row_and_total"]["p95_ms"]
    result |= {
        "page": page,
        "api_first_page": api,
        "page_over_api_p95": round(p95 / api["p95_ms"], 1),
        "target": {"page_p95_ms": TARGET_P95_MS, "measured": p95, "met": p95 < TARGET_P95_MS},
        "loadavg_1m_after": os.getloadavg()[0],
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("AUDITLOG_CACHE_DIR", REPO / ".cache")),
    )
    parser.add_argument("--runs", type=int, default=20, help="timed loads (and API calls)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed loads first")
    parser.add_argument(
        "--account-rank", type=int, default=1, help="the account by size (1: the largest)"
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    result = run(args)
    result["total_s"] = round(time.perf_counter() - began, 1)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
