"""The bundled Avro schema versions of the audit event, and their fingerprints.

Every ``schemas/avro/audit_event.vN.avsc`` ships with the package, so a decoder can read
any version a producer ever wrote (identified by the CRC-64-AVRO fingerprint of its
parsing canonical form) into the current reader schema without a registry.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

SCHEMA_DIR = Path(__file__).resolve().parent / "avro"
_FILE_NAME = re.compile(r"audit_event\.v(\d+)\.avsc")


@dataclass(frozen=True)
class SchemaVersion:
    """One bundled version: its number, the schema as written, and its identity."""

    version: int
    path: Path
    schema: dict[str, Any]
    parsed: Any
    canonical: str
    fingerprint: bytes  # CRC-64-AVRO of the canonical form, little-endian (as on the wire)

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint.hex()


def load_version(path: Path) -> SchemaVersion:
    """Parse one ``.avsc`` file; raises ``ValueError`` for a bad name or schema."""
    match = _FILE_NAME.fullmatch(path.name)
    if match is None:
        raise ValueError(f"{path}: schema files are named audit_event.vN.avsc")
    schema = json.loads(path.read_text())
    parsed = parse_schema(schema)
    canonical = to_parsing_canonical_form(parsed)
    return SchemaVersion(
        version=int(match.group(1)),
        path=path,
        schema=schema,
        parsed=parsed,
        canonical=canonical,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


@cache
def bundled() -> tuple[SchemaVersion, ...]:
    """Every bundled version, oldest first (read once per process)."""
    versions = sorted(
        (load_version(path) for path in SCHEMA_DIR.glob("audit_event.v*.avsc")),
        key=lambda v: v.version,
    )
    numbers = [v.version for v in versions]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(f"schema versions in {SCHEMA_DIR} must be 1..N without gaps: {numbers}")
    return tuple(versions)


def current() -> SchemaVersion:
    """The newest version: what producers write and what decoders read into."""
    return bundled()[-1]


@cache
def _by_fingerprint() -> dict[bytes, SchemaVersion]:
    return {v.fingerprint: v for v in bundled()}


def by_fingerprint(value: bytes) -> SchemaVersion | None:
    """The bundled version with this 8-byte fingerprint, or None."""
    return _by_fingerprint().get(bytes(value))
