"""The C2SP signed-note envelope (https://c2sp.org/signed-note) that checkpoints
(:mod:`integrity.checkpoint`) and prune statements (:mod:`integrity.prune_statement`) share:
a body of text lines, a blank line, and one signature line per key::

    — <key name> <base64 of (4-byte key id || 64-byte Ed25519 signature)>

The signature is over the body's bytes. Parsing is strict: no control characters but
newlines, a final newline, the em dash U+2014, canonical base64, no key twice. What the
body holds is the caller's to parse. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from integrity.keys import KeyFormatError, KeyRing, SigningKey, check_name

SIGNATURE_PREFIX = "\u2014 "  # em dash, space
MAX_INT = 2**63 - 1  # sizes and times fit a signed 64-bit integer (ClickHouse, Go)
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)\Z")


class NoteError(ValueError):
    """A note that is malformed, or that no trusted key signed validly for its time."""


@dataclass(frozen=True)
class Signature:
    """One signature line: the key's name and id, and the signature bytes."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        encoded = base64.b64encode(self.key_id.to_bytes(4, "big") + self.signature).decode()
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


def decimal(text: str, what: str) -> int:
    """A decimal without leading zeros, below 2^63; raises NoteError naming ``what``."""
    if not _DECIMAL.match(text) or int(text) > MAX_INT:
        raise NoteError(f"{what} {text!r:.40}: a decimal number without leading zeros")
    return int(text)


def canonical_base64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise NoteError(f"{what}: not base64") from exc
    if base64.b64encode(raw).decode() != text:
        raise NoteError(f"{what}: not canonical base64")
    return raw


def sign_body(body: bytes, time_ms: int, keys: Sequence[SigningKey], what: str) -> str:
    """The signed note of ``body`` (a ``what`` of ``time_ms``): the body, a blank line, one
    signature per key, in the keys' order. Raises NoteError without keys, or with a key
    whose window does not hold ``time_ms`` (no verifier would accept it)."""
    if not keys:
        raise NoteError(f"a {what} needs at least one signing key")
    lines = []
    for key in keys:
        if not key.valid_at(time_ms):
            raise NoteError(
                f"key {key.name} is not valid at {time_ms} "
                f"(window {key.not_before_ms}..{key.not_after_ms})"
            )
        lines.append(Signature(key.name, key.key_id, key.sign(body)).line())
    return body.decode() + "\n" + "".join(lines)


def _parse_signature(line: str) -> Signature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError("a signature line must start with '\u2014 ' (U+2014, a space)")
    name, space, encoded = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
    if not space or not encoded:
        raise NoteError("a signature line is '\u2014 <key name> <base64>'")
    try:
        check_name(name)
    except KeyFormatError as exc:
        raise NoteError(f"signature line: {exc}") from exc
    raw = canonical_base64(encoded, f"signature of {name}")
    if len(raw) < 5:
        raise NoteError(f"signature of {name}: too short")
    return Signature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def split(note: str) -> tuple[str, list[Signature]]:
    """The body (its lines, each ending in ``\\n``) and the parsed signature lines of a
    note, not verified. Raises NoteError saying which envelope rule the note breaks."""
    if any(c < " " and c != "\n" for c in note):
        raise NoteError("a note holds no control characters other than newlines")
    if not note.endswith("\n"):
        raise NoteError("a note ends with a newline")
    body, blank, signatures = note.rpartition("\n\n")
    if not blank:
        raise NoteError("no blank line between the body and the signatures")
    lines = signatures.split("\n")[:-1]
    if not lines:
        raise NoteError("a note has at least one signature line")
    parsed = [_parse_signature(line) for line in lines]
    slots = [(s.name, s.key_id) for s in parsed]
    if len(set(slots)) != len(slots):
        raise NoteError("the same key signed twice")
    return body + "\n", parsed


def verify_signatures(
    body: bytes, signatures: Sequence[Signature], ring: KeyRing, time_ms: int
) -> None:
    """Returns when at least one key of ``ring``, valid at ``time_ms``, signed ``body``.
    Signatures by keys outside the ring are ignored (others may cosign); a bad signature by
    a ring key is refused outright. Raises NoteError naming why."""
    reasons = []
    valid = False
    for signature in signatures:
        key = ring.find(signature.name, signature.key_id)
        if key is None:
            reasons.append(f"unknown key {signature.name}+{signature.key_id:08x}")
            continue
        if not key.verifies(body, signature.signature):
            raise NoteError(f"bad signature by key {signature.name}")
        if not key.valid_at(time_ms):
            reasons.append(
                f"key {signature.name} is not valid at time {time_ms} "
                f"(window {key.not_before_ms}..{key.not_after_ms})"
            )
            continue
        valid = True
    if not valid:
        raise NoteError("no valid signature: " + "; ".join(reasons))
