"""Checkpoints: C2SP signed notes (https://c2sp.org/signed-note) holding a tlog checkpoint
(https://c2sp.org/tlog-checkpoint) of one account's log.

The note is the body, a blank line, and one signature line per key::

    auditlog/<account>
    <tree size>
    <base64 of the root hash>
    time <milliseconds since the epoch, UTC>

    — <key name> <base64 of (4-byte key id || 64-byte Ed25519 signature)>

The signature is over the body's bytes (the four lines, each ending in ``\\n``). Parsing
is strict: exactly that shape, the em dash U+2014, a size and time in decimal without
leading zeros, a root of 32 bytes in canonical base64. Pure: no I/O.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from integrity.keys import KeyRing, SigningKey
from integrity.merkle import HASH_SIZE
from integrity.signed_note import (
    MAX_INT,
    SIGNATURE_PREFIX,
    NoteError,
    Signature,
    canonical_base64,
    decimal,
    sign_body,
    split,
    verify_signatures,
)

__all__ = [
    "ORIGIN_PREFIX",
    "SIGNATURE_PREFIX",
    "Checkpoint",
    "CheckpointError",
    "Signature",
    "origin_for",
    "parse",
    "sign",
    "verify",
]

ORIGIN_PREFIX = "auditlog/"

CheckpointError = NoteError
"""A note that is malformed, or that no trusted key signed validly for its time."""


@dataclass(frozen=True)
class Checkpoint:
    """One signed statement: the log ``origin`` had ``size`` leaves with ``root`` at
    ``time_ms``."""

    origin: str
    size: int
    root: bytes
    time_ms: int

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or not self.origin.isprintable():
            raise CheckpointError(f"origin {self.origin!r:.80}: one printable, non-empty line")
        if not 0 <= self.size <= MAX_INT:
            raise CheckpointError(f"size {self.size} is out of range")
        if len(self.root) != HASH_SIZE:
            raise CheckpointError(f"root must be {HASH_SIZE} bytes, not {len(self.root)}")
        if not 0 <= self.time_ms <= MAX_INT:
            raise CheckpointError(f"time {self.time_ms} is out of range")

    def body(self) -> bytes:
        """The signed bytes: origin, size, root, ``time`` extension, each line ending in \\n."""
        root = base64.b64encode(self.root).decode()
        return f"{self.origin}\n{self.size}\n{root}\ntime {self.time_ms}\n".encode()


def origin_for(account: str) -> str:
    """The origin line of an account's log: ``auditlog/<account>``."""
    return ORIGIN_PREFIX + account


def sign(checkpoint: Checkpoint, keys: Sequence[SigningKey]) -> str:
    """The signed note: the body, a blank line, one signature per key, in the keys' order.
    Raises CheckpointError without keys, or with a key whose window does not hold the
    checkpoint's time (it would sign a checkpoint no verifier accepts)."""
    return sign_body(checkpoint.body(), checkpoint.time_ms, keys, "checkpoint")


def _parse_body(body: str) -> Checkpoint:
    lines = body.split("\n")
    if len(lines) != 5 or lines[-1] != "":
        raise CheckpointError(
            "the body must be four lines: origin, size, root, time (one extension line)"
        )
    origin, size_text, root_text, time_line = lines[:4]
    if not origin:
        raise CheckpointError("the origin line is empty")
    size = decimal(size_text, "size")
    root = canonical_base64(root_text, "root")
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"root: {len(root)} bytes, not {HASH_SIZE}")
    if not time_line.startswith("time "):
        raise CheckpointError("the fourth line must be 'time <milliseconds>'")
    time_ms = decimal(time_line.removeprefix("time "), "time")
    return Checkpoint(origin, size, root, time_ms)


def parse(note: str) -> tuple[Checkpoint, list[Signature]]:
    """The checkpoint and signatures of a note, without verifying them. Raises
    CheckpointError saying which format rule the note breaks."""
    body, signatures = split(note)
    return _parse_body(body), signatures


def verify(note: str, ring: KeyRing, origin: str | None = None) -> Checkpoint:
    """The checkpoint of a note that at least one key of ``ring``, valid at the
    checkpoint's time, signed. Signatures by keys outside the ring are ignored (others may
    cosign); a bad signature by a ring key is refused outright. With ``origin``, the note
    must be that log's. Raises CheckpointError naming why."""
    checkpoint, signatures = parse(note)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"the note is for {checkpoint.origin!r}, not {origin!r}")
    verify_signatures(checkpoint.body(), signatures, ring, checkpoint.time_ms)
    return checkpoint
