"""Where destinations are kept: a compacted Kafka topic used as a table.

One record per destination: key = the destination id (UTF-8), value = the
:class:`~sinks.destinations.model.Destination` as JSON (``model_dump_json``); removing a
destination writes a tombstone (no value). :class:`DestinationStore` is the command
line's side (read the whole table, write one destination); :class:`DestinationCatalog` is
the sink worker's side (load once, then follow the topic).

Why a compacted topic rather than a ClickHouse table:

- the sink workers already talk to Kafka, and only to Kafka: the sink keeps delivering
  while ClickHouse is down or being migrated;
- a change reaches every running worker by tailing the topic (each reads every partition,
  no consumer group), within a poll interval: no polling of a table, no cache to expire;
- Kafka keeps the writes of one key in order, so every worker applies a destination's
  changes in the order they were made, and ends with the same latest value;
- the whole table is small (a few destinations per tenant, a few KB each), so each worker
  holds all of it in memory and reads it from the start on every start.

Limits:

- **Last writer wins.** Two concurrent changes of the same destination (two operators, or
  an operator and a worker pausing it automatically) are not merged: the later write
  replaces the earlier one. The command line narrows the window: it re-reads the
  destination right before it writes, writes ``revision + 1``, and with
  ``expected_revision`` :meth:`DestinationStore.put` refuses a write when the stored
  revision moved in between (a check, then a write: a race of a few milliseconds remains,
  as Kafka offers no compare-and-set). ``revision`` makes a lost update visible afterwards.
- A removed destination's tombstone is kept ``delete.retention.ms`` (a day), so a worker
  that was down longer than that re-reads the table from the start (as it always does on
  start) instead of having missed the removal.
- A value that does not parse (written by a newer release with a field this one does not
  know, or damaged) is skipped with a warning and listed in ``invalid``: a running worker
  keeps the last good value it saw of that destination rather than crash or drop it; one
  that starts afterwards leaves the destination out until a readable value is written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pydantic import ValidationError

from runtime.compacted_table import CompactedTable, TableError, TableSource, TableWriter
from runtime.kafka_connection import KafkaConnection
from sinks.destinations.model import Destination

log = logging.getLogger(__name__)

__all__ = [
    "CatalogChange",
    "ConcurrentUpdateError",
    "DestinationCatalog",
    "DestinationStore",
    "TableError",
    "TableSource",
    "decode_record",
]


class ConcurrentUpdateError(RuntimeError):
    """The stored destination changed since it was read (another writer was faster)."""


def decode_record(key: bytes, value: bytes) -> Destination:
    """The destination stored under ``key``; raises ``ValueError`` (with a message that
    holds no value) when the key is not UTF-8, the value does not parse, or its id is not
    the key."""
    try:
        destination_id = key.decode()
    except UnicodeDecodeError:
        raise ValueError(f"key {key!r} is not UTF-8") from None
    try:
        destination = Destination.model_validate_json(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(value)'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)[:3]
        )
        raise ValueError(f"not a destination ({problems})") from None
    if destination.id != destination_id:
        raise ValueError(f"value is destination {destination.id!r}, not its key")
    return destination


def _parse_table(
    records: Mapping[bytes, bytes], topic: str
) -> tuple[dict[str, Destination], dict[str, str]]:
    found: dict[str, Destination] = {}
    invalid: dict[str, str] = {}
    for key, value in records.items():
        try:
            destination = decode_record(key, value)
        except ValueError as exc:
            name = key.decode(errors="replace")
            invalid[name] = str(exc)
            log.warning("destination %r in %s skipped: %s", name, topic, exc)
            continue
        found[destination.id] = destination
    return found, invalid


class DestinationStore:
    """The command line's view of the destination topic. Every read loads the whole table
    afresh (it is small), so it sees what was written up to the moment of the read.

    Reads raise :class:`~runtime.compacted_table.TableError` when the topic is missing or not read
    within ``timeout_s``; writes block until every in-sync replica acknowledged them and
    raise :class:`TableError` otherwise. Not thread-safe.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        *,
        client_id: str = "auditlog-destinations",
        timeout_s: float = 30.0,
    ) -> None:
        self._kafka = kafka
        self._topic = topic
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._writer: TableWriter | None = None
        self.invalid: dict[str, str] = {}
        """Ids whose stored value did not parse at the last read, with the reason."""

    @property
    def topic(self) -> str:
        return self._topic

    def load(self) -> dict[str, Destination]:
        """Every destination, by id, as stored now (unreadable values skipped, see
        :attr:`invalid`)."""
        table = CompactedTable(self._kafka, self._topic, client_id=self._client_id)
        try:
            records = table.load(self._timeout_s)
        finally:
            table.close()
        found, self.invalid = _parse_table(records, self._topic)
        return found

    def get(self, destination_id: str) -> Destination | None:
        return self.load().get(destination_id)

    def list(self, tenant_id: str | None = None) -> list[Destination]:
        """Destinations (of one tenant, if given), by tenant then id."""
        found = self.load().values()
        return sorted(
            (d for d in found if tenant_id is None or d.tenant_id == tenant_id),
            key=lambda d: (d.tenant_id, d.id),
        )

    def _check_revision(self, destination_id: str, expected_revision: int) -> None:
        current = self.get(destination_id)
        stored = 0 if current is None else current.revision
        if stored != expected_revision:
            if expected_revision == 0:
                raise ConcurrentUpdateError(f"destination {destination_id} already exists")
            if current is None:
                raise ConcurrentUpdateError(f"destination {destination_id} was removed meanwhile")
            raise ConcurrentUpdateError(
                f"destination {destination_id} was changed meanwhile (revision "
                f"{expected_revision} -> {stored}): read it again and repeat the change"
            )

    def put(self, destination: Destination, *, expected_revision: int | None = None) -> None:
        """Write ``destination`` and wait for the acknowledgement.

        ``expected_revision``: refuse (:class:`ConcurrentUpdateError`, nothing written) unless
        the stored destination has this revision right before the write; 0 means "must not
        exist yet". Raises :class:`TableError` when the write was not acknowledged."""
        if expected_revision is not None:
            self._check_revision(destination.id, expected_revision)
        self._write(destination.id.encode(), destination.model_dump_json().encode())

    def remove(self, destination_id: str, *, expected_revision: int | None = None) -> None:
        """Write the tombstone of ``destination_id`` and wait for the acknowledgement."""
        if expected_revision is not None:
            self._check_revision(destination_id, expected_revision)
        self._write(destination_id.encode(), None)

    def _write(self, key: bytes, value: bytes | None) -> None:
        if self._writer is None:
            self._writer = TableWriter(self._kafka, self._topic, client_id=self._client_id)
        self._writer.put(key, value)
        self._writer.flush(self._timeout_s)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close(self._timeout_s)
            self._writer = None


@dataclass(frozen=True)
class CatalogChange:
    """One destination as it was before a change and after it (``None``: absent)."""

    before: Destination | None
    after: Destination | None

    @property
    def destination_id(self) -> str:
        present = self.after if self.after is not None else self.before
        assert present is not None
        return present.id

    @property
    def added(self) -> bool:
        return self.before is None and self.after is not None

    @property
    def removed(self) -> bool:
        return self.before is not None and self.after is None


_NO_DESTINATIONS: tuple[Destination, ...] = ()


class DestinationCatalog:
    """The sink worker's view of the destination topic: every destination in memory,
    followed by :meth:`refresh`.

    One thread calls :meth:`load` and :meth:`refresh`; any thread may read
    (:meth:`get`, :meth:`for_tenant`, :meth:`all`): a refresh builds new lookup tables and
    swaps them in whole, so a reader sees the catalog before or after a change, never half
    of it. :meth:`for_tenant` is a dict look-up of a precomputed tuple (the hot path).
    """

    def __init__(self, table: TableSource, *, topic: str = "") -> None:
        self._table = table
        self._topic = topic
        self._by_id: dict[str, Destination] = {}
        self._by_tenant: dict[str, tuple[Destination, ...]] = {}
        self._invalid: dict[str, str] = {}

    def load(self, timeout_s: float = 30.0) -> None:
        """Read the whole table (blocks up to ``timeout_s``; raises :class:`TableError`)."""
        found, invalid = _parse_table(self._table.load(timeout_s), self._topic)
        self._invalid = invalid
        self._install(found)

    def refresh(self, timeout_s: float = 0.0) -> list[CatalogChange]:
        """Apply what was written since the last load or refresh; waits at most
        ``timeout_s`` for the first record. Returns the changes in the order they were
        written (a record that rewrites a destination unchanged is no change). Raises
        :class:`TableError` when the topic cannot be read."""
        records = self._table.changes(timeout_s)
        if not records:
            return []
        by_id = dict(self._by_id)
        invalid = dict(self._invalid)
        changes: list[CatalogChange] = []
        for key, value in records:
            name = key.decode(errors="replace")
            before = by_id.get(name)
            if value is None:
                invalid.pop(name, None)
                if before is not None:
                    del by_id[name]
                    changes.append(CatalogChange(before, None))
                continue
            try:
                after = decode_record(key, value)
            except ValueError as exc:
                invalid[name] = str(exc)
                log.warning(
                    "destination %r in %s skipped (its last good value stays): %s",
                    name,
                    self._topic,
                    exc,
                )
                continue
            invalid.pop(name, None)
            by_id[name] = after
            if after != before:
                changes.append(CatalogChange(before, after))
        self._invalid = invalid
        if changes:
            self._install(by_id)
        return changes

    def _install(self, by_id: dict[str, Destination]) -> None:
        by_tenant: dict[str, list[Destination]] = {}
        for destination in sorted(by_id.values(), key=lambda d: d.id):
            by_tenant.setdefault(destination.tenant_id, []).append(destination)
        # Swapped in whole: readers on other threads see the old or the new tables.
        self._by_tenant = {tenant: tuple(found) for tenant, found in by_tenant.items()}
        self._by_id = by_id

    def get(self, destination_id: str) -> Destination | None:
        return self._by_id.get(destination_id)

    def for_tenant(self, tenant_id: str) -> tuple[Destination, ...]:
        """The tenant's destinations in every state, by id (check ``deliverable``)."""
        return self._by_tenant.get(tenant_id, _NO_DESTINATIONS)

    def all(self) -> tuple[Destination, ...]:
        return tuple(sorted(self._by_id.values(), key=lambda d: (d.tenant_id, d.id)))

    @property
    def invalid(self) -> Mapping[str, str]:
        """Keys whose latest value did not parse, with the reason (never the value)."""
        return MappingProxyType(self._invalid)

    def close(self) -> None:
        self._table.close()
