"""A newcomer's setup mistakes with no service running, as processes: each command answers
one line on stderr naming the service, the address and what to do, with the mistake's own
exit code, and no library log line (librdkafka's ``%3|...|FAIL|``, clickhouse-connect's
"Unexpected Http Driver Exception", urllib3's retries) or traceback reaches the terminal.
The mistakes that need a running stack (topics missing, schema missing, behind or newer,
a taken metrics port) are in tests/stack/test_setup_mistakes.py."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from auditlog.exit_codes import ExitCode
from tests.cli_process import clean_environment, run_auditlog
from tests.unit.http_receiver import closed_port
from tests.waiting import wait_until

_LIBRARY_NOISE = re.compile(r"%\d\|\d|FAIL|Traceback|Unexpected Http Driver|urllib3|Retrying")


def auditlog(*argv: str, stdin: str = "", **environment: str) -> subprocess.CompletedProcess[str]:
    return run_auditlog(list(argv), clean_environment(**environment), stdin=stdin, timeout_s=60)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line the command said, after checking there is nothing else."""
    assert not _LIBRARY_NOISE.search(done.stderr), done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def nothing_listens() -> Iterator[str]:
    """``127.0.0.1:PORT`` where connecting is refused (held bound for the test)."""
    with closed_port() as refusing:
        yield f"127.0.0.1:{refusing.getsockname()[1]}"


KAFKA_COMMANDS = [
    ["produce", "-"],
    ["generate", "--events", "1"],
    ["topics", "ensure"],
    ["topics", "show"],
    ["destinations", "list"],
    ["accounts", "list"],
    ["retention", "set", "acme", "90"],
    ["consume", "--exit-when-idle", "1"],
    ["sink", "--exit-when-idle", "1"],
]


@pytest.mark.parametrize("argv", KAFKA_COMMANDS, ids=" ".join)
def test_kafka_not_started(argv: list[str], nothing_listens: str) -> None:
    done = auditlog(*argv, stdin="{}\n", AUDITLOG_KAFKA_BOOTSTRAP=nothing_listens)
    assert done.returncode == ExitCode.KAFKA_UNREACHABLE
    assert one_line(done) == (
        f"auditlog: Kafka at {nothing_listens} (PLAINTEXT): no broker answered (waited up "
        "to 10 s): start it (`auditlog stack up` for the local stack), or set "
        "AUDITLOG_KAFKA_BOOTSTRAP to where it runs"
    )


@pytest.mark.parametrize("argv", [["migrate"], ["migrate", "--dry-run"], ["retention", "show"]])
def test_clickhouse_not_started(argv: list[str], nothing_listens: str) -> None:
    done = auditlog(*argv, AUDITLOG_CLICKHOUSE_URL=f"http://bob:s3cret@{nothing_listens}")
    assert done.returncode == ExitCode.CLICKHOUSE_UNREACHABLE
    assert one_line(done) == (
        f"auditlog: ClickHouse at http://bob:***@{nothing_listens}: not answering "
        "(connection refused): start it (`auditlog stack up` for the local stack), or set "
        "AUDITLOG_CLICKHOUSE_URL to where it runs"
    )


def test_clickhouse_host_that_does_not_exist() -> None:
    done = auditlog("migrate", AUDITLOG_CLICKHOUSE_URL="http://clickhouse.invalid:8123")
    assert done.returncode == ExitCode.CLICKHOUSE_UNREACHABLE
    assert "not answering (no such host)" in one_line(done)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AUDITLOG_CLICKHOUSE_URL", "127.0.0.1:18123"),  # no scheme
        ("AUDITLOG_KAFKA_SECURITY_PROTOCOL", "TLS"),
        ("AUDITLOG_WRITER_BATCH_MAX_RECORDS", "many"),
    ],
)
def test_a_wrong_setting_names_the_variable(variable: str, value: str) -> None:
    done = auditlog("retention", "show", **{variable: value})
    assert done.returncode == ExitCode.INVALID
    assert one_line(done).startswith(f"auditlog: {variable}: ")


def test_sealing_a_secret_without_the_secrets_key() -> None:
    done = auditlog(
        "destinations", "add", "acme", "--kind", "webhook", "--url", "https://siem.acme.io/a",
        "--secret-stdin", stdin="whsec-never-shown\n",
    )  # fmt: skip
    assert done.returncode == ExitCode.SECRETS_KEY_MISSING
    line = one_line(done)
    assert line.startswith("auditlog: AUDITLOG_SECRETS_KEY: not set")
    assert "`auditlog destinations keygen`" in line
    assert "whsec-never-shown" not in done.stdout + done.stderr


def _start(argv: list[str], **environment: str) -> subprocess.Popen[str]:
    """The command as a terminal starts it: with Ctrl-C's default action, even when this
    test runs where SIGINT is ignored (a job a non-interactive shell put in the
    background inherits SIG_IGN, and Python then installs no KeyboardInterrupt handler)."""
    return subprocess.Popen(
        [sys.executable, "-m", "auditlog.cli", *argv],
        env=clean_environment(**environment),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_ctrl_c,  # noqa: PLW1509 - the child runs no threads yet
    )


def _default_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ctrl_c(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


def _reading_stdin(pid: int) -> bool:
    """Whether the process's main thread is blocked in read(2) on fd 0 (Linux x86-64:
    syscall 0, first argument 0x0)."""
    with open(f"/proc/{pid}/syscall", encoding="ascii") as syscall:
        return syscall.read().startswith("0 0x0 ")


INTERRUPTED = "auditlog: interrupted (Ctrl-C): stopped before it finished"


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
    reason="reads /proc/PID/syscall",
)
def test_ctrl_c_while_reading_events() -> None:
    process = _start(["produce", "--dry-run", "-"])
    wait_until(lambda: _reading_stdin(process.pid), 30, "produce reading its stdin")
    code, err = _ctrl_c(process)
    assert code == ExitCode.INTERRUPTED
    assert err.splitlines() == [INTERRUPTED]


def test_ctrl_c_while_waiting_for_kafka() -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(30)
        bootstrap = f"127.0.0.1:{silent.getsockname()[1]}"
        process = _start(["topics", "show"], AUDITLOG_KAFKA_BOOTSTRAP=bootstrap)
        connection, _ = silent.accept()  # the command is asking Kafka for its metadata
        with connection:
            code, err = _ctrl_c(process)
    assert code == ExitCode.INTERRUPTED
    assert err.splitlines() == [INTERRUPTED]
