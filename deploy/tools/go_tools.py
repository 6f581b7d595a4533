"""Go tools built from the Go module proxy at pinned versions and cached.

A :class:`GoTool` names a binary, the module and package it comes from, the pinned version
and the Go release that version needs. :func:`ensure` returns the binary, building it first
when the cache lacks it::

    GOBIN=<staging> GOTOOLCHAIN=local GOFLAGS=-mod=mod go install <package>@<version>

into ``<cache_dir>/tools/<name>-<version>/<name>`` (a tool may keep an older directory of its
own: :attr:`GoTool.cache_subdir`). The Go toolchain on PATH builds it (``GOTOOLCHAIN=local``:
no toolchain download); its module and build caches (``go env GOMODCACHE GOCACHE``) are the
user's own, so a rebuild after deleting ``.cache/`` mostly links. The binary is built in a
staging directory and renamed into place, so an interrupted build is never taken for a
finished one, and a file lock makes concurrent callers (two test runs, ``stack up`` beside a
test run) wait for one build instead of starting a second. A build that outlives
:attr:`GoTool.build_timeout_s` is killed with every compiler it started.

Every failure is one :class:`GoToolError` line saying what to install or where to look (a
failed build adds the last lines of go's output below it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.stack.errors import StackError

_VERSION_TIMEOUT_S = 30.0
_GO_VERSION = re.compile(r"\bgo(\d+)\.(\d+)")
_PARTIAL_PREFIX = "bin.partial."
_OUTPUT_LINES = 20


class GoToolError(StackError):
    """A Go tool could not be built: Go is missing or too old, or ``go install`` failed."""


@dataclass(frozen=True)
class GoTool:
    """One tool: ``go install <package>@<version>`` leaves ``<name>`` in GOBIN.

    ``module`` is the module that ``version`` pins (``package`` is that module or a package
    inside it); ``go_needed`` the ``go`` line of that version's go.mod (older toolchains
    refuse it); ``purpose`` says in messages what the tool is for ("the local S3 server
    (MinIO)"); ``title`` names it in progress lines.
    """

    name: str
    module: str
    package: str
    version: str
    go_needed: tuple[int, int]
    purpose: str
    title: str = ""
    build_timeout_s: float = 1800.0
    cache_subdir: str | None = None

    def __post_init__(self) -> None:
        if self.package != self.module and not self.package.startswith(self.module + "/"):
            raise ValueError(f"package {self.package} is not in module {self.module}")

    @property
    def label(self) -> str:
        """The name progress lines and messages use."""
        return self.title or self.name

    def directory(self, cache_dir: Path) -> Path:
        """The tool's directory in the cache: the binary, its build lock, staging dirs."""
        subdir = self.cache_subdir or f"tools/{self.name}-{self.version}"
        return cache_dir / subdir

    def binary_path(self, cache_dir: Path) -> Path:
        """Where the built binary lives."""
        return self.directory(cache_dir) / self.name

    def install_hint(self) -> str:
        """What to do when Go is missing or too old."""
        major, minor = self.go_needed
        return (
            f"install Go {major}.{minor} or newer (https://go.dev/doc/install; "
            "Debian 13: apt-get install golang-go) and put its bin directory on PATH"
        )


def is_built(tool: GoTool, cache_dir: Path) -> bool:
    """True if the pinned version's binary is in the cache (then no Go is needed)."""
    binary = tool.binary_path(cache_dir)
    return binary.is_file() and os.access(binary, os.X_OK)


def require_go(tool: GoTool, environ: Mapping[str, str]) -> str:
    """The path of a ``go`` new enough to build ``tool``, found on ``environ``'s PATH;
    raises :class:`GoToolError` (one line: what to install) when there is none."""
    go = shutil.which("go", path=environ.get("PATH", os.defpath))
    if go is None:
        raise GoToolError(
            f"go not found on PATH: {tool.purpose} is built from source on first use; "
            f"{tool.install_hint()}"
        )
    try:
        answer = subprocess.run(
            [go, "env", "GOVERSION"],
            capture_output=True,
            text=True,
            timeout=_VERSION_TIMEOUT_S,
            env={**environ, "GOTOOLCHAIN": "local"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GoToolError(f"{go} env GOVERSION failed ({exc}); {tool.install_hint()}") from exc
    found = _GO_VERSION.search(answer.stdout)
    if answer.returncode != 0 or found is None:
        said = (answer.stdout + answer.stderr).strip().splitlines()
        raise GoToolError(
            f"{go} does not say its version ({said[-1] if said else 'no output'}); "
            f"{tool.install_hint()}"
        )
    version = (int(found.group(1)), int(found.group(2)))
    if version < tool.go_needed and "devel" not in answer.stdout:
        raise GoToolError(
            f"{go} is Go {version[0]}.{version[1]}, too old to build {tool.purpose} "
            f"({tool.label} {tool.version} needs {tool.go_needed[0]}.{tool.go_needed[1]}); "
            f"{tool.install_hint()}"
        )
    return go


def unavailable(
    tool: GoTool, cache_dir: Path, environ: Mapping[str, str] | None = None
) -> str | None:
    """None when ``tool`` is built or can be (a new enough ``go`` on PATH), otherwise the
    one line saying why not: for tests that skip when a developer has no Go."""
    if is_built(tool, cache_dir):
        return None
    try:
        require_go(tool, os.environ if environ is None else environ)
    except GoToolError as exc:
        return str(exc)
    return None


@contextlib.contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure(
    tool: GoTool,
    cache_dir: Path,
    *,
    environ: Mapping[str, str] | None = None,
    on_progress: Callable[[str], None] = lambda _msg: None,
) -> Path:
    """``tool``'s binary, built first if the cache does not hold it (see the module
    docstring). ``environ``: the environment ``go`` runs in (default: this process's).
    Blocks for the build or while another process builds it; raises :class:`GoToolError`
    when Go is missing or too old, or the build fails or times out."""
    binary = tool.binary_path(cache_dir)
    if is_built(tool, cache_dir):
        return binary
    env = dict(os.environ if environ is None else environ)
    go = require_go(tool, env)
    with _build_lock(binary.parent):
        if is_built(tool, cache_dir):  # built by another process while this one waited
            return binary
        on_progress(
            f"building {tool.label} {tool.version} with {go} into {binary.parent} (first use only)"
        )
        for stale in binary.parent.glob(f"{_PARTIAL_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)  # a build killed half way (we hold the lock)
        staging = Path(tempfile.mkdtemp(prefix=_PARTIAL_PREFIX, dir=binary.parent))
        try:
            _go_install(tool, go, staging, env)
            os.replace(staging / tool.name, binary)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return binary


def _go_install(tool: GoTool, go: str, out_dir: Path, environ: Mapping[str, str]) -> None:
    env = {
        **environ,
        "GOBIN": str(out_dir),
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-mod=mod",
    }
    target = f"{tool.package}@{tool.version}"
    # Its own process group: a timeout stops the compilers go started, not only go.
    build = subprocess.Popen(
        [go, "install", target],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=out_dir,
        start_new_session=True,
    )
    try:
        output, _ = build.communicate(timeout=tool.build_timeout_s)
    except subprocess.TimeoutExpired as exc:
        os.killpg(build.pid, signal.SIGKILL)
        build.communicate()
        raise GoToolError(
            f"go install {target} did not finish within {tool.build_timeout_s:g} s; "
            "check access to the Go module proxy (go env GOPROXY)"
        ) from exc
    except BaseException:  # Ctrl-C: take the whole build down with us
        os.killpg(build.pid, signal.SIGKILL)
        build.communicate()
        raise
    if build.returncode != 0:
        raise GoToolError(
            f"go install {target} failed (exit {build.returncode}):\n"
            + "\n".join(output.strip().splitlines()[-_OUTPUT_LINES:])
            + "\n(go's output above; check access to the Go module proxy: go env GOPROXY)"
        )
    if not (out_dir / tool.name).is_file():
        raise GoToolError(
            f"go install {target} succeeded but left no {tool.name} binary in {out_dir}"
        )
