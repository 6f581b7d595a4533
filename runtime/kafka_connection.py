"""How to reach a Kafka cluster: bootstrap servers and security, as librdkafka properties.

:class:`KafkaConnection` is built once at the edge (``auditlog.wiring.kafka_connection``
from the ``AUDITLOG_KAFKA_*`` settings) and handed to every Kafka client the project
creates; each client starts its configuration from :meth:`KafkaConnection.properties`, so
none can be built without the security properties. :class:`KafkaSecurity` says how the
client authenticates: PLAINTEXT, TLS (a CA file, a client certificate for mutual TLS),
SASL (PLAIN, SCRAM-SHA-256/512, or OAUTHBEARER through librdkafka's OIDC client-credentials
method), or SASL over TLS.

Secrets (SASL password, OAuth client secret, key password) are kept as
:class:`~pydantic.SecretStr`: ``repr`` and ``str`` show ``**********``; only
:meth:`KafkaSecurity.properties` reveals them, for the client itself.
:meth:`KafkaSecurity.problems` finds incoherent combinations and missing files, one
sentence each naming the setting and what to do; nothing else checks them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]

_PASSWORD_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_TLS_PROTOCOLS = ("SSL", "SASL_SSL")
_SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
_OAUTH_FIELDS = (
    "oauth_token_url",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
    "oauth_extensions",
)
_EXTENSION = re.compile(r"[A-Za-z]+=[^,=]+")
_TLS_FILES = ("ssl_ca_file", "ssl_cert_file", "ssl_key_file")

Namer = Callable[[str], str]
"""Names a field in messages: the field itself, or the setting it comes from."""


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client authenticates to the brokers and protects the connection.

    Field names are the settings' names without ``kafka_`` (``security_protocol`` is
    ``AUDITLOG_KAFKA_SECURITY_PROTOCOL``). The default is PLAINTEXT: no TLS, no SASL.
    """

    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    oauth_token_url: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: SecretStr | None = None
    oauth_scope: str | None = None
    oauth_extensions: str | None = None
    ssl_ca_file: Path | None = None
    ssl_cert_file: Path | None = None
    ssl_key_file: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_verify_hostname: bool = True

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in _TLS_PROTOCOLS

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in _SASL_PROTOCOLS

    def problems(self, name: Namer = str) -> list[str]:
        """Every incoherent combination and unusable file, one sentence each, naming
        fields with ``name`` (the settings name them ``AUDITLOG_KAFKA_...``). Reads the
        file system (the files must exist and be readable); empty when all is well."""
        return [*self._sasl_problems(name), *self._oauth_problems(name), *self._tls_problems(name)]

    def _sasl_problems(self, name: Namer) -> list[str]:
        protocol, mechanism = self.security_protocol, self.sasl_mechanism
        found: list[str] = []
        if mechanism is not None and not self.uses_sasl:
            found.append(
                f"{name('sasl_mechanism')} is {mechanism} but {name('security_protocol')} is "
                f"{protocol}, which does not use SASL: set {name('security_protocol')} to "
                "SASL_SSL (or SASL_PLAINTEXT on a network you trust), or unset the mechanism"
            )
        if mechanism is None and self.uses_sasl:
            found.append(
                f"{name('security_protocol')} is {protocol}: set {name('sasl_mechanism')} "
                f"to one of {', '.join((*_PASSWORD_MECHANISMS, 'OAUTHBEARER'))}"
            )
        has_user, has_password = bool(self.sasl_username), bool(self.sasl_password)
        if has_password and not has_user:
            found.append(
                f"{name('sasl_password')} is set without {name('sasl_username')}: "
                "set the user name too, or unset the password"
            )
        if mechanism in _PASSWORD_MECHANISMS:
            if not self.uses_sasl:
                return found  # the protocol, said above, is the thing to fix first
            if has_user and not has_password:
                found.append(
                    f"SASL mechanism {mechanism} needs a password: set {name('sasl_password')}"
                )
            elif not has_user and not has_password:
                found.append(
                    f"SASL mechanism {mechanism} needs a user name and a password: set "
                    f"{name('sasl_username')} and {name('sasl_password')}"
                )
        elif not (self.uses_sasl and mechanism is None):  # else: "set the mechanism" above
            found += [
                f"{name(f)} is only used with SASL mechanism PLAIN, SCRAM-SHA-256 or "
                f"SCRAM-SHA-512 (now: {mechanism or 'none'}): set {name('sasl_mechanism')}, "
                "or unset it"
                for f, given in (("sasl_username", has_user), ("sasl_password", has_password))
                if given
            ]
        return found

    def _oauth_problems(self, name: Namer) -> list[str]:
        given = [f for f in _OAUTH_FIELDS if getattr(self, f)]
        if self.sasl_mechanism != "OAUTHBEARER":
            return [
                f"{name(f)} is only used with SASL mechanism OAUTHBEARER: "
                f"set {name('sasl_mechanism')}=OAUTHBEARER, or unset it"
                for f in given
            ]
        found = []
        missing = [name(f) for f in _OAUTH_FIELDS[:3] if f not in given]
        if missing:
            found.append(
                "SASL mechanism OAUTHBEARER gets its tokens from an OIDC token endpoint with "
                f"client credentials: set {', '.join(missing)}"
            )
        url = self.oauth_token_url
        if url is not None and not url.startswith("https://"):
            found.append(
                f"{name('oauth_token_url')} must be an https:// URL (the OIDC token endpoint)"
            )
        extensions = self.oauth_extensions
        if extensions and not all(_EXTENSION.fullmatch(e) for e in extensions.split(",")):
            found.append(
                f"{name('oauth_extensions')} must be comma-separated key=value pairs, as "
                "logicalCluster=lkc-123,identityPoolId=pool-456"
            )
        return found

    def _tls_problems(self, name: Namer) -> list[str]:
        found: list[str] = []
        given = [f for f in _TLS_FILES if getattr(self, f) is not None]
        if self.ssl_key_password:
            given.append("ssl_key_password")
        if not self.uses_tls:
            return [
                f"{name(f)} is set but {name('security_protocol')} is "
                f"{self.security_protocol}, which does not use TLS: set it to SSL or "
                "SASL_SSL, or unset this"
                for f in given
            ]
        if self.ssl_cert_file is not None and self.ssl_key_file is None:
            found.append(
                f"{name('ssl_cert_file')} is set without {name('ssl_key_file')}: a client "
                "certificate needs its private key"
            )
        if self.ssl_key_file is not None and self.ssl_cert_file is None:
            found.append(
                f"{name('ssl_key_file')} is set without {name('ssl_cert_file')}: give the "
                "client certificate too"
            )
        if self.ssl_key_password and self.ssl_key_file is None:
            found.append(
                f"{name('ssl_key_password')} is set without {name('ssl_key_file')}: "
                "give the (encrypted) private key too, or unset the password"
            )
        for f in _TLS_FILES:
            path: Path | None = getattr(self, f)
            if path is not None:
                problem = pem_file_problem(path, directory_ok=f == "ssl_ca_file")
                if problem:
                    found.append(f"{name(f)}: {path} {problem}")
        return found

    def properties(self) -> dict[str, str]:
        """The librdkafka properties of this security setup (secrets in clear: give them
        to a client, never to a log)."""
        props: dict[str, str] = {"security.protocol": self.security_protocol}
        if self.uses_sasl and self.sasl_mechanism is not None:
            props["sasl.mechanism"] = self.sasl_mechanism
            if self.sasl_mechanism == "OAUTHBEARER":
                props.update(self._oauth_properties())
            else:
                props["sasl.username"] = self.sasl_username or ""
                props["sasl.password"] = _reveal(self.sasl_password)
        if self.uses_tls:
            props["ssl.endpoint.identification.algorithm"] = (
                "https" if self.ssl_verify_hostname else "none"
            )
            for key, path in (
                ("ssl.ca.location", self.ssl_ca_file),
                ("ssl.certificate.location", self.ssl_cert_file),
                ("ssl.key.location", self.ssl_key_file),
            ):
                if path is not None:
                    props[key] = str(path)
            if self.ssl_key_password:
                props["ssl.key.password"] = _reveal(self.ssl_key_password)
        return props

    def _oauth_properties(self) -> dict[str, str]:
        props = {
            "sasl.oauthbearer.method": "oidc",
            "sasl.oauthbearer.token.endpoint.url": self.oauth_token_url or "",
            "sasl.oauthbearer.client.id": self.oauth_client_id or "",
            "sasl.oauthbearer.client.secret": _reveal(self.oauth_client_secret),
        }
        if self.oauth_scope:
            props["sasl.oauthbearer.scope"] = self.oauth_scope
        if self.oauth_extensions:
            props["sasl.oauthbearer.extensions"] = self.oauth_extensions
        return props

    def describe(self) -> str:
        """A short description without secrets: ``SASL_SSL, SCRAM-SHA-512 as alice``."""
        parts: list[str] = [self.security_protocol]
        if self.uses_sasl and self.sasl_mechanism:
            who = self.sasl_username or self.oauth_client_id
            parts.append(f"{self.sasl_mechanism} as {who}" if who else self.sasl_mechanism)
        if self.uses_tls and self.ssl_cert_file is not None:
            parts.append("client certificate")
        return ", ".join(parts)


@dataclass(frozen=True)
class KafkaConnection:
    """Bootstrap servers and security: the start of every client's configuration."""

    bootstrap: str
    security: KafkaSecurity = field(default_factory=KafkaSecurity)

    def properties(self) -> dict[str, Any]:
        """``bootstrap.servers`` and the security properties; a client adds its own."""
        return {"bootstrap.servers": self.bootstrap, **self.security.properties()}

    def __str__(self) -> str:
        return f"{self.bootstrap} ({self.security.describe()})"


def _reveal(secret: SecretStr | None) -> str:
    return "" if secret is None else secret.get_secret_value()


def pem_file_problem(path: Path, *, directory_ok: bool = False) -> str | None:
    """Why ``path`` cannot serve as a PEM file (or, with ``directory_ok``, a directory of
    CA certificates), said after the path; None when it can."""
    if not path.exists():
        return "does not exist: give the path of the PEM file"
    if not (path.is_file() or (directory_ok and path.is_dir())):
        return "is not a file: give the path of the PEM file"
    if not os.access(path, os.R_OK):
        return "cannot be read by this process: check its permissions"
    return None
