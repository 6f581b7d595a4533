"""The cluster DDL of ``deploy/clickhouse/cluster`` rewritten, mechanically, for one node.

What a single embedded engine (no Keeper, no cluster) cannot run is turned into what it
can, and what that loses is recorded so the caller can check it otherwise:

- ``ON CLUSTER '{cluster}'`` is removed; a statement without it raises :class:`RewriteError`
  (on a cluster it would run on one node only).
- The cluster DDL's database (``audit``) and the ``{database}`` macro become the scratch
  database.
- ``Replicated<X>MergeTree(path, replica[, args])`` becomes ``<X>MergeTree([args])``, and
  ``replicated_deduplication_window`` its non-replicated counterpart
  ``non_replicated_deduplication_window``; a plain ``<X>MergeTree`` (not replicated on a
  cluster) raises.
- ``CREATE TABLE d AS local ENGINE = Distributed(cluster, db, local, key)`` becomes a
  ``Null`` table ``AS`` the local one (so later ALTERs of its columns apply and can be
  compared); the local table must be a replicated one created before, ``db`` the cluster
  DDL's database and the sharding key an expression of ``tenant_id`` only.
- ``ENGINE = KeeperMap(path) PRIMARY KEY k`` becomes ``ENGINE = MergeTree ORDER BY k``, so
  the engine checks and prints its columns; only those and the key are comparable.
- Any macro left (``{shard}`` outside an engine's arguments, ...) raises.

Pure text work; :class:`RewriteError` messages say what to change in the cluster file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from consumers.migrations.runner import split_statements

CLUSTER_DATABASE = "audit"
TENANT_COLUMN = "tenant_id"

_ON_CLUSTER = re.compile(r"\s+ON\s+CLUSTER\s+'\{cluster\}'", re.IGNORECASE)
_ENGINE = re.compile(r"\bENGINE\s*=\s*`?(\w+)`?", re.IGNORECASE)
_REPLICATED = re.compile(r"Replicated(\w*MergeTree)")
_CREATE_TABLE = re.compile(
    r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\.(\w+)\s*(AS\s+(\w+)\.(\w+)\s*)?",
    re.IGNORECASE,
)
_MACRO = re.compile(r"\{\w+\}")
_IDENTIFIER = re.compile(r"`([^`]+)`|\b([A-Za-z_]\w*)\b(?!\s*\()")
_LITERAL = re.compile(r"'(?:[^'\\]|\\.|'')*'")


class RewriteError(Exception):
    """A cluster statement cannot be rewritten for one node, or breaks a cluster rule; the
    message names the file and says what to change."""


@dataclass(frozen=True)
class Distributed:
    """A Distributed table: skipped (a Null stand-in), its target and key checked."""

    name: str
    local: str
    sharding_key: str


@dataclass
class ClusterLayout:
    """What the rewrite of the files so far created, in the cluster DDL's own terms:
    replicated tables with their Keeper path, Distributed tables, KeeperMap tables."""

    keeper_paths: dict[str, str] = field(default_factory=dict)
    distributed: dict[str, Distributed] = field(default_factory=dict)
    keeper_maps: set[str] = field(default_factory=set)


def depth_mask(text: str) -> list[int]:
    """Per character: its parenthesis depth, or -1 inside a quoted literal or identifier."""
    mask: list[int] = []
    depth, quote, escaped = 0, "", False
    for char in text:
        if quote:
            mask.append(-1)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char in "'`\"":
            quote = char
            mask.append(-1)
            continue
        if char == ")":
            depth -= 1
        mask.append(depth)
        if char == "(":
            depth += 1
    return mask


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """``text`` split at the separators outside parentheses and quotes, each part stripped."""
    mask = depth_mask(text)
    parts, start = [], 0
    for index, char in enumerate(text):
        if char == separator and mask[index] == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def call_arguments(text: str, open_paren: int) -> tuple[list[str], int]:
    """The arguments of the call whose ``(`` is at ``open_paren``, and the index after its
    ``)``."""
    mask = depth_mask(text)
    base = mask[open_paren]
    for index in range(open_paren + 1, len(text)):
        if text[index] == ")" and mask[index] == base:
            return split_top_level(text[open_paren + 1 : index]), index + 1
    raise RewriteError(f"unbalanced parentheses in: {text}")


def column_names(expression: str) -> set[str]:
    """The bare identifiers of an expression (not function names, not inside literals)."""
    found = set()
    for match in _IDENTIFIER.finditer(_LITERAL.sub("''", expression)):
        name = match.group(1) or match.group(2)
        if not name[0].isdigit() and name.upper() not in {"AS", "AND", "OR", "NOT", "NULL"}:
            found.add(name)
    return found


def _is_literal(argument: str) -> bool:
    return _LITERAL.fullmatch(argument) is not None


def rewrite_file(sql: str, source: str, scratch: str, layout: ClusterLayout) -> list[str]:
    """The statements of the cluster file ``source`` (text ``sql``) for one node, in
    database ``scratch``; ``layout`` is updated with what they create."""
    return [
        _rewrite(statement, f"{source} statement {number}", scratch, layout)
        for number, statement in enumerate(split_statements(sql), start=1)
    ]


def _rewrite(statement: str, where: str, scratch: str, layout: ClusterLayout) -> str:
    if len(_ON_CLUSTER.findall(statement)) != 1:
        raise RewriteError(
            f"{where}: runs on one node only; add ON CLUSTER '{{cluster}}' after the "
            f"table or database name: {statement[:80]}"
        )
    text = _ON_CLUSTER.sub("", statement, count=1).replace("{database}", CLUSTER_DATABASE)
    engine = next((m for m in _ENGINE.finditer(text) if depth_mask(text)[m.start()] == 0), None)
    if engine is not None:
        text = _rewrite_engine(text, engine, where, layout)
    text = re.sub(rf"\b{CLUSTER_DATABASE}\b(?=\.\w)", scratch, text)
    text = re.sub(
        rf"^(CREATE\s+DATABASE\s+(?:IF\s+NOT\s+EXISTS\s+)?){CLUSTER_DATABASE}\b",
        rf"\g<1>{scratch}",
        text,
        flags=re.IGNORECASE,
    )
    left = sorted(set(_MACRO.findall(text)))
    if left:
        raise RewriteError(
            f"{where}: macros {', '.join(left)} where no single-node counterpart exists; "
            "use {cluster} only in ON CLUSTER and Distributed, {shard} and {replica} only "
            "in a Replicated engine's path and replica name"
        )
    return text


def _table(text: str, where: str) -> re.Match[str]:
    head = _CREATE_TABLE.match(text)
    if head is None or head.group(1) != CLUSTER_DATABASE:
        raise RewriteError(f"{where}: an ENGINE outside CREATE TABLE {CLUSTER_DATABASE}.<name>")
    return head


def _rewrite_engine(text: str, engine: re.Match[str], where: str, layout: ClusterLayout) -> str:
    head = _table(text, where)
    name, kind = head.group(2), engine.group(1)
    after = engine.end()
    args: list[str] = []
    if after < len(text) and text[after] == "(":
        args, after = call_arguments(text, after)
    replicated = _REPLICATED.fullmatch(kind)
    if replicated is not None:
        if len(args) >= 2 and _is_literal(args[0]) and _is_literal(args[1]):
            layout.keeper_paths[name] = args[0].strip("'")
            args = args[2:]
        elif args and _is_literal(args[0]):
            raise RewriteError(f"{where}: {kind} takes a Keeper path and a replica name")
        plain = f"{replicated.group(1)}({', '.join(args)})" if args else replicated.group(1)
        rest = re.sub(
            r"\breplicated_deduplication_window\b",
            "non_replicated_deduplication_window",
            text[after:],
        )
        return f"{text[: engine.start()]}ENGINE = {plain}{rest}"
    if kind.endswith("MergeTree"):
        raise RewriteError(
            f"{where}: {name} is a {kind}, which a cluster does not replicate; "
            f"use Replicated{kind}('/clickhouse/tables/...', '{{replica}}', ...)"
        )
    if kind == "Distributed":
        return _distributed(text, head, args, where, layout)
    if kind == "KeeperMap":
        key = re.fullmatch(r"\s*PRIMARY\s+KEY\s+\(?\s*(\w+)\s*\)?\s*", text[after:], re.I)
        if key is None:
            raise RewriteError(
                f"{where}: KeeperMap table {name} must end with PRIMARY KEY <one column>"
            )
        layout.keeper_maps.add(name)
        return f"{text[: engine.start()]}ENGINE = MergeTree ORDER BY {key.group(1)}"
    return text


def _distributed(
    text: str, head: re.Match[str], args: list[str], where: str, layout: ClusterLayout
) -> str:
    name, local = head.group(2), head.group(5)
    if local is None or head.group(4) != CLUSTER_DATABASE:
        raise RewriteError(
            f"{where}: write the Distributed table as CREATE TABLE {CLUSTER_DATABASE}.{name} "
            f"ON CLUSTER '{{cluster}}' AS {CLUSTER_DATABASE}.<local table> ENGINE = "
            "Distributed(...), so that its columns are the local table's"
        )
    if len(args) < 4:
        raise RewriteError(
            f"{where}: Distributed table {name} has no sharding key; add cityHash64("
            f"{TENANT_COLUMN}) as its fourth argument so a tenant's rows live on one shard"
        )
    cluster, database, table, key = (arg.strip("'`\"") for arg in args[:4])
    problems = []
    if cluster != "{cluster}":
        problems.append(f"its cluster is {args[0]}, not '{{cluster}}'")
    if database != CLUSTER_DATABASE or table != local:
        problems.append(f"it reads {database}.{table}, not {CLUSTER_DATABASE}.{local}")
    if local not in layout.keeper_paths:
        problems.append(f"{local} is not a replicated table created before it")
    if column_names(key) != {TENANT_COLUMN}:
        problems.append(f"its sharding key {key} is not an expression of {TENANT_COLUMN} only")
    if problems:
        raise RewriteError(f"{where}: Distributed table {name}: {'; '.join(problems)}")
    layout.distributed[name] = Distributed(name, local, key)
    return f"{text[: head.end()].rstrip()} ENGINE = Null"


def keeper_path_problems(layout: ClusterLayout) -> list[str]:
    """Replicated tables sharing a Keeper path (the second would join the first as a
    replica), and sharded tables (behind a Distributed) whose path lacks ``{shard}``."""
    problems = []
    owners: dict[str, str] = {}
    for table, path in sorted(layout.keeper_paths.items()):
        if path in owners:
            problems.append(f"{owners[path]} and {table} share the Keeper path {path}")
        owners.setdefault(path, table)
    for distributed in layout.distributed.values():
        path = layout.keeper_paths.get(distributed.local, "")
        if "{shard}" not in path:
            problems.append(
                f"{distributed.local} is sharded by {distributed.name} but its Keeper path "
                f"{path} has no {{shard}}: every shard would replicate the same rows"
            )
    return problems
