"""``auditlog migrate [--dry-run]``: create or bring up to date the ClickHouse tables.

Prints each migration as applied (with when) or pending, then applies the pending ones in
order. Exit codes: 0 done (or nothing to do), 1 ClickHouse did not answer or refused a
statement, 4 an applied migration's file changed or disappeared (nothing applied).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from consumers.migrations import MigrationError, apply_pending, migration_status

EXIT_CHANGED = 4


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "migrate",
        help="create or update the ClickHouse tables (versioned migrations)",
        description=(
            "Apply the pending migrations of consumers/migrations in order, recording each in "
            "audit.schema_migrations. Exit 0: up to date; 1: ClickHouse failed; 4: an applied "
            "migration's file changed (nothing applied)."
        ),
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="only print what is applied and what is pending"
    )
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    try:
        client = wiring.clickhouse_client(settings)
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
