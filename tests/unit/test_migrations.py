"""The migration runner's logic against a fake client: order, idempotency, refusal of
changed history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consumers.migrations import runner
from consumers.migrations.runner import (
    MigrationError,
    apply_pending,
    load_migrations,
    migration_status,
    split_statements,
)


@dataclass
class _Result:
    result_rows: list[tuple[Any, ...]]


@dataclass
class FakeClient:
    """Records statements; keeps schema_migrations rows in memory."""

    commands: list[str] = field(default_factory=list)
    recorded: list[tuple[int, str, str, datetime]] = field(default_factory=list)
    bookkeeping: bool = False

    def command(self, cmd: str, parameters: Any = None, *args: Any, **kwargs: Any) -> Any:
        if cmd.startswith("SELECT count() FROM system.tables"):
            return 1 if self.bookkeeping else 0
        self.commands.append(cmd)
        if "CREATE TABLE IF NOT EXISTS" in cmd and "schema_migrations" in cmd:
            self.bookkeeping = True
        if cmd.startswith("INSERT INTO") and "schema_migrations" in cmd:
            p = parameters
            self.recorded.append((p["version"], p["name"], p["checksum"], datetime.now(UTC)))
        return None

    def query(self, query: str | None = None, parameters: Any = None, *a: Any, **k: Any) -> Any:
        assert query is not None
        assert "schema_migrations" in query
        return _Result(sorted(self.recorded))

    def applied_statements(self) -> list[str]:
        return [c for c in self.commands if "schema_migrations" not in c and "DATABASE" not in c]


def _write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql, encoding="utf-8")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    _write(tmp_path, "0002_second.sql", "CREATE TABLE IF NOT EXISTS {database}.b (x UInt8);\n")
    _write(
        tmp_path,
        "0001_first.sql",
        "-- a comment; with a semicolon\nCREATE TABLE IF NOT EXISTS {database}.a (x UInt8)\n"
        "ENGINE = Memory;\n\nCREATE VIEW IF NOT EXISTS {database}.v AS SELECT 1;\n",
    )
    return tmp_path


def test_applies_in_version_order_and_records_each(folder: Path) -> None:
    client = FakeClient()
    done = apply_pending(client, database="db1", migrations=load_migrations(folder))
    assert [m.name for m in done] == ["0001_first", "0002_second"]
    assert client.applied_statements() == [
        "CREATE TABLE IF NOT EXISTS db1.a (x UInt8)\nENGINE = Memory",
        "CREATE VIEW IF NOT EXISTS db1.v AS SELECT 1",
        "CREATE TABLE IF NOT EXISTS db1.b (x UInt8)",
    ]
    assert [(v, n) for v, n, _, _ in client.recorded] == [(1, "0001_first"), (2, "0002_second")]
    assert client.commands[0] == "CREATE DATABASE IF NOT EXISTS db1"


def test_second_run_is_a_no_op(folder: Path) -> None:
    client = FakeClient()
    apply_pending(client, database="db1", migrations=load_migrations(folder))
    count = len(client.commands)
    assert apply_pending(client, database="db1", migrations=load_migrations(folder)) == []
    assert len(client.commands) == count
    status = migration_status(client, database="db1", migrations=load_migrations(folder))
    assert [m.name for m, _ in status.applied] == ["0001_first", "0002_second"]
    assert status.pending == []


def test_only_new_migrations_run(folder: Path) -> None:
    client = FakeClient()
    apply_pending(client, database="db1", migrations=load_migrations(folder))
    _write(folder, "0003_third.sql", "ALTER TABLE {database}.b ADD COLUMN IF NOT EXISTS y UInt8")
    before = len(client.applied_statements())
    done = apply_pending(client, database="db1", migrations=load_migrations(folder))
    assert [m.name for m in done] == ["0003_third"]
    assert client.applied_statements()[before:] == [
        "ALTER TABLE db1.b ADD COLUMN IF NOT EXISTS y UInt8"
    ]


def test_changed_applied_migration_is_refused_and_nothing_runs(folder: Path) -> None:
    client = FakeClient()
    apply_pending(client, database="db1", migrations=load_migrations(folder))
    _write(folder, "0002_second.sql", "CREATE TABLE IF NOT EXISTS {database}.b (x UInt16);\n")
    _write(folder, "0003_third.sql", "SELECT 1")
    count = len(client.commands)
    with pytest.raises(MigrationError, match=r"0002_second\.sql changed after it was applied"):
        apply_pending(client, database="db1", migrations=load_migrations(folder))
    assert len(client.commands) == count


def test_removed_applied_migration_is_refused(folder: Path) -> None:
    client = FakeClient()
    apply_pending(client, database="db1", migrations=load_migrations(folder))
    (folder / "0001_first.sql").unlink()
    with pytest.raises(MigrationError, match="no longer on disk"):
        migration_status(client, database="db1", migrations=load_migrations(folder))


def test_failed_statement_leaves_that_migration_pending(folder: Path) -> None:
    class Failing(FakeClient):
        def command(self, cmd: str, parameters: Any = None, *args: Any, **kwargs: Any) -> Any:
            if ".b (" in cmd:
                raise RuntimeError("boom")
            return super().command(cmd, parameters, *args, **kwargs)

    client = Failing()
    with pytest.raises(RuntimeError, match="boom"):
        apply_pending(client, database="db1", migrations=load_migrations(folder))
    assert [n for _, n, _, _ in client.recorded] == ["0001_first"]


def test_bad_names_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "1_x.sql", "SELECT 1")
    with pytest.raises(MigrationError, match="NNNN_name"):
        load_migrations(tmp_path)
    (tmp_path / "1_x.sql").unlink()
    _write(tmp_path, "0001_a.sql", "SELECT 1")
    _write(tmp_path, "0001_b.sql", "SELECT 2")
    with pytest.raises(MigrationError, match="version 1"):
        load_migrations(tmp_path)
    with pytest.raises(MigrationError, match="plain database name"):
        migration_status(FakeClient(), database="a; DROP", migrations=[])


def test_bundled_migrations_load_and_split() -> None:
    migrations = load_migrations(runner.MIGRATIONS_DIR)
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    for migration in migrations:
        statements = migration.statements("audit")
        assert statements
        assert all("{database}" not in s for s in statements)
        assert all("IF NOT EXISTS" in s for s in statements if s.startswith("CREATE"))


def test_split_keeps_semicolons_inside_lines() -> None:
    assert split_statements("SELECT ';' AS x;\nSELECT 2\n") == ["SELECT ';' AS x", "SELECT 2"]
