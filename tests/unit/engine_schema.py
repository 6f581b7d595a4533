"""What the engine says the tables of a database are, and how two such tables differ.

:func:`read_schema` asks the engine's system tables (``system.tables``, ``system.columns``,
``system.data_skipping_indices``, ``system.projections`` where the engine has it) and
returns every table of a database as a :class:`TableShape`, its strings as the engine
prints them with the database's name replaced by ``{database}``. The ``differences``
functions are pure and name each difference in words.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from deploy.stack.chgateway.engine import Engine
from tests.unit.cluster_ddl_rewrite import column_names, depth_mask

_CLAUSES = ("PARTITION BY", "PRIMARY KEY", "ORDER BY", "SAMPLE BY", "TTL", "SETTINGS")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    default_kind: str
    default_expression: str
    codec: str


@dataclass(frozen=True)
class TableShape:
    """One table (or dictionary) as the engine describes it; ``columns`` in position
    order, ``indexes`` and ``projections`` by name; ``create`` is the whole statement
    with its own name replaced by ``{table}`` (what the named fields do not cover)."""

    name: str
    engine: str
    engine_arguments: str
    partition_key: str
    sorting_key: str
    primary_key: str
    sampling_key: str
    ttl: str
    settings: str
    columns: tuple[Column, ...]
    indexes: tuple[tuple[str, str, str, int], ...]
    projections: tuple[tuple[str, ...], ...]
    create: str


def engine_clauses(engine_full: str) -> dict[str, str]:
    """``engine_full`` as printed by the engine, split into the engine call (key
    ``ENGINE``) and its top-level clauses (``ORDER BY``, ``TTL``, ``SETTINGS``, ...)."""
    mask = depth_mask(engine_full)
    cuts = [(0, "ENGINE", 0)]
    for clause in _CLAUSES:
        for match in re.finditer(rf" {clause} ", engine_full):
            if mask[match.start()] == 0:
                cuts.append((match.start(), clause, match.end()))
    cuts.sort()
    ends = [start for start, _, _ in cuts[1:]] + [len(engine_full)]
    return {
        clause: engine_full[begin:end].strip()
        for (_, clause, begin), end in zip(cuts, ends, strict=True)
    }


def _rows(engine: Engine, sql: str) -> list[dict[str, Any]]:
    body = engine.query(sql, fmt="JSONEachRow").body.decode()
    return [json.loads(line) for line in body.splitlines() if line]


def read_schema(engine: Engine, database: str) -> dict[str, TableShape]:
    """Every table and dictionary of ``database`` (a plain name), by name."""

    def plain(text: str) -> str:
        return re.sub(rf"\b{database}\.", "{database}.", text)

    where = f"WHERE database = '{database}'"
    columns: dict[str, list[Column]] = {}
    for row in _rows(
        engine,
        "SELECT table, name, type, default_kind, default_expression, compression_codec "
        f"FROM system.columns {where} ORDER BY table, position",
    ):
        columns.setdefault(row["table"], []).append(
            Column(
                row["name"],
                row["type"],
                row["default_kind"],
                plain(row["default_expression"]),
                row["compression_codec"],
            )
        )
    indexes: dict[str, list[tuple[str, str, str, int]]] = {}
    for row in _rows(
        engine,
        "SELECT table, name, type_full, expr, granularity FROM system.data_skipping_indices "
        f"{where} ORDER BY table, name",
    ):
        entry = (row["name"], row["type_full"], plain(row["expr"]), int(row["granularity"]))
        indexes.setdefault(row["table"], []).append(entry)
    projections: dict[str, list[tuple[str, ...]]] = {}
    if _rows(
        engine, "SELECT 1 FROM system.tables WHERE database = 'system' AND name = 'projections'"
    ):
        for row in _rows(
            engine,
            f"SELECT table, name, type, sorting_key, query FROM system.projections {where} "
            "ORDER BY table, name",
        ):
            projection = (row["name"], row["type"], str(row["sorting_key"]), plain(row["query"]))
            projections.setdefault(row["table"], []).append(projection)
    shapes = {}
    for row in _rows(
        engine,
        "SELECT name, engine, engine_full, create_table_query, partition_key, sorting_key, "
        f"primary_key, sampling_key FROM system.tables {where} ORDER BY name",
    ):
        name = row["name"]
        clauses = engine_clauses(plain(row["engine_full"]))
        call = clauses.get("ENGINE", "")
        create = plain(row["create_table_query"]).replace(f"{{database}}.{name} ", "{table} ", 1)
        shapes[name] = TableShape(
            name=name,
            engine=row["engine"],
            engine_arguments=re.sub(r"^`?\w+`?", "", call),
            partition_key=plain(row["partition_key"]),
            sorting_key=plain(row["sorting_key"]),
            primary_key=plain(row["primary_key"]),
            sampling_key=plain(row["sampling_key"]),
            ttl=clauses.get("TTL", ""),
            settings=clauses.get("SETTINGS", ""),
            columns=tuple(columns.get(name, ())),
            indexes=tuple(indexes.get(name, ())),
            projections=tuple(projections.get(name, ())),
            create=create,
        )
    return shapes


def _column_differences(
    single: tuple[Column, ...], cluster: tuple[Column, ...], fields: tuple[str, ...]
) -> list[str]:
    found = []
    ours, theirs = {c.name: c for c in single}, {c.name: c for c in cluster}
    for name in ours.keys() - theirs.keys():
        found.append(f"column {name} missing from the cluster DDL")
    for name in theirs.keys() - ours.keys():
        found.append(f"column {name} not in the migrations")
    for name in ours.keys() & theirs.keys():
        for field in fields:
            a, b = getattr(ours[name], field), getattr(theirs[name], field)
            if a != b:
                found.append(
                    f"column {name} {field}: {a!r} in the migrations, {b!r} in the cluster DDL"
                )
    order = [c.name for c in single if c.name in theirs]
    if order != [c.name for c in cluster if c.name in ours]:
        found.append(
            f"column order: {[c.name for c in single]} in the migrations, "
            f"{[c.name for c in cluster]} in the cluster DDL"
        )
    return sorted(found)


_COLUMN_FIELDS = ("type", "default_kind", "default_expression", "codec")
_TABLE_FIELDS = (
    "engine",
    "engine_arguments",
    "partition_key",
    "sorting_key",
    "primary_key",
    "sampling_key",
    "ttl",
    "settings",
    "indexes",
    "projections",
)


def table_differences(single: TableShape, cluster: TableShape) -> list[str]:
    """Every way ``cluster`` (the rewritten cluster table) differs from ``single`` (the
    migrations'): columns, engine and its arguments (the version column), keys, TTL,
    settings, skip indexes, projections, then anything else of the statement."""
    found = _column_differences(single.columns, cluster.columns, _COLUMN_FIELDS)
    for field in _TABLE_FIELDS:
        a, b = getattr(single, field), getattr(cluster, field)
        if a != b:
            found.append(f"{field}: {a!r} in the migrations, {b!r} in the cluster DDL")
    if not found and single.create != cluster.create:
        found.append(
            f"definition: {single.create!r} in the migrations, "
            f"{cluster.create!r} in the cluster DDL"
        )
    return found


def keeper_map_differences(single: TableShape, cluster: TableShape) -> list[str]:
    """A KeeperMap table (created as a MergeTree ordered by its primary key) against the
    migrations' table: the same columns (codecs aside: Keeper stores no columns) plus its
    key column, computed from the columns of the migrations' primary key."""
    key = cluster.sorting_key
    rest = tuple(c for c in cluster.columns if c.name != key)
    found = _column_differences(single.columns, rest, _COLUMN_FIELDS[:-1])
    key_column = next((c for c in cluster.columns if c.name == key), None)
    wanted = column_names(single.primary_key)
    if key_column is None or key_column.default_kind not in {"DEFAULT", "MATERIALIZED"}:
        found.append(f"key column {key} is not computed (DEFAULT) from {sorted(wanted)}")
    elif column_names(key_column.default_expression) != wanted:
        found.append(
            f"key column {key} = {key_column.default_expression} is computed from "
            f"{sorted(column_names(key_column.default_expression))}, the migrations' "
            f"primary key from {sorted(wanted)}"
        )
    return found


def distributed_differences(local: TableShape, distributed: TableShape) -> list[str]:
    """A Distributed table's columns (its Null stand-in) against its local table's."""
    return _column_differences(local.columns, distributed.columns, _COLUMN_FIELDS[:-1])
