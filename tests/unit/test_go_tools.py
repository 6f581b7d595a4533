"""The cached Go tool builder (:mod:`deploy.tools.go_tools`) with a fake ``go`` on PATH
(:mod:`tests.unit.fake_go`): where a tool lands, the command and environment ``go install``
gets, one build for concurrent processes (threads: ``test_minio_binary.py``), a failed, empty or
timed-out build leaving nothing that looks built, and one line when Go is missing, too old
or says no version."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from deploy.stack.errors import StackError
from deploy.tools import go_tools
from tests.unit.fake_go import fake_go_environ, installs

REPO = Path(__file__).resolve().parents[2]

TOOL = go_tools.GoTool(
    name="checker",
    module="example.com/checks",
    package="example.com/checks/cmd/checker",
    version="v1.2.3",
    go_needed=(1, 24),
    purpose="the rule checker",
)


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return fake_go_environ(tmp_path)


def _wait_for_first_install(environ: dict[str, str]) -> None:
    log = Path(environ["FAKE_GO_LOG"])
    deadline = time.monotonic() + 30
    while not log.exists():  # the first build is under way once it logged
        assert time.monotonic() < deadline, "no build started"
        time.sleep(0.01)


def test_a_tool_is_installed_under_tools_name_version(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    cache = tmp_path / "cache"
    said: list[str] = []

    binary = go_tools.ensure(TOOL, cache, environ=environ, on_progress=said.append)

    assert binary == cache / "tools" / "checker-v1.2.3" / "checker"
    assert subprocess.run([binary], capture_output=True, text=True, check=True).stdout == (
        "checker\n"
    )
    [install] = installs(environ)
    assert install.startswith("install example.com/checks/cmd/checker@v1.2.3 GOBIN=")
    assert f"GOBIN={binary.parent}/bin.partial." in install
    assert install.endswith(" GOTOOLCHAIN=local GOFLAGS=-mod=mod")
    assert said == [
        f"building checker v1.2.3 with {tmp_path}/bin/go into {binary.parent} (first use only)"
    ]
    assert sorted(p.name for p in binary.parent.iterdir()) == [".build.lock", "checker"]


def test_a_built_tool_is_reused_without_go(tmp_path: Path, environ: dict[str, str]) -> None:
    cache = tmp_path / "cache"
    go_tools.ensure(TOOL, cache, environ=environ)
    no_go = {"PATH": str(tmp_path / "nothing")}

    assert go_tools.ensure(TOOL, cache, environ=no_go) == TOOL.binary_path(cache)
    assert go_tools.unavailable(TOOL, cache, no_go) is None
    assert len(installs(environ)) == 1


def test_another_version_is_another_directory(tmp_path: Path, environ: dict[str, str]) -> None:
    cache = tmp_path / "cache"
    older = dataclasses.replace(TOOL, version="v1.2.2")
    assert go_tools.ensure(older, cache, environ=environ) != go_tools.ensure(
        TOOL, cache, environ=environ
    )
    assert len(installs(environ)) == 2


def test_a_cache_subdir_of_its_own_is_kept(tmp_path: Path, environ: dict[str, str]) -> None:
    tool = dataclasses.replace(TOOL, cache_subdir="checker-v1.2.3")
    binary = go_tools.ensure(tool, tmp_path / "cache", environ=environ)
    assert binary == tmp_path / "cache" / "checker-v1.2.3" / "checker"


def test_a_package_outside_its_module_is_refused() -> None:
    with pytest.raises(ValueError, match=r"package example.com/other/cmd is not in module"):
        go_tools.GoTool(
            name="cmd",
            module="example.com/checks",
            package="example.com/other/cmd",
            version="v1.0.0",
            go_needed=(1, 24),
            purpose="nothing",
        )


# Another process building TOOL into argv[1] with the fake go's environment in os.environ.
_BUILDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from deploy.tools import go_tools
    from tests.unit.test_go_tools import TOOL
    print(go_tools.ensure(TOOL, Path(sys.argv[1])))
    """
)


def test_concurrent_processes_wait_for_one_build(tmp_path: Path, environ: dict[str, str]) -> None:
    """Two processes (two test runs, ``stack up`` beside a test run) share one build: the
    second waits on the file lock, then finds the binary the first renamed into place."""
    cache = tmp_path / "cache"
    environ["FAKE_GO_GATE"] = str(tmp_path / "gate")
    env = {**environ, "PYTHONPATH": str(REPO)}
    builders = [
        subprocess.Popen(
            [sys.executable, "-c", _BUILDER, str(cache)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    _wait_for_first_install(environ)
    (tmp_path / "gate").touch()
    outputs = [builder.communicate(timeout=60)[0] for builder in builders]

    assert [builder.returncode for builder in builders] == [0, 0]
    assert outputs == [f"{TOOL.binary_path(cache)}\n"] * 2
    assert len(installs(environ)) == 1


def test_a_failed_build_is_one_line_then_gos_output(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    cache = tmp_path / "cache"
    environ["FAKE_GO_FAIL"] = "1"
    with pytest.raises(go_tools.GoToolError) as failed:
        go_tools.ensure(TOOL, cache, environ=environ)
    first, *rest = str(failed.value).splitlines()
    assert first == "go install example.com/checks/cmd/checker@v1.2.3 failed (exit 1):"
    assert rest == [
        "go: module lookup disabled",
        "(go's output above; check access to the Go module proxy: go env GOPROXY)",
    ]
    assert isinstance(failed.value, StackError)
    assert not go_tools.is_built(TOOL, cache)
    assert [p.name for p in TOOL.directory(cache).iterdir()] == [".build.lock"]


def test_a_build_that_leaves_no_binary_is_an_error(tmp_path: Path, environ: dict[str, str]) -> None:
    environ["FAKE_GO_NOTHING"] = "1"
    with pytest.raises(go_tools.GoToolError, match=r"succeeded but left no checker binary"):
        go_tools.ensure(TOOL, tmp_path / "cache", environ=environ)
    assert not go_tools.is_built(TOOL, tmp_path / "cache")


def test_a_build_past_its_timeout_is_killed(tmp_path: Path, environ: dict[str, str]) -> None:
    """The gate never opens: the fake build hangs until the timeout kills its process
    group; nothing is left that looks built, and the message says where to look."""
    slow = dataclasses.replace(TOOL, build_timeout_s=0.5)
    environ["FAKE_GO_GATE"] = str(tmp_path / "never")
    with pytest.raises(go_tools.GoToolError) as late:
        go_tools.ensure(slow, tmp_path / "cache", environ=environ)
    assert str(late.value) == (
        "go install example.com/checks/cmd/checker@v1.2.3 did not finish within 0.5 s; "
        "check access to the Go module proxy (go env GOPROXY)"
    )
    assert [p.name for p in slow.directory(tmp_path / "cache").iterdir()] == [".build.lock"]


def test_no_go_on_path_is_one_line_saying_what_to_install(tmp_path: Path) -> None:
    no_go = {"PATH": str(tmp_path)}
    with pytest.raises(go_tools.GoToolError) as missing:
        go_tools.ensure(TOOL, tmp_path / "cache", environ=no_go)
    assert str(missing.value) == (
        "go not found on PATH: the rule checker is built from source on first use; install "
        "Go 1.24 or newer (https://go.dev/doc/install; Debian 13: apt-get install golang-go) "
        "and put its bin directory on PATH"
    )
    assert go_tools.unavailable(TOOL, tmp_path / "cache", no_go) == str(missing.value)


@pytest.mark.parametrize(
    ("answer", "accepted"),
    [
        ("go1.24.0", True),
        ("go1.26.8", True),
        ("go1.30rc1", True),
        ("devel go1.23-abcdef", True),
        ("go1.23.9", False),
        ("go1.9.7", False),
    ],
)
def test_the_go_version_is_checked_before_building(
    tmp_path: Path, environ: dict[str, str], answer: str, accepted: bool
) -> None:
    environ["FAKE_GO_VERSION"] = answer
    if accepted:
        assert go_tools.require_go(TOOL, environ) == f"{tmp_path}/bin/go"
        return
    with pytest.raises(go_tools.GoToolError) as old:
        go_tools.ensure(TOOL, tmp_path / "cache", environ=environ)
    message = str(old.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path}/bin/go is Go 1.")
    assert ", too old to build the rule checker (checker v1.2.3 needs 1.24); install Go" in message
    assert installs(environ) == []


def test_a_go_that_says_no_version_is_one_line(tmp_path: Path, environ: dict[str, str]) -> None:
    environ["FAKE_GO_VERSION"] = "warning: GOPATH set to GOROOT"
    with pytest.raises(go_tools.GoToolError) as mute:
        go_tools.require_go(TOOL, environ)
    message = str(mute.value)
    assert "\n" not in message
    assert "does not say its version (warning: GOPATH set to GOROOT); install Go 1.24" in message


def test_the_tool_environment_overrides_the_callers_go_settings(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    """A developer's GOFLAGS=-mod=vendor or GOTOOLCHAIN=auto would make go download a
    toolchain or refuse the module: the build sets its own."""
    environ.update({"GOFLAGS": "-mod=vendor", "GOTOOLCHAIN": "auto", "GOBIN": "/elsewhere"})
    binary = go_tools.ensure(TOOL, tmp_path / "cache", environ=environ)
    [install] = installs(environ)
    assert "GOBIN=/elsewhere" not in install
    assert install.endswith(" GOTOOLCHAIN=local GOFLAGS=-mod=mod")
    assert os.access(binary, os.X_OK)
