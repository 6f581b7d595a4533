"""Throwaway certificates for the local stack's TLS listeners and their tests.

A private CA (:func:`new_authority`) issues a server certificate for the loopback names
(``localhost``, ``127.0.0.1``) and client certificates for mutual TLS; every file is PEM,
as both the Kafka broker (``ssl.keystore.type=PEM``) and librdkafka read it. Keys are
ECDSA P-256 (quick to make); they are unencrypted unless a password is given (then
PKCS#8 with the best encryption ``cryptography`` offers). Valid for ``days`` from a
minute ago. Development tooling: made at test time, never for production.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK_NAMES = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class Authority:
    """A CA: its certificate file (what clients and servers trust) and its signing key."""

    cert_file: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, as separate PEM files."""

    cert_file: Path
    key_file: Path


def new_authority(directory: Path, name: str = "auditlog test CA", *, days: int = 2) -> Authority:
    """A self-signed CA; its certificate is written to ``directory/<slug>.ca.pem``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name)
    cert = (
        _builder(subject, subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file = directory / f"{_slug(name)}.ca.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Authority(cert_file, key, cert)


def issue(
    authority: Authority,
    directory: Path,
    common_name: str,
    *,
    server_names: tuple[str, ...] = (),
    key_password: str | None = None,
    days: int = 2,
) -> Issued:
    """A certificate signed by ``authority``: for a server when ``server_names`` (DNS names
    or IP addresses) are given, for a client otherwise. Writes ``<slug>.pem`` and
    ``<slug>.key`` to ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(_name(common_name), authority.cert.subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
    )
    if server_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in server_names]), critical=False
        )
    cert = builder.sign(authority.key, hashes.SHA256())
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(key_password.encode())
        if key_password
        else serialization.NoEncryption()
    )
    directory.mkdir(parents=True, exist_ok=True)
    issued = Issued(
        directory / f"{_slug(common_name)}.pem", directory / f"{_slug(common_name)}.key"
    )
    issued.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(
        issued.key_file,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        ),
    )
    return issued


def pem_keystore(issued: Issued, path: Path) -> Path:
    """One PEM file with the private key followed by the certificate: the layout of a
    Kafka ``ssl.keystore.type=PEM`` keystore (the key must be unencrypted PKCS#8 here)."""
    write_private(path, issued.key_file.read_bytes() + issued.cert_file.read_bytes())
    return path


def write_private(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path``, readable by this user only from its first byte (a
    chmod after writing would leave a window where others can read it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)  # an existing file keeps its mode otherwise
        out.write(content)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
