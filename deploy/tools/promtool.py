"""Prometheus's promtool, which checks and unit-tests the alert rules of
``deploy/prometheus/`` (``promtool check rules``, ``promtool test rules``).

Built by :func:`deploy.tools.go_tools.ensure` from the Go module proxy into
``.cache/tools/promtool-<version>/promtool`` (Apache-2.0; a development and test tool, not
shipped). Version v0.316.0 of the module is Prometheus 3.x's; its go.mod asks for Go 1.26.
"""

from __future__ import annotations

from deploy.tools.go_tools import GoTool

PROMETHEUS_MODULE = "github.com/prometheus/prometheus"

PROMTOOL = GoTool(
    name="promtool",
    module=PROMETHEUS_MODULE,
    package=f"{PROMETHEUS_MODULE}/cmd/promtool",
    version="v0.316.0",
    go_needed=(1, 26),
    purpose="promtool (the checker of the alert rules in deploy/prometheus/)",
    build_timeout_s=1800.0,
)
