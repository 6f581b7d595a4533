"""Managed processes: found again by pid file, never confused with a recycled pid,
stopped with their whole process group."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from deploy.stack import processes
from deploy.stack.errors import StackError

# A parent that starts a child in the same process group, then both wait.
_PARENT_WITH_CHILD = (
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    "print('ready', flush=True); time.sleep(60)"
)


def test_spawn_records_and_stop_ends_the_whole_group(tmp_path: Path) -> None:
    pid_file, log_file = tmp_path / "p.pid", tmp_path / "p.log"
    record = processes.spawn(
        [sys.executable, "-c", _PARENT_WITH_CHILD], pid_file=pid_file, log_file=log_file
    )
    processes.wait_until(
        lambda: "ready" in log_file.read_text(), what="parent", timeout_s=30, alive=record.alive
    )
    processes.wait_until(
        lambda: len(processes.group_members(record.pid)) == 2, what="child", timeout_s=30
    )
    assert processes.running(pid_file) == record

    assert processes.stop(pid_file, timeout_s=5)
    assert processes.group_members(record.pid) == []
    assert not pid_file.exists()
    assert processes.stop(pid_file) is False  # idempotent


def test_a_recycled_pid_is_not_taken_for_the_recorded_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "p.pid"
    # Our own pid is alive, but with another start time than the one recorded.
    pid_file.write_text(json.dumps({"pid": os.getpid(), "start_ticks": 1, "argv": ["x"]}))
    assert processes.running(pid_file) is None
    assert not pid_file.exists()  # the stale file is removed
    assert processes.stop(pid_file) is False


def test_unreadable_pid_file_counts_as_not_running(tmp_path: Path) -> None:
    pid_file = tmp_path / "p.pid"
    pid_file.write_text("not json")
    assert processes.running(pid_file) is None


def test_wait_until_reports_a_process_that_died(tmp_path: Path) -> None:
    pid_file, log_file = tmp_path / "p.pid", tmp_path / "p.log"
    record = processes.spawn(
        [sys.executable, "-c", "print('boom: bad config'); raise SystemExit(3)"],
        pid_file=pid_file,
        log_file=log_file,
    )
    with pytest.raises(StackError, match="exited while starting") as err:
        processes.wait_until(
            lambda: False, what="thing", timeout_s=30, alive=record.alive, log_file=log_file
        )
    assert "boom: bad config" in str(err.value)
    processes.stop(pid_file)


def test_wait_until_times_out_with_a_clear_message() -> None:
    with pytest.raises(StackError, match="did not answer within 0 s"):
        processes.wait_until(lambda: False, what="thing", timeout_s=0.1, interval_s=0.01)


def test_choose_port_keeps_a_free_port_and_replaces_a_busy_one() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        assert not processes.port_is_free(busy_port)
        other = processes.choose_port(busy_port)
        assert other != busy_port
        assert processes.port_is_free(other)
        assert processes.tcp_answers("127.0.0.1", busy_port)
    free = processes.choose_port(0)
    assert processes.choose_port(free) == free
    assert processes.choose_port(free, taken=[free]) != free


def test_an_answer_from_a_process_that_died_is_not_taken_for_a_start() -> None:
    """Something else answering on the port while the started process exited: refused."""
    with pytest.raises(StackError, match="something else answers"):
        processes.wait_until(lambda: True, what="S3 server", timeout_s=5, alive=lambda: False)
