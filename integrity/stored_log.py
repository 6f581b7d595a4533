"""Reading one account's log as the store holds it (leaves, events, checkpoints, prune
statements) from ClickHouse, for :func:`integrity.verification.check_log`. Leaves are read
whole, packed (:class:`integrity.packed.PackedLeaves`, 68 bytes each); events are
streamed, a block at a time.

Every read is ``FINAL``: a row written twice is one fact. The events are read back into
the nested shape :mod:`integrity.leaf` hashes (tuples as objects, changes as a list of
objects), so a verifier recomputes exactly what the appender hashed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from clickhouse_connect.driver.client import Client

from consumers.retention import get_retention
from integrity.checkpoint_store import CHECKPOINTS_TABLE
from integrity.packed import PackedLeaves
from integrity.prune_store import PRUNE_TABLE
from integrity.verify_model import StoredEvent, StoredLog, Window

_IDS_PER_QUERY = 10_000
_LEAVES_PER_QUERY = 50_000
_EVENT_COLUMNS = """
    toString(event_id), tenant_id, occurred_at, action, category,
    actor.type, actor.id, actor.name, actor.email,
    resource.type, resource.id, resource.name,
    workspace.id, workspace.name, workspace.environment,
    request.ip, request.user_agent, request.request_id, request.session_id,
    outcome.status, outcome.reason,
    details, changes, source, ingested_at
"""


def read_log(
    client: Client, database: str, account: str, window: Window | None = None
) -> StoredLog:
    """The account's leaves in index order, its checkpoints and prune statements, read
    now; its stored events (those ``window`` holds, when given) read as the log's
    ``events`` are iterated, a block of rows at a time (bounded memory), through
    ``client``, which must stay open until then. ``database`` is a checked identifier
    (the settings check it)."""
    leaves = _leaves(client, database, account)
    notes = _notes(client, f"{database}.{CHECKPOINTS_TABLE}", account, "size, time")
    prune_notes = _notes(client, f"{database}.{PRUNE_TABLE}", account, "time")
    retention = get_retention(client, account, database=database)
    return StoredLog(
        account,
        leaves,
        _events(client, database, account, window or Window()),
        notes,
        retention_days=retention.retention_days,
        prune_notes=prune_notes,
        window=window,
        stored=None if window is None else partial(_stored_ids, client, database, account),
    )


def _leaves(client: Client, database: str, account: str) -> PackedLeaves:
    """The account's leaves in index order, packed (68 bytes a leaf), read a page of
    ``_LEAVES_PER_QUERY`` at a time by index (keyset pagination): an engine may answer a
    query in one block, which the client turns into Python rows all at once."""
    leaves = PackedLeaves()
    start = 0
    while True:
        rows = client.query(
            f"SELECT leaf_index, toString(event_id), leaf_hash, partition, kafka_offset "  # noqa: S608
            f"FROM {database}.integrity_leaves FINAL WHERE tenant_id = {{account:String}} "
            "AND leaf_index >= {start:UInt64} ORDER BY leaf_index LIMIT {page:UInt32}",
            parameters={"account": account, "start": start, "page": _LEAVES_PER_QUERY},
        ).result_rows
        for index, event_id, leaf_hash, partition, offset in rows:
            leaves.append(int(index), str(event_id), bytes(leaf_hash), int(partition), int(offset))
        if len(rows) < _LEAVES_PER_QUERY:
            return leaves
        start = int(rows[-1][0]) + 1


def _events(
    client: Client, database: str, account: str, window: Window
) -> Iterator[tuple[str, StoredEvent]]:
    """The account's stored events in ``window``, streamed (rows are read as the iterator
    is advanced; the query is sent at the first)."""
    where = ["tenant_id = {account:String}"]
    parameters: dict[str, Any] = {"account": account}
    if window.start is not None:
        where.append("occurred_at >= {start:DateTime64(3, 'UTC')}")
        parameters["start"] = window.start
    if window.end is not None:
        where.append("occurred_at < {end:DateTime64(3, 'UTC')}")
        parameters["end"] = window.end
    with client.query_row_block_stream(
        f"SELECT {_EVENT_COLUMNS} FROM {database}.events FINAL "  # noqa: S608
        f"WHERE {' AND '.join(where)}",
        parameters=parameters,
    ) as stream:
        for block in stream:
            for row in block:
                event, ingested_at = _event(row)
                yield str(event["event_id"]), StoredEvent(event, ingested_at)


def _stored_ids(client: Client, database: str, account: str, event_ids: Sequence[str]) -> set[str]:
    """Which of ``event_ids`` the account has stored, in any window."""
    found: set[str] = set()
    for start in range(0, len(event_ids), _IDS_PER_QUERY):
        found.update(
            str(event_id)
            for (event_id,) in client.query(
                f"SELECT DISTINCT toString(event_id) FROM {database}.events "  # noqa: S608
                "WHERE tenant_id = {account:String} AND event_id IN {ids:Array(UUID)}",
                parameters={"account": account, "ids": event_ids[start : start + _IDS_PER_QUERY]},
            ).result_rows
        )
    return found


def _notes(client: Client, table: str, account: str, order: str) -> list[str]:
    """The signed notes of ``account`` in ``table`` (a checked name), in ``order``."""
    return [
        str(note)
        for (note,) in client.query(
            f"SELECT note FROM {table} FINAL WHERE tenant_id = {{account:String}} "  # noqa: S608
            f"ORDER BY {order}",
            parameters={"account": account},
        ).result_rows
    ]


def read_event(client: Client, database: str, account: str, event_id: str) -> dict[str, Any] | None:
    """One stored event of ``account`` in the shape :mod:`integrity.leaf` hashes, or None."""
    rows = client.query(
        f"SELECT {_EVENT_COLUMNS} FROM {database}.events FINAL "  # noqa: S608
        "WHERE tenant_id = {account:String} AND event_id = {event_id:UUID}",
        parameters={"account": account, "event_id": event_id},
    ).result_rows
    return _event(rows[0])[0] if rows else None


def _event(row: Sequence[Any]) -> tuple[dict[str, Any], datetime]:
    (event_id, tenant, occurred_at, action, category, *rest) = row
    actor = _object(("type", "id", "name", "email"), rest[0:4])
    resource = _object(("type", "id", "name"), rest[4:7])
    workspace = _object(("id", "name", "environment"), rest[7:10])
    request = _object(("ip", "user_agent", "request_id", "session_id"), rest[10:14])
    outcome = _object(("status", "reason"), rest[14:16])
    details, changes, source, ingested_at = rest[16:20]
    event = {
        "event_id": event_id,
        "tenant_id": tenant,
        "occurred_at": _utc(occurred_at),
        "action": action,
        "category": category,
        "actor": actor,
        "resource": resource,
        "workspace": workspace,
        "request": request,
        "outcome": outcome,
        "details": dict(details),
        "changes": [_change(change) for change in changes],
        "source": source,
    }
    return event, _utc(ingested_at)


def _utc(moment: datetime) -> datetime:
    """The columns are ``DateTime64(3, 'UTC')``; clickhouse-connect may hand them back
    without a zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _change(change: Any) -> Mapping[str, Any]:
    """One element of ``changes``: clickhouse-connect reads a named tuple as a dict (or as
    a plain tuple, by the client's settings)."""
    if isinstance(change, Mapping):
        return {name: change.get(name) for name in ("field", "before", "after")}
    return _object(("field", "before", "after"), change)


def _object(names: tuple[str, ...], values: Any) -> Mapping[str, Any]:
    return dict(zip(names, values, strict=True))
