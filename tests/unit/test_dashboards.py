"""The Grafana dashboards of ``deploy/grafana/dashboards/``, their provisioning files and the
Prometheus scrape config, checked in place of a dashboard linter (Grafana's is not served
by the Go module proxy; see deploy/README.md): valid JSON of a current schema, a
``datasource`` variable every panel and query uses, unique panel ids and titles, a unit on
every panel, and queries that promtool parses and that use only metrics our processes
export. ``prometheus.yml`` scrapes every job on the port the settings give it and passes
``promtool check config``."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditlog.settings import AuditlogSettings
from auditlog.viewer_settings import ViewerSettings
from deploy.tools.promtool import PROMTOOL
from tests.exported_metrics import JOBS, selectors, unexported
from tests.go_tool_support import tool_binary

pytestmark = pytest.mark.go_tool(PROMTOOL)

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana 11.3 and later write schemaVersion 40 or more.
MIN_SCHEMA_VERSION = 40
# Grafana's own variables, as a query may use them, and what stands in for them when
# promtool parses the query.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows too; rows themselves are not panels."""
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found.extend(panel.get("panels", []))
        if panel["type"] != "row":
            found.append(panel)
    return found


def _targets() -> list[tuple[str, str]]:
    """(where, expression) of every query of every dashboard."""
    return [
        (f"{path.name} panel {panel['id']} {target['refId']}", target["expr"])
        for path in DASHBOARDS
        for panel in _panels(_load(path))
        for target in panel["targets"]
    ]


@pytest.fixture(scope="module")
def promtool(request: pytest.FixtureRequest) -> Path:
    return tool_binary(request.config, PROMTOOL)


def test_there_are_dashboards_for_the_writer_the_sinks_and_the_viewer() -> None:
    assert [path.stem for path in DASHBOARDS] == ["sinks", "viewer", "writer"]
    uids = [_load(path)["uid"] for path in DASHBOARDS]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=[path.stem for path in DASHBOARDS])
def test_a_dashboard_has_a_current_schema_and_a_datasource_variable(path: Path) -> None:
    dashboard = _load(path)
    assert dashboard["schemaVersion"] >= MIN_SCHEMA_VERSION
    assert dashboard["title"].startswith("Audit log: ")
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


@pytest.mark.parametrize("path", DASHBOARDS, ids=[path.stem for path in DASHBOARDS])
def test_panels_have_unique_ids_and_titles_the_datasource_variable_and_units(
    path: Path,
) -> None:
    dashboard = _load(path)
    every = [*_panels(dashboard), *(p for p in dashboard["panels"] if p["type"] == "row")]
    ids = [panel["id"] for panel in every]
    titles = [panel["title"] for panel in every]
    assert len(set(ids)) == len(ids), "panel ids repeat"
    assert len(set(titles)) == len(titles), "panel titles repeat"
    for panel in _panels(dashboard):
        where = f"{path.name} panel {panel['id']} ({panel['title']})"
        assert panel["datasource"] == DATASOURCE, where
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
        assert panel["description"], f"{where}: no description"
        assert panel["targets"], f"{where}: no query"
        refs = [target["refId"] for target in panel["targets"]]
        assert len(set(refs)) == len(refs), where
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, where
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, where


@pytest.mark.parametrize(("where", "expr"), _targets(), ids=[where for where, _ in _targets()])
def test_a_query_uses_only_metrics_our_processes_export(where: str, expr: str) -> None:
    found = selectors(expr)
    assert found, f"{where}: no metric"
    assert all(selector.job in JOBS for selector in found), f"{where}: a selector without job"
    assert unexported(expr) == []


def test_promtool_parses_every_query(promtool: Path, tmp_path: Path) -> None:
    """Each query becomes a recording rule of a temporary rules file, with Grafana's
    variables replaced by durations, and ``promtool check rules`` parses them all."""
    rules = []
    for number, (where, query) in enumerate(_targets()):
        expr = query
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"{where}: a variable promtool cannot parse"
        rules.append({"record": f"dashboard_query:{number}", "expr": expr})
    rules_file = tmp_path / "dashboard_queries.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    checked = subprocess.run(
        [str(promtool), "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_the_provisioning_points_grafana_at_prometheus_and_the_dashboards() -> None:
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_prometheus_scrapes_every_job_on_its_port() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = {
        job["job_name"]: [
            (name, sd["port"]) for sd in job["dns_sd_configs"] for name in sd["names"]
        ]
        for job in config["scrape_configs"]
    }
    metrics_port = AuditlogSettings.model_fields["metrics_port"].default
    viewer_port = ViewerSettings.model_fields["viewer_port"].default
    assert targets == {
        "writer": [("writer", metrics_port)],
        "sinks": [("sinks", metrics_port)],
        "viewer": [("viewer", viewer_port)],
        "integrity": [("integrity", metrics_port)],
    }
    assert set(targets) == set(JOBS)
    assert config["rule_files"] == ["alerts.yml"]


def test_promtool_accepts_the_scrape_config(promtool: Path) -> None:
    checked = subprocess.run(
        [str(promtool), "check", "config", PROMETHEUS_CONFIG.name],
        capture_output=True,
        text=True,
        cwd=PROMETHEUS_CONFIG.parent,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(r"SUCCESS: .*prometheus\.yml is valid", checked.stdout + checked.stderr)
