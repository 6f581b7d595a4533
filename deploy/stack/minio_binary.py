"""MinIO's server binary, built from the Go module proxy at a pinned version and cached.

The local stack's S3 server is MinIO (GNU AGPLv3), run unmodified as a separate development
process: never vendored, linked or shipped with the product. :func:`ensure_minio` builds it
on first use with :func:`deploy.tools.go_tools.ensure`::

    GOBIN=<staging> GOTOOLCHAIN=local GOFLAGS=-mod=mod go install github.com/minio/minio@<version>

into ``<cache_dir>/minio-<version>/minio`` (about 150 MB; the directory it had before the
other tools moved under ``<cache_dir>/tools/``, kept so that existing caches are not built
again). Staging directory, rename, build lock and the one-line :class:`StackError` on
failure are those of :mod:`deploy.tools.go_tools`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from deploy.tools import go_tools

MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
# The `go` line of that version's go.mod: older toolchains refuse to build it.
GO_NEEDED = (1, 24)
BUILD_TIMEOUT_S = 1800.0

MINIO = go_tools.GoTool(
    name="minio",
    module=MINIO_MODULE,
    package=MINIO_MODULE,
    version=MINIO_VERSION,
    go_needed=GO_NEEDED,
    purpose="the local S3 server (MinIO)",
    title="MinIO",
    build_timeout_s=BUILD_TIMEOUT_S,
    cache_subdir=f"minio-{MINIO_VERSION}",
)


def binary_path(cache_dir: Path) -> Path:
    """Where the built server lives: ``<cache_dir>/minio-<version>/minio``."""
    return MINIO.binary_path(cache_dir)


def is_built(cache_dir: Path) -> bool:
    """True if the pinned version's binary is in the cache (then no Go is needed)."""
    return go_tools.is_built(MINIO, cache_dir)


def require_go(environ: Mapping[str, str]) -> str:
    """The path of a ``go`` new enough to build MinIO (see :func:`go_tools.require_go`)."""
    return go_tools.require_go(MINIO, environ)


def ensure_minio(
    cache_dir: Path,
    *,
    environ: Mapping[str, str] | None = None,
    on_progress: Callable[[str], None] = lambda _msg: None,
) -> Path:
    """The MinIO server binary, built first if the cache does not hold it. Blocks for the
    build (minutes) or while another process builds; raises :class:`StackError` when Go is
    missing or too old, or the build fails (quoting the end of its output)."""
    return go_tools.ensure(MINIO, cache_dir, environ=environ, on_progress=on_progress)
