"""A generated Avro binary reader for the sink's hot path.

fastavro's reader (Cython) takes about 10 us to read one audit event, most of it spent in
generic per-field dispatch; the sink worker reads every record a destination takes, on
one thread. :func:`generate_reader` walks a parsed schema once and writes one
straight-line Python function that reads a datum of that schema from ``bytes`` at an
offset (one-byte varints inlined, nullable unions as one ``if``, enums as a table look-up)
and compiles it with ``exec``, as :mod:`schemas.avro_codegen` does for the writer.

Scope and contract:

- Logical types are read as their underlying type (``uuid`` as the string,
  ``timestamp-millis`` as the long): the reader serves transcoding, where building a
  ``uuid.UUID`` or ``datetime`` only to turn it back into text is waste.
- The writer schema is the reader schema: no schema resolution. Values of another
  writer version go through fastavro (see :mod:`sinks.transcode`).
- Types: null, boolean, int, long, float, double, bytes, string, enum, fixed, record,
  array, map and unions (any branches). Refused with ``ValueError``: recursive records,
  enums of more than 64 symbols, arrays of items that may take no bytes.
- A datum that is not valid for the schema raises :class:`AvroReadError`: truncated
  input, a negative length, an index outside a union or enum, bad UTF-8, a block count
  larger than the bytes left (which also bounds the work on corrupt input). A datum shorter
  than the input is not an error here: the function returns the offset where it ended,
  and the caller decides about trailing bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from schemas.avro_codegen import Source

Read = Callable[[bytes, int], tuple[Any, int]]

_unpack_float = struct.Struct("<f").unpack_from
_unpack_double = struct.Struct("<d").unpack_from


_NOT_PLAIN = frozenset({"logicalType", "__fastavro_parsed", "__named_schemas"})


def without_logical_types(schema: Any) -> Any:
    """``schema`` (plain or as fastavro parses it) with every ``logicalType`` removed, and
    fastavro's parse markers: a reader of the result gives the underlying values (the
    ``uuid`` string, the ``timestamp-millis`` long). The bytes read are the same."""
    if isinstance(schema, dict):
        return {k: without_logical_types(v) for k, v in schema.items() if k not in _NOT_PLAIN}
    if isinstance(schema, list):
        return [without_logical_types(v) for v in schema]
    return schema


class AvroReadError(ValueError):
    """Bytes that are not a datum of the schema."""


def read_long(buf: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint at ``pos``: (value, position after it)."""
    shift = 0
    acc = 0
    while True:
        try:
            byte = buf[pos]
        except IndexError:
            raise AvroReadError(f"truncated: a long runs past the end at byte {pos}") from None
        pos += 1
        acc |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (acc >> 1) ^ -(acc & 1), pos
        shift += 7
        if shift > 63:
            raise AvroReadError(f"a long at byte {pos} is longer than 10 bytes")


def read_size(buf: bytes, pos: int) -> tuple[int, int]:
    """A length (a long that must not be negative) at ``pos``."""
    size, pos = read_long(buf, pos)
    if size < 0:
        raise AvroReadError(f"negative length {size} at byte {pos}")
    if pos + size > len(buf):
        raise AvroReadError(
            f"truncated: {size} bytes announced at byte {pos}, {len(buf) - pos} left"
        )
    return size, pos


def read_block_count(buf: bytes, pos: int) -> tuple[int, int]:
    """An array or map block count at ``pos``; a negative count is followed by the
    block's size in bytes, which is skipped (it is only there to let readers skip)."""
    count, pos = read_long(buf, pos)
    if count < 0:
        count = -count
        _size, pos = read_long(buf, pos)
    if count > len(buf) - pos:  # every item of our schemas takes at least one byte
        raise AvroReadError(
            f"a block of {count} items announced at byte {pos}, {len(buf) - pos} bytes left"
        )
    return count, pos


def read_float(buf: bytes, pos: int) -> tuple[float, int]:
    if pos + 4 > len(buf):
        raise AvroReadError(f"truncated: a float at byte {pos}")
    return _unpack_float(buf, pos)[0], pos + 4


def read_double(buf: bytes, pos: int) -> tuple[float, int]:
    if pos + 8 > len(buf):
        raise AvroReadError(f"truncated: a double at byte {pos}")
    return _unpack_double(buf, pos)[0], pos + 8


_HELPERS: dict[str, Any] = {
    "read_long": read_long,
    "read_size": read_size,
    "read_block_count": read_block_count,
    "read_float": read_float,
    "read_double": read_double,
    "AvroReadError": AvroReadError,
}


def generate_reader(schema: Any) -> Read:
    """A function ``read(buf, pos) -> (datum, end)`` for ``schema`` (as fastavro parses
    it, named types expanded where first defined). Records are read as dicts in field
    order, enums as their symbols, maps as dicts, arrays as lists. Raises
    ``ValueError`` for a schema it does not generate (recursion, an unknown type, an
    array of items that may take no bytes, an enum of more than 64 symbols)."""
    gen = _Generator()
    gen.emit(0, "def read(b, p):")
    gen.emit(1, "try:")
    gen.value(schema, "v", 2, frozenset())
    gen.emit(1, "except (IndexError, KeyError, UnicodeDecodeError) as exc:")
    gen.emit(2, "raise AvroReadError(f'not a datum of the schema: {exc!r}') from None")
    # Slices stop at the end of ``b`` without complaint, so a value that ran past it
    # shows as ``p`` beyond the end (positions only grow: lengths are never negative).
    gen.emit(1, "if p > len(b):")
    gen.emit(2, "raise AvroReadError(f'truncated: the datum needs {p - len(b)} more bytes')")
    gen.emit(1, "return v, p")
    namespace: dict[str, Any] = {**_HELPERS, **gen.constants}
    exec(compile("\n".join(gen.lines), "<avro-reader>", "exec"), namespace)  # noqa: S102
    reader: Read = namespace["read"]
    return reader


class _Generator(Source):
    """The source of one reader function: ``b`` is the buffer, ``p`` the position."""

    def __init__(self) -> None:
        super().__init__()
        self.named: dict[str, Any] = {}

    def value(self, schema: Any, target: str, indent: int, seen: frozenset[str]) -> None:  # noqa: PLR0912
        """Code that reads a datum of ``schema`` into the variable ``target``."""
        if isinstance(schema, list):
            self.union(schema, target, indent, seen)
            return
        if isinstance(schema, str) and schema in self.named:
            self.value(self.named[schema], target, indent, seen)
            return
        kind = schema if isinstance(schema, str) else schema["type"]
        if isinstance(kind, (dict, list)):
            self.value(kind, target, indent, seen)
        elif kind == "null":
            self.emit(indent, f"{target} = None")
        elif kind == "boolean":
            self.constants["BOOLEANS"] = {0: False, 1: True}
            self.emit(indent, f"{target} = BOOLEANS[b[p]]")  # KeyError for a byte not 0 or 1
            self.emit(indent, "p += 1")
        elif kind in ("int", "long"):
            self.long(target, indent)
        elif kind in ("float", "double"):
            self.emit(indent, f"{target}, p = read_{kind}(b, p)")
        elif kind in ("string", "bytes"):
            self.string(target, indent, ".decode()" if kind == "string" else "")
        elif kind == "fixed":
            self.named[schema["name"]] = schema
            size = int(schema["size"])
            self.emit(indent, f"{target} = b[p:p + {size}]")
            self.emit(indent, f"p += {size}")
        elif kind == "enum":
            self.enum(schema, target, indent)
        elif kind == "record":
            self.record(schema, target, indent, seen)
        elif kind == "array":
            if self.zero_width(schema["items"]):
                raise ValueError("arrays of items that may take no bytes are not generated")
            self.blocks(target, indent, "[]")
            item = self.name("i")
            self.value(schema["items"], item, indent + 2, seen)
            self.emit(indent + 2, f"{target}.append({item})")
            self.block_end(indent)
        elif kind == "map":
            self.blocks(target, indent, "{}")
            key, item = self.name("k"), self.name("i")
            self.string(key, indent + 2, ".decode()")
            self.value(schema["values"], item, indent + 2, seen)
            self.emit(indent + 2, f"{target}[{key}] = {item}")
            self.block_end(indent)
        else:
            raise ValueError(f"type {kind!r} is not generated")

    def long(self, target: str, indent: int) -> None:
        """A zig-zag varint; one-byte values inline."""
        self.emit(indent, f"{target} = b[p]")
        self.emit(indent, f"if {target} & 0x80:")
        self.emit(indent + 1, f"{target}, p = read_long(b, p)")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"{target} = ({target} >> 1) ^ -({target} & 1)")
        self.emit(indent + 1, "p += 1")

    def string(self, target: str, indent: int, decode: str) -> None:
        """A string or bytes value; one-byte lengths (below 64) inline."""
        size, start = self.name("n"), self.name("s")
        self.emit(indent, f"{size} = b[p]")
        self.emit(indent, f"if {size} & 0x81:")  # several bytes, or negative: the slow path
        self.emit(indent + 1, f"{size}, {start} = read_size(b, p)")
        self.emit(indent + 1, f"p = {start} + {size}")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"{start} = p + 1")
        self.emit(indent + 1, f"p = {start} + ({size} >> 1)")
        self.emit(indent, f"{target} = b[{start}:p]{decode}")

    def enum(self, schema: Any, target: str, indent: int) -> None:
        self.named[schema["name"]] = schema
        if len(schema["symbols"]) > 64:
            raise ValueError(f"enum {schema['name']} has too many symbols to generate")
        # Up to 64 symbols an index is one byte, whose zig-zag value maps to the symbol
        # (KeyError for any other byte).
        symbols = self.constant({i << 1: s for i, s in enumerate(schema["symbols"])}, "enum")
        self.emit(indent, f"{target} = {symbols}[b[p]]")
        self.emit(indent, "p += 1")

    def blocks(self, target: str, indent: int, empty: str) -> None:
        """The head of an array or map: items go at ``indent + 2``, then :meth:`block_end`."""
        self.emit(indent, f"{target} = {empty}")
        self.block_count(indent)
        self.emit(indent, "while c:")
        self.emit(indent + 1, "for _ in range(c):")

    def block_end(self, indent: int) -> None:
        self.block_count(indent + 1)

    def block_count(self, indent: int) -> None:
        """A block count; a one-byte one (0 to 63: every block of our events, and the end
        of every array and map) inline. The bound of :func:`read_block_count` is not
        needed there: at most 63 items, each of at least one byte, are tried."""
        self.emit(indent, "c = b[p]")
        self.emit(indent, "if c & 0x81:")  # several bytes, or negative: the slow path
        self.emit(indent + 1, "c, p = read_block_count(b, p)")
        self.emit(indent, "else:")
        self.emit(indent + 1, "c >>= 1")
        self.emit(indent + 1, "p += 1")

    def union(self, branches: list[Any], target: str, indent: int, seen: frozenset[str]) -> None:
        index = self.name("u")
        if len(branches) == 2 and "null" in branches:  # the common case: one byte, one `if`
            null = branches.index("null")
            self.emit(indent, f"{index} = b[p]")
            self.emit(indent, "p += 1")
            self.emit(indent, f"if {index} == {null * 2}:")
            self.emit(indent + 1, f"{target} = None")
            self.emit(indent, f"elif {index} == {(1 - null) * 2}:")
            self.value(branches[1 - null], target, indent + 1, seen)
        else:
            self.long(index, indent)
            for i, branch in enumerate(branches):
                self.emit(indent, f"{'if' if i == 0 else 'elif'} {index} == {i}:")
                self.value(branch, target, indent + 1, seen)
        self.emit(indent, "else:")
        self.emit(indent + 1, f"raise AvroReadError(f'union index {{{index}}} is out of range')")

    def record(self, schema: Any, target: str, indent: int, seen: frozenset[str]) -> None:
        name = schema["name"]
        if name in seen:
            raise ValueError(f"recursive record {name} is not generated")
        self.named[name] = schema
        fields: list[tuple[str, str]] = []
        for field in schema["fields"]:
            local = self.name("f")
            self.value(field["type"], local, indent, seen | {name})
            fields.append((field["name"], local))
        self.emit(indent, f"{target} = {{" + ", ".join(f"{n!r}: {v}" for n, v in fields) + "}")

    def zero_width(self, schema: Any) -> bool:
        """Whether a datum of ``schema`` may take no bytes (null, a record of nulls...)."""
        if isinstance(schema, str) and schema in self.named:
            schema = self.named[schema]
        if isinstance(schema, list):
            return False  # the branch index takes a byte
        kind = schema if isinstance(schema, str) else schema["type"]
        if isinstance(kind, (dict, list)):
            return self.zero_width(kind)
        if kind == "record":
            return all(self.zero_width(field["type"]) for field in schema["fields"])
        return kind == "null" or (kind == "fixed" and int(schema["size"]) == 0)
