"""Destination secrets: encrypted with the operator's key, or referenced, never in clear.

Stored secrets are Fernet tokens (AES-128-CBC + HMAC-SHA256, from ``cryptography``) made
with ``AUDITLOG_SECRETS_KEY``; several keys (comma separated, newest first) allow rotation:
new secrets use the first, old ones decrypt with any. A reference (``env:NAME``) keeps the
secret out of the store altogether: the worker reads it from its own environment, which is
handed to :class:`SecretBox` once, at the edge, with the operator's
:class:`~sinks.destinations.references.ReferencePolicy`: a reference to a name the policy
does not allow is refused when the destination is added or changed and again here, when a
worker opens it, before the environment is looked at.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from sinks.destinations.model import SecretValue
from sinks.destinations.references import ReferencePolicy, ReferenceRefused


class SecretError(ValueError):
    """A secret cannot be stored or read; the message never contains the secret."""


class SecretsKeyMissing(SecretError):
    """A secret must be sealed or opened, and no ``AUDITLOG_SECRETS_KEY`` is set."""


def generate_key() -> str:
    """A new random key for ``AUDITLOG_SECRETS_KEY``."""
    return Fernet.generate_key().decode()


class SecretBox:
    """Seals and opens :class:`SecretValue`. ``keys``: the configured Fernet keys, newest
    first (may be empty: then only references work). ``environment``: where ``env:``
    references are looked up (the process environment, passed in by the caller).
    ``references``: which names a reference may read (built once, at the edge)."""

    def __init__(
        self,
        keys: list[str],
        environment: Mapping[str, str],
        *,
        references: ReferencePolicy,
    ) -> None:
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys]) if keys else None
        except ValueError as exc:
            raise SecretError(
                "AUDITLOG_SECRETS_KEY: each key must be 32 url-safe base64-encoded bytes "
                "(make one with `auditlog destinations keygen`)"
            ) from exc
        self._environment = environment
        self._references = references

    @classmethod
    def from_setting(
        cls, setting: str | None, environment: Mapping[str, str], *, references: ReferencePolicy
    ) -> SecretBox:
        keys = [k.strip() for k in (setting or "").split(",") if k.strip()]
        return cls(keys, environment, references=references)

    @property
    def references(self) -> ReferencePolicy:
        return self._references

    def check(self, secret: SecretValue) -> None:
        """Raise :class:`SecretError` when ``secret`` is a reference the policy refuses
        (reads nothing)."""
        if secret.ref is not None:
            try:
                self._references.check(secret.ref)
            except ReferenceRefused as exc:
                raise SecretError(str(exc)) from None

    def seal(self, plaintext: str) -> SecretValue:
        """Encrypt ``plaintext``; raises :class:`SecretError` when no key is configured."""
        if self._fernet is None:
            raise SecretsKeyMissing(
                "no AUDITLOG_SECRETS_KEY is set, so secrets cannot be stored encrypted: set "
                "one, or pass the secret by reference (env:NAME)"
            )
        return SecretValue(encrypted=self._fernet.encrypt(plaintext.encode()).decode())

    def open(self, secret: SecretValue) -> bytes:
        """The secret's bytes; raises :class:`SecretError` when it cannot be read, or is a
        reference the policy refuses (then the environment is not looked at)."""
        if secret.ref is not None:
            self.check(secret)
            name = secret.ref.removeprefix("env:")
            value = self._environment.get(name)
            if value is None:
                raise SecretError(f"secret reference {secret.ref}: {name} is not set")
            return value.encode()
        assert secret.encrypted is not None
        if self._fernet is None:
            raise SecretsKeyMissing(
                "an encrypted secret needs AUDITLOG_SECRETS_KEY, which is not set"
            )
        try:
            return self._fernet.decrypt(secret.encrypted.encode())
        except InvalidToken:
            raise SecretError(
                "an encrypted secret does not open with any AUDITLOG_SECRETS_KEY key "
                "(was the key rotated without keeping the old one?)"
            ) from None
