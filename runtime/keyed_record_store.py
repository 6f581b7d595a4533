"""The command line's side of a table of keyed records (:mod:`runtime.keyed_records`): read
the whole table, write one record.

**Last writer wins.** Two concurrent changes of the same record are not merged: the later
write replaces the earlier one. A writer narrows the window by re-reading the record right
before it writes ``revision + 1``: with ``expected_revision`` a write is refused when the
stored revision moved in between (a check, then a write: a race of a few milliseconds
remains, as Kafka offers no compare-and-set).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

from runtime.compacted_table import CompactedTable, TableWriter
from runtime.kafka_connection import KafkaConnection
from runtime.keyed_records import RecordKind

__all__ = ["ConcurrentUpdateError", "KeyedRecordStore"]

R = TypeVar("R", bound=BaseModel)


class ConcurrentUpdateError(RuntimeError):
    """The stored record changed since it was read (another writer was faster), or its
    stored value is unreadable and the store does not overwrite it; nothing was written."""


class KeyedRecordStore(Generic[R]):
    """One table of ``kind`` records in ``topic``. Every read loads the whole table afresh
    (it is small), so it sees what was written up to the moment of the read.

    Reads raise :class:`~runtime.compacted_table.TableError` when the topic is missing or
    not read within ``timeout_s``; writes block until every in-sync replica acknowledged
    them and raise :class:`~runtime.compacted_table.TableError` otherwise. Not thread-safe.

    ``overwrite_unreadable``: whether a write with ``expected_revision`` may replace a
    stored value that does not read (else :class:`ConcurrentUpdateError`: it may have been
    written by a newer release). Subclasses (one per table) pass their ``kind``, add the
    reads and writes of their records, and may word a refused write otherwise
    (:meth:`_refusal`).
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        kind: RecordKind[R],
        *,
        client_id: str,
        timeout_s: float = 30.0,
        overwrite_unreadable: bool = True,
    ) -> None:
        self._kafka = kafka
        self._topic = topic
        self._kind = kind
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._overwrite_unreadable = overwrite_unreadable
        self._writer: TableWriter | None = None
        self.invalid: dict[str, str] = {}
        """Ids whose stored value did not parse at the last read, with the reason."""

    @property
    def topic(self) -> str:
        return self._topic

    def load(self) -> dict[str, R]:
        """Every record, by id, as stored now (unreadable values skipped, see
        :attr:`invalid`)."""
        table = CompactedTable(self._kafka, self._topic, client_id=self._client_id)
        try:
            records = table.load(self._timeout_s)
        finally:
            table.close()
        found, self.invalid = self._kind.decode_table(records, self._topic)
        return found

    def get(self, record_id: str) -> R | None:
        """The record as stored now, or None when none is (or it is unreadable: see
        :attr:`invalid`)."""
        return self.load().get(record_id)

    def put(self, record: R, *, expected_revision: int | None = None) -> None:
        """Write ``record`` and wait for the acknowledgement.

        ``expected_revision``: refuse (:class:`ConcurrentUpdateError`, nothing written)
        unless the stored record has this revision right before the write; 0 means "must
        not exist yet". Raises :class:`~runtime.compacted_table.TableError` when the write
        was not acknowledged."""
        record_id = self._kind.id_of(record)
        if expected_revision is not None:
            self._check_revision(record_id, expected_revision)
        self._write(record_id.encode(), self._kind.encode(record))

    def _check_revision(self, record_id: str, expected_revision: int) -> None:
        """Raise :class:`ConcurrentUpdateError` unless the record stored now has
        ``expected_revision`` (0: none) and, without ``overwrite_unreadable``, reads."""
        current = self.get(record_id)
        if not self._overwrite_unreadable and record_id in self.invalid:
            raise ConcurrentUpdateError(
                f"{self._kind.noun} {record_id} is stored but unreadable "
                f"({self.invalid[record_id]}): not overwritten"
            )
        stored = 0 if current is None else self._kind.revision_of(current)
        if stored != expected_revision:
            raise ConcurrentUpdateError(self._refusal(record_id, expected_revision, current))

    def _refusal(self, record_id: str, expected_revision: int, current: R | None) -> str:
        """Why a write expecting ``expected_revision`` is refused when ``current`` is stored
        (None: nothing readable)."""
        stored = 0 if current is None else self._kind.revision_of(current)
        return (
            f"{self._kind.noun} {record_id} was changed meanwhile (revision "
            f"{expected_revision} -> {stored}): read it again and repeat the change"
        )

    def _write(self, key: bytes, value: bytes | None) -> None:
        """Write one record (``None``: a tombstone) and wait for the acknowledgement."""
        if self._writer is None:
            self._writer = TableWriter(self._kafka, self._topic, client_id=self._client_id)
        self._writer.put(key, value)
        self._writer.flush(self._timeout_s)

    def close(self) -> None:
        """Flush and close the writer, if a write opened one (raises
        :class:`~runtime.compacted_table.TableError` when a write is not acknowledged)."""
        if self._writer is not None:
            self._writer.close(self._timeout_s)
            self._writer = None
