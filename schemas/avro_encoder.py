"""A compiled Avro binary encoder for the producer's hot path.

fastavro's writer checks every branch of every union for every record, which costs about
14 us for an audit event on our machines; a producer that must publish 100k events/s on
one core cannot afford that. :func:`compile_encoder` walks a parsed schema once and builds
a tree of small closures that append the Avro binary encoding of a datum to a bytearray.

Scope: the types our schemas use (null, boolean, int, long, float, double, bytes, string,
record, enum, array, map, union, fixed) and the logical types uuid (str or UUID) and
timestamp-millis (int or aware datetime). A datum that does not fit raises ``TypeError`` or
``ValueError`` naming the field. Decoding is left to fastavro (``schemas.wire``); tests
check that both agree byte for byte.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from schemas.avro_codegen import generate_writer

Write = Callable[[bytearray, Any], None]

_EPOCH_MS = 1000
_pack_float = struct.Struct("<f").pack
_pack_double = struct.Struct("<d").pack


def write_long(buf: bytearray, value: int) -> None:
    """Zig-zag varint encoding of a signed 64-bit integer."""
    n = (value << 1) ^ (value >> 63)
    while n > 0x7F:
        buf.append((n & 0x7F) | 0x80)
        n >>= 7
    buf.append(n)


def _write_bytes(buf: bytearray, value: bytes) -> None:
    write_long(buf, len(value))
    buf += value


def _write_string(buf: bytearray, value: str) -> None:
    try:
        data = value.encode()
    except AttributeError:
        raise TypeError(f"expected a string, got {type(value).__name__}") from None
    size = len(data)
    if size < 64:  # one-byte zig-zag varint: the common case
        buf.append(size << 1)
    else:
        write_long(buf, size)
    buf += data


def _write_int(buf: bytearray, value: int) -> None:
    if type(value) is not int and not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    write_long(buf, value)


def _write_boolean(buf: bytearray, value: bool) -> None:
    buf.append(1 if value else 0)


def _write_null(_buf: bytearray, value: None) -> None:
    if value is not None:
        raise TypeError(f"expected null, got {type(value).__name__}")


def _write_uuid(buf: bytearray, value: str | uuid.UUID) -> None:
    _write_string(buf, str(value) if isinstance(value, uuid.UUID) else value)


def _write_timestamp_millis(buf: bytearray, value: int | datetime) -> None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamp-millis needs a timezone-aware datetime")
        value = int(value.timestamp() * _EPOCH_MS)
    write_long(buf, value)


_PRIMITIVES: dict[str, Write] = {
    "null": _write_null,
    "boolean": _write_boolean,
    "int": _write_int,
    "long": _write_int,
    "float": lambda buf, v: buf.extend(_pack_float(v)),
    "double": lambda buf, v: buf.extend(_pack_double(v)),
    "bytes": _write_bytes,
    "string": _write_string,
}


def compile_encoder(schema: Any, *, generated: bool = True) -> Callable[[Mapping[str, Any]], bytes]:
    """An encoder for ``schema`` (as fastavro's ``parse_schema`` returns it): the generated
    writer by default, the checked closure writer alone with ``generated=False``."""
    write = compile_writer(schema) if generated else _compile(schema, {})

    def encode(datum: Mapping[str, Any]) -> bytes:
        buf = bytearray()
        write(buf, datum)
        return bytes(buf)

    return encode


def compile_writer(schema: Any) -> Write:
    """The raw writer for ``schema``: appends a datum's encoding to a bytearray.

    For a record schema this is the generated straight-line writer of
    :mod:`schemas.avro_codegen` (about twice as fast), which falls back to the closure
    writer on any error so that the error names the field and ``buf`` holds no partial
    datum from the fast attempt.
    """
    checked = _compile(schema, {})
    try:
        fast = generate_writer(
            schema,
            {
                "write_long": write_long,
                "write_uuid": _write_uuid,
                "write_timestamp_millis": _write_timestamp_millis,
            },
        )
    except ValueError:
        return checked

    def write(buf: bytearray, datum: Any) -> None:
        mark = len(buf)
        try:
            fast(buf, datum)
        except Exception:  # noqa: BLE001 - any failure: let the checked writer explain it
            del buf[mark:]
            checked(buf, datum)

    return write


def _compile(schema: Any, named: dict[str, Write]) -> Write:  # noqa: PLR0911
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        if schema in named:
            return named[schema]
        raise ValueError(f"unknown type {schema!r}")
    if isinstance(schema, list):
        return _union(schema, named)
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical == "uuid" and kind == "string":
        return _write_uuid
    if logical == "timestamp-millis" and kind == "long":
        return _write_timestamp_millis
    if kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if kind == "record":
        return _record(schema, named)
    if kind == "enum":
        index = {symbol: i for i, symbol in enumerate(schema["symbols"])}
        name = schema["name"]

        def write_enum(buf: bytearray, value: str) -> None:
            try:
                write_long(buf, index[value])
            except KeyError:
                raise ValueError(f"{value!r} is not a symbol of enum {name}") from None

        named[name] = write_enum
        return write_enum
    if kind == "array":
        items = _compile(schema["items"], named)

        def write_array(buf: bytearray, value: Any) -> None:
            if value:
                write_long(buf, len(value))
                for item in value:
                    items(buf, item)
            buf.append(0)

        return write_array
    if kind == "map":
        values = _compile(schema["values"], named)

        def write_map(buf: bytearray, value: Mapping[str, Any]) -> None:
            if value:
                write_long(buf, len(value))
                for key, item in value.items():
                    _write_string(buf, key)
                    values(buf, item)
            buf.append(0)

        return write_map
    if kind == "fixed":
        size = schema["size"]

        def write_fixed(buf: bytearray, value: bytes) -> None:
            if len(value) != size:
                raise ValueError(f"fixed {schema['name']} needs {size} bytes, got {len(value)}")
            buf += value

        return write_fixed
    raise ValueError(f"unsupported Avro type {kind!r}")


def _record(schema: Mapping[str, Any], named: dict[str, Write]) -> Write:
    name = schema["name"]
    fields: list[tuple[str, Write]] = []

    def write_record(buf: bytearray, value: Mapping[str, Any]) -> None:
        field = ""
        try:
            for field, write in fields:
                write(buf, value.get(field))
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
            raise type(exc)(f"{name}.{field}: {exc}") from None

    named[name] = write_record  # before the fields: a record may refer to itself
    for field in schema["fields"]:
        fields.append((field["name"], _compile(field["type"], named)))
    return write_record


def _union(branches: list[Any], named: dict[str, Write]) -> Write:
    writers = [_compile(branch, named) for branch in branches]
    if branches == ["null", "string"]:

        def write_nullable_string(buf: bytearray, value: Any) -> None:
            if value is None:
                buf.append(0)
            else:
                buf.append(2)  # zig-zag of branch 1
                _write_string(buf, value)

        return write_nullable_string
    if len(branches) == 2 and branches[0] == "null":
        write_value = writers[1]

        def write_nullable(buf: bytearray, value: Any) -> None:
            if value is None:
                buf.append(0)
            else:
                buf.append(2)  # zig-zag of 1
                write_value(buf, value)

        return write_nullable
    checks = [_branch_check(branch) for branch in branches]

    def write_union(buf: bytearray, value: Any) -> None:
        for index, (check, write) in enumerate(zip(checks, writers, strict=True)):
            if check(value):
                write_long(buf, index)
                write(buf, value)
                return
        raise TypeError(f"{type(value).__name__} fits no branch of union {branches}")

    return write_union


def _branch_check(branch: Any) -> Callable[[Any], bool]:  # noqa: PLR0911
    kind = branch if isinstance(branch, str) else branch.get("type")
    if kind == "null":
        return lambda v: v is None
    if kind == "boolean":
        return lambda v: isinstance(v, bool)
    if kind in ("int", "long"):
        return lambda v: isinstance(v, int | datetime) and not isinstance(v, bool)
    if kind in ("float", "double"):
        return lambda v: isinstance(v, float | int) and not isinstance(v, bool)
    if kind in ("string", "enum"):
        return lambda v: isinstance(v, str | uuid.UUID)
    if kind in ("bytes", "fixed"):
        return lambda v: isinstance(v, bytes | bytearray)
    if kind == "array":
        return lambda v: isinstance(v, list | tuple)
    return lambda v: isinstance(v, Mapping)
