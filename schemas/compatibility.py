"""Schema evolution check: can each version read the others' data?

The policy (schemas/EVOLUTION.md) allows only changes that keep both old and new readers
working. :func:`resolution_problems` checks one direction by experiment: it writes
generated datums with the writer schema (every union branch and enum symbol shows up in a
few hundred samples) and reads them back with fastavro's schema resolution into the
reader schema. A field the reader needs and the writer lacks without a default, a removed
enum symbol, or an incompatible type change all fail there.
"""

from __future__ import annotations

import io
import random
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

from schemas.versions import SchemaVersion

SAMPLES = 300


def resolution_problems(
    writer: SchemaVersion | dict[str, Any],
    reader: SchemaVersion | dict[str, Any],
    *,
    samples: int = SAMPLES,
    seed: int = 0,
) -> list[str]:
    """Every way data written with ``writer`` fails to read with ``reader`` (empty: compatible)."""
    writer_schema = writer.parsed if isinstance(writer, SchemaVersion) else parse_schema(writer)
    reader_schema = reader.parsed if isinstance(reader, SchemaVersion) else parse_schema(reader)
    state = random.getstate()
    random.seed(seed)  # generate_many draws from the global generator
    try:
        datums = list(generate_many(writer_schema, samples))
    finally:
        random.setstate(state)
    problems: set[str] = set()
    for datum in datums:
        buffer = io.BytesIO()
        schemaless_writer(buffer, writer_schema, datum)
        buffer.seek(0)
        try:
            schemaless_reader(buffer, writer_schema, reader_schema)
        except Exception as exc:  # noqa: BLE001 - fastavro reports resolution failures variously
            problems.add(f"{type(exc).__name__}: {exc}")
    return sorted(problems)
