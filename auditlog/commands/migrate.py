"""``auditlog migrate [--dry-run]``: create or bring up to date the ClickHouse tables.

Prints each migration as applied (with when) or pending, then applies the pending ones in
order. Exit codes: 0 done (or nothing to do), 1 ClickHouse refused a statement, 4 an
applied migration's file changed or disappeared (nothing applied); and the setup failures
of :mod:`auditlog.exit_codes`: 12 ClickHouse not answering, 17 its credentials refused,
14 the schema is newer than this code (nothing applied).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from clickhouse_connect.driver.client import Client as ClickHouseClient
from clickhouse_connect.driver.exceptions import ClickHouseError

from auditlog import setup_failures, startup_checks, wiring
from auditlog.settings import AuditlogSettings
from consumers.migrations import MigrationError, apply_pending, migration_status
from consumers.migrations.schema_check import check_schema

EXIT_CHANGED = 4


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "migrate",
        help="create or update the ClickHouse tables (versioned migrations)",
        description=(
            "Apply the pending migrations of consumers/migrations in order, recording each in "
            "audit.schema_migrations. Exit 0: up to date; 1: ClickHouse refused a statement; "
            "4: an applied migration's file changed (nothing applied); 12: ClickHouse not "
            "answering; 14: the schema is newer than this code; 17: credentials refused."
        ),
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="only print what is applied and what is pending"
    )
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    try:
        client = startup_checks.clickhouse(settings, schema=False)
        _refuse_newer(client, settings)
        status = migration_status(client, database=settings.clickhouse_database)
        for migration, applied_at in status.applied:
            print(f"applied  {migration.name}  ({applied_at:%Y-%m-%d %H:%M:%S} UTC)")
        for migration in status.pending:
            print(f"pending  {migration.name}")
        if args.dry_run or not status.pending:
            if not status.pending:
                print("up to date")
            return 0
        for migration in apply_pending(client, database=settings.clickhouse_database):
            print(f"done     {migration.name}")
    except MigrationError as exc:
        print(f"auditlog: {exc}", file=sys.stderr)
        return EXIT_CHANGED
    except (ClickHouseError, OSError) as exc:
        print(f"auditlog: {wiring.clickhouse_error(settings, exc)}", file=sys.stderr)
        return 1
    return 0


def _refuse_newer(client: ClickHouseClient, settings: AuditlogSettings) -> None:
    """A schema migrated by a newer release is not this code's to change: raises
    :class:`~auditlog.setup_failures.SetupFailure` (exit 14) before anything is applied."""
    check = check_schema(client, settings.clickhouse_database)
    if check.state == "ahead":
        failure = setup_failures.schema_not_current(settings.clickhouse_url, check)
        assert failure is not None
        raise failure
