"""Builds the chart's tools (helm, the Kubernetes API validator) before the first test that
needs them, outside any test's timeout: a cold build takes minutes (deploy/chart_tools.py)."""

from __future__ import annotations

import pytest

from auditlog.settings import AuditlogSettings
from deploy import chart_tools
from deploy.tools import go_tools
from deploy.tools.go_tools import GoToolError

CHART_TESTS = "test_chart.py"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build helm and the validator when chart tests are selected and the cache lacks them.
    Without a new enough Go the chart tests skip (they say why); a build that fails stops
    the run with its message."""
    if session.config.option.collectonly or not any(
        item.path.name == CHART_TESTS for item in session.items
    ):
        return
    cache_dir = AuditlogSettings().cache_dir.resolve()
    if go_tools.unavailable(chart_tools.HELM, cache_dir) is not None:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def progress(message: str) -> None:
        if reporter is not None:
            reporter.write_line(message)

    try:
        chart_tools.ensure_helm(cache_dir, on_progress=progress)
        chart_tools.ensure_validator(cache_dir, on_progress=progress)
    except GoToolError as exc:
        pytest.exit(f"auditlog: {exc}", returncode=3)
