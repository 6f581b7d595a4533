"""The checkpoint signing keys on disk (``AUDITLOG_INTEGRITY_KEYS_DIR``).

One directory, mode 0700:

- ``keys.json``: the public side of every key, as :func:`public_document` writes it (names,
  verifier keys, windows): the same document ``auditlog keys export`` prints for customers
  and ``verify_standalone.py --keys`` reads;
- ``<name>.pem``: each private key, PKCS#8 PEM, created with mode 0600. A private key file
  readable by group or others is refused, never used.

Writes replace ``keys.json`` atomically (a temporary file renamed over it); a private key
is written before the metadata that names it, so a crash leaves at worst an unused file.
One writer at a time (an operator's command), any number of readers.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from integrity.keys import KeyFormatError, KeyRing, SigningKey, VerifierKey, parse_verifier_key

METADATA_FILE = "keys.json"
DOCUMENT_VERSION = 1
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


class KeyStoreError(Exception):
    """The store cannot do what was asked: ``refused`` for its state (a key exists, no
    active key, a name in use), otherwise a file that is unsafe, missing or corrupt."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass(frozen=True)
class StoredKey:
    """A key as ``list`` shows it: its public side and whether its private key is here."""

    key: VerifierKey
    private_present: bool


def public_document(keys: list[VerifierKey]) -> dict[str, Any]:
    """The public keys with their windows: what a customer keeps to verify checkpoints."""
    return {
        "version": DOCUMENT_VERSION,
        "keys": [
            {
                "name": key.name,
                "key_id": f"{key.key_id:08x}",
                "verifier_key": key.text(),
                "not_before_ms": key.not_before_ms,
                "not_after_ms": key.not_after_ms,
            }
            for key in keys
        ],
    }


def parse_public_document(document: Any) -> list[VerifierKey]:
    """The keys of a :func:`public_document`; KeyFormatError when it is not one."""
    if not isinstance(document, dict) or document.get("version") != DOCUMENT_VERSION:
        raise KeyFormatError(f"not a version {DOCUMENT_VERSION} key document")
    keys = []
    for entry in document.get("keys", []):
        key = parse_verifier_key(
            entry["verifier_key"], entry["not_before_ms"], entry.get("not_after_ms")
        )
        if key.name != entry["name"]:
            raise KeyFormatError(f"key {entry['name']}: its verifier key names {key.name}")
        keys.append(key)
    return keys


class KeyStore:
    """The key directory. Methods read the files anew at each call."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _private_path(self, name: str) -> Path:
        return self.directory / f"{name}.pem"

    def public_keys(self) -> list[VerifierKey]:
        """Every key's public side, oldest first; none when the store does not exist yet."""
        path = self.directory / METADATA_FILE
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            return parse_public_document(document)
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"{path}: not a key document ({exc})") from exc

    def listing(self) -> list[StoredKey]:
        return [StoredKey(k, self._private_path(k.name).exists()) for k in self.public_keys()]

    def ring(self) -> KeyRing:
        return KeyRing(self.public_keys())

    def active_signers(self, now_ms: int) -> list[SigningKey]:
        """Every key whose window holds ``now_ms``, with its private key (two during a
        rotation's overlap). Raises KeyStoreError for a missing, unsafe or wrong key file."""
        return [self._signing_key(k) for k in self.public_keys() if k.valid_at(now_ms)]

    def generate(self, name: str, now_ms: int) -> VerifierKey:
        """The first key, valid from ``now_ms`` on. Refused when the store has a key."""
        existing = self.public_keys()
        if existing:
            raise KeyStoreError(
                f"the store already has key {existing[-1].name}: use 'auditlog keys rotate'",
                refused=True,
            )
        return self._add(existing, name, now_ms)

    def rotate(self, name: str, now_ms: int, overlap_ms: int) -> VerifierKey:
        """A new key valid from ``now_ms``; every key active now ends at ``now_ms +
        overlap_ms`` (or earlier, if it already did), so the overlap is signed by both."""
        if overlap_ms < 0:
            raise KeyFormatError("the overlap cannot be negative")
        existing = self.public_keys()
        if not any(key.valid_at(now_ms) for key in existing):
            raise KeyStoreError(
                "no active key to rotate: use 'auditlog keys generate'", refused=True
            )
        self._check_new_name(existing, name)
        end_ms = now_ms + overlap_ms
        ended = [
            VerifierKey(k.name, k.public_key, k.not_before_ms, max(end_ms, k.not_before_ms + 1))
            if k.valid_at(now_ms) and (k.not_after_ms is None or k.not_after_ms > end_ms)
            else k
            for k in existing
        ]
        return self._add(ended, name, now_ms)

    def _check_new_name(self, existing: list[VerifierKey], name: str) -> None:
        if not _FILE_NAME.match(name):
            raise KeyFormatError(
                f"key name {name!r:.80}: letters, digits, '.', '_' and '-', at most 64"
            )
        if any(key.name == name for key in existing) or self._private_path(name).exists():
            raise KeyStoreError(f"a key named {name} exists already", refused=True)

    def _add(self, existing: list[VerifierKey], name: str, now_ms: int) -> VerifierKey:
        self._check_new_name(existing, name)
        private = Ed25519PrivateKey.generate()
        signing = SigningKey(name, private, now_ms, None)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        descriptor = os.open(self._private_path(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        self._write_metadata([*existing, signing.verifier()])
        return signing.verifier()

    def _write_metadata(self, keys: list[VerifierKey]) -> None:
        path = self.directory / METADATA_FILE
        temporary = path.with_suffix(".json.tmp")
        text = json.dumps(public_document(keys), indent=2) + "\n"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)

    def _signing_key(self, key: VerifierKey) -> SigningKey:
        path = self._private_path(key.name)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise KeyStoreError(f"{path}: the private key of {key.name} is missing") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyStoreError(
                f"{path}: readable by group or others (mode {stat.S_IMODE(mode):04o}); "
                f"refusing to use it: chmod 600 {path}"
            )
        try:
            private = load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise KeyStoreError(f"{path}: not an unencrypted PKCS#8 PEM key ({exc})") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyStoreError(f"{path}: not an Ed25519 key")
        signing = SigningKey(key.name, private, key.not_before_ms, key.not_after_ms)
        if signing.verifier().raw != key.raw:
            raise KeyStoreError(f"{path}: does not match the public key of {key.name}")
        return signing
