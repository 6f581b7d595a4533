"""``auditlog stack up | status | down`` as a user runs it: idempotent, no orphans, the
MinIO build reused, and a missing Go toolchain said in one line.

These tests start a stack of their own (in a temporary directory), beside the session one.
The MinIO binary comes from the repository's ``.cache/`` (built before the first stack test
when missing: ``tests/conftest.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from deploy.stack import local_stack, minio_binary, processes, s3
from deploy.stack.endpoints import S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV
from deploy.stack.errors import StackError
from deploy.stack.layout import PreferredPorts, StackLayout

pytestmark = [pytest.mark.stack, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _auditlog(
    stack_dir: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AUDITLOG_STACK_DIR": str(stack_dir),
        "AUDITLOG_CACHE_DIR": str(REPO / ".cache"),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "auditlog.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _pids(stack_dir: Path) -> dict[str, int]:
    found = {}
    for pid_file in stack_dir.glob("*/*.pid"):
        record = processes.read_record(pid_file)
        if record is not None:
            found[pid_file.stem] = record.pid
    return found


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                pids.append(int(entry.name))
    return pids


@pytest.fixture
def stack_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "stack"
    yield directory
    local_stack.down(StackLayout(root=directory, cache_dir=REPO / ".cache"))


def _go_that_records_calls(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose first ``go`` on PATH only records that it was called."""
    bin_dir, calls = tmp_path / "fake-go", tmp_path / "go-calls"
    bin_dir.mkdir()
    (bin_dir / "go").write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 97\n')
    (bin_dir / "go").chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, calls


def test_up_twice_keeps_one_broker_and_down_leaves_nothing(stack_dir: Path, tmp_path: Path) -> None:
    binary = minio_binary.ensure_minio(REPO / ".cache")
    built_at = binary.stat().st_mtime_ns
    env, go_calls = _go_that_records_calls(tmp_path)

    first = _auditlog(stack_dir, "stack", "up", env=env)
    assert first.returncode == 0, first.stderr
    assert "building MinIO" not in first.stderr
    assert not go_calls.exists(), "the cached MinIO build is reused: go is never called"
    assert binary.stat().st_mtime_ns == built_at
    exports = [line for line in first.stdout.splitlines() if line.startswith("export ")]
    assert {line.split("=")[0] for line in exports} == {
        "export AUDITLOG_KAFKA_BOOTSTRAP",
        "export AUDITLOG_CLICKHOUSE_URL",
        "export AUDITLOG_S3_ENDPOINT",
        f"export {S3_ACCESS_KEY_ENV}",
        f"export {S3_SECRET_KEY_ENV}",
    }
    keys_file = stack_dir / "s3" / "keys.json"
    assert keys_file.stat().st_mode & 0o777 == 0o600
    keys = json.loads(keys_file.read_text())
    assert f"export {S3_SECRET_KEY_ENV}={keys['user']['secret_key']}" in exports
    state = (stack_dir / "state.json").read_text()
    assert keys["user"]["secret_key"] not in state
    assert keys["root"]["secret_key"] not in state
    pids = _pids(stack_dir)
    assert set(pids) == {"kafka", "clickhouse", "s3"}

    second = _auditlog(stack_dir, "stack", "up")
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout  # same endpoints
    assert "starting" not in second.stderr  # nothing started again
    assert _pids(stack_dir) == pids
    assert len(_processes_mentioning(f"{stack_dir}/kafka/server.properties")) == 1

    status = _auditlog(stack_dir, "stack", "status")
    assert status.returncode == 0, status.stdout
    assert status.stdout.count(" up ") == 3

    down = _auditlog(stack_dir, "stack", "down")
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == "stopped: s3, clickhouse, kafka"
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert _processes_mentioning(str(stack_dir)) == []

    again = _auditlog(stack_dir, "stack", "down")
    assert again.returncode == 0
    assert again.stdout.strip() == "stopped: nothing was running"
    assert _auditlog(stack_dir, "stack", "status").returncode == 3


def test_a_start_that_fails_half_way_stops_what_it_started(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = StackLayout(root=stack_dir, cache_dir=REPO / ".cache")

    def broken_s3(**_kwargs: object) -> processes.ProcessRecord:
        raise StackError("S3 server (MinIO) did not answer")

    monkeypatch.setattr(s3, "start_s3", broken_s3)
    with pytest.raises(StackError, match="MinIO"):
        local_stack.up(layout, PreferredPorts.any_free())
    assert _pids(stack_dir) == {}
    assert _processes_mentioning(str(stack_dir)) == []


def test_up_without_go_says_so_in_one_line_and_starts_nothing(
    stack_dir: Path, tmp_path: Path
) -> None:
    """A fresh cache and no Go toolchain: the MinIO build cannot run, so nothing starts."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("java", "mvn"):
        found = shutil.which(tool)
        assert found is not None, f"{tool} is needed to run this test"
        (tools / tool).symlink_to(found)
    env = {"PATH": str(tools), "AUDITLOG_CACHE_DIR": str(tmp_path / "empty-cache")}

    up = _auditlog(stack_dir, "stack", "up", env=env)

    assert up.returncode == 1
    [line] = up.stderr.splitlines()
    assert line.startswith("auditlog: go not found on PATH: the local S3 server (MinIO)")
    assert "install Go 1.24 or newer" in line
    assert _pids(stack_dir) == {}
    assert _processes_mentioning(str(stack_dir)) == []


def test_up_refuses_an_s3_server_that_is_not_minio(stack_dir: Path) -> None:
    """A stack started before the move to MinIO still runs moto: ``up`` says what to do
    instead of talking MinIO's admin API to it."""
    layout = StackLayout(root=stack_dir, cache_dir=REPO / ".cache")
    pid_file = layout.s3_dir / "s3.pid"
    processes.spawn(["sleep", "600"], pid_file=pid_file, log_file=layout.s3_dir / "logs" / "s3.out")
    try:
        with pytest.raises(StackError, match=r"is not MinIO .*auditlog stack down"):
            local_stack.up(layout, PreferredPorts.any_free())
        assert set(_pids(stack_dir)) == {"s3"}
    finally:
        processes.stop(pid_file)
