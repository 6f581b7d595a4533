"""Versioned ClickHouse migrations of the audit tables (``NNNN_name.sql`` files here) and
the runner that applies them: see :mod:`consumers.migrations.runner`."""

from consumers.migrations.runner import (
    DEFAULT_DATABASE,
    Migration,
    MigrationError,
    MigrationStatus,
    apply_pending,
    load_migrations,
    migration_status,
)

__all__ = [
    "DEFAULT_DATABASE",
    "Migration",
    "MigrationError",
    "MigrationStatus",
    "apply_pending",
    "load_migrations",
    "migration_status",
]
