"""Prometheus's promtool, which checks and unit-tests the alert rules of
``deploy/prometheus/`` (``promtool check rules``, ``promtool test rules``).

Built by :func:`deploy.tools.go_tools.ensure` from the Go module proxy into
``.cache/tools/promtool-<version>/promtool`` (Apache-2.0; a development and test tool, not
shipped). Version v0.316.0 of the module is Prometheus 3.x's; its go.mod asks for Go 1.26.

Built without the service discovery plugins but DNS (``remove_all_sd,enable_dns_sd``, the
build tags of Prometheus's ``plugins/``): the cloud and Kubernetes SDKs they pull in are most
of the build. Measured on 2 busy cores with empty module and build caches: 16 min 49 s of
wall time and 432 s of CPU with every plugin, 4 min 50 s and 171 s without; 15 s warm.
``promtool check config`` then accepts static, file and DNS discovery only (what
``deploy/prometheus/prometheus.yml`` uses).
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
    build_tags=("remove_all_sd", "enable_dns_sd"),
)
