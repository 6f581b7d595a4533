"""The Prometheus alert rules of ``deploy/prometheus/alerts.yml``: every expression uses only
metrics our processes export (of the job it selects), every alert has a severity, a summary
and a runbook section that exists, and promtool (built from the Go module proxy before the
first test, see :mod:`tests.go_tool_support`) accepts the rules and passes their unit tests
(``alerts_test.yml``: series that fire each alert and series that must not)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.tools.promtool import PROMTOOL
from tests.exported_metrics import Selector, selectors, unexported
from tests.go_tool_support import tool_binary

pytestmark = pytest.mark.go_tool(PROMTOOL)

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
RUNBOOK = REPO / "docs" / "runbook.md"
PROMTOOL_TIMEOUT_S = 120


def _alerts() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


ALERTS = _alerts()


@pytest.fixture(scope="module")
def promtool(request: pytest.FixtureRequest) -> Path:
    return tool_binary(request.config, PROMTOOL)


def _run(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *args],
        capture_output=True,
        text=True,
        cwd=PROMETHEUS_DIR,
        timeout=PROMTOOL_TIMEOUT_S,
        check=False,
    )


def test_the_rules_define_the_alerts_the_runbook_describes() -> None:
    names = [rule["alert"] for rule in ALERTS]
    headings = re.findall(r"^## (Auditlog\w+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    assert len(names) == len(set(names))
    assert names == headings


@pytest.mark.parametrize("rule", ALERTS, ids=[rule["alert"] for rule in ALERTS])
def test_an_alert_uses_only_metrics_our_processes_export(rule: dict[str, Any]) -> None:
    assert selectors(rule["expr"]), "no metric in the expression"
    assert unexported(rule["expr"]) == []


@pytest.mark.parametrize("rule", ALERTS, ids=[rule["alert"] for rule in ALERTS])
def test_an_alert_has_severity_summary_and_its_runbook_section(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in ("critical", "warning")
    assert set(rule["annotations"]) == {"summary", "runbook_url"}
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["runbook_url"] == f"docs/runbook.md#{rule['alert'].lower()}"


def test_every_alert_has_a_rule_test_where_it_fires() -> None:
    document = yaml.safe_load(RULE_TESTS.read_text())
    firing = {
        case["alertname"]
        for test in document["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert firing == {rule["alert"] for rule in ALERTS}


@pytest.mark.parametrize(
    ("expr", "metrics"),
    [
        ('up{job="writer"} == 0', [Selector("up", "writer")]),
        (
            'sum by (le) (rate(auditlog_writer_freshness_seconds_bucket{job="writer"}[5m]))',
            [Selector("auditlog_writer_freshness_seconds_bucket", "writer")],
        ),
        (
            'a > 0 unless on (destination, mode) max without (le) (b{job=~"x|y"}) > bool 3',
            [Selector("a", None), Selector("b", None)],
        ),
        (
            'histogram_quantile(0.99, c{route!~"/metrics|/health"}[$__rate_interval])',
            [Selector("c", None)],
        ),
    ],
)
def test_the_metric_names_of_an_expression_are_found(expr: str, metrics: list[Selector]) -> None:
    assert selectors(expr) == metrics


def test_a_metric_we_do_not_export_is_reported() -> None:
    assert unexported('rate(auditlog_writer_rows_total{job="writer"}[5m])') == [
        Selector("auditlog_writer_rows_total", "writer")
    ]
    assert unexported('auditlog_sink_lanes{job="writer"}') == [
        Selector("auditlog_sink_lanes", "writer")
    ]
    assert unexported("auditlog_sink_lanes") == []


def test_promtool_accepts_the_rules(promtool: Path) -> None:
    checked = _run(promtool, "check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in checked.stdout


def test_the_rules_pass_their_promtool_unit_tests(promtool: Path) -> None:
    tested = _run(promtool, "test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
