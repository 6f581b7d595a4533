"""Is the schema in ClickHouse the one this code expects? Commands that read or write the
audit tables ask at startup and refuse to run otherwise.

:func:`compare` is pure: the versions recorded in ``<database>.schema_migrations`` against
the versions of the migration files here. :func:`check_schema` reads the recorded versions
(one query; the client is passed in, its errors propagate) and compares them. A checksum
that changed is ``auditlog migrate``'s concern, not this check's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from consumers.migrations.runner import (
    ClickHouseClient,
    applied_versions,
    load_migrations,
)

SchemaState = Literal["current", "missing", "behind", "ahead"]


@dataclass(frozen=True)
class SchemaCheck:
    """What :func:`compare` found; versions are migration numbers (0 for none)."""

    database: str
    state: SchemaState
    newest_applied: int
    newest_known: int


def compare(database: str, applied: Iterable[int], known: Iterable[int]) -> SchemaCheck:
    """``missing``: nothing applied; ``ahead``: a version newer than every known one is
    applied (a newer release migrated it); ``behind``: a known version is not applied;
    ``current`` otherwise."""
    done, expected = set(applied), set(known)
    newest_applied, newest_known = max(done, default=0), max(expected, default=0)
    state: SchemaState
    if not done:
        state = "missing"
    elif newest_applied > newest_known:
        state = "ahead"
    elif expected - done:
        state = "behind"
    else:
        state = "current"
    return SchemaCheck(database, state, newest_applied, newest_known)


def check_schema(client: ClickHouseClient, database: str) -> SchemaCheck:
    """Compare what ClickHouse recorded for ``database`` with the migrations of this code;
    blocks for one query (two when the bookkeeping table exists)."""
    known = [migration.version for migration in load_migrations()]
    return compare(database, applied_versions(client, database), known)
