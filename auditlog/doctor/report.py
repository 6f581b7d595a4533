"""The doctor's output: one line per check (``ok``, ``warn``, ``FAIL``, ``skip``), under it
each problem and its fix; or one JSON document for scripts. Pure: strings out."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from auditlog.doctor.model import CheckResult, Status, worst
from runtime.redaction import redact_text

_WIDTH = max(len(s.label) for s in Status)


def text(results: Sequence[CheckResult], code: int) -> list[str]:
    name_width = max((len(r.name) for r in results), default=0)
    lines = []
    for check in results:
        lines.append(
            f"{check.status.label.ljust(_WIDTH)}  {check.name.ljust(name_width)}  {check.summary}"
        )
        for problem in check.problems:
            indent = " " * (_WIDTH + 2)
            lines.append(f"{indent}- {problem.status.label}: {problem.what}")
            lines.append(f"{indent}  fix: {problem.fix}")
    counts = Counter(r.status for r in results)
    tally = ", ".join(
        f"{counts[s]} {s.label}" for s in (Status.FAIL, Status.WARN, Status.SKIP, Status.OK)
    )
    lines.append(f"doctor: {tally}: exit {code}")
    return [redact_text(line) for line in lines]


def document(results: Sequence[CheckResult], code: int) -> str:
    body: dict[str, Any] = {
        "status": worst(results).label,
        "exit_code": code,
        "checks": [
            {
                "name": r.name,
                "status": r.status.label,
                "summary": r.summary,
                "problems": [
                    {"status": p.status.label, "what": p.what, "fix": p.fix} for p in r.problems
                ],
                "details": r.details,
            }
            for r in results
        ],
    }
    return redact_text(json.dumps(body, indent=2, default=str))
