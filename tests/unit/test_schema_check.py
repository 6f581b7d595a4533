"""Whether the schema in ClickHouse is the one the code expects, from the versions alone
(the real engine's answers are in tests/stack/test_setup_mistakes.py)."""

from __future__ import annotations

import pytest

from consumers.migrations import load_migrations
from consumers.migrations.schema_check import SchemaCheck, compare

KNOWN = [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("applied", "expected"),
    [
        ([], SchemaCheck("audit", "missing", 0, 4)),
        ([1, 2], SchemaCheck("audit", "behind", 2, 4)),
        ([1, 2, 4], SchemaCheck("audit", "behind", 4, 4)),  # a gap is behind too
        ([1, 2, 3, 4], SchemaCheck("audit", "current", 4, 4)),
        ([1, 2, 3, 4, 5], SchemaCheck("audit", "ahead", 5, 4)),
        ([1, 5], SchemaCheck("audit", "ahead", 5, 4)),  # newer wins: not this code's to fix
    ],
)
def test_compare(applied: list[int], expected: SchemaCheck) -> None:
    assert compare("audit", applied, KNOWN) == expected


def test_the_code_knows_its_own_migrations() -> None:
    known = [m.version for m in load_migrations()]
    assert compare("audit", known, known).state == "current"
