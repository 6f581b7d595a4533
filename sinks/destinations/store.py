"""Where destinations are kept: a compacted Kafka topic used as a table.

One record per destination: key = the destination id (UTF-8), value = the
:class:`~sinks.destinations.model.Destination` as JSON (``model_dump_json``); removing a
destination writes a tombstone (no value). :class:`DestinationStore` is the command
line's side (read the whole table, write one destination); :class:`DestinationCatalog` is
the sink worker's side (load once, then follow the topic). Both are this module's names
for what :mod:`runtime.keyed_records` (decoding, following changes) and
:mod:`runtime.keyed_record_store` (the command line's reads and writes) do for any table
of keyed JSON records; the account facts (:mod:`accounts.store`) are another such table.

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
from types import MappingProxyType

from runtime.compacted_table import TableError, TableSource
from runtime.kafka_connection import KafkaConnection
from runtime.keyed_record_store import ConcurrentUpdateError, KeyedRecordStore
from runtime.keyed_records import RecordChange, RecordKind
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

_RECORDS = RecordKind(
    model=Destination,
    id_of=lambda destination: destination.id,
    revision_of=lambda destination: destination.revision,
    noun="destination",
    description="a destination",
    log=log,
)


def decode_record(key: bytes, value: bytes) -> Destination:
    """The destination stored under ``key``; raises ``ValueError`` (with a message that
    holds no value) when the key is not UTF-8, the value does not parse, or its id is not
    the key."""
    return _RECORDS.decode(key, value)


class DestinationStore(KeyedRecordStore[Destination]):
    """The command line's view of the destination topic. Every read loads the whole table
    afresh (it is small), so it sees what was written up to the moment of the read.

    Reads raise :class:`~runtime.compacted_table.TableError` when the topic is missing or not read
    within ``timeout_s``; writes block until every in-sync replica acknowledged them and
    raise :class:`TableError` otherwise. ``put(destination, expected_revision=...)``
    refuses (:class:`ConcurrentUpdateError`, nothing written) unless the stored destination
    has this revision right before the write; 0 means "must not exist yet". Not
    thread-safe.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        *,
        client_id: str = "auditlog-destinations",
        timeout_s: float = 30.0,
    ) -> None:
        super().__init__(kafka, topic, _RECORDS, client_id=client_id, timeout_s=timeout_s)

    def list(self, tenant_id: str | None = None) -> list[Destination]:
        """Destinations (of one tenant, if given: its own and, when it is a partner, its
        partner destinations), by tenant then id."""
        found = self.load().values()
        return sorted(
            (d for d in found if tenant_id is None or d.tenant_id == tenant_id),
            key=lambda d: (d.tenant_id, d.id),
        )

    def remove(self, destination_id: str, *, expected_revision: int | None = None) -> None:
        """Write the tombstone of ``destination_id`` and wait for the acknowledgement
        (``expected_revision`` as for ``put``)."""
        if expected_revision is not None:
            self._check_revision(destination_id, expected_revision)
        self._write(destination_id.encode(), None)

    def _refusal(self, record_id: str, expected_revision: int, current: Destination | None) -> str:
        if expected_revision == 0:
            return f"destination {record_id} already exists"
        if current is None:
            return f"destination {record_id} was removed meanwhile"
        return super()._refusal(record_id, expected_revision, current)


class CatalogChange(RecordChange[Destination]):
    """One destination as it was before a change and after it (``None``: absent)."""

    @property
    def destination_id(self) -> str:
        return self.present.id


_NO_DESTINATIONS: tuple[Destination, ...] = ()


class DestinationCatalog:
    """The sink worker's view of the destination topic: every destination in memory,
    followed by :meth:`refresh`.

    One thread calls :meth:`load` and :meth:`refresh`; any thread may read
    (:meth:`get`, :meth:`for_tenant`, :meth:`for_partner`, :meth:`all`): a refresh builds
    new lookup tables and swaps them in whole, so a reader sees the catalog before or after
    a change, never half of it. :meth:`for_tenant` and :meth:`for_partner` are dict
    look-ups of precomputed tuples (the hot path).
    """

    def __init__(self, table: TableSource, *, topic: str = "") -> None:
        self._table = table
        self._topic = topic
        self._by_id: dict[str, Destination] = {}
        self._by_tenant: dict[str, tuple[Destination, ...]] = {}
        self._by_partner: dict[str, tuple[Destination, ...]] = {}
        self._invalid: dict[str, str] = {}

    def load(self, timeout_s: float = 30.0) -> None:
        """Read the whole table (blocks up to ``timeout_s``; raises :class:`TableError`)."""
        found, invalid = _RECORDS.decode_table(self._table.load(timeout_s), self._topic)
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
        applied = _RECORDS.apply(self._by_id, self._invalid, records, self._topic)
        self._invalid = applied.invalid
        if applied.changes:
            self._install(applied.records)
        return [CatalogChange(change.before, change.after) for change in applied.changes]

    def _install(self, by_id: dict[str, Destination]) -> None:
        by_tenant: dict[str, list[Destination]] = {}
        by_partner: dict[str, list[Destination]] = {}
        for destination in sorted(by_id.values(), key=lambda d: d.id):
            if destination.partner_id is not None:
                by_partner.setdefault(destination.partner_id, []).append(destination)
            else:
                by_tenant.setdefault(destination.tenant_id, []).append(destination)
        # Swapped in whole: readers on other threads see the old or the new tables.
        self._by_tenant = {tenant: tuple(found) for tenant, found in by_tenant.items()}
        self._by_partner = {partner: tuple(found) for partner, found in by_partner.items()}
        self._by_id = by_id

    def get(self, destination_id: str) -> Destination | None:
        return self._by_id.get(destination_id)

    def for_tenant(self, tenant_id: str) -> tuple[Destination, ...]:
        """The tenant's own (account) destinations in every state, by id (check
        ``deliverable``); never a partner destination."""
        return self._by_tenant.get(tenant_id, _NO_DESTINATIONS)

    def for_partner(self, partner_id: str) -> tuple[Destination, ...]:
        """The partner destinations of ``partner_id`` in every state, by id."""
        return self._by_partner.get(partner_id, _NO_DESTINATIONS)

    @property
    def has_partner_destinations(self) -> bool:
        """Some partner destination exists (routing then waits for membership to be known
        as of each record's time: :mod:`sinks.membership`)."""
        return bool(self._by_partner)

    def all(self) -> tuple[Destination, ...]:
        return tuple(sorted(self._by_id.values(), key=lambda d: (d.tenant_id, d.id)))

    @property
    def invalid(self) -> Mapping[str, str]:
        """Keys whose latest value did not parse, with the reason (never the value)."""
        return MappingProxyType(self._invalid)

    def close(self) -> None:
        self._table.close()
