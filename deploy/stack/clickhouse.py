"""The local ClickHouse endpoint: the embedded engine (chdb) behind the development gateway.

Development tooling, not a ClickHouse server (see :mod:`deploy.stack.clickhouse_gateway`).
``data_dir`` holds the pid file ``clickhouse.pid``, the log ``logs/clickhouse.out`` and the
engine's data under ``engine/``, which survives restarts.
"""

from __future__ import annotations

import importlib.util
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from deploy.stack import processes
from deploy.stack.errors import StackError
from deploy.stack.processes import ProcessRecord


def _pid_file(data_dir: Path) -> Path:
    return data_dir / "clickhouse.pid"


def _log_file(data_dir: Path) -> Path:
    return data_dir / "logs" / "clickhouse.out"


def engine_dir(data_dir: Path) -> Path:
    """Where the engine keeps its databases under ``data_dir``."""
    return data_dir / "engine"


def clickhouse_ready(url: str, timeout_s: float = 1.0) -> bool:
    """True if ``url`` answers ``GET /ping`` with HTTP 200 (``Ok.``)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/ping", timeout=timeout_s) as resp:  # noqa: S310
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass(frozen=True)
class GatewayTls:
    """Serve https with this certificate and key (PEM); with ``client_ca_file``, require
    client certificates signed by that CA."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    def arguments(self) -> list[str]:
        found = ["--tls-cert", str(self.cert_file), "--tls-key", str(self.key_file)]
        if self.client_ca_file is not None:
            found += ["--tls-client-ca", str(self.client_ca_file)]
        return found


def start_clickhouse(
    *, data_dir: Path, port: int, timeout_s: float = 60.0, tls: GatewayTls | None = None
) -> ProcessRecord:
    """Start the gateway on 127.0.0.1:``port`` unless it already runs for ``data_dir``;
    block until it answers ``/ping`` (with ``tls``: serves https, and is ready once its
    port accepts connections). Raises :class:`StackError` (after stopping what it
    started) when chdb is missing, the process exits, or it does not answer in time."""
    existing = processes.running(_pid_file(data_dir))
    if existing is not None:
        return existing
    if importlib.util.find_spec("chdb") is None:
        raise StackError(
            "chdb (the embedded ClickHouse engine) is not installed: "
            "install the local extra (pip install -e '.[local]')"
        )
    log_file = _log_file(data_dir)
    argv = [
        sys.executable,
        "-m",
        "deploy.stack.clickhouse_gateway",
        "--data-dir",
        str(engine_dir(data_dir).resolve()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *(tls.arguments() if tls is not None else []),
    ]
    record = processes.spawn(
        argv, pid_file=_pid_file(data_dir), log_file=log_file, cwd=_project_root()
    )
    try:
        processes.wait_until(
            lambda: (
                processes.tcp_answers("127.0.0.1", port)
                if tls is not None
                else clickhouse_ready(f"http://127.0.0.1:{port}")
            ),
            what="ClickHouse gateway (chdb)",
            timeout_s=timeout_s,
            alive=record.alive,
            log_file=log_file,
        )
    except BaseException:
        processes.stop(_pid_file(data_dir))
        raise
    return record


def stop_clickhouse(data_dir: Path) -> bool:
    """Stop the gateway (SIGTERM: it closes the engine cleanly); idempotent. True if it
    was running."""
    return processes.stop(_pid_file(data_dir), timeout_s=40.0)


def _project_root() -> Path:
    """The directory that holds the ``deploy`` package, so ``-m`` finds it from any cwd."""
    return Path(__file__).resolve().parents[2]
