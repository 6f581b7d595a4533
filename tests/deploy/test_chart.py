"""The Helm chart deploy/helm/auditlog/: ``helm lint`` and ``helm template`` with each overlay,
every rendered object decoded strictly by the Kubernetes API's Go types (deploy/helm/validate),
and the policies the chart promises, checked on the rendered objects: probes, resources,
non-root, read-only root filesystem, dropped capabilities, a PodDisruptionBudget and a
NetworkPolicy per Deployment, pinned images, secrets only by reference."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditlog.cli import build_parser
from auditlog.settings import AuditlogSettings
from deploy import chart_tools
from deploy.chart_tools import CHART_DIR, ChartError
from deploy.tools import go_tools
from sinks.destinations.references import DEFAULT_PREFIX
from tests.deploy.deploy_settings import SECRET_VARIABLES, unknown_variables

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = {"dev": CHART_DIR / "values-dev.yaml", "prod": CHART_DIR / "values-prod.yaml"}
COMPONENTS = ("writer", "sinks", "viewer", "integrity")
COMPONENT_LABEL = "app.kubernetes.io/component"
KEDA_KIND = "keda.sh/v1alpha1/ScaledObject"
PRIVATE_V4 = [ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    return AuditlogSettings().cache_dir.resolve()


@pytest.fixture(scope="module")
def helm(cache_dir: Path) -> Path:
    reason = go_tools.unavailable(chart_tools.HELM, cache_dir)
    if reason is not None:
        pytest.skip(f"helm cannot be built here: {reason}")
    return chart_tools.ensure_helm(cache_dir)  # built before the first test (conftest.py)


@pytest.fixture(scope="module")
def validator(cache_dir: Path) -> Path:
    reason = go_tools.unavailable(chart_tools.validator_tool(), cache_dir)
    if reason is not None:
        pytest.skip(f"the validator cannot be built here: {reason}")
    return chart_tools.ensure_validator(cache_dir)


@pytest.fixture(scope="module", params=sorted(OVERLAYS))
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def rendered(helm: Path, overlay: str) -> str:
    return chart_tools.render(helm, [OVERLAYS[overlay]])


@pytest.fixture(scope="module")
def objects(rendered: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def _of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


def _component(obj: Manifest) -> str:
    component: str = obj["metadata"]["labels"][COMPONENT_LABEL]
    return component


def _pod_specs(objects: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]


def _containers(pod: Manifest) -> list[Manifest]:
    containers: list[Manifest] = [*pod.get("initContainers", []), *pod["containers"]]
    return containers


def _matches(selector: Manifest, labels: dict[str, str]) -> bool:
    wanted: dict[str, str] = selector.get("matchLabels", {})
    return all(labels.get(key) == value for key, value in wanted.items())


# --- helm lint, helm template, the Kubernetes API models -------------------------------


def test_helm_lint_passes(helm: Path, overlay: str) -> None:
    output = chart_tools.lint(helm, [OVERLAYS[overlay]])
    assert "0 chart(s) failed" in output


def test_every_object_decodes_strictly_as_its_kubernetes_type(
    validator: Path, rendered: str, tmp_path: Path
) -> None:
    manifests = tmp_path / "rendered.yaml"
    manifests.write_text(rendered)
    output = chart_tools.validate(validator, manifests)
    assert re.search(r"^\d+ objects valid$", output, re.MULTILINE), output


def test_the_validator_names_the_object_and_field_it_refuses(
    validator: Path, helm: Path, tmp_path: Path
) -> None:
    rendered = chart_tools.render(helm, [OVERLAYS["dev"]])
    broken = rendered.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystm: true", 1)
    broken = broken.replace("maxUnavailable: 1", "maxUnavailable: 1\n  minAvailble: 1", 1)
    broken = broken.replace("memory: 256Mi", "memory: 256MB", 1)
    broken += "\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: cased\nspec:\n  Type: x\n"
    manifests = tmp_path / "broken.yaml"
    manifests.write_text(broken)
    with pytest.raises(ChartError) as refused:
        chart_tools.validate(validator, manifests)
    said = str(refused.value)
    assert re.search(
        r'Deployment/\S+ \(auditlog/templates/\w+\.yaml\): unknown field "spec\.'
        r"template\.spec\.\w*[cC]ontainers\[0\]\.securityContext\."
        r'readOnlyRootFilesystm"',
        said,
    ), said
    assert re.search(r'PodDisruptionBudget/\S+ .*unknown field "spec\.minAvailble"', said), said
    assert re.search(r"Deployment/\S+ .*resources\.(limits|requests)\.memory: quantities", said)
    assert re.search(r'Service/cased .*unknown field "spec\.Type"', said), said
    assert "objects invalid" in said


def test_base_values_alone_ask_for_the_signing_keys_secret(helm: Path) -> None:
    with pytest.raises(ChartError, match=r"integrity\.signingKeys\.existingSecret"):
        chart_tools.render(helm)


@pytest.mark.parametrize(
    ("assignment", "refusal"),
    [
        ("clickhouse.url=http://user:pw@clickhouse:8123", r"no credentials in values"),
        ("image.tag=latest", r"not latest"),
        ("writer.autoscaling.enabled=true", None),
        ("writer.autoscaling.maxReplicas=13", r"exceeds the partitions"),
        ("sinks.secretEnv.AUDITLOG_SECRETS_KEY.name=", r"existing Secret's name and key"),
    ],
)
def test_values_that_would_deploy_something_wrong_are_refused(
    helm: Path, assignment: str, refusal: str | None
) -> None:
    sets = [assignment]
    if assignment.startswith("writer.autoscaling.maxReplicas"):
        sets.insert(0, "writer.autoscaling.enabled=true")
    if refusal is None:
        chart_tools.render(helm, [OVERLAYS["dev"]], sets=sets)
        return
    with pytest.raises(ChartError, match=refusal):
        chart_tools.render(helm, [OVERLAYS["dev"]], sets=sets)


def test_keda_replaces_the_hpas_when_enabled(helm: Path, validator: Path, tmp_path: Path) -> None:
    rendered = chart_tools.render(helm, [OVERLAYS["prod"]], sets=["keda.enabled=true"])
    objects = [doc for doc in yaml.safe_load_all(rendered) if doc]
    assert _of_kind(objects, "HorizontalPodAutoscaler") == []
    scaled = _of_kind(objects, "ScaledObject")
    assert {_component(s) for s in scaled} == {"writer", "sinks"}
    deployments = {d["metadata"]["name"] for d in _of_kind(objects, "Deployment")}
    for s in scaled:
        assert s["apiVersion"] == "keda.sh/v1alpha1"
        assert s["spec"]["scaleTargetRef"]["name"] in deployments
        (trigger,) = s["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        assert set(trigger["metadata"]) >= {"bootstrapServers", "consumerGroup", "topic"}
        assert int(trigger["metadata"]["lagThreshold"]) > 0
    manifests = tmp_path / "keda.yaml"
    manifests.write_text(rendered)
    chart_tools.validate(validator, manifests, allow_kinds=[KEDA_KIND])
    with pytest.raises(ChartError, match="unknown kind"):
        chart_tools.validate(validator, manifests)


# --- policies on the rendered objects ----------------------------------------------------


def test_one_deployment_per_process_running_its_command(objects: list[Manifest]) -> None:
    deployments = {_component(d): d for d in _of_kind(objects, "Deployment")}
    assert set(deployments) == set(COMPONENTS)
    parser = build_parser()
    expected = {"writer": "consume", "sinks": "sink", "viewer": "serve", "integrity": "integrity"}
    for component, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"][0] == expected[component]
        parser.parse_args(container["args"])


def test_probes_ask_health_for_readiness(objects: list[Manifest]) -> None:
    for deployment in _of_kind(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        port_names = {p["name"] for p in container["ports"]}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["port"] in port_names, probe
        assert container["readinessProbe"]["httpGet"]["path"] == "/health"
        assert container["livenessProbe"]["httpGet"]["path"] in ("/metrics", "/health")


def test_every_container_has_requests_and_limits(objects: list[Manifest]) -> None:
    for name, pod in _pod_specs(objects):
        for container in _containers(pod):
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[bound]), f"{name}/{container['name']}"


def test_pods_run_as_non_root_with_a_read_only_root_and_no_capabilities(
    objects: list[Manifest],
) -> None:
    for name, pod in _pod_specs(objects):
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] >= 1000, name
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        for container in _containers(pod):
            context = container["securityContext"]
            where = f"{name}/{container['name']}"
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where
            assert context.get("privileged") is not True, where


def test_service_accounts_exist_and_mount_no_token(objects: list[Manifest]) -> None:
    accounts = {a["metadata"]["name"]: a for a in _of_kind(objects, "ServiceAccount")}
    for name, pod in _pod_specs(objects):
        account = accounts[pod["serviceAccountName"]]
        assert account["automountServiceAccountToken"] is False, name


def test_a_disruption_budget_per_deployment(objects: list[Manifest]) -> None:
    budgets = _of_kind(objects, "PodDisruptionBudget")
    for deployment in _of_kind(objects, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if _matches(b["spec"]["selector"], labels)]
        assert len(covering) == 1, deployment["metadata"]["name"]
        assert "maxUnavailable" in covering[0]["spec"] or "minAvailable" in covering[0]["spec"]


def _egress_peers(policy: Manifest) -> list[Manifest]:
    return [peer for rule in policy["spec"]["egress"] for peer in rule.get("to", [])]


def test_a_network_policy_per_process_that_keeps_the_internet_to_the_sinks(
    objects: list[Manifest],
) -> None:
    policies = _of_kind(objects, "NetworkPolicy")
    for deployment in _of_kind(objects, "Deployment"):
        component = _component(deployment)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        (policy,) = [p for p in policies if _matches(p["spec"]["podSelector"], labels)]
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        for rule in policy["spec"]["egress"]:
            assert rule.get("to"), f"{component}: an egress rule open to every destination"
        blocks = [p["ipBlock"] for p in _egress_peers(policy) if "ipBlock" in p]
        wide = [b for b in blocks if ipaddress.ip_network(b["cidr"]).prefixlen == 0]
        if component == "sinks":
            assert {b["cidr"] for b in wide} == {"0.0.0.0/0", "::/0"}
            continue
        assert wide == [], f"{component} may reach the internet"
        for block in blocks:  # extraEgress: a named endpoint, never a private range
            network = ipaddress.ip_network(block["cidr"])
            assert not any(network.overlaps(private) for private in PRIVATE_V4), component
        ports = {
            port["port"] for rule in policy["spec"]["egress"] for port in rule.get("ports", [])
        }
        assert 53 in ports


def test_sinks_reach_no_private_range_in_production(helm: Path) -> None:
    objects = [d for d in yaml.safe_load_all(chart_tools.render(helm, [OVERLAYS["prod"]])) if d]
    (policy,) = [p for p in _of_kind(objects, "NetworkPolicy") if _component(p) == "sinks"]
    (v4,) = [
        p["ipBlock"]
        for p in _egress_peers(policy)
        if p.get("ipBlock", {}).get("cidr") == "0.0.0.0/0"
    ]
    excepted = [ipaddress.IPv4Network(cidr) for cidr in v4["except"]]
    for private in [*PRIVATE_V4, ipaddress.IPv4Network("169.254.0.0/16")]:
        assert any(private.subnet_of(e) for e in excepted), private


def test_images_are_pinned_and_the_same_everywhere(objects: list[Manifest]) -> None:
    images = {c["image"] for _, pod in _pod_specs(objects) for c in _containers(pod)}
    assert len(images) == 1
    (image,) = images
    repository_and_tag = image.split("@", 1)[0]
    assert ":" in repository_and_tag.rsplit("/", 1)[-1], image
    assert not repository_and_tag.endswith(":latest"), image


def test_secrets_only_by_reference(objects: list[Manifest]) -> None:
    assert _of_kind(objects, "Secret") == []
    names: set[str] = set()
    for name, pod in _pod_specs(objects):
        for container in _containers(pod):
            for variable in container.get("env", []):
                key = variable["name"]
                names.add(key)
                secret = key in SECRET_VARIABLES or key.startswith(DEFAULT_PREFIX)
                if secret:
                    assert "value" not in variable, f"{name}: {key} inline"
                    assert variable["valueFrom"]["secretKeyRef"]["name"], f"{name}: {key}"
                if key == "AUDITLOG_CLICKHOUSE_URL" and "value" in variable:
                    assert "@" not in variable["value"], f"{name}: ClickHouse credentials inline"
    settings = {n for n in names if n.startswith("AUDITLOG_") and not n.startswith(DEFAULT_PREFIX)}
    assert unknown_variables(settings) == []


def test_no_container_sets_a_variable_twice(objects: list[Manifest]) -> None:
    for name, pod in _pod_specs(objects):
        for container in _containers(pod):
            names = [variable["name"] for variable in container.get("env", [])]
            twice = sorted({n for n in names if names.count(n) > 1})
            assert twice == [], f"{name}/{container['name']}: {twice}"


def test_the_migrate_job_runs_before_install_and_upgrade(objects: list[Manifest]) -> None:
    hooks = [o for o in objects if "helm.sh/hook" in o["metadata"].get("annotations", {})]
    (job,) = _of_kind(hooks, "Job")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    pod = job["spec"]["template"]["spec"]
    assert [c["args"] for c in _containers(pod)] == [["topics", "ensure"], ["migrate"]]
    weight = int(annotations["helm.sh/hook-weight"])
    needed = {("ServiceAccount", pod["serviceAccountName"])}
    needed.add(("NetworkPolicy", job["metadata"]["name"]))
    for kind, name in needed:
        (hook,) = [h for h in hooks if h["kind"] == kind and h["metadata"]["name"] == name]
        assert int(hook["metadata"]["annotations"]["helm.sh/hook-weight"]) < weight


def test_services_for_the_viewer_and_for_metrics(objects: list[Manifest]) -> None:
    services = {s["metadata"]["name"]: s for s in _of_kind(objects, "Service")}
    for deployment in _of_kind(objects, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        (service,) = [
            s
            for s in services.values()
            if all(labels.get(k) == v for k, v in s["spec"]["selector"].items())
        ]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        port_names = {p["name"] for p in container["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_autoscalers_scale_on_a_lag_metric_the_code_exports(
    objects: list[Manifest], overlay: str
) -> None:
    autoscalers = _of_kind(objects, "HorizontalPodAutoscaler")
    if overlay == "prod":
        assert {_component(a) for a in autoscalers} == {"writer", "sinks"}
    sources = "".join(
        path.read_text()
        for folder in ("consumers", "sinks", "integrity")
        for path in (ROOT / folder).glob("metrics.py")
    )
    deployments = {d["metadata"]["name"]: d for d in _of_kind(objects, "Deployment")}
    for autoscaler in autoscalers:
        spec = autoscaler["spec"]
        assert autoscaler["apiVersion"] == "autoscaling/v2"
        assert "replicas" not in deployments[spec["scaleTargetRef"]["name"]]["spec"]
        (metric,) = spec["metrics"]
        assert metric["type"] == "External"
        name = metric["external"]["metric"]["name"]
        assert f'"{name}"' in sources, f"{name}: no such metric in the code"
        assert metric["external"]["target"]["type"] == "AverageValue"
