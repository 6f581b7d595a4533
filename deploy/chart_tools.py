"""The tools that check the Helm chart (deploy/helm/auditlog/) offline: ``helm`` and the
Kubernetes API validator of deploy/helm/validate/, both built with Go and cached.

- ``helm`` is ``go install helm.sh/helm/v3/cmd/helm@v3.22.0`` through
  :mod:`deploy.tools.go_tools` (into ``<cache_dir>/tools/helm-v3.22.0/helm``).
- The validator is this repository's own small Go module: ``go build`` of
  deploy/helm/validate/ into ``<cache_dir>/tools/k8s-validate-<hash>/k8s-validate``, the hash
  taken over its go.mod, go.sum and sources, so an edit builds a new binary and an unchanged
  one is never rebuilt. Same staging directory, rename and file lock as go_tools.

Both need Go 1.26 (the ``go`` line of helm v3.22.0's and k8s.io/api v0.37.2's go.mod).
:func:`render` and :func:`lint` run helm against the chart with a pinned Kubernetes version,
so the result depends on nothing of the machine. Failures are :class:`GoToolError` lines
(a build) or :class:`ChartError` (helm or the validator said no, with their output).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from deploy.stack.errors import StackError
from deploy.tools import go_tools
from deploy.tools.go_tools import GoTool, GoToolError

DEPLOY_DIR = Path(__file__).resolve().parent
CHART_DIR = DEPLOY_DIR / "helm" / "auditlog"
VALIDATOR_DIR = DEPLOY_DIR / "helm" / "validate"
# The Kubernetes release of k8s.io/api v0.37.2, the models the validator checks against;
# helm renders for it (a `go install`ed helm would otherwise assume v1.20).
KUBE_VERSION = "1.37.2"
GO_NEEDED = (1, 26)
RUN_TIMEOUT_S = 120.0

HELM = GoTool(
    name="helm",
    module="helm.sh/helm/v3",
    package="helm.sh/helm/v3/cmd/helm",
    version="v3.22.0",
    go_needed=GO_NEEDED,
    purpose="helm, for the Helm chart's checks (helm lint, helm template)",
    title="Helm",
)


class ChartError(StackError):
    """helm or the validator refused the chart; the message holds what they said."""


def validator_source_hash() -> str:
    """12 hex digits over the validator's go.mod, go.sum and Go sources."""
    digest = hashlib.sha256()
    for path in sorted([*VALIDATOR_DIR.glob("go.*"), *VALIDATOR_DIR.glob("*.go")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def validator_tool() -> GoTool:
    """The validator as a :class:`GoTool` (its version: the source hash), for the cache
    path and the Go version check."""
    return GoTool(
        name="k8s-validate",
        module="auditlog.invalid/deploy/helm/validate",
        package="auditlog.invalid/deploy/helm/validate",
        version=f"src-{validator_source_hash()}",
        go_needed=GO_NEEDED,
        purpose="the Kubernetes API validator of the Helm chart (deploy/helm/validate)",
        title="the Kubernetes API validator",
    )


def ensure_helm(
    cache_dir: Path,
    *,
    environ: Mapping[str, str] | None = None,
    on_progress: Callable[[str], None] = lambda _msg: None,
) -> Path:
    """helm's binary, built first when the cache lacks it (minutes on a fresh machine)."""
    return go_tools.ensure(HELM, cache_dir, environ=environ, on_progress=on_progress)


def ensure_validator(
    cache_dir: Path,
    *,
    environ: Mapping[str, str] | None = None,
    on_progress: Callable[[str], None] = lambda _msg: None,
) -> Path:
    """The validator's binary, built from deploy/helm/validate first when the cache lacks
    this source's build. Blocks while another process builds it; raises
    :class:`GoToolError` when Go is missing or too old or the build fails."""
    tool = validator_tool()
    binary = tool.binary_path(cache_dir)
    if go_tools.is_built(tool, cache_dir):
        return binary
    env = dict(os.environ if environ is None else environ)
    go = go_tools.require_go(tool, env)
    with go_tools._build_lock(binary.parent):  # the lock go_tools' own builds take
        if go_tools.is_built(tool, cache_dir):
            return binary
        on_progress(f"building {tool.label} with {go} into {binary.parent} (first use only)")
        staging = Path(tempfile.mkdtemp(prefix="bin.partial.", dir=binary.parent))
        try:
            _go_build(go, staging / tool.name, env, tool.build_timeout_s)
            os.replace(staging / tool.name, binary)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return binary


def _go_build(go: str, output: Path, environ: Mapping[str, str], timeout_s: float) -> None:
    env = {**environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"}
    argv = [go, "build", "-trimpath", "-o", str(output), "."]
    try:
        build = subprocess.run(
            argv,
            cwd=VALIDATOR_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GoToolError(
            f"go build of {VALIDATOR_DIR} did not finish within {timeout_s:g} s; check access "
            "to the Go module proxy (go env GOPROXY)"
        ) from exc
    if build.returncode != 0:
        said = (build.stdout + build.stderr).strip().splitlines()[-20:]
        raise GoToolError(
            f"go build of {VALIDATOR_DIR} failed (exit {build.returncode}):\n" + "\n".join(said)
        )


def _run(argv: Sequence[str], what: str) -> str:
    done = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise ChartError(f"{what} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def _values_arguments(values_files: Sequence[Path], sets: Sequence[str]) -> list[str]:
    arguments: list[str] = []
    for path in values_files:
        arguments += ["--values", str(path)]
    for assignment in sets:
        arguments += ["--set", assignment]
    return arguments


def render(
    helm: Path,
    values_files: Sequence[Path] = (),
    *,
    sets: Sequence[str] = (),
    release: str = "auditlog",
    namespace: str = "auditlog",
) -> str:
    """``helm template`` of the chart with these values (applied over values.yaml, in
    order); raises :class:`ChartError` with helm's message when a template fails."""
    argv = [
        str(helm),
        "template",
        release,
        str(CHART_DIR),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        *_values_arguments(values_files, sets),
    ]
    return _run(argv, "helm template")


def lint(helm: Path, values_files: Sequence[Path] = ()) -> str:
    """``helm lint --strict`` of the chart with these values; its output."""
    argv = [
        str(helm),
        "lint",
        "--strict",
        str(CHART_DIR),
        "--kube-version",
        KUBE_VERSION,
        *_values_arguments(values_files, ()),
    ]
    return _run(argv, "helm lint")


def validate(validator: Path, manifests: Path, *, allow_kinds: Sequence[str] = ()) -> str:
    """The validator's verdict on a file of manifests: its output when every object is
    valid; :class:`ChartError` naming each invalid object and field otherwise."""
    argv = [str(validator)]
    for kind in allow_kinds:
        argv += ["--allow-kind", kind]
    return _run([*argv, str(manifests)], "the Kubernetes API validator")
