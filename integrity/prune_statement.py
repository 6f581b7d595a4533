"""Prune statements: a signed note, in the checkpoints' family, saying which prefix of an
account's log the events' TTL has removed (docs/integrity.md, "Prune statements")::

    auditlog-prune/<account>
    below <N>
    retention <days>
    time <milliseconds since the epoch, UTC>

    — <key name> <base64 of (4-byte key id || 64-byte Ed25519 signature)>

Its origin is no account's log (``auditlog-prune/``, and an account id holds no ``/``) and
its second line is no tree size, so no checkpoint parser takes it for a checkpoint. The
envelope and signatures are :mod:`integrity.signed_note`'s. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from integrity.keys import KeyRing, SigningKey
from integrity.signed_note import (
    MAX_INT,
    NoteError,
    Signature,
    decimal,
    sign_body,
    split,
    verify_signatures,
)

PRUNE_ORIGIN_PREFIX = "auditlog-prune/"


@dataclass(frozen=True)
class PruneStatement:
    """At ``time_ms``, with ``retention_days`` in force, the TTL had removed the event of
    every leaf below ``below`` of the log ``origin``."""

    origin: str
    below: int
    retention_days: int
    time_ms: int

    def __post_init__(self) -> None:
        if not self.origin.startswith(PRUNE_ORIGIN_PREFIX) or not self.origin.isprintable():
            raise NoteError(f"origin {self.origin!r:.80}: not {PRUNE_ORIGIN_PREFIX}<account>")
        for what, value in (
            ("below", self.below),
            ("retention", self.retention_days),
            ("time", self.time_ms),
        ):
            if not 0 <= value <= MAX_INT:
                raise NoteError(f"{what} {value} is out of range")

    @property
    def account(self) -> str:
        return self.origin.removeprefix(PRUNE_ORIGIN_PREFIX)

    def body(self) -> bytes:
        return (
            f"{self.origin}\nbelow {self.below}\nretention {self.retention_days}\n"
            f"time {self.time_ms}\n"
        ).encode()


def prune_origin_for(account: str) -> str:
    """The origin line of an account's prune statements: ``auditlog-prune/<account>``."""
    return PRUNE_ORIGIN_PREFIX + account


def sign_statement(statement: PruneStatement, keys: Sequence[SigningKey]) -> str:
    """The signed note (raises NoteError as :func:`integrity.signed_note.sign_body`)."""
    return sign_body(statement.body(), statement.time_ms, keys, "prune statement")


def _keyword(line: str, keyword: str) -> int:
    if not line.startswith(keyword + " "):
        raise NoteError(f"a prune statement's line {line!r:.40} should be '{keyword} <number>'")
    return decimal(line.removeprefix(keyword + " "), keyword)


def parse_statement(note: str) -> tuple[PruneStatement, list[Signature]]:
    """The statement and signatures of a note, without verifying them. Raises NoteError
    saying which format rule the note breaks."""
    body, signatures = split(note)
    lines = body.split("\n")
    if len(lines) != 5 or lines[-1] != "":
        raise NoteError("a prune statement's body is four lines: origin, below, retention, time")
    origin, below, retention, time = lines[:4]
    if not origin.startswith(PRUNE_ORIGIN_PREFIX):
        raise NoteError(f"the origin {origin!r:.80} is not a prune statement's")
    statement = PruneStatement(
        origin,
        _keyword(below, "below"),
        _keyword(retention, "retention"),
        _keyword(time, "time"),
    )
    return statement, signatures


def verify_statement(note: str, ring: KeyRing, account: str | None = None) -> PruneStatement:
    """The statement of a note that a key of ``ring`` valid at its time signed (as
    :func:`integrity.checkpoint.verify`); with ``account``, it must be that account's.
    Raises NoteError naming why."""
    statement, signatures = parse_statement(note)
    if account is not None and statement.origin != prune_origin_for(account):
        raise NoteError(
            f"the statement is for {statement.origin!r}, not {prune_origin_for(account)!r}"
        )
    verify_signatures(statement.body(), signatures, ring, statement.time_ms)
    return statement
