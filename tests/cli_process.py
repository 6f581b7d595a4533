"""Running the ``auditlog`` command as a process, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any ``AUDITLOG_*`` variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLOG_")}
    env.update(settings)
    return env


def run_auditlog(
    argv: list[str], env: Mapping[str, str], *, stdin: str = "", timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m auditlog.cli *argv`` in the repository with exactly ``env``; returns
    when it exits (its stdout and stderr as text), whatever its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "auditlog.cli", *argv],
        env=dict(env),
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
