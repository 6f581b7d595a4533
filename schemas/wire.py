"""Audit events on the wire: Avro datums behind one of two framings.

- Avro single-object encoding (the default, no registry): ``C3 01``, the 8-byte
  little-endian CRC-64-AVRO fingerprint of the writer schema, then the datum. Every
  bundled schema version can be read by fingerprint.
- Confluent Schema Registry framing (when a registry is configured): a zero byte, the
  4-byte big-endian schema id, then the datum.

Decoders accept both and read any known writer version into the current reader schema.
:func:`parse_frame` only looks at the header, so hot paths can route and frame raw datums
without decoding them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from fastavro import parse_schema, schemaless_reader

from schemas.avro_encoder import compile_writer
from schemas.versions import SchemaVersion, by_fingerprint, current

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
SINGLE_OBJECT_HEADER_BYTES = 10
CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_BYTES = 5

WireReason = Literal["not-framed", "unknown-schema", "corrupt-datum"]


class WireError(ValueError):
    """A value that cannot be read as an audit event; ``reason`` is a stable code (it
    becomes the dead-letter reason downstream)."""

    def __init__(self, reason: WireReason, message: str) -> None:
        super().__init__(message)
        self.reason: WireReason = reason


@dataclass(frozen=True)
class Frame:
    """The framing of one value: which writer schema, and where the datum starts."""

    kind: Literal["single-object", "registry"]
    schema_ref: str  # "fp:<hex>" or "sr:<id>": also the value of the schema header
    fingerprint: bytes | None
    schema_id: int | None
    offset: int


def parse_frame(value: bytes) -> Frame:
    """Read the framing header of ``value`` without decoding the datum.

    Raises :class:`WireError` ("not-framed") for a value with neither framing.
    """
    if value[:2] == SINGLE_OBJECT_MAGIC and len(value) >= SINGLE_OBJECT_HEADER_BYTES:
        fp = bytes(value[2:SINGLE_OBJECT_HEADER_BYTES])
        return Frame("single-object", "fp:" + fp.hex(), fp, None, SINGLE_OBJECT_HEADER_BYTES)
    if value[:1] == CONFLUENT_MAGIC and len(value) >= CONFLUENT_HEADER_BYTES:
        schema_id = int.from_bytes(value[1:CONFLUENT_HEADER_BYTES], "big")
        return Frame("registry", f"sr:{schema_id}", None, schema_id, CONFLUENT_HEADER_BYTES)
    raise WireError(
        "not-framed",
        f"value of {len(value)} bytes starts with {bytes(value[:2]).hex() or 'nothing'}: "
        "neither Avro single-object encoding (c301) nor schema-registry framing (00)",
    )


class Encoder(Protocol):
    """Turns a datum (a dict shaped like the current schema) into a framed value."""

    @property
    def schema_ref(self) -> str:
        """The schema header value of every value this encoder writes."""
        ...

    def encode(self, datum: Mapping[str, Any]) -> bytes: ...


class _FramedEncoder:
    """A fixed header, then the datum in Avro binary (see :mod:`schemas.avro_encoder`)."""

    def __init__(self, header: bytes, schema_ref: str, version: SchemaVersion) -> None:
        self._header = header
        self._schema_ref = schema_ref
        self._write = compile_writer(version.parsed)

    @property
    def schema_ref(self) -> str:
        return self._schema_ref

    def encode(self, datum: Mapping[str, Any]) -> bytes:
        """Raises ``TypeError``/``ValueError`` naming the field for a datum that does not
        fit the schema. Thread-safe."""
        buf = bytearray(self._header)
        self._write(buf, datum)
        return bytes(buf)


class SingleObjectEncoder(_FramedEncoder):
    """Avro single-object encoding with a bundled schema version (the current one)."""

    def __init__(self, version: SchemaVersion | None = None) -> None:
        version = version or current()
        super().__init__(
            SINGLE_OBJECT_MAGIC + version.fingerprint, "fp:" + version.fingerprint_hex, version
        )


class RegistryEncoder(_FramedEncoder):
    """Schema-registry framing. Registers the schema under ``subject`` once, at
    construction (blocks on the registry; raises its errors)."""

    def __init__(
        self, client: SchemaRegistryClient, subject: str, version: SchemaVersion | None = None
    ) -> None:
        version = version or current()
        schema_id = client.register_schema(subject, Schema(json.dumps(version.schema), "AVRO"))
        super().__init__(CONFLUENT_MAGIC + schema_id.to_bytes(4, "big"), f"sr:{schema_id}", version)


class Decoder:
    """Reads framed values into dicts shaped like the reader schema (the current version).

    Writer schemas come from the bundle (by fingerprint) or, for registry framing, from the
    registry client (fetched once per id). Thread-safe for reading; registry look-ups are
    cached.
    """

    def __init__(
        self,
        reader: SchemaVersion | None = None,
        registry: SchemaRegistryClient | None = None,
    ) -> None:
        self._reader = reader or current()
        self._registry = registry
        self._registry_schemas: dict[int, Any] = {}

    @property
    def reader(self) -> SchemaVersion:
        """The version every value is read into."""
        return self._reader

    def writer_schema(self, frame: Frame) -> Any:
        """The parsed writer schema of ``frame``; raises :class:`WireError` ("unknown-schema")."""
        if frame.fingerprint is not None:
            version = by_fingerprint(frame.fingerprint)
            if version is None:
                raise WireError(
                    "unknown-schema",
                    f"schema fingerprint {frame.fingerprint.hex()} is not a bundled version; "
                    "upgrade this reader to the release that added it",
                )
            return version.parsed
        assert frame.schema_id is not None
        return self._from_registry(frame.schema_id)

    def _from_registry(self, schema_id: int) -> Any:
        cached = self._registry_schemas.get(schema_id)
        if cached is not None:
            return cached
        if self._registry is None:
            raise WireError(
                "unknown-schema",
                f"value uses schema-registry id {schema_id} but no registry is configured "
                "(set AUDITLOG_SCHEMA_REGISTRY_URL)",
            )
        try:
            schema = self._registry.get_schema(schema_id)
        except Exception as exc:  # the registry client raises several types
            raise WireError("unknown-schema", f"schema id {schema_id}: {exc}") from exc
        if not schema.schema_str:
            raise WireError("unknown-schema", f"schema id {schema_id} has no schema text")
        parsed = parse_schema(json.loads(schema.schema_str), _write_hint=False)
        self._registry_schemas[schema_id] = parsed
        return parsed

    def decode(self, value: bytes) -> dict[str, Any]:
        """The event in ``value``; raises :class:`WireError` for an unframed value, an
        unknown writer schema, or a datum that does not decode."""
        frame = parse_frame(value)
        writer = self.writer_schema(frame)
        reader = None if writer is self._reader.parsed else self._reader.parsed
        stream = io.BytesIO(value)
        stream.seek(frame.offset)
        try:
            datum = schemaless_reader(stream, writer, reader)
        except Exception as exc:  # fastavro raises many types for bad bytes
            raise WireError(
                "corrupt-datum", f"datum does not decode ({frame.schema_ref}): {exc}"
            ) from exc
        if stream.tell() != len(value):
            raise WireError(
                "corrupt-datum",
                f"{len(value) - stream.tell()} trailing bytes after the datum ({frame.schema_ref})",
            )
        if not isinstance(datum, dict):
            raise WireError("corrupt-datum", f"datum is a {type(datum).__name__}, not a record")
        return datum
