"""Avro value -> the event's JSON line, on the sink's hot path.

Equivalent to ``event_json(Decoder().decode(value))`` byte for byte, at about a third of
the cost: the writer schema is looked up once per distinct header (not per record), and the
datum is read with its logical types stripped (the bytes are the same: ``uuid`` is a
string, ``timestamp-millis`` a long), so no ``uuid.UUID`` or ``datetime`` is built only to
be turned back into text. Values written with the current schema are read by a reader
generated for it (:mod:`schemas.avro_decoder`, about twice as fast as fastavro's); other
writer versions go through fastavro's schema resolution. ``occurred_at`` is formatted
from its milliseconds, the date and time of day once per second.
"""

from __future__ import annotations

import io
import time
from typing import Any

import orjson
from fastavro import parse_schema, schemaless_reader

from schemas.avro_decoder import AvroReadError, Read, generate_reader, without_logical_types
from schemas.wire import Decoder, WireError, parse_frame

_HEADER_BYTES = 10  # the longer framing header (single-object); registry framing uses 5


_Schemas = tuple[Any, Any, int, Read | None]


def rfc3339_millis(epoch_ms: int) -> str:
    """``2026-11-25T19:46:37.462Z`` for milliseconds since the epoch (UTC)."""
    seconds, millis = divmod(epoch_ms, 1000)
    t = time.gmtime(seconds)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{millis:03d}Z"
    )


class EventTranscoder:
    """Thread-compatible (one instance per thread); schemas come from ``decoder``."""

    def __init__(self, decoder: Decoder) -> None:
        self._decoder = decoder
        self._reader = without_logical_types(decoder.reader.parsed)
        self._parsed_reader = parse_schema(self._reader)
        self._generated = generate_reader(self._parsed_reader)
        self._by_header: dict[bytes, _Schemas] = {}
        self._second = -1
        self._second_text = ""

    def _schemas(self, value: bytes) -> _Schemas:
        header = bytes(value[:_HEADER_BYTES])
        found = self._by_header.get(header)
        if found is None:
            frame = parse_frame(value)
            writer = self._decoder.writer_schema(frame)
            if writer is self._decoder.reader.parsed:
                found = (self._parsed_reader, None, frame.offset, self._generated)
            else:
                found = (
                    parse_schema(without_logical_types(writer)),
                    self._parsed_reader,
                    frame.offset,
                    None,
                )
            # A registry header is 5 bytes: the next 5 are datum, so key those by frame.
            if frame.kind == "single-object":
                self._by_header[header] = found
        return found

    def to_json(self, value: bytes) -> tuple[bytes, int, str]:
        """The event's JSON line, its ``occurred_at`` in epoch milliseconds and its
        ``tenant_id``. Raises :class:`WireError` like :meth:`Decoder.decode`.

        What :meth:`plain` and :meth:`timestamp` do, inline: the sink's loop calls this
        for every record a destination takes, and each Python call costs here."""
        found = self._by_header.get(value[:_HEADER_BYTES])
        if found is None or found[3] is None:
            datum = self.plain(value)
        else:
            try:
                datum, end = found[3](value, found[2])
            except AvroReadError as exc:
                raise WireError("corrupt-datum", f"datum does not decode: {exc}") from exc
            if end != len(value):
                raise WireError(
                    "corrupt-datum", f"{len(value) - end} trailing bytes after the datum"
                )
        occurred_ms = datum["occurred_at"]
        second, millis = divmod(occurred_ms, 1000)
        if second != self._second:
            self._second_text = rfc3339_millis(second * 1000)[:-4]
            self._second = second
        datum["occurred_at"] = f"{self._second_text}{millis:03d}Z"
        # orjson returns its whole working buffer (4-8 KiB allocated for an 800-byte
        # line); a lane holds lines for up to max_age_s, so keep an exact copy (0.5 us).
        line = memoryview(orjson.dumps(datum)).tobytes()
        return line, occurred_ms, datum["tenant_id"]

    def plain(self, value: bytes) -> dict[str, Any]:
        """The datum in ``value`` read into the current schema without its logical types
        (``event_id`` the UUID's text as written, ``occurred_at`` epoch milliseconds).
        Raises :class:`WireError` like :meth:`Decoder.decode`."""
        writer, reader, offset, generated = self._schemas(value)
        if generated is not None:
            try:
                datum, end = generated(value, offset)
            except AvroReadError as exc:
                raise WireError("corrupt-datum", f"datum does not decode: {exc}") from exc
        else:
            datum, end = _resolve(value, offset, writer, reader)
        if end != len(value):
            raise WireError("corrupt-datum", f"{len(value) - end} trailing bytes after the datum")
        if not isinstance(datum, dict):
            raise WireError("corrupt-datum", f"datum is a {type(datum).__name__}, not a record")
        return datum

    def timestamp(self, epoch_ms: int) -> str:
        """:func:`rfc3339_millis`, the part up to the seconds kept from the last call."""
        second, millis = divmod(epoch_ms, 1000)
        if second != self._second:
            self._second_text = rfc3339_millis(second * 1000)[:-4]
            self._second = second
        return f"{self._second_text}{millis:03d}Z"


def _resolve(value: bytes, offset: int, writer: Any, reader: Any) -> tuple[Any, int]:
    """fastavro reads the datum at ``offset`` (written with ``writer``) into ``reader``."""
    stream = io.BytesIO(value)
    stream.seek(offset)
    try:
        return schemaless_reader(stream, writer, reader), stream.tell()
    except Exception as exc:  # fastavro raises many types for bad bytes
        raise WireError("corrupt-datum", f"datum does not decode: {exc}") from exc
