"""The Dockerfile, read statically (no Docker engine on the development machines): its
stages, the pinned base image, the non-root final stage without build tools, what it copies
and from where; and, where a Docker engine answers, a real build of it."""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PINNED_IMAGE = re.compile(r"^[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$")
# Files under the packages' folders that the installed code never reads: documentation, the
# cluster DDL, and the deployment files (chart, dashboards, alert rules, compose examples).
NOT_SHIPPED = (
    "*.md",
    "deploy/clickhouse/*",
    "deploy/helm/*",
    "deploy/prometheus/*",
    "deploy/grafana/*",
    "deploy/.env.example",
    "deploy/tools/*",
)
BUILD_TOOLS = ("build-essential", "gcc", "g++", "clang", "make", "cmake", "libc6-dev", "-dev")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [rest for word, rest in self.instructions if word == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    def resolve(self, text: str) -> str:
        return re.sub(
            r"\$\{?(\w+)\}?", lambda m: self.global_args.get(m.group(1), m.group(0)), text
        )


def parse(text: str) -> Dockerfile:
    """Instructions with their continuation lines joined; comments and blank lines dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation line"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        elif not stages:
            assert word == "ARG", f"only ARG may come before the first FROM, not {word}"
            key, _, default = rest.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append((word, rest))
    return Dockerfile(global_args, stages)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse(DOCKERFILE.read_text())


def _copies(stage: Stage) -> list[tuple[str | None, list[str]]]:
    """(--from stage or None, sources) of each COPY/ADD of a stage."""
    found: list[tuple[str | None, list[str]]] = []
    for word, rest in stage.instructions:
        if word not in ("COPY", "ADD"):
            continue
        words = shlex.split(rest)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        source_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        found.append((source_stage, paths[:-1]))
    return found


def test_builder_and_runtime_stages(dockerfile: Dockerfile) -> None:
    names = [stage.name for stage in dockerfile.stages]
    assert names == ["builder", "runtime"]


def test_every_stage_starts_from_a_base_pinned_by_tag_and_digest(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages:
        base = dockerfile.resolve(stage.base)
        assert PINNED_IMAGE.match(base), f"{stage.name}: FROM {base} is not tag@sha256:digest"
        assert ":latest@" not in base
        assert base.startswith("python:3.11-slim-bookworm@"), base


def test_final_stage_runs_as_a_fixed_non_root_user(dockerfile: Dockerfile) -> None:
    users = dockerfile.stages[-1].args("USER")
    assert users, "the final stage sets no USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit(), f"USER {users[-1]}: a fixed numeric UID"
    assert int(user) >= 1000
    assert group.isdigit()
    assert int(group) != 0
    assert f"--uid {user}" in " ".join(dockerfile.stages[-1].args("RUN"))


def test_final_stage_installs_no_build_tools(dockerfile: Dockerfile) -> None:
    for run in dockerfile.stages[-1].args("RUN"):
        if "apt-get install" not in run and "pip" not in run:
            continue
        words = run.split()
        for tool in BUILD_TOOLS:
            found = [w for w in words if w == tool or (tool == "-dev" and w.endswith(tool))]
            assert not found, f"the final stage installs {found}: {run}"


def test_final_stage_copies_only_from_the_builder(dockerfile: Dockerfile) -> None:
    copies = _copies(dockerfile.stages[-1])
    assert copies, "the final stage copies nothing from the builder"
    for source_stage, sources in copies:
        assert source_stage == "builder", f"COPY {sources} does not come from the builder"


def test_bytecode_entrypoint_and_healthcheck(dockerfile: Dockerfile) -> None:
    final = dockerfile.stages[-1]
    env = " ".join(final.args("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert final.args("ENTRYPOINT") == ['["auditlog"]']
    healthcheck = final.args("HEALTHCHECK")
    assert len(healthcheck) == 1
    assert "/health" in healthcheck[0]


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        core = pattern.lstrip("!").rstrip("/")
        variants = [core, f"{core}/*"] if not core.startswith("**") else [core, core[3:]]
        if any(fnmatch.fnmatch(path, v) or path.startswith(core + "/") for v in variants):
            ignored = not negated
    return ignored


def _dockerignore() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_every_copied_path_exists_and_reaches_the_build_context(dockerfile: Dockerfile) -> None:
    patterns = _dockerignore()
    for source_stage, sources in _copies(dockerfile.stages[0]):
        assert source_stage is None
        for source in sources:
            path = source.rstrip("/")
            assert (ROOT / path).exists(), f"COPY {source}: not in the repository"
            assert not _ignored(path, patterns), f"COPY {source}: excluded by .dockerignore"


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_builder_copies_every_package_the_wheel_is_made_of(dockerfile: Dockerfile) -> None:
    tool = _pyproject()["tool"]
    assert isinstance(tool, dict)
    packages = {pattern.rstrip("*") for pattern in _includes()}
    copied = {
        source.rstrip("/")
        for _, sources in _copies(dockerfile.stages[0])
        for source in sources
        if (ROOT / source.rstrip("/") / "__init__.py").exists()
    }
    assert copied == packages


def test_every_data_file_of_a_package_is_in_the_wheel() -> None:
    """A file the code reads at run time (migrations, schemas, the page) must be declared
    package data, or the image has the code without it."""
    tool = _pyproject()["tool"]
    assert isinstance(tool, dict)
    package_data: dict[str, list[str]] = tool["setuptools"]["package-data"]
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    packages = {pattern.rstrip("*") for pattern in _includes()}
    missing = [
        name
        for name in listed
        if name.split("/", 1)[0] in packages
        and not name.endswith(".py")
        and not any(fnmatch.fnmatch(name, pattern) for pattern in NOT_SHIPPED)
        and not any(
            fnmatch.fnmatch(name.split("/", 1)[1], glob)
            for glob in package_data.get(name.split("/", 1)[0], [])
        )
    ]
    assert not missing, f"not package data, so not in the image: {missing}"
    assert "migrations/*.sql" in package_data["consumers"]


def _includes() -> list[str]:
    tool = _pyproject()["tool"]
    assert isinstance(tool, dict)
    includes: list[str] = tool["setuptools"]["packages"]["find"]["include"]
    return includes


def _docker_engine() -> str | None:
    """Why no image can be built here, or None when a Docker engine answers."""
    docker = shutil.which("docker")
    if docker is None:
        return "the docker command is not installed"
    probe = subprocess.run(
        [docker, "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        said = (probe.stderr or probe.stdout).strip().splitlines()
        return f"no Docker engine answers (docker info: {said[-1] if said else 'no output'})"
    return None


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_image_builds_and_runs_as_non_root() -> None:
    reason = _docker_engine()
    if reason is not None:
        pytest.skip(f"image not built: {reason}; the static checks above still ran")
    tag = "auditlog:test-build"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=1700)
    user = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    assert user == "10001"
    help_text = subprocess.run(
        ["docker", "run", "--rm", tag, "migrate", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "migrations" in help_text
    migrations = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "python",
            tag,
            "-c",
            "from consumers.migrations.runner import MIGRATIONS_DIR as d; "
            "print(len(list(d.glob('*.sql'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    assert int(migrations) == len(list((ROOT / "consumers/migrations").glob("*.sql")))
    compilers = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "sh", tag, "-c", "command -v gcc cc make"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert compilers.stdout.strip() == "", f"build tools in the image: {compilers.stdout}"
