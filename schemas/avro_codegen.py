"""Generates a straight-line Python function that writes one Avro datum of a schema.

The closure tree of :mod:`schemas.avro_encoder` pays a function call per field; for the
producer's hot path this module writes the whole record out as one function instead
(strings inlined, nullable unions as one ``if``, enums as a table lookup) and compiles it
with ``exec``. It accepts exactly the inputs the closure encoder accepts and writes the
same bytes; on any error the caller re-encodes with the closure encoder, whose messages
name the field. Only schemas without recursion are generated (ours have none).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

Write = Callable[[bytearray, Any], None]


class Source:
    """The lines of a generated function, its constants, and fresh variable names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self._names = itertools.count()

    def name(self, prefix: str) -> str:
        return f"{prefix}{next(self._names)}"

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def constant(self, value: Any, prefix: str) -> str:
        name = self.name(prefix)
        self.constants[name] = value
        return name


def generate_writer(schema: Any, helpers: dict[str, Any]) -> Write:
    """A function ``write(buf, datum)`` for a record ``schema`` (as fastavro parses it).

    ``helpers`` supplies ``write_long`` and ``write_timestamp_millis``/``write_uuid``;
    raises ``ValueError`` for a type it does not generate (recursion, general unions).
    """
    src = Source()
    src.emit(0, "def write(buf, d0):")
    _value(src, schema, "d0", 1, set())
    namespace: dict[str, Any] = {**helpers, **src.constants}
    exec(compile("\n".join(src.lines), "<avro-writer>", "exec"), namespace)  # noqa: S102
    writer: Write = namespace["write"]
    return writer


def _string(src: Source, expr: str, indent: int) -> None:
    data = src.name("s")
    size = src.name("n")
    src.emit(indent, f"{data} = {expr}.encode()")
    src.emit(indent, f"{size} = len({data})")
    src.emit(indent, f"if {size} < 64:")
    src.emit(indent + 1, f"buf.append({size} << 1)")
    src.emit(indent, "else:")
    src.emit(indent + 1, f"write_long(buf, {size})")
    src.emit(indent, f"buf += {data}")


def _value(src: Source, schema: Any, expr: str, indent: int, seen: set[str]) -> None:  # noqa: PLR0912
    if isinstance(schema, list):
        if len(schema) == 2 and schema[0] == "null":
            value = src.name("v")
            src.emit(indent, f"{value} = {expr}")
            src.emit(indent, f"if {value} is None:")
            src.emit(indent + 1, "buf.append(0)")
            src.emit(indent, "else:")
            src.emit(indent + 1, "buf.append(2)")
            _value(src, schema[1], value, indent + 1, seen)
            return
        raise ValueError(f"general unions are not generated: {schema}")
    kind = schema if isinstance(schema, str) else schema["type"]
    logical = None if isinstance(schema, str) else schema.get("logicalType")
    if logical in ("uuid", "timestamp-millis"):
        _logical(src, logical, expr, indent)
    elif kind == "string":
        _string(src, expr, indent)
    elif kind in ("int", "long"):
        src.emit(indent, f"write_long(buf, {expr})")
    elif kind == "boolean":
        src.emit(indent, f"buf.append(1 if {expr} else 0)")
    elif kind == "null":
        src.emit(indent, f"if {expr} is not None: raise TypeError('expected null')")
    elif kind == "enum":
        table = src.constant({s: i << 1 for i, s in enumerate(schema["symbols"])}, "enum")
        if len(schema["symbols"]) > 63:
            raise ValueError(f"enum {schema['name']} has too many symbols to generate")
        src.emit(indent, f"buf.append({table}[{expr}])")
    elif kind == "record":
        _record(src, schema, expr, indent, seen)
    elif kind == "map":
        mapping, key, item = src.name("m"), src.name("k"), src.name("i")
        src.emit(indent, f"{mapping} = {expr}")
        src.emit(indent, f"if {mapping}:")
        src.emit(indent + 1, f"write_long(buf, len({mapping}))")
        src.emit(indent + 1, f"for {key}, {item} in {mapping}.items():")
        _string(src, key, indent + 2)
        _value(src, schema["values"], item, indent + 2, seen)
        src.emit(indent, "buf.append(0)")
    elif kind == "array":
        items, item = src.name("a"), src.name("i")
        src.emit(indent, f"{items} = {expr}")
        src.emit(indent, f"if {items}:")
        src.emit(indent + 1, f"write_long(buf, len({items}))")
        src.emit(indent + 1, f"for {item} in {items}:")
        _value(src, schema["items"], item, indent + 2, seen)
        src.emit(indent, "buf.append(0)")
    else:
        raise ValueError(f"type {kind!r} is not generated")


def _logical(src: Source, logical: str, expr: str, indent: int) -> None:
    """A uuid as text inline (what the producer sends), a timestamp as an int inline;
    other Python types (UUID, datetime) through the helpers."""
    value = src.name("u")
    src.emit(indent, f"{value} = {expr}")
    if logical == "uuid":
        src.emit(indent, f"if type({value}) is str:")
        _string(src, value, indent + 1)
        src.emit(indent, "else:")
        src.emit(indent + 1, f"write_uuid(buf, {value})")
    else:
        src.emit(indent, f"if type({value}) is int:")
        src.emit(indent + 1, f"write_long(buf, {value})")
        src.emit(indent, "else:")
        src.emit(indent + 1, f"write_timestamp_millis(buf, {value})")


def _record(src: Source, schema: Any, expr: str, indent: int, seen: set[str]) -> None:
    name = schema["name"]
    if name in seen:
        raise ValueError(f"recursive record {name} is not generated")
    record = src.name("r")
    src.emit(indent, f"{record} = {expr}")
    for field in schema["fields"]:
        _value(src, field["type"], f"{record}.get({field['name']!r})", indent, seen | {name})
