"""Keys and token builders for the viewer's identity tests: RSA and EC P-256 keys made at
test time with ``cryptography``, their JWKS, and a loopback HTTP server that serves a JWKS
and counts the requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "auditlog-viewer"
HS_SECRET = "s" * 40
DEV_SECRET = "d" * 40


@dataclass(frozen=True)
class Keys:
    rsa: RSAPrivateKey
    rsa_other: RSAPrivateKey  # not in any key set: forgeries
    ec: EllipticCurvePrivateKey

    def jwk_rsa(self, kid: str = "rsa-1", **extra: Any) -> dict[str, Any]:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True)
        return {**jwk, "kid": kid, "use": "sig", **extra}

    def jwk_ec(self, kid: str = "ec-1", **extra: Any) -> dict[str, Any]:
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True)
        return {**jwk, "kid": kid, **extra}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk_rsa(), self.jwk_ec()]}


def make_keys() -> Keys:
    return Keys(
        rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa_other=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec=ec.generate_private_key(ec.SECP256R1()),
    )


def claims(**changes: Any) -> dict[str, Any]:
    """Valid claims for user u-1 of account acme; ``None`` removes a claim."""
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "sub": "u-1",
        "account_id": "acme",
        "email": "ada@example.com",
        "name": "Ada",
        "roles": ["Admin"],
        "privileges": ["activity_audit"],
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def sign(payload: dict[str, Any], key: Any, alg: str, **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm=alg, headers=headers or None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], payload: dict[str, Any]) -> str:
    body = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in payload.items()}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"


def unsigned(payload: dict[str, Any], alg: str = "none") -> str:
    """A token with ``alg`` (``none``...) and an empty signature."""
    return _segments({"alg": alg, "typ": "JWT"}, payload) + "."


def hmac_signed(payload: dict[str, Any], secret: bytes, **header: Any) -> str:
    """An HS256 token signed by hand (PyJWT refuses to sign with a PEM key as secret)."""
    head = _segments({"alg": "HS256", "typ": "JWT", **header}, payload)
    mac = hmac.new(secret, head.encode(), hashlib.sha256).digest()
    return f"{head}.{_b64(mac)}"


class JwksServer:
    """Serves ``document`` as JSON on 127.0.0.1 (port chosen by the OS) in a thread;
    ``requests`` counts the GETs; ``status`` other than 200 answers that error."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.status = 200
        self.requests = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.requests += 1
                    status, body = server.status, json.dumps(server.document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/.well-known/jwks.json"

    @contextmanager
    def running(self) -> Iterator[JwksServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._http.shutdown()
            self._http.server_close()
            self._thread.join()
