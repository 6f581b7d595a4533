"""NDJSON input for ``auditlog produce``: one JSON object per line, the model's field names.

Blank lines are skipped. Every other line yields either the parsed object or the reason
it is not one, with its 1-based line number, so callers can report rejections precisely.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Line:
    number: int
    data: dict[str, Any] | None
    error: str | None


def read_ndjson(lines: Iterable[str | bytes]) -> Iterator[Line]:
    """Parse each non-blank line; never raises for bad input (the error is in the Line)."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except ValueError as exc:
            yield Line(number, None, f"not valid JSON: {exc}")
            continue
        if not isinstance(data, dict):
            yield Line(number, None, f"expected a JSON object, got {type(data).__name__}")
            continue
        yield Line(number, data, None)
