"""MinIO's server binary, built from the Go module proxy at a pinned version and cached.

The local stack's S3 server is MinIO (GNU AGPLv3), run unmodified as a separate development
process: never vendored, linked or shipped with the product. :func:`ensure_minio` builds it
on first use the way the Kafka jars are fetched::

    GOBIN=<staging> GOTOOLCHAIN=local GOFLAGS=-mod=mod go install github.com/minio/minio@<version>

into ``<cache_dir>/minio-<version>/minio`` (about 150 MB). The Go toolchain on PATH builds
it (``GOTOOLCHAIN=local``: no toolchain download); its module and build caches
(``go env GOMODCACHE GOCACHE``) are the user's own, so a second clone or a rebuild after
deleting ``.cache/`` mostly links (measured in the README). The binary is built in a staging
directory and renamed into place, so an interrupted build is never taken for a finished
one, and a file lock makes concurrent callers (two test runs, ``stack up`` beside a test
run) wait for one build instead of starting a second.

Every failure is one :class:`StackError` line saying what to install or where to look.
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
from pathlib import Path

from deploy.stack.errors import StackError

MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
# The `go` line of that version's go.mod: older toolchains refuse to build it.
GO_NEEDED = (1, 24)

BUILD_TIMEOUT_S = 1800.0
_VERSION_TIMEOUT_S = 30.0
_GO_VERSION = re.compile(r"\bgo(\d+)\.(\d+)")
_INSTALL_GO = (
    f"install Go {GO_NEEDED[0]}.{GO_NEEDED[1]} or newer (https://go.dev/doc/install; "
    "Debian 13: apt-get install golang-go) and put its bin directory on PATH"
)


def binary_path(cache_dir: Path) -> Path:
    """Where the built server lives: ``<cache_dir>/minio-<version>/minio``."""
    return cache_dir / f"minio-{MINIO_VERSION}" / "minio"


def is_built(cache_dir: Path) -> bool:
    """True if the pinned version's binary is in the cache (then no Go is needed)."""
    binary = binary_path(cache_dir)
    return binary.is_file() and os.access(binary, os.X_OK)


def require_go(environ: Mapping[str, str]) -> str:
    """The path of a ``go`` new enough to build MinIO, found on ``environ``'s PATH; raises
    :class:`StackError` (one line: what to install) when there is none."""
    go = shutil.which("go", path=environ.get("PATH", os.defpath))
    if go is None:
        raise StackError(
            "go not found on PATH: the local S3 server (MinIO) is built from source on first "
            f"use; {_INSTALL_GO}"
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
        raise StackError(f"{go} env GOVERSION failed ({exc}); {_INSTALL_GO}") from exc
    found = _GO_VERSION.search(answer.stdout)
    if answer.returncode != 0 or found is None:
        said = (answer.stdout + answer.stderr).strip().splitlines()
        raise StackError(
            f"{go} does not say its version ({said[-1] if said else 'no output'}); {_INSTALL_GO}"
        )
    version = (int(found.group(1)), int(found.group(2)))
    if version < GO_NEEDED and "devel" not in answer.stdout:
        raise StackError(
            f"{go} is Go {version[0]}.{version[1]}, too old to build the local S3 server "
            f"(MinIO {MINIO_VERSION} needs {GO_NEEDED[0]}.{GO_NEEDED[1]}); {_INSTALL_GO}"
        )
    return go


_PARTIAL_PREFIX = "bin.partial."


@contextlib.contextmanager
def _build_lock(version_dir: Path) -> Iterator[None]:
    version_dir.mkdir(parents=True, exist_ok=True)
    with (version_dir / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_minio(
    cache_dir: Path,
    *,
    environ: Mapping[str, str] | None = None,
    on_progress: Callable[[str], None] = lambda _msg: None,
) -> Path:
    """The MinIO server binary, built first if the cache does not hold it (see the module
    docstring). ``environ``: the environment ``go`` runs in (default: this process's).
    Blocks for the build (minutes) or while another process builds; raises
    :class:`StackError` when Go is missing or too old, or the build fails (quoting the end
    of its output)."""
    binary = binary_path(cache_dir)
    if is_built(cache_dir):
        return binary
    env = dict(os.environ if environ is None else environ)
    go = require_go(env)
    with _build_lock(binary.parent):
        if is_built(cache_dir):  # built by another process while this one waited
            return binary
        on_progress(
            f"building MinIO {MINIO_VERSION} with {go} into {binary.parent} "
            "(first use only; a few minutes)"
        )
        for stale in binary.parent.glob(f"{_PARTIAL_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)  # a build killed half way (we hold the lock)
        staging = Path(tempfile.mkdtemp(prefix=_PARTIAL_PREFIX, dir=binary.parent))
        try:
            _go_install(go, staging, env)
            os.replace(staging / "minio", binary)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return binary


def _go_install(go: str, out_dir: Path, environ: Mapping[str, str]) -> None:
    env = {
        **environ,
        "GOBIN": str(out_dir),
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-mod=mod",
    }
    argv = [go, "install", f"{MINIO_MODULE}@{MINIO_VERSION}"]
    # Its own process group: a timeout stops the compilers go started, not only go.
    build = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=out_dir,
        start_new_session=True,
    )
    try:
        output, _ = build.communicate(timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        os.killpg(build.pid, signal.SIGKILL)
        build.communicate()
        raise StackError(
            f"go install {MINIO_MODULE}@{MINIO_VERSION} did not finish within "
            f"{BUILD_TIMEOUT_S:.0f} s; check access to the Go module proxy (go env GOPROXY)"
        ) from exc
    except BaseException:  # Ctrl-C: take the whole build down with us
        os.killpg(build.pid, signal.SIGKILL)
        build.communicate()
        raise
    if build.returncode != 0:
        raise StackError(
            f"go install {MINIO_MODULE}@{MINIO_VERSION} failed (exit {build.returncode}):\n"
            + "\n".join(output.strip().splitlines()[-20:])
        )
    if not (out_dir / "minio").is_file():
        raise StackError(f"go install succeeded but left no minio binary in {out_dir}")
