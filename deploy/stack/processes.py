"""Background processes that can always be found and stopped again.

Each managed process runs in its own session (process group), writes its output to a log
file, and is recorded in a pid file holding its pid and kernel start time, so a recycled
pid is never mistaken for it. :func:`stop` ends the whole group: nothing is orphaned.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.stack.errors import StackError

# Written to a log file before each start, so error messages quote only the latest run.
_START_MARK = "=== started "


@dataclass(frozen=True)
class ProcessRecord:
    """What a pid file holds."""

    pid: int
    start_ticks: int
    argv: tuple[str, ...]

    def alive(self) -> bool:
        """True while this very process (same pid, same start time) exists and is not a zombie."""
        return _start_ticks(self.pid) == self.start_ticks


def _start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks since boot, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def read_record(pid_file: Path) -> ProcessRecord | None:
    """The record in ``pid_file``, or None when there is no readable one."""
    try:
        raw = json.loads(pid_file.read_text())
        return ProcessRecord(int(raw["pid"]), int(raw["start_ticks"]), tuple(raw["argv"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def running(pid_file: Path) -> ProcessRecord | None:
    """The live process recorded in ``pid_file``; a stale pid file is removed."""
    record = read_record(pid_file)
    if record is None:
        return None
    if record.alive():
        return record
    pid_file.unlink(missing_ok=True)
    return None


def spawn(
    argv: Sequence[str],
    *,
    pid_file: Path,
    log_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcessRecord:
    """Start ``argv`` in a new session with output appended to ``log_file``; record it.

    Does not wait for readiness: pair it with :func:`wait_until`.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"{_START_MARK}{time.strftime('%Y-%m-%dT%H:%M:%S%z')} {argv[0]}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    ticks = _start_ticks(proc.pid)
    if ticks is None:
        raise StackError(f"{argv[0]} exited at once; see {log_file}")
    record = ProcessRecord(proc.pid, ticks, tuple(argv))
    pid_file.write_text(
        json.dumps({"pid": record.pid, "start_ticks": record.start_ticks, "argv": record.argv})
    )
    return record


def stop(
    pid_file: Path, *, timeout_s: float = 20.0, first_signal: signal.Signals = signal.SIGTERM
) -> bool:
    """Stop the process group recorded in ``pid_file``: ``first_signal`` (SIGTERM unless
    told), then SIGKILL after ``timeout_s``. Idempotent; returns True if something was
    running."""
    record = running(pid_file)
    if record is None:
        pid_file.unlink(missing_ok=True)
        return False
    _signal_group(record.pid, first_signal)
    deadline = time.monotonic() + timeout_s
    while (record.alive() or group_members(record.pid)) and time.monotonic() < deadline:
        _reap(record.pid)
        time.sleep(0.05)
    # Whatever is left of the group (the leader, or children it left behind) is killed, and
    # waited for: when stop returns, no process of the group exists any more.
    deadline = time.monotonic() + 10.0
    while (record.alive() or group_members(record.pid)) and time.monotonic() < deadline:
        _signal_group(record.pid, signal.SIGKILL)
        _reap(record.pid)
        time.sleep(0.02)
    pid_file.unlink(missing_ok=True)
    return True


def send(pid_file: Path, sig: signal.Signals) -> bool:
    """Send ``sig`` to the process group recorded in ``pid_file`` without waiting; True if
    it ran. (:func:`stop` then waits for it.)"""
    record = running(pid_file)
    if record is None:
        return False
    _signal_group(record.pid, sig)
    return True


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout_s: float,
    alive: Callable[[], bool] | None = None,
    log_file: Path | None = None,
    interval_s: float = 0.2,
) -> None:
    """Poll ``ready`` until it returns True.

    Raises :class:`StackError` after ``timeout_s``, or as soon as ``alive`` says the process
    died; the message names ``log_file`` and quotes its last lines.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if ready():
            if alive is None or alive():
                return
            raise StackError(
                f"{what} exited while starting, and something else answers in its place."
                f"{_tail(log_file)}"
            )
        if alive is not None and not alive():
            raise StackError(f"{what} exited while starting.{_tail(log_file)}")
        if time.monotonic() >= deadline:
            raise StackError(f"{what} did not answer within {timeout_s:.0f} s.{_tail(log_file)}")
        time.sleep(interval_s)


def _tail(log_file: Path | None, lines: int = 15) -> str:
    """The last lines the latest start wrote to ``log_file``, without Java stack frames."""
    if log_file is None or not log_file.exists():
        return ""
    text = log_file.read_text(errors="replace").rpartition(_START_MARK)[2]
    kept = [line for line in text.splitlines()[1:] if not line.lstrip().startswith("at ")]
    return f"\nLast lines of {log_file}:\n" + "\n".join(kept[-lines:])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on ``host:port`` and it can be bound (as servers bind it:
    with SO_REUSEADDR, so connections of a stopped server in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(preferred: int, host: str = "127.0.0.1", taken: Sequence[int] = ()) -> int:
    """``preferred`` if it is free (and not in ``taken``), otherwise a free port from the OS."""
    if preferred and preferred not in taken and port_is_free(preferred, host):
        return preferred
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port
    raise StackError(f"no free TCP port on {host}")


def tcp_answers(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True if a TCP connection to ``host:port`` is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
