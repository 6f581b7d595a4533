"""The identity provider's public keys, as a JSON Web Key Set (RFC 7517) read from a file
or fetched from a URL, and the choice of the one key that may verify a given token.

Only RS256 (an RSA public key) and ES256 (an EC public key on P-256) are served from a key
set. A key is chosen by the token's ``kid``; a token without one is accepted only when the
set holds exactly one signing key. The chosen key must fit the token's algorithm: its type
(and curve) must be the algorithm's, and its own ``alg``, when the JWK states one, must be
the token's. Private keys, keys for encryption (``use: enc``) and unusable entries are
ignored, never used to verify.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import PyJWK, PyJWKClient, PyJWKSet
from jwt.exceptions import PyJWTError

from runtime.redaction import redact_text, redact_url

KEY_SET_ALGORITHMS = frozenset({"RS256", "ES256"})

_LOG = logging.getLogger("auditlog.viewer.jwks")


class KeyRefused(Exception):
    """No key of the set may verify this token; ``str(exc)`` is a short reason that names
    nothing taken from the token."""


class UnknownKeyId(KeyRefused):
    def __init__(self) -> None:
        super().__init__("unknown key id")


class KeysUnavailable(Exception):
    """The key set could not be read or fetched (the cause is logged, not in the message)."""

    def __init__(self) -> None:
        super().__init__("keys of the identity provider could not be fetched")


class KeySource(Protocol):
    def key_for(self, kid: str | None, alg: str) -> PyJWK:
        """The key that verifies a token with header ``kid`` and ``alg``; raises
        :class:`KeyRefused` or :class:`KeysUnavailable`."""
        ...


def fits(key: PyJWK, alg: str) -> bool:
    """Whether ``key`` may verify a token signed with ``alg``. ``PyJWK.algorithm_name`` is
    the JWK's own ``alg`` when present, else the one its type implies (RSA: RS256, EC P-256:
    ES256), so comparing it covers both rules."""
    if key.algorithm_name != alg:
        return False
    if alg == "RS256":
        return key.key_type == "RSA" and isinstance(key.key, RSAPublicKey)
    if alg == "ES256":
        return (
            key.key_type == "EC"
            and isinstance(key.key, EllipticCurvePublicKey)
            and key.key.curve.name == "secp256r1"
        )
    return False


def signing_keys(key_set: PyJWKSet) -> list[PyJWK]:
    """The public signing keys of ``key_set`` (``use`` absent or ``sig``)."""
    return [
        key
        for key in key_set.keys
        if key.public_key_use in (None, "sig")
        and isinstance(key.key, RSAPublicKey | EllipticCurvePublicKey)
    ]


def choose(keys: Sequence[PyJWK], kid: str | None, alg: str) -> PyJWK:
    """The key of ``keys`` for a token with ``kid`` and ``alg``; raises :class:`UnknownKeyId`
    or :class:`KeyRefused`."""
    if alg not in KEY_SET_ALGORITHMS:
        raise KeyRefused("algorithm not accepted")
    if kid is None:
        if len(keys) != 1:
            raise KeyRefused("the token names no key id and the key set holds several keys")
        candidates = list(keys)
    else:
        candidates = [key for key in keys if key.key_id == kid]
        if not candidates:
            raise UnknownKeyId()
    for key in candidates:
        if fits(key, alg):
            return key
    raise KeyRefused("the key does not fit the token's algorithm")


def parse_key_set(data: Any) -> list[PyJWK]:
    """The signing keys of a decoded JWKS document; ``ValueError`` or PyJWT's errors when
    it is not one or holds no usable signing key."""
    if not isinstance(data, dict):
        raise ValueError("a key set is a JSON object with a 'keys' list")
    keys = signing_keys(PyJWKSet.from_dict(data))
    if not keys:
        raise ValueError("the key set holds no public RSA or EC signing key")
    return keys


def url_problem(url: str) -> str | None:
    """Why ``url`` may not serve keys (https only; http only to a loopback host), or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a URL"
    if not host:
        return "is not a URL with a host"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and _is_loopback(host):
        return None
    return "must be an https URL (plain http only to a loopback host)"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class FileKeys:
    """Keys from a JWKS file, read at construction (raises ``OSError``, ``ValueError`` or
    PyJWT's errors when unusable) and read again when the file's modification time changes;
    a rewrite that does not parse keeps the previous keys and is logged."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp = path.stat().st_mtime_ns
        self._keys = self._read()

    def _read(self) -> list[PyJWK]:
        return parse_key_set(json.loads(self._path.read_text(encoding="utf-8")))

    def _refresh(self) -> None:
        try:
            stamp = self._path.stat().st_mtime_ns
        except OSError as exc:
            _LOG.warning("JWKS file %s: %s (keeping the keys read before)", self._path, exc)
            return
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._keys = self._read()
        except (OSError, ValueError, PyJWTError) as exc:
            _LOG.warning("JWKS file %s: %s (keeping the keys read before)", self._path, exc)

    def key_for(self, kid: str | None, alg: str) -> PyJWK:
        self._refresh()
        return choose(self._keys, kid, alg)


class UrlKeys:
    """Keys fetched from a JWKS URL with PyJWT's :class:`~jwt.PyJWKClient` (no redirects),
    the set cached for ``cache_s``. A ``kid`` not in the cached set makes one fetch anew,
    at most once per ``refetch_cooldown_s``, so tokens with made-up key ids cannot make the
    verifier hammer the provider. Blocks on a fetch (at most ``timeout_s``): call from a
    worker thread in async code. A failed fetch raises :class:`KeysUnavailable` and is
    logged."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        cache_s: float = 300.0,
        refetch_cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        problem = url_problem(url)
        if problem is not None:
            raise ValueError(f"JWKS URL {problem}")
        self._url = url
        self._client = PyJWKClient(
            url,
            cache_jwk_set=True,
            lifespan=cache_s,
            timeout=timeout_s,
            cooldown_duration=refetch_cooldown_s,
            headers={"User-Agent": "auditlog-viewer"},
        )
        self._cooldown_s = refetch_cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_refetch: float | None = None

    def key_for(self, kid: str | None, alg: str) -> PyJWK:
        try:
            return choose(self._keys(refresh=False), kid, alg)
        except UnknownKeyId:
            if not self._may_refetch():
                raise
            return choose(self._keys(refresh=True), kid, alg)

    def _may_refetch(self) -> bool:
        with self._lock:
            now = self._clock()
            if self._last_refetch is not None and now - self._last_refetch < self._cooldown_s:
                return False
            self._last_refetch = now
            return True

    def _keys(self, *, refresh: bool) -> list[PyJWK]:
        try:
            return signing_keys(self._client.get_jwk_set(refresh=refresh))
        except (PyJWTError, ValueError, OSError) as exc:
            _LOG.warning(
                "JWKS URL %s could not be fetched: %s",
                redact_url(self._url),
                redact_text(str(exc)),
            )
            raise KeysUnavailable() from None
