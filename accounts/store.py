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
a poll interval, without a restart; and with the same machinery
(:mod:`runtime.keyed_record_store`, :mod:`runtime.keyed_records`).

Limits (as for destinations): **last writer wins**, narrowed by ``expected_revision``
(a check right before the write, then the write: Kafka offers no compare-and-set); a value
that does not parse is skipped with a warning and listed in ``invalid``, and the store
refuses to overwrite such a value (it may have been written by a newer release).
"""

from __future__ import annotations

from accounts.directory import AccountDirectory
from accounts.record import ACCOUNT_RECORDS, AccountRecord, parse_table
from runtime.compacted_table import TableError
from runtime.kafka_connection import KafkaConnection
from runtime.keyed_record_store import ConcurrentUpdateError, KeyedRecordStore

__all__ = [
    "AccountDirectory",
    "AccountStore",
    "ConcurrentUpdateError",
    "TableError",
    "parse_table",
]


class AccountStore(KeyedRecordStore[AccountRecord]):
    """The command line's view of the accounts topic. Every read loads the whole table
    afresh (it is small: a few hundred bytes per account), so it sees what was written up
    to the moment of the read.

    Reads raise :class:`~runtime.compacted_table.TableError` when the topic is missing or
    not read within ``timeout_s``; writes block until every in-sync replica acknowledged
    them and raise :class:`TableError` otherwise. ``put(record, expected_revision=...)``
    refuses (:class:`ConcurrentUpdateError`, nothing written) unless the stored record has
    this revision right before the write (0: no record yet), or when the stored value is
    unreadable. Not thread-safe.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        *,
        client_id: str = "auditlog-accounts",
        timeout_s: float = 30.0,
    ) -> None:
        super().__init__(
            kafka,
            topic,
            ACCOUNT_RECORDS,
            client_id=client_id,
            timeout_s=timeout_s,
            overwrite_unreadable=False,
        )

    def list(self, partner_id: str | None = None) -> list[AccountRecord]:
        """Every account's record (only those ``partner_id`` manages, if given), by id."""
        found = self.load().values()
        return sorted(
            (r for r in found if partner_id is None or r.partner_id == partner_id),
            key=lambda r: r.account_id,
        )
