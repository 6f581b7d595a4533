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
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from integrity.keys import KeyFormatError, KeyRing, SigningKey, check_name
from integrity.merkle import HASH_SIZE

ORIGIN_PREFIX = "auditlog/"
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)\Z")
_MAX_INT = 2**63 - 1  # sizes and times fit a signed 64-bit integer (ClickHouse, Go)


class CheckpointError(ValueError):
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
        if not 0 <= self.size <= _MAX_INT:
            raise CheckpointError(f"size {self.size} is out of range")
        if len(self.root) != HASH_SIZE:
            raise CheckpointError(f"root must be {HASH_SIZE} bytes, not {len(self.root)}")
        if not 0 <= self.time_ms <= _MAX_INT:
            raise CheckpointError(f"time {self.time_ms} is out of range")

    def body(self) -> bytes:
        """The signed bytes: origin, size, root, ``time`` extension, each line ending in \\n."""
        root = base64.b64encode(self.root).decode()
        return f"{self.origin}\n{self.size}\n{root}\ntime {self.time_ms}\n".encode()


@dataclass(frozen=True)
class Signature:
    """One signature line: the key's name and id, and the signature bytes."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        encoded = base64.b64encode(self.key_id.to_bytes(4, "big") + self.signature).decode()
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


def origin_for(account: str) -> str:
    """The origin line of an account's log: ``auditlog/<account>``."""
    return ORIGIN_PREFIX + account


def sign(checkpoint: Checkpoint, keys: Sequence[SigningKey]) -> str:
    """The signed note: the body, a blank line, one signature per key, in the keys' order.
    Raises CheckpointError without keys, or with a key whose window does not hold the
    checkpoint's time (it would sign a checkpoint no verifier accepts)."""
    if not keys:
        raise CheckpointError("a checkpoint needs at least one signing key")
    body = checkpoint.body()
    lines = []
    for key in keys:
        if not key.valid_at(checkpoint.time_ms):
            raise CheckpointError(
                f"key {key.name} is not valid at {checkpoint.time_ms} "
                f"(window {key.not_before_ms}..{key.not_after_ms})"
            )
        lines.append(Signature(key.name, key.key_id, key.sign(body)).line())
    return body.decode() + "\n" + "".join(lines)


def _decimal(text: str, what: str) -> int:
    if not _DECIMAL.match(text) or int(text) > _MAX_INT:
        raise CheckpointError(f"{what} {text!r:.40}: a decimal number without leading zeros")
    return int(text)


def _base64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise CheckpointError(f"{what}: not base64") from exc
    if base64.b64encode(raw).decode() != text:
        raise CheckpointError(f"{what}: not canonical base64")
    return raw


def _parse_body(body: str) -> Checkpoint:
    lines = body.split("\n")
    if len(lines) != 5 or lines[-1] != "":
        raise CheckpointError(
            "the body must be four lines: origin, size, root, time (one extension line)"
        )
    origin, size_text, root_text, time_line = lines[:4]
    if not origin:
        raise CheckpointError("the origin line is empty")
    size = _decimal(size_text, "size")
    root = _base64(root_text, "root")
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"root: {len(root)} bytes, not {HASH_SIZE}")
    if not time_line.startswith("time "):
        raise CheckpointError("the fourth line must be 'time <milliseconds>'")
    time_ms = _decimal(time_line.removeprefix("time "), "time")
    return Checkpoint(origin, size, root, time_ms)


def _parse_signature(line: str) -> Signature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise CheckpointError("a signature line must start with '\u2014 ' (U+2014, a space)")
    name, space, encoded = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
    if not space or not encoded:
        raise CheckpointError("a signature line is '\u2014 <key name> <base64>'")
    try:
        check_name(name)
    except KeyFormatError as exc:
        raise CheckpointError(f"signature line: {exc}") from exc
    raw = _base64(encoded, f"signature of {name}")
    if len(raw) < 5:
        raise CheckpointError(f"signature of {name}: too short")
    return Signature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def parse(note: str) -> tuple[Checkpoint, list[Signature]]:
    """The checkpoint and signatures of a note, without verifying them. Raises
    CheckpointError saying which format rule the note breaks."""
    if any(c < " " and c != "\n" for c in note):
        raise CheckpointError("a note holds no control characters other than newlines")
    if not note.endswith("\n"):
        raise CheckpointError("a note ends with a newline")
    body, blank, signatures = note.rpartition("\n\n")
    if not blank:
        raise CheckpointError("no blank line between the body and the signatures")
    checkpoint = _parse_body(body + "\n")
    lines = signatures.split("\n")[:-1]
    if not lines:
        raise CheckpointError("a note has at least one signature line")
    parsed = [_parse_signature(line) for line in lines]
    slots = [(s.name, s.key_id) for s in parsed]
    if len(set(slots)) != len(slots):
        raise CheckpointError("the same key signed twice")
    return checkpoint, parsed


def verify(note: str, ring: KeyRing, origin: str | None = None) -> Checkpoint:
    """The checkpoint of a note that at least one key of ``ring``, valid at the
    checkpoint's time, signed. Signatures by keys outside the ring are ignored (others may
    cosign); a bad signature by a ring key is refused outright. With ``origin``, the note
    must be that log's. Raises CheckpointError naming why."""
    checkpoint, signatures = parse(note)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"the note is for {checkpoint.origin!r}, not {origin!r}")
    body = checkpoint.body()
    reasons = []
    valid = False
    for signature in signatures:
        key = ring.find(signature.name, signature.key_id)
        if key is None:
            reasons.append(f"unknown key {signature.name}+{signature.key_id:08x}")
            continue
        if not key.verifies(body, signature.signature):
            raise CheckpointError(f"bad signature by key {signature.name}")
        if not key.valid_at(checkpoint.time_ms):
            reasons.append(
                f"key {signature.name} is not valid at time {checkpoint.time_ms} "
                f"(window {key.not_before_ms}..{key.not_after_ms})"
            )
            continue
        valid = True
    if not valid:
        raise CheckpointError("no valid signature: " + "; ".join(reasons))
    return checkpoint
