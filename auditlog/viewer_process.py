"""``auditlog serve`` as a child process, for the demo (and the tests): started on a free
port, its address read from the line it prints, asked with a bearer token, stopped with
SIGTERM (SIGKILL if it does not stop in time)."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

_READY_PREFIX = "viewer at "


class ViewerStartError(RuntimeError):
    """``auditlog serve`` exited or printed no address; the message holds its last words."""


@dataclass
class ViewerProcess:
    url: str
    process: subprocess.Popen[str]

    def get(self, path_and_query: str, token: str) -> tuple[int, Any]:
        """``GET url + path_and_query`` with the token: the status and the JSON answer
        (blocks up to 30 s)."""
        request = urllib.request.Request(  # noqa: S310 - our own http://127.0.0.1 address
            self.url + path_and_query, headers={"Authorization": f"Bearer {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30.0) as answer:  # noqa: S310
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read() or b"null")

    def status(self, path: str) -> int:
        """The status of ``GET url + path``, without credentials."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=30.0) as answer:  # noqa: S310
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            with exc:
                return int(exc.code)


@contextlib.contextmanager
def running_viewer(
    environment: Mapping[str, str], *, log_file: Path, start_timeout_s: float = 60.0
) -> Iterator[ViewerProcess]:
    """``auditlog serve --port 0`` with ``environment`` (``AUDITLOG_*`` variables on top of
    this process's), its logs in ``log_file``; stopped when the block ends."""
    env = {**os.environ, **environment}
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "auditlog.cli", "serve", "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        url = _address(process, start_timeout_s, log_file)
        yield ViewerProcess(url, process)
    finally:
        stop(process)


def stop(process: subprocess.Popen[str], timeout_s: float = 15.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
    return process.returncode


def _address(process: subprocess.Popen[str], timeout_s: float, log_file: Path) -> str:
    stdout: IO[str] | None = process.stdout
    assert stdout is not None
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                break
            line = stdout.readline()
            if not line:  # exited
                break
            if line.startswith(_READY_PREFIX):
                return line[len(_READY_PREFIX) :].strip()
    process.poll()
    tail = log_file.read_text(errors="replace").strip().splitlines()[-3:]
    state = f"exited with {process.returncode}" if process.returncode is not None else "no answer"
    raise ViewerStartError(f"auditlog serve: {state}: {' | '.join(tail) or '(no output)'}")
