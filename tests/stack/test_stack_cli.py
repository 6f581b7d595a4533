"""``auditlog stack up | status | down`` as a user runs it: idempotent, no orphans.

These tests start a stack of their own (in a temporary directory), beside the session one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.stack import local_stack, processes, s3
from deploy.stack.errors import StackError
from deploy.stack.layout import PreferredPorts, StackLayout

pytestmark = [pytest.mark.stack, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _auditlog(stack_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["AUDITLOG_STACK_DIR"] = str(stack_dir)
    env["AUDITLOG_CACHE_DIR"] = str(REPO / ".cache")
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


def test_up_twice_keeps_one_broker_and_down_leaves_nothing(stack_dir: Path) -> None:
    first = _auditlog(stack_dir, "stack", "up")
    assert first.returncode == 0, first.stderr
    exports = [line for line in first.stdout.splitlines() if line.startswith("export ")]
    assert {line.split("=")[0] for line in exports} == {
        "export AUDITLOG_KAFKA_BOOTSTRAP",
        "export AUDITLOG_CLICKHOUSE_URL",
        "export AUDITLOG_S3_ENDPOINT",
    }
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
        raise StackError("S3 server (moto) did not answer")

    monkeypatch.setattr(s3, "start_s3", broken_s3)
    with pytest.raises(StackError, match="moto"):
        local_stack.up(layout, PreferredPorts.any_free())
    assert _pids(stack_dir) == {}
    assert _processes_mentioning(str(stack_dir)) == []
