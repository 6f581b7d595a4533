"""The records of a compacted table (:mod:`runtime.compacted_table`) as typed values: one
pydantic model per key, stored as its JSON, the key being the record's id (UTF-8). Pure:
no I/O.

A :class:`RecordKind` says how one table's values read (the destinations, the account
facts): :meth:`~RecordKind.decode` reads one value, :meth:`~RecordKind.decode_table` a
whole loaded table, :meth:`~RecordKind.apply` a batch of changes followed since to the
records held in memory, reporting each record as it was before and after.

A value is unreadable when its key is not UTF-8, it does not parse (written by a newer
release with a field this one does not know, or damaged), or its id is not its key. It is
skipped with a warning and listed in ``invalid`` with the reason, which never holds the
value: a loaded table leaves the record out; applied changes keep the last good record of
that id. A tombstone (no value) removes the record and its ``invalid`` entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from runtime.compacted_table import Change

__all__ = ["AppliedChanges", "RecordChange", "RecordKind"]

R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class RecordChange(Generic[R]):
    """One record as it was before a change and after it (``None``: absent; never both)."""

    before: R | None
    after: R | None

    @property
    def present(self) -> R:
        """The record after the change, or before it when the change removed it."""
        present = self.after if self.after is not None else self.before
        assert present is not None
        return present

    @property
    def added(self) -> bool:
        return self.before is None and self.after is not None

    @property
    def removed(self) -> bool:
        return self.before is not None and self.after is None


@dataclass(frozen=True)
class AppliedChanges(Generic[R]):
    """The records and the unreadable keys after a batch of changes, and what changed."""

    records: dict[str, R]
    invalid: dict[str, str]
    changes: list[RecordChange[R]]
    """Each changed record, in the order written; one rewritten unchanged is not listed."""


@dataclass(frozen=True)
class RecordKind(Generic[R]):
    """How the values of one table read, and how its log lines and reasons name them."""

    model: type[R]
    id_of: Callable[[R], str]
    """The record's id: its key in the table."""
    revision_of: Callable[[R], int]
    """The record's revision, 1 for the first write, +1 for each change."""
    noun: str
    """One record in words: ``value is {noun} 'x', not its key``, ``{noun} 'x' in t skipped``."""
    description: str
    """What a value that does not parse is not: ``not {description} (problems)``."""
    log: logging.Logger
    """Where skipped values are reported (as warnings)."""
    value_name: str = "value"
    """What a running follower keeps of a skipped key: ``its last good {value_name} stays``."""
    keep_last_good: bool = True
    """Whether a follower keeps a key's last good record when a new value does not parse
    (a destination keeps delivering), or forgets the key (fails closed: the account facts,
    where a record grants access and an unreadable revocation must not leave the grant)."""

    def encode(self, record: R) -> bytes:
        return record.model_dump_json().encode()

    def decode(self, key: bytes, value: bytes) -> R:
        """The record stored under ``key``; raises ``ValueError`` (with a message that holds
        no value) when the key is not UTF-8, the value does not parse, or its id is not the
        key."""
        try:
            record_id = key.decode()
        except UnicodeDecodeError:
            raise ValueError(f"key {key!r} is not UTF-8") from None
        try:
            record = self.model.model_validate_json(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or '(value)'}: {error['msg']}"
                for error in exc.errors(include_url=False, include_input=False)[:3]
            )
            raise ValueError(f"not {self.description} ({problems})") from None
        if self.id_of(record) != record_id:
            raise ValueError(f"value is {self.noun} {self.id_of(record)!r}, not its key")
        return record

    def decode_table(
        self, table: Mapping[bytes, bytes], topic: str
    ) -> tuple[dict[str, R], dict[str, str]]:
        """The readable records of a loaded table by id, and the unreadable keys with the
        reason (each logged as a warning naming ``topic``)."""
        found: dict[str, R] = {}
        invalid: dict[str, str] = {}
        for key, value in table.items():
            try:
                record = self.decode(key, value)
            except ValueError as exc:
                name = key.decode(errors="replace")
                invalid[name] = str(exc)
                self.log.warning("%s %r in %s skipped: %s", self.noun, name, topic, exc)
                continue
            found[self.id_of(record)] = record
        return found, invalid

    def apply(
        self,
        records: Mapping[str, R],
        invalid: Mapping[str, str],
        changes: Iterable[Change],
        topic: str,
        *,
        log: logging.Logger | None = None,
    ) -> AppliedChanges[R]:
        """``records`` and ``invalid`` (left as they are) after ``changes``, in order. An
        unreadable value keeps the last good record of its key (or removes it, when the
        kind does not :attr:`keep_last_good`) and is logged as a warning naming ``topic``
        to ``log`` (default: :attr:`log`)."""
        after_all = dict(records)
        unreadable = dict(invalid)
        changed: list[RecordChange[R]] = []
        for key, value in changes:
            name = key.decode(errors="replace")
            before = after_all.get(name)
            if value is None:
                unreadable.pop(name, None)
                if before is not None:
                    del after_all[name]
                    changed.append(RecordChange(before, None))
                continue
            try:
                after = self.decode(key, value)
            except ValueError as exc:
                unreadable[name] = str(exc)
                kept = f"its last good {self.value_name} stays"
                if not self.keep_last_good:
                    kept = f"its last good {self.value_name} is dropped"
                    if before is not None:
                        del after_all[name]
                        changed.append(RecordChange(before, None))
                (log or self.log).warning(
                    "%s %r in %s skipped (%s): %s", self.noun, name, topic, kept, exc
                )
                continue
            unreadable.pop(name, None)
            after_all[name] = after
            if after != before:
                changed.append(RecordChange(before, after))
        return AppliedChanges(after_all, unreadable, changed)
