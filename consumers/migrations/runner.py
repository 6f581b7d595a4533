"""Apply the versioned SQL migrations of this folder to ClickHouse, in order, once each.

- A migration is a file ``NNNN_name.sql``: statements separated by ``;`` at the end of a
  line, ``--`` comments allowed. ``{database}`` is the one placeholder, replaced by the
  target database's name. Statements are idempotent (``IF NOT EXISTS``), so a migration
  interrupted half way is simply applied again.
- Applied versions are recorded in ``<database>.schema_migrations`` with the file's
  SHA-256 and the time; a recorded version is never applied again.
- If the file of an applied migration changed (checksum differs) or disappeared, nothing
  is applied and :class:`MigrationError` says which: an applied migration is history;
  change the schema with a new migration.

The client is passed in (a clickhouse-connect ``Client`` or anything with ``command`` and
``query``); nothing here reads settings. Calls block until ClickHouse answers; its errors
propagate as raised by the client.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

DEFAULT_DATABASE = "audit"
MIGRATIONS_DIR = Path(__file__).resolve().parent

_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class ClickHouseClient(Protocol):
    """The part of clickhouse-connect's ``Client`` the runner uses."""

    def command(self, cmd: str, parameters: Any = None, *args: Any, **kwargs: Any) -> Any: ...
    def query(
        self, query: str | None = None, parameters: Any = None, *args: Any, **kwargs: Any
    ) -> Any: ...


class MigrationError(RuntimeError):
    """The migrations on disk do not agree with those recorded as applied, or a file is
    malformed. Nothing was applied."""


@dataclass(frozen=True)
class Migration:
    """One migration file: its version, name, text and the SHA-256 of the text."""

    version: int
    name: str
    sql: str
    checksum: str

    def statements(self, database: str) -> list[str]:
        """The statements, ``{database}`` replaced, comments and blank lines dropped."""
        return split_statements(self.sql.replace("{database}", database))


@dataclass(frozen=True)
class AppliedRecord:
    version: int
    name: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True)
class MigrationStatus:
    """Which migrations are applied (with when) and which are pending, in version order."""

    applied: list[tuple[Migration, datetime]]
    pending: list[Migration]


def split_statements(sql: str) -> list[str]:
    """Statements separated by a ``;`` that ends a line; ``--`` comment lines dropped."""
    statements: list[str] = []
    current: list[str] = []
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            continue
        stripped = line.rstrip()
        if stripped.endswith(";"):
            current.append(stripped[:-1])
            text = "\n".join(current).strip()
            if text:
                statements.append(text)
            current = []
        else:
            current.append(line)
    rest = "\n".join(current).strip()
    if rest:
        statements.append(rest)
    return statements


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every ``NNNN_name.sql`` of ``directory``, by version; :class:`MigrationError` on two
    files with one version."""
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(
                f"{path.name}: version {version} is also {migrations[version].name}.sql"
            )
        text = path.read_text(encoding="utf-8")
        checksum = hashlib.sha256(text.encode("utf-8")).hexdigest()
        migrations[version] = Migration(version, path.stem, text, checksum)
    return [migrations[v] for v in sorted(migrations)]


def _in(database: str, sql: str) -> str:
    """``sql`` with ``{database}`` replaced by a name checked against ``_IDENTIFIER``."""
    _check_database(database)
    return sql.replace("{database}", database)


def _check_database(database: str) -> None:
    if not _IDENTIFIER.fullmatch(database):
        raise MigrationError(f"{database!r} is not a plain database name")


def _ensure_bookkeeping(client: ClickHouseClient, database: str) -> None:
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations ("
        "version UInt32, name String, checksum String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)"
        ") ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"
    )


def _applied(client: ClickHouseClient, database: str) -> dict[int, AppliedRecord]:
    exists = client.command(
        "SELECT count() FROM system.tables WHERE database = {db:String} "
        "AND name = 'schema_migrations'",
        parameters={"db": database},
    )
    if not exists:
        return {}
    rows = client.query(
        _in(
            database,
            "SELECT version, argMax(name, applied_at), argMax(checksum, applied_at), "
            "max(applied_at) FROM {database}.schema_migrations GROUP BY version ORDER BY version",
        )
    ).result_rows
    return {int(r[0]): AppliedRecord(int(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows}


def applied_versions(client: ClickHouseClient, database: str) -> list[int]:
    """The versions recorded as applied in ``database`` (empty when it has none)."""
    _check_database(database)
    return sorted(_applied(client, database))


def _verify(migrations: Sequence[Migration], applied: dict[int, AppliedRecord]) -> None:
    on_disk = {m.version: m for m in migrations}
    problems: list[str] = []
    for version, record in sorted(applied.items()):
        migration = on_disk.get(version)
        if migration is None:
            problems.append(f"{record.name}.sql was applied but is no longer on disk")
        elif migration.checksum != record.checksum:
            problems.append(
                f"{migration.name}.sql changed after it was applied "
                f"(recorded sha256 {record.checksum[:12]}, file {migration.checksum[:12]})"
            )
    if problems:
        raise MigrationError(
            "refusing to migrate: "
            + "; ".join(problems)
            + ". Applied migrations are history: restore the file and add a new migration."
        )


def migration_status(
    client: ClickHouseClient,
    *,
    database: str = DEFAULT_DATABASE,
    migrations: Sequence[Migration] | None = None,
) -> MigrationStatus:
    """What is applied and what is pending; creates nothing. Raises
    :class:`MigrationError` when applied files changed or disappeared."""
    _check_database(database)
    migrations = list(migrations) if migrations is not None else load_migrations()
    applied = _applied(client, database)
    _verify(migrations, applied)
    return MigrationStatus(
        applied=[(m, applied[m.version].applied_at) for m in migrations if m.version in applied],
        pending=[m for m in migrations if m.version not in applied],
    )


def apply_pending(
    client: ClickHouseClient,
    *,
    database: str = DEFAULT_DATABASE,
    migrations: Sequence[Migration] | None = None,
) -> list[Migration]:
    """Apply the pending migrations in version order, recording each once it completed;
    returns those applied (empty: nothing to do). Raises :class:`MigrationError` (before
    applying anything) when applied files changed; a failing statement's error propagates
    with the migrations before it recorded and that one not."""
    status = migration_status(client, database=database, migrations=migrations)
    if not status.pending:
        return []
    _ensure_bookkeeping(client, database)
    done: list[Migration] = []
    for migration in status.pending:
        for statement in migration.statements(database):
            client.command(statement)
        client.command(
            _in(
                database,
                "INSERT INTO {database}.schema_migrations (version, name, checksum) "
                "VALUES ({version:UInt32}, {name:String}, {checksum:String})",
            ),
            parameters={
                "version": migration.version,
                "name": migration.name,
                "checksum": migration.checksum,
            },
        )
        done.append(migration)
    return done
