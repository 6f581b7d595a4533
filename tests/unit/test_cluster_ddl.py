"""deploy/clickhouse/cluster kept in step with the single-node migrations by what the
engine says: each migration applied to one scratch database of an in-process chdb engine,
its cluster copy rewritten for one node (:mod:`tests.unit.cluster_ddl_rewrite`) applied
to another, and the two compared table by table after every version
(:mod:`tests.unit.engine_schema`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.migrations.runner import MIGRATIONS_DIR, load_migrations
from deploy.stack.chgateway.engine import Engine, EngineUnavailable
from deploy.stack.chgateway.protocol import EngineError
from tests.unit.cluster_ddl_rewrite import (
    ClusterLayout,
    RewriteError,
    keeper_path_problems,
    rewrite_file,
)
from tests.unit.engine_schema import (
    distributed_differences,
    keeper_map_differences,
    read_schema,
    table_differences,
)

CLUSTER_DIR = Path(__file__).resolve().parents[2] / "deploy" / "clickhouse" / "cluster"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    try:
        opened = Engine(tmp_path_factory.mktemp("cluster-ddl-engine"), max_concurrent=1)
    except EngineUnavailable as ex:
        pytest.skip(str(ex))
    yield opened
    opened.close()


def _run(engine: Engine, statements: list[str], source: str) -> None:
    for statement in statements:
        try:
            engine.query(statement, fmt="TabSeparated")
        except EngineError as ex:
            raise AssertionError(f"{source}: the engine refused {statement!r}: {ex}") from ex


def drift(engine: Engine, single_db: str, cluster_db: str, layout: ClusterLayout) -> list[str]:
    """Every difference between the migrations' tables (``single_db``) and the rewritten
    cluster DDL's (``cluster_db``), each prefixed by the table's name."""
    single, cluster = read_schema(engine, single_db), read_schema(engine, cluster_db)
    found: list[str] = []
    for name, table in sorted(single.items()):
        target = layout.distributed[name].local if name in layout.distributed else name
        if target not in cluster:
            found.append(f"{name}: created by the migrations, missing from the cluster DDL")
            continue
        compare = keeper_map_differences if name in layout.keeper_maps else table_differences
        label = name if target == name else f"{name} (cluster: {target})"
        found += [f"{label}: {d}" for d in compare(table, cluster[target])]
    locals_ = {d.local for d in layout.distributed.values()}
    for name in sorted(cluster.keys() - single.keys() - locals_):
        found.append(f"{name}: in the cluster DDL, not created by the migrations")
    for name, distributed in sorted(layout.distributed.items()):
        if name in cluster and distributed.local in cluster:
            found += [
                f"{name} (Distributed over {distributed.local}): {d}"
                for d in distributed_differences(cluster[distributed.local], cluster[name])
            ]
    return found


def test_every_migration_has_a_cluster_copy_and_no_other() -> None:
    migrations = sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))
    assert sorted(p.name for p in CLUSTER_DIR.glob("*.sql")) == migrations


def cluster_drift(engine: Engine, tag: str, cluster_files: dict[str, str]) -> list[str]:
    """Apply the migrations to ``<tag>_single`` and ``cluster_files`` (file name -> text)
    rewritten to ``<tag>_cluster``, version by version; the differences after the first
    version that has any (each line prefixed by it), or the Keeper path problems."""
    single_db, cluster_db = f"{tag}_single", f"{tag}_cluster"
    engine.query(f"CREATE DATABASE {single_db}", fmt="TabSeparated")
    layout = ClusterLayout()
    for migration in load_migrations():
        _run(engine, migration.statements(single_db), f"{migration.name}.sql")
        name = f"{migration.name}.sql"
        statements = rewrite_file(cluster_files[name], name, cluster_db, layout)
        _run(engine, statements, f"deploy/clickhouse/cluster/{name} (rewritten)")
        found = drift(engine, single_db, cluster_db, layout)
        if found:
            return [f"after {migration.name}: {line}" for line in found]
    return keeper_path_problems(layout)


def _cluster_files() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(CLUSTER_DIR.glob("*.sql"))}


def test_cluster_ddl_matches_the_migrations_in_the_engine(engine: Engine) -> None:
    """After each version, every table the migrations created has its cluster counterpart
    with the same columns, engine, keys, TTL, settings, indexes and projections."""
    found = cluster_drift(engine, "ddl", _cluster_files())
    assert not found, "deploy/clickhouse/cluster drifted from the migrations:\n" + "\n".join(found)


_EVENTS, _PROGRESS = "0002_events.sql", "0003_writer_progress.sql"
_INDEXES, _INTEGRITY = "0004_viewer_indexes.sql", "0005_integrity.sql"


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            _EVENTS,
            "CODEC(ZSTD(3)),\n    changes",
            "CODEC(ZSTD(1)),\n    changes",
            "events (cluster: events_local): column details codec: 'CODEC(ZSTD(3))'",
        ),
        (
            _EVENTS,
            "toIntervalDay(retention_days)\n",
            "toIntervalDay(retention_days + 1)\n",
            "events (cluster: events_local): ttl: ",
        ),
        (
            _EVENTS,
            "source Nullable(String) CODEC(ZSTD(1)),\n",
            "source Nullable(String) CODEC(ZSTD(1)),\n    extra UInt8,\n",
            "events (cluster: events_local): column extra not in the migrations",
        ),
        (
            _EVENTS,
            "category LowCardinality(String) CODEC(ZSTD(1)),\n",
            "",
            "events (cluster: events_local): column category missing from the cluster DDL",
        ),
        (
            _EVENTS,
            "merge_with_ttl_timeout = 14400",
            "merge_with_ttl_timeout = 3600",
            "events (cluster: events_local): settings: ",
        ),
        (
            _EVENTS,
            "idx_action action TYPE set(512)",
            "idx_action action TYPE set(100)",
            "events (cluster: events_local): indexes: ",
        ),
        (
            _INDEXES,
            "ingested_at TYPE minmax GRANULARITY 1",
            "ingested_at TYPE minmax GRANULARITY 2",
            "after 0004_viewer_indexes: events (cluster: events_local): indexes: ",
        ),
        (
            _INTEGRITY,
            "'{shard}-{replica}', size)",
            "'{shard}-{replica}')",
            "integrity_heads: engine_arguments: '(size)' in the migrations, '' in the cluster",
        ),
        (
            _INTEGRITY,
            "ORDER BY (tenant_id, size, time)",
            "ORDER BY (tenant_id, time, size)",
            "integrity_checkpoints: sorting_key: ",
        ),
        (
            _INTEGRITY,
            "    size UInt64,\n    root FixedString(32),\n    time",
            "    root FixedString(32),\n    size UInt64,\n    time",
            "integrity_checkpoints: column order: ['tenant_id', 'size', 'root'",
        ),
        (
            _PROGRESS,
            "'/', toString(partition)",
            "'/', 'p'",
            "writer_progress: key column key = concat(target, '/', topic, '/', 'p') is computed",
        ),
        (
            "0001_tenant_retention.sql",
            "updated_by String DEFAULT ''",
            "updated_by String",
            "tenant_retention: column updated_by default_kind: 'DEFAULT' in the migrations, ''",
        ),
        (
            "0001_tenant_retention.sql",
            "LIFETIME(MIN 30 MAX 60)",
            "LIFETIME(MIN 30 MAX 90)",
            "tenant_retention_dict: definition: ",
        ),
        (
            "0006_integrity_prune.sql",
            "CREATE TABLE",
            "CREATE TABLE audit.unused ON CLUSTER "
            "'{cluster}' (a UInt8) ENGINE = ReplicatedMergeTree('/p', '{replica}') ORDER BY a;\n"
            "CREATE TABLE",
            "unused: in the cluster DDL, not created by the migrations",
        ),
        (
            _EVENTS,
            "/clickhouse/tables/{shard}/audit/events_local",
            "/clickhouse/tables/all/x",
            "events_local is sharded by events but its Keeper path /clickhouse/tables/all/x has",
        ),
    ],
)
def test_drift_is_found_and_named(
    engine: Engine, file: str, old: str, new: str, expected: str, request: pytest.FixtureRequest
) -> None:
    files = _cluster_files()
    assert old in files[file]
    files[file] = files[file].replace(old, new, 1)
    found = cluster_drift(engine, f"drift{request.node.callspec.indices['file']}", files)
    assert any(expected in line for line in found), found


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (_EVENTS, "cityHash64(tenant_id)", "rand()", "sharding key rand() is not an expression"),
        (_EVENTS, ", cityHash64(tenant_id))", ")", "has no sharding key"),
        (_EVENTS, "audit, events_local,", "audit, events,", "it reads audit.events, not"),
        (_EVENTS, "ON CLUSTER '{cluster}' AS", "AS", "runs on one node only"),
        (
            _EVENTS,
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit/events_local', "
            "'{replica}', ingested_at)",
            "ReplacingMergeTree(ingested_at)",
            "which a cluster does not replicate",
        ),
        (_PROGRESS, "PRIMARY KEY key", "PRIMARY KEY (key, topic)", "must end with PRIMARY KEY"),
        (
            _INTEGRITY,
            "'{shard}-{replica}', size)",
            "'{shard}-{replica}', size, '{layer}')",
            "macros {layer}",
        ),
    ],
)
def test_what_cannot_be_rewritten_says_what_to_change(
    file: str, old: str, new: str, expected: str
) -> None:
    files = _cluster_files()
    assert old in files[file]
    files[file] = files[file].replace(old, new, 1)
    with pytest.raises(RewriteError, match=re.escape(expected)):
        _rewrite_all(files)


def _rewrite_all(files: dict[str, str]) -> None:
    layout = ClusterLayout()
    for name, text in files.items():
        rewrite_file(text, name, "scratch", layout)
