"""Where account facts are kept: a compacted Kafka topic used as a table
(``AUDITLOG_ACCOUNTS_TOPIC``, default ``audit.accounts``, created by ``auditlog topics
ensure``).

One record per account: key = the account id (UTF-8), value = an
:class:`~accounts.record.AccountRecord` as JSON (account_id, audit_log_add_on, partner_id,
revision, updated_at, updated_by). Accounts are never removed by the command line; a
tombstone (written by hand) removes an account's facts, which then read as "no facts".

:class:`AccountStore` is the command line's side (read one or all, write one);
:class:`~accounts.directory.AccountDirectory` (importable from here too) is the
long-running side (load once, then follow the topic on a thread). The facts live in
Kafka, like the destinations, for the same reasons (see :mod:`sinks.destinations.store`):
sink workers read them from Kafka alone, and a change reaches every running process within
a poll interval, without a restart.

Limits (as for destinations): **last writer wins**, narrowed by ``expected_revision``
(a check right before the write, then the write: Kafka offers no compare-and-set); a value
that does not parse is skipped with a warning and listed in ``invalid``, and the store
refuses to overwrite such a value (it may have been written by a newer release).
"""

from __future__ import annotations

from accounts.directory import AccountDirectory
from accounts.record import AccountRecord, encode_record, parse_table
from runtime.compacted_table import CompactedTable, TableError, TableWriter
from runtime.kafka_connection import KafkaConnection

__all__ = [
    "AccountDirectory",
    "AccountStore",
    "ConcurrentUpdateError",
    "TableError",
    "parse_table",
]


class ConcurrentUpdateError(RuntimeError):
    """The stored account changed since it was read (another writer was faster), or its
    stored value is unreadable; nothing was written."""


class AccountStore:
    """The command line's view of the accounts topic. Every read loads the whole table
    afresh (it is small: a few hundred bytes per account), so it sees what was written up
    to the moment of the read.

    Reads raise :class:`~runtime.compacted_table.TableError` when the topic is missing or
    not read within ``timeout_s``; writes block until every in-sync replica acknowledged
    them and raise :class:`TableError` otherwise. Not thread-safe.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        *,
        client_id: str = "auditlog-accounts",
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

    def load(self) -> dict[str, AccountRecord]:
        """Every account's record, by id, as stored now (unreadable values skipped, see
        :attr:`invalid`)."""
        table = CompactedTable(self._kafka, self._topic, client_id=self._client_id)
        try:
            records = table.load(self._timeout_s)
        finally:
            table.close()
        found, self.invalid = parse_table(records, self._topic)
        return found

    def get(self, account_id: str) -> AccountRecord | None:
        """The account's record, or None when none is stored (or it is unreadable: see
        :attr:`invalid`)."""
        return self.load().get(account_id)

    def list(self, partner_id: str | None = None) -> list[AccountRecord]:
        """Every account's record (only those ``partner_id`` manages, if given), by id."""
        found = self.load().values()
        return sorted(
            (r for r in found if partner_id is None or r.partner_id == partner_id),
            key=lambda r: r.account_id,
        )

    def put(self, record: AccountRecord, *, expected_revision: int | None = None) -> None:
        """Write ``record`` and wait for the acknowledgement.

        ``expected_revision``: refuse (:class:`ConcurrentUpdateError`, nothing written)
        unless the stored record has this revision right before the write (0: no record
        yet). Raises :class:`TableError` when the write was not acknowledged."""
        if expected_revision is not None:
            self._check_revision(record.account_id, expected_revision)
        self._write(record.account_id.encode(), encode_record(record))

    def _check_revision(self, account_id: str, expected_revision: int) -> None:
        current = self.get(account_id)
        if account_id in self.invalid:
            raise ConcurrentUpdateError(
                f"account {account_id} is stored but unreadable ({self.invalid[account_id]}): "
                "not overwritten"
            )
        stored = 0 if current is None else current.revision
        if stored != expected_revision:
            raise ConcurrentUpdateError(
                f"account {account_id} was changed meanwhile (revision {expected_revision} "
                f"-> {stored}): read it again and repeat the change"
            )

    def _write(self, key: bytes, value: bytes | None) -> None:
        if self._writer is None:
            self._writer = TableWriter(self._kafka, self._topic, client_id=self._client_id)
        self._writer.put(key, value)
        self._writer.flush(self._timeout_s)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close(self._timeout_s)
            self._writer = None
