"""Identifier checks accept the whole value or nothing.

``re.match`` with a ``$`` anchor accepts a trailing newline (``"audit\\n"``), which then
reaches SQL, an S3 key or an HTTP header. Every check uses ``fullmatch``; the source scan
below keeps it that way.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumers.migrations import runner
from consumers.retention import RetentionError, validate_tenant
from sinks.destinations.model import DESTINATION_ID
from sinks.destinations.replay import parse_since
from sinks.retry import parse_retry_after
from sinks.senders.base import PermanentDeliveryError
from sinks.senders.http import _check_headers

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("auditlog", "producers", "consumers", "schemas", "sinks", "runtime", "deploy")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _check_header_name(name: str) -> None:
    _check_headers({name: "value"})


@pytest.mark.parametrize(
    ("check", "value", "error"),
    [
        (validate_tenant, "acme\n", RetentionError),
        (runner._check_database, "audit\n", runner.MigrationError),
        (_check_header_name, "X-Team\n", PermanentDeliveryError),
    ],
)
def test_a_trailing_newline_is_refused(
    check: Callable[[str], object], value: str, error: type[Exception]
) -> None:
    check(value.rstrip("\n"))  # the same value without it is fine
    with pytest.raises(error):
        check(value)


def test_destination_ids_and_relative_times_match_whole() -> None:
    assert DESTINATION_ID.fullmatch("ops-bucket")
    assert not DESTINATION_ID.fullmatch("ops-bucket\n")
    with pytest.raises(ValueError, match="--since"):
        parse_since("2h\nx", now=NOW)


def test_retry_after_needs_digits_only() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after("12 0", NOW) is None


def test_migration_files_are_named_exactly(tmp_path: Path) -> None:
    (tmp_path / "0001_events.sql.bak").write_text("SELECT 1")
    (tmp_path / "0001_events.sql").write_text("SELECT 1")
    assert [m.name for m in runner.load_migrations(tmp_path)] == ["0001_events"]


def _anchored_patterns_used_with_match(path: Path) -> list[str]:
    """Names of module-level ``re.compile(r"...$")`` patterns that the module calls
    ``.match`` or ``.search`` on."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    anchored: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and node.value.func.attr == "compile"
            and node.value.args
            and isinstance(node.value.args[0], ast.Constant)
            and str(node.value.args[0].value).endswith("$")
        ):
            anchored.update(t.id for t in node.targets if isinstance(t, ast.Name))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"match", "search"}
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in anchored
        ):
            found.append(f"{path.name}:{node.lineno} {node.func.value.id}")
    return found


def test_no_dollar_anchored_pattern_is_used_with_match() -> None:
    offenders = [
        f"{path.parent.relative_to(ROOT)}/{hit}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for hit in _anchored_patterns_used_with_match(path)
    ]
    assert offenders == [], "use fullmatch (and drop the ^...$ anchors): " + ", ".join(offenders)


def test_the_scan_finds_the_mistake(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('import re\nX = re.compile(r"^a$")\nX.match("a\\n")\n', encoding="utf-8")
    assert _anchored_patterns_used_with_match(sample) == ["sample.py:3 X"]
    assert re.compile(r"^a$").match("a\n")  # the reason for all of this
