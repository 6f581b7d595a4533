"""Checkpoint signing keys: Ed25519 keys with names, signed-note key ids and validity
windows, the verifier-key text a customer keeps, and the ring a verifier trusts.

Formats as in C2SP signed-note (the same as Go's golang.org/x/mod/sumdb/note):

- key id: the first 4 bytes, big-endian, of ``SHA-256(name || "\\n" || 0x01 || public key)``;
- verifier key text: ``<name>+<8 hex digits of the key id>+<base64 of (0x01 || public key)>``.

A key is valid at times ``not_before_ms <= t < not_after_ms`` (milliseconds since the epoch,
UTC; no ``not_after_ms``: open-ended). Pure: no I/O (the key files are
:mod:`integrity.keystore`'s).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALGORITHM_ED25519 = 0x01
_HEX8 = re.compile(r"[0-9a-f]{8}\Z")


class KeyFormatError(ValueError):
    """A key name, verifier-key text or validity window that is not acceptable."""


def check_name(name: str) -> str:
    """A signed-note key name: not empty, no white space, no ``+``. Returns it."""
    if not name or "+" in name or any(c.isspace() for c in name) or not name.isprintable():
        raise KeyFormatError(
            f"key name {name!r:.80}: must be non-empty, printable, without spaces or '+'"
        )
    return name


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public_key: bytes) -> int:
    """The signed-note Ed25519 key id of ``name`` and a raw 32-byte public key."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ALGORITHM_ED25519]) + public_key)
    return int.from_bytes(digest.digest()[:4], "big")


def _check_window(not_before_ms: int, not_after_ms: int | None) -> None:
    if not_after_ms is not None and not_after_ms <= not_before_ms:
        raise KeyFormatError(f"a key's window must not be empty ({not_before_ms}..{not_after_ms})")


@dataclass(frozen=True)
class VerifierKey:
    """A public key that verifies checkpoint signatures within its window."""

    name: str
    public_key: Ed25519PublicKey = field(compare=False)
    not_before_ms: int = 0
    not_after_ms: int | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        _check_window(self.not_before_ms, self.not_after_ms)

    @property
    def raw(self) -> bytes:
        """The 32-byte public key."""
        return public_bytes(self.public_key)

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.raw)

    def text(self) -> str:
        """The signed-note verifier key: ``name+hex8+base64(0x01 || key)``."""
        encoded = base64.b64encode(bytes([ALGORITHM_ED25519]) + self.raw).decode()
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    def valid_at(self, time_ms: int) -> bool:
        return self.not_before_ms <= time_ms and (
            self.not_after_ms is None or time_ms < self.not_after_ms
        )

    def verifies(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def parse_verifier_key(
    text: str, not_before_ms: int = 0, not_after_ms: int | None = None
) -> VerifierKey:
    """The key in a verifier-key text; the window is not part of the text. Raises
    :class:`KeyFormatError` with the reason when the text is malformed or its id does not fit."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError("verifier key: expected name+keyid+base64")
    name, hex_id, encoded = parts
    check_name(name)
    if not _HEX8.match(hex_id):
        raise KeyFormatError(f"verifier key {name}: the key id must be 8 lower-case hex digits")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise KeyFormatError(f"verifier key {name}: the key is not base64") from exc
    if len(raw) != 33 or raw[0] != ALGORITHM_ED25519:
        raise KeyFormatError(f"verifier key {name}: not an Ed25519 key (0x01 and 32 bytes)")
    if key_id(name, raw[1:]) != int(hex_id, 16):
        raise KeyFormatError(f"verifier key {name}: the key id does not match the name and key")
    public = Ed25519PublicKey.from_public_bytes(raw[1:])
    return VerifierKey(name, public, not_before_ms, not_after_ms)


@dataclass(frozen=True)
class SigningKey:
    """A private key that signs checkpoints whose time lies in its window."""

    name: str
    private_key: Ed25519PrivateKey = field(compare=False, repr=False)
    not_before_ms: int = 0
    not_after_ms: int | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        _check_window(self.not_before_ms, self.not_after_ms)

    def verifier(self) -> VerifierKey:
        return VerifierKey(
            self.name, self.private_key.public_key(), self.not_before_ms, self.not_after_ms
        )

    @property
    def key_id(self) -> int:
        return key_id(self.name, public_bytes(self.private_key.public_key()))

    def valid_at(self, time_ms: int) -> bool:
        return self.verifier().valid_at(time_ms)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self.private_key.sign(message)


class KeyRing:
    """The verifier keys a verifier trusts, found by (name, key id) as signed notes name
    them. Raises :class:`KeyFormatError` for two keys with the same name and id."""

    def __init__(self, keys: Iterable[VerifierKey]) -> None:
        self._keys: dict[tuple[str, int], VerifierKey] = {}
        for key in keys:
            slot = (key.name, key.key_id)
            if slot in self._keys:
                raise KeyFormatError(f"key {key.name} ({key.key_id:08x}) is in the ring twice")
            self._keys[slot] = key

    @property
    def keys(self) -> tuple[VerifierKey, ...]:
        return tuple(self._keys.values())

    def find(self, name: str, key_id: int) -> VerifierKey | None:
        return self._keys.get((name, key_id))

    def valid_at(self, time_ms: int) -> list[VerifierKey]:
        """The keys whose window holds ``time_ms``."""
        return [key for key in self._keys.values() if key.valid_at(time_ms)]
