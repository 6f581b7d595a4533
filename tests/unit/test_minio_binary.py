"""Building the MinIO binary, with a fake ``go`` on PATH (:mod:`tests.unit.fake_go`) that
writes a small file where the real one would write the server: the command it is given, one
build for concurrent callers, an interrupted build never taken for a finished one, and one
line when Go is missing or too old. The generic builder's own cases are in
``test_go_tools.py``."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from deploy.stack import minio_binary
from deploy.stack.errors import StackError
from tests.unit.fake_go import fake_go_environ, installs


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return fake_go_environ(tmp_path)


def test_the_pinned_version_is_installed_into_the_cache(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    cache = tmp_path / "cache"
    said: list[str] = []

    binary = minio_binary.ensure_minio(cache, environ=environ, on_progress=said.append)

    assert binary == cache / f"minio-{minio_binary.MINIO_VERSION}" / "minio"
    assert os.access(binary, os.X_OK)
    [install] = installs(environ)
    assert install.startswith(
        f"install {minio_binary.MINIO_MODULE}@{minio_binary.MINIO_VERSION} GOBIN="
    )
    assert install.endswith(" GOTOOLCHAIN=local GOFLAGS=-mod=mod")
    assert f"GOBIN={binary.parent}/bin.partial." in install
    assert len(said) == 1
    assert "building MinIO" in said[0]
    assert [p.name for p in binary.parent.iterdir() if p.name != ".build.lock"] == ["minio"]


def test_a_built_binary_is_reused_without_go(tmp_path: Path, environ: dict[str, str]) -> None:
    cache = tmp_path / "cache"
    minio_binary.ensure_minio(cache, environ=environ)
    again = minio_binary.ensure_minio(cache, environ={"PATH": str(tmp_path / "nothing")})
    assert again == minio_binary.binary_path(cache)
    assert len(installs(environ)) == 1


def test_concurrent_callers_wait_for_one_build(tmp_path: Path, environ: dict[str, str]) -> None:
    cache = tmp_path / "cache"
    gate = tmp_path / "gate"
    environ["FAKE_GO_GATE"] = str(gate)
    results: list[Path] = []

    def build() -> None:
        results.append(minio_binary.ensure_minio(cache, environ=environ))

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    log = Path(environ["FAKE_GO_LOG"])
    deadline = time.monotonic() + 30
    while not log.exists():  # until the first build is under way (the others wait on the lock)
        assert time.monotonic() < deadline, "no build started"
        time.sleep(0.01)
    gate.touch()
    for thread in threads:
        thread.join(30)
    assert results == [minio_binary.binary_path(cache)] * 3
    assert len(installs(environ)) == 1


def test_a_failed_build_leaves_nothing_that_looks_built(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    cache = tmp_path / "cache"
    environ["FAKE_GO_FAIL"] = "1"
    with pytest.raises(StackError, match=r"(?s)failed \(exit 1\):\ngo: module lookup disabled"):
        minio_binary.ensure_minio(cache, environ=environ)
    assert not minio_binary.is_built(cache)
    leftovers = [p.name for p in minio_binary.binary_path(cache).parent.iterdir()]
    assert leftovers == [".build.lock"]


def test_no_go_on_path_is_one_line_saying_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(StackError) as missing:
        minio_binary.ensure_minio(tmp_path / "cache", environ={"PATH": str(tmp_path)})
    message = str(missing.value)
    assert "\n" not in message
    assert message.startswith("go not found on PATH: the local S3 server (MinIO) is built")
    assert "install Go 1.24 or newer" in message


def test_a_go_too_old_is_one_line_naming_both_versions(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    environ["FAKE_GO_VERSION"] = "go1.19.8"
    with pytest.raises(StackError) as old:
        minio_binary.ensure_minio(tmp_path / "cache", environ=environ)
    message = str(old.value)
    assert "\n" not in message
    assert "is Go 1.19, too old to build the local S3 server" in message
    assert "needs 1.24" in message
    assert installs(environ) == []


def test_a_build_killed_half_way_leaves_no_litter_after_the_next(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    """A SIGKILLed build leaves its staging directory (150 MB for the real server); the
    next build, holding the lock, removes it."""
    cache = tmp_path / "cache"
    stale = minio_binary.binary_path(cache).parent / "bin.partial.killed"
    stale.mkdir(parents=True)
    (stale / "minio").write_text("half a binary")
    binary = minio_binary.ensure_minio(cache, environ=environ)
    assert [p.name for p in binary.parent.iterdir() if p.name != ".build.lock"] == ["minio"]
