"""``auditlog serve`` refuses to start with one clear line and a distinct exit code when it
could not serve safely: no way to verify tokens, a weak cursor key, its port taken,
ClickHouse not answering. Run as processes, as an operator would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tests.unit.http_receiver import closed_port

DEV_SECRET = "d" * 40


def serve(**environment: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLOG_")}
    env.update(environment)
    return subprocess.run(
        [sys.executable, "-m", "auditlog.cli", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_a_way_to_verify_tokens_it_names_the_settings() -> None:
    done = serve()
    assert done.returncode == 2
    assert "AUDITLOG_VIEWER_JWT_SECRET" in done.stderr
    assert "AUDITLOG_VIEWER_JWKS_URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_short_cursor_key_is_refused() -> None:
    done = serve(AUDITLOG_VIEWER_DEV_SECRET=DEV_SECRET, AUDITLOG_VIEWER_CURSOR_KEY="short")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "auditlog: AUDITLOG_VIEWER_CURSOR_KEY must be at least 32 bytes: make one with "
        "`openssl rand -hex 32`"
    )


def test_a_taken_port_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"AUDITLOG_VIEWER_DEV_SECRET": DEV_SECRET}
        done = subprocess.run(
            [sys.executable, "-m", "auditlog.cli", "serve", "--port", str(port)],
            env={**{k: v for k, v in os.environ.items() if not k.startswith("AUDITLOG_")}, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 16  # the port in use (auditlog.exit_codes)
    said = [line for line in done.stderr.splitlines() if line.startswith("auditlog:")]
    assert said == [
        f"auditlog: viewer at 127.0.0.1:{port}: the port is in use by another process: stop "
        "that process, or set AUDITLOG_VIEWER_PORT (or --port) to a free port (0: any free port)"
    ]
    assert "Traceback" not in done.stderr


def test_clickhouse_not_answering_is_one_line_without_its_password() -> None:
    with closed_port() as refused:
        port = refused.getsockname()[1]
        done = serve(
            AUDITLOG_VIEWER_DEV_SECRET=DEV_SECRET,
            AUDITLOG_CLICKHOUSE_URL=f"http://reader:s3cret@127.0.0.1:{port}",
        )
    assert done.returncode == 12  # ClickHouse not answering (auditlog.exit_codes)
    assert f"ClickHouse at http://reader:***@127.0.0.1:{port}" in done.stderr
    assert "s3cret" not in done.stderr
    assert "Traceback" not in done.stderr
