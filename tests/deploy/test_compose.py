"""deploy/docker-compose.yml, read statically: its services and what they start, the files it
mounts, the settings it passes, its ports, dependencies, health checks and secrets; and
``docker compose config`` where the compose plugin is installed."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditlog.cli import build_parser
from tests.deploy.deploy_settings import SECRET_VARIABLES, VARIABLE_NAME, unknown_variables

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
PRODUCT = ("init", "writer", "sinks", "viewer", "integrity")
LONG_RUNNING = ("kafka", "clickhouse", "minio", "writer", "sinks", "viewer", "integrity")
# Written by the ops-alerts work (alert rules, scrape configuration, dashboards): mounted
# here, checked when present.
OPS_ALERTS_FILES = {
    "prometheus/prometheus.yml",
    "prometheus/alerts.yml",
    "grafana/provisioning",
    "grafana/dashboards",
}
REFERENCE = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")
REQUIRED_REFERENCE = re.compile(r"\$\{\w+:\?[^}]*\}")
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|_KEY$|TOKEN", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, so names can be checked"
    return {str(key): str(value) for key, value in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def test_every_product_process_and_server_is_a_service(
    services: dict[str, dict[str, Any]],
) -> None:
    expected = {*LONG_RUNNING, "init", "prometheus", "grafana"}
    assert expected <= set(services)


def test_product_services_run_the_repository_image(services: dict[str, dict[str, Any]]) -> None:
    for name in PRODUCT:
        build = services[name]["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT, f"{name}: builds from {context}"
        assert (context / build["dockerfile"]).is_file()
        assert services[name]["image"] == services["writer"]["image"]


def test_product_commands_are_auditlog_commands(services: dict[str, dict[str, Any]]) -> None:
    parser = build_parser()
    expected = {
        "writer": "consume",
        "sinks": "sink",
        "viewer": "serve",
        "integrity": "integrity",
    }
    for name, command in expected.items():
        argv = _command(services[name])
        assert argv[0] == command, f"{name}: {argv}"
        parser.parse_args(argv)  # SystemExit on an unknown command or flag
    script = " ".join(_command(services["init"]))
    steps = re.findall(r"auditlog ([a-z][\w -]*?)(?=\s*(?:&&|\|\||;|$))", script)
    assert [step.split()[0] for step in steps] == ["topics", "migrate", "keys"]
    for step in steps:
        parser.parse_args(step.split())


def test_every_auditlog_variable_is_a_setting(services: dict[str, dict[str, Any]]) -> None:
    names = set(VARIABLE_NAME.findall(COMPOSE.read_text()))
    names |= set(VARIABLE_NAME.findall(ENV_EXAMPLE.read_text()))
    for service in services.values():
        names |= {key for key in _environment(service) if key.startswith("AUDITLOG_")}
    assert names, "no AUDITLOG_ variable found"
    assert unknown_variables(names) == []


def test_no_secret_is_written_in_the_file(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key, value in _environment(service).items():
            if key in SECRET_VARIABLES or SECRET_WORDS.search(key):
                assert REQUIRED_REFERENCE.fullmatch(value), (
                    f"{name}: {key} is not a required ${{VARIABLE:?...}} without a default"
                )
        url = _environment(service).get("AUDITLOG_CLICKHOUSE_URL")
        if url is not None:
            userinfo = url.split("://", 1)[1].rsplit("@", 1)[0]
            assert REFERENCE.sub("", userinfo) == ":", f"{name}: ClickHouse credentials inline"


def test_every_referenced_variable_is_in_the_env_example() -> None:
    example = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    }
    text = "\n".join(
        line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    required = {m.group(1) for m in REFERENCE.finditer(text) if "?" in m.group(0)}
    referenced = {m.group(1) for m in REFERENCE.finditer(text)}
    assert required <= example, f"missing from .env.example: {required - example}"
    assert referenced <= example, f"not documented in .env.example: {referenced - example}"
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/.env" in ignored


def test_every_mounted_file_exists_or_is_written_by_ops_alerts(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith("."):
                continue  # a named volume
            relative = str((DEPLOY / source).resolve().relative_to(DEPLOY))
            if relative in OPS_ALERTS_FILES:
                continue
            assert (DEPLOY / source).exists(), f"{name}: mounts {source}, not in deploy/"


def test_host_ports_are_unique_and_on_loopback(services: dict[str, dict[str, Any]]) -> None:
    seen: dict[str, str] = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            host, host_port, _container = str(port).split(":")
            assert host == "127.0.0.1", f"{name}: {port} listens beyond this machine"
            assert host_port not in seen, f"{name} and {seen.get(host_port)}: port {host_port}"
            seen[host_port] = name


def test_dependencies_exist_and_wait_for_the_init_service(
    services: dict[str, dict[str, Any]],
) -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        depends = service.get("depends_on", {})
        targets = depends if isinstance(depends, list) else list(depends)
        for target in targets:
            assert target in services, f"{name} depends on {target}: no such service"
            if isinstance(depends, dict):
                condition = depends[target]["condition"]
                assert condition in conditions
                if condition == "service_healthy":
                    assert "healthcheck" in services[target], f"{target} has no healthcheck"
                if condition == "service_completed_successfully":
                    assert services[target]["restart"] == "no"
    for name in ("writer", "sinks", "viewer", "integrity"):
        assert services[name]["depends_on"]["init"]["condition"] == (
            "service_completed_successfully"
        )


def test_long_running_services_restart_and_report_health(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in (*LONG_RUNNING, "prometheus", "grafana"):
        service = services[name]
        assert service["restart"] in ("unless-stopped", "always"), name
        check = service["healthcheck"]
        assert not check.get("disable"), name
        assert check["test"][0] == "CMD", name
    for name in ("writer", "sinks", "integrity"):
        assert "9464/health" in " ".join(services[name]["healthcheck"]["test"])
    assert "8080/health" in " ".join(services["viewer"]["healthcheck"]["test"])


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = str(service["image"])
        tag = image.rsplit(":", 1)[-1] if ":" in image else ""
        assert tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image}"


def test_prometheus_and_grafana_read_the_ops_alerts_paths(
    services: dict[str, dict[str, Any]],
) -> None:
    mounts = {
        str(v).split(":")[0]
        for name in ("prometheus", "grafana")
        for v in services[name]["volumes"]
    }
    for path in OPS_ALERTS_FILES:
        assert f"./{path}" in mounts


def _container_ports(services: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    return {
        name: {str(p).rsplit(":", 1)[-1] for p in service.get("ports", [])}
        for name, service in services.items()
    }


def test_prometheus_scrapes_the_compose_services(services: dict[str, dict[str, Any]]) -> None:
    config_path = DEPLOY / "prometheus" / "prometheus.yml"
    if not config_path.exists():
        pytest.skip("deploy/prometheus/prometheus.yml is written by the ops-alerts work")
    config = yaml.safe_load(config_path.read_text())
    ports = _container_ports(services)
    targets: list[tuple[str, str, str]] = []
    for job in config.get("scrape_configs", []):
        for static in job.get("static_configs", []):
            for target in static.get("targets", []):
                host, _, port = str(target).partition(":")
                targets.append((job["job_name"], host, port))
        for dns in job.get("dns_sd_configs", []):
            targets += [(job["job_name"], name, str(dns["port"])) for name in dns["names"]]
    scraped = {host for _, host, _ in targets}
    assert {"writer", "sinks", "viewer", "integrity"} <= scraped
    for job_name, host, port in targets:
        if host in ("localhost", "127.0.0.1"):
            continue
        assert host in services, f"{job_name}: {host} is no compose service"
        assert port in ports[host], f"{job_name}: {host}:{port} is not a port of {host}"
    for rule_file in config.get("rule_files", []):
        mounted = {str(v).split(":")[1] for v in services["prometheus"]["volumes"]}
        assert f"/etc/prometheus/{rule_file}" in mounted, rule_file


def test_grafana_finds_the_dashboards_and_prometheus(services: dict[str, dict[str, Any]]) -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    if not provisioning.exists():
        pytest.skip("deploy/grafana/ is written by the ops-alerts work")
    mounts = dict(str(v).split(":")[:2] for v in services["grafana"]["volumes"])
    for path in sorted(provisioning.glob("dashboards/*.y*ml")):
        for provider in yaml.safe_load(path.read_text()).get("providers", []):
            assert provider["options"]["path"] == mounts["./grafana/dashboards"], path.name
    ports = _container_ports(services)
    for path in sorted(provisioning.glob("datasources/*.y*ml")):
        for source in yaml.safe_load(path.read_text()).get("datasources", []):
            host, _, port = source["url"].split("://", 1)[1].partition(":")
            assert host in services, f"{path.name}: {source['url']}"
            assert port.rstrip("/") in ports[host], f"{path.name}: {source['url']}"


def _compose_plugin() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "the docker command is not installed"
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        said = (probe.stderr or probe.stdout).strip().splitlines()
        return f"docker compose is not installed ({said[0] if said else 'no output'})"
    return None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    reason = _compose_plugin()
    if reason is not None:
        pytest.skip(f"not run: {reason}; the static checks above still ran")
    env_file = tmp_path / "env"
    filled = [
        line + "compose-config-test-value-0123456789abcdef" if line.endswith("=") else line
        for line in ENV_EXAMPLE.read_text().splitlines()
    ]
    env_file.write_text("\n".join(filled) + "\n")
    subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "--env-file", str(env_file), "config", "-q"],
        check=True,
        timeout=60,
    )
