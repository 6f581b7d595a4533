"""Raw Avro datums of a batch, framed as one Avro object-container file for ``FORMAT Avro``.

The ClickHouse writer does not decode records: ClickHouse decodes them, and Python decodes a
record only to find the bad one of a block ClickHouse rejected. The writer slices the datum
out of each framed Kafka value (:func:`split_by_schema`, header bytes only), and for each
writer schema builds one in-memory Avro Object Container File (:func:`frame_block`) that
ClickHouse decodes itself on ``INSERT INTO db.table (columns...) FORMAT Avro``:

    "Obj" 0x01                                       magic
    map<bytes> {"avro.schema": <writer schema JSON>,  file metadata
                "avro.codec": "null"}
    16 bytes                                         sync marker
    long count, long size, datum * count, sync       exactly one data block

Everything here is pure and deterministic: the same datums and schema give the same bytes
(ClickHouse's insert deduplication hashes the data as well as the token).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastavro import schemaless_reader

from schemas.avro_encoder import Write, compile_writer, write_long
from schemas.versions import SchemaVersion, by_fingerprint, current
from schemas.wire import (
    CONFLUENT_HEADER_BYTES,
    CONFLUENT_MAGIC,
    SINGLE_OBJECT_HEADER_BYTES,
    SINGLE_OBJECT_MAGIC,
    Decoder,
    Frame,
    WireError,
    parse_frame,
)

AVRO_MAGIC = b"Obj\x01"
SYNC_BYTES = 16
DEFAULT_SYNC = hashlib.blake2b(b"auditlog avro block v1", digest_size=SYNC_BYTES).digest()
"""The fixed sync marker of every block framed here (a constant, so framing is
deterministic; with a single data block and explicit sizes its only job is to be there)."""

Datum = bytes | bytearray | memoryview


def _long(value: int) -> bytes:
    """Avro ``long`` (zig-zag varint) as bytes."""
    out = bytearray()
    write_long(out, value)
    return bytes(out)


def _avro_bytes(value: bytes) -> bytes:
    return _long(len(value)) + value


def container_header(writer_schema_json: str, sync: bytes = DEFAULT_SYNC) -> bytes:
    """The object-container header: magic, metadata (``avro.schema``, ``avro.codec`` =
    ``null``, in that order), sync marker. Raises ``ValueError`` for a sync marker that is
    not 16 bytes or an empty schema."""
    if len(sync) != SYNC_BYTES:
        raise ValueError(f"the sync marker must be {SYNC_BYTES} bytes, got {len(sync)}")
    if not writer_schema_json.strip():
        raise ValueError("the writer schema JSON is empty")
    metadata = (
        _long(2)
        + _avro_bytes(b"avro.schema")
        + _avro_bytes(writer_schema_json.encode())
        + _avro_bytes(b"avro.codec")
        + _avro_bytes(b"null")
        + _long(0)
    )
    return AVRO_MAGIC + metadata + bytes(sync)


def frame_block(
    writer_schema_json: str, datums: Sequence[Datum], sync: bytes = DEFAULT_SYNC
) -> bytes:
    """One Avro Object Container File holding ``datums`` in a single data block.

    ``writer_schema_json`` is the schema the datums were written with, as JSON text (the
    full schema, not its parsing canonical form, which drops logical types such as
    ``uuid`` and ``timestamp-millis`` that ClickHouse maps to column types). ``datums``
    are raw Avro binary datums of that schema, concatenated as they are: nothing is
    decoded or checked, so a corrupt datum surfaces only when the reader (ClickHouse)
    rejects the block. The result depends only on the arguments (deterministic).

    Raises ``ValueError`` when ``datums`` is empty (a block of no objects is never sent),
    and for a bad ``sync`` or empty schema (see :func:`container_header`).
    """
    if not datums:
        raise ValueError("no datums to frame: an Avro block must hold at least one object")
    body = b"".join(datums)
    return b"".join(
        (
            container_header(writer_schema_json, sync),
            _long(len(datums)),
            _long(len(body)),
            body,
            bytes(sync),
        )
    )


@dataclass(frozen=True)
class DatumGroup:
    """The datums of one writer schema, in the order their values came.

    ``frame`` is the framing of the first value of the group (its ``schema_ref`` names the
    writer schema); ``positions[i]`` is the index in the input of the value ``datums[i]``
    was sliced from (so a rejected block can be retried record by record, and offsets
    found). ``datums`` are ``bytes`` slices of the input values (copies: making a slice
    of bytes costs a fifth of making a memoryview slice, and the block joins them anyway).
    """

    frame: Frame
    positions: list[int]
    datums: list[Datum]

    @property
    def schema_ref(self) -> str:
        return self.frame.schema_ref


@dataclass(frozen=True)
class SplitBatch:
    """A batch of framed values split by writer schema: ``groups`` in first-seen order, and
    the values with no framing at all as (input index, :class:`WireError` "not-framed")."""

    groups: tuple[DatumGroup, ...]
    unframed: tuple[tuple[int, WireError], ...]

    @property
    def datum_count(self) -> int:
        return sum(len(group.datums) for group in self.groups)


def split_by_schema(values: Iterable[bytes]) -> SplitBatch:
    """Slice the datum out of every framed value, grouped by writer schema reference.

    Reads the framing header only (the rules of :func:`schemas.wire.parse_frame`, which
    builds each group's :class:`Frame`); never decodes a datum. Groups come in the order
    their schema was first seen, datums within a group in input order. A value with
    neither framing goes to ``unframed`` (it is a dead letter) rather than raising, so
    one bad value does not stop the batch.
    """
    by_header: dict[bytes, tuple[list[int], list[Datum]]] = {}
    first_value: dict[bytes, bytes] = {}
    unframed: list[tuple[int, WireError]] = []
    so_magic, so_len = SINGLE_OBJECT_MAGIC, SINGLE_OBJECT_HEADER_BYTES
    sr_magic, sr_len = CONFLUENT_MAGIC, CONFLUENT_HEADER_BYTES
    for index, value in enumerate(values):
        if value[:2] == so_magic and len(value) >= so_len:
            cut = so_len
        elif value[:1] == sr_magic and len(value) >= sr_len:
            cut = sr_len
        else:
            unframed.append((index, _not_framed(value)))
            continue
        header = value[:cut]
        group = by_header.get(header)
        if group is None:
            group = by_header[header] = ([], [])
            first_value[header] = value
        group[0].append(index)
        group[1].append(value[cut:])
    groups = tuple(
        DatumGroup(parse_frame(first_value[header]), positions, datums)
        for header, (positions, datums) in by_header.items()
    )
    return SplitBatch(groups, tuple(unframed))


def _not_framed(value: bytes) -> WireError:
    """The error :func:`parse_frame` raises for ``value`` (which has neither framing)."""
    try:
        parse_frame(value)
    except WireError as error:
        return error
    raise AssertionError("parse_frame accepted a value split_by_schema did not")


def header_schema_json(schema: Mapping[str, Any]) -> str:
    """``schema`` as JSON text for a container header: compact, with every ``doc`` and
    ``default`` removed. Neither changes how a datum is read (they are not part of the
    parsing canonical form, so the fingerprint is the same), and ClickHouse's Avro library
    (avro-cpp) rejects a record-valued default that omits a field: bundled v2's
    ``request`` default lacks ``session_id`` ("No value found in default for
    session_id"), so the schema as written cannot be sent."""
    return json.dumps(_strip(schema), separators=(",", ":"))


def _strip(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {k: _strip(v) for k, v in node.items() if k not in _NOT_FOR_WRITERS}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


_NOT_FOR_WRITERS = frozenset({"doc", "default"})


def bundled_schema_json(frame: Frame) -> str:
    """The writer schema of a single-object-encoded ``frame`` for :func:`frame_block`: the
    bundled ``.avsc`` with its logical types, through :func:`header_schema_json`.

    Raises :class:`WireError` ("unknown-schema") for a fingerprint that is not bundled and
    for registry framing (resolve those ids with the registry client and pass its schema
    text through :func:`header_schema_json`).
    """
    if frame.fingerprint is None:
        raise WireError(
            "unknown-schema",
            f"{frame.schema_ref}: registry-framed; fetch the schema text from the registry",
        )
    version = by_fingerprint(frame.fingerprint)
    if version is None:
        raise WireError(
            "unknown-schema",
            f"schema fingerprint {frame.fingerprint.hex()} is not a bundled version",
        )
    return _schema_json(version)


_SCHEMA_JSON: dict[bytes, str] = {}


def _schema_json(version: SchemaVersion) -> str:
    cached = _SCHEMA_JSON.get(version.fingerprint)
    if cached is None:
        cached = _SCHEMA_JSON[version.fingerprint] = header_schema_json(version.schema)
    return cached


def is_current(frame: Frame) -> bool:
    """True if ``frame`` names the current bundled schema (the table's shape)."""
    return frame.fingerprint == current().fingerprint


def upcast(group: DatumGroup, decoder: Decoder | None = None) -> UpcastGroup:
    """``group`` rewritten in the current schema: each datum decoded with its writer
    schema into the current one (defaults filled), then encoded again. The slow path,
    for groups whose writer schema is not the current one: ClickHouse's Avro input fills
    a *top-level* column the writer lacks with its default, but refuses a nested record
    with fewer fields than the table's Tuple (v1 ``request`` has no ``session_id``:
    "The number of leaves in record doesn't match the number of elements in tuple",
    code 117), so older datums cannot go in raw.

    Never raises for a bad datum: it goes to ``failed`` with its input position and a
    :class:`WireError` ("corrupt-datum", or "unknown-schema" for the whole group).
    """
    decoder = decoder or Decoder()
    target = current()
    frame = Frame(
        "single-object",
        "fp:" + target.fingerprint_hex,
        target.fingerprint,
        None,
        SINGLE_OBJECT_HEADER_BYTES,
    )
    try:
        writer = decoder.writer_schema(group.frame)
    except WireError as error:
        return UpcastGroup(None, [(position, error) for position in group.positions])
    write = _compiled_writer(target)
    reader = None if writer is target.parsed else target.parsed
    positions: list[int] = []
    datums: list[Datum] = []
    failed: list[tuple[int, WireError]] = []
    for position, datum in zip(group.positions, group.datums, strict=True):
        stream = io.BytesIO(datum)
        try:
            record = schemaless_reader(stream, writer, reader)
            if stream.tell() != len(datum):
                raise ValueError(f"{len(datum) - stream.tell()} trailing bytes after the datum")
            if not isinstance(record, dict):
                raise TypeError(f"datum is a {type(record).__name__}, not a record")
            out = bytearray()
            write(out, record)
        except Exception as exc:  # noqa: BLE001 - fastavro raises many types for bad bytes
            failed.append(
                (
                    position,
                    WireError(
                        "corrupt-datum", f"datum does not decode ({group.schema_ref}): {exc}"
                    ),
                )
            )
            continue
        positions.append(position)
        datums.append(bytes(out))
    kept = DatumGroup(frame, positions, datums) if datums else None
    return UpcastGroup(kept, failed)


@dataclass(frozen=True)
class UpcastGroup:
    """What :func:`upcast` made of a group: the datums now in the current schema (None if
    none survived) and the ones that did not decode, by input position."""

    group: DatumGroup | None
    failed: list[tuple[int, WireError]]


_WRITERS: dict[bytes, Write] = {}


def _compiled_writer(version: SchemaVersion) -> Write:
    write = _WRITERS.get(version.fingerprint)
    if write is None:
        write = _WRITERS[version.fingerprint] = compile_writer(version.parsed)
    return write


def top_level_fields(writer_schema_json: str) -> tuple[str, ...]:
    """The names of the record's top-level fields, in schema order: the column list of an
    ``INSERT ... FORMAT Avro`` of a block written with this schema. Raises ``ValueError``
    when the schema is not a record."""
    schema = json.loads(writer_schema_json)
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ValueError("the writer schema is not an Avro record")
    return tuple(str(field["name"]) for field in schema["fields"])
