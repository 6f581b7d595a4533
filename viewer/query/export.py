"""Streamed exports: NDJSON or CSV bytes made by ClickHouse, passed on a piece at a time.

Memory stays flat whatever the range: ClickHouse builds each record's line (NDJSON:
:data:`viewer.query.sql.NDJSON_LINE`, CSV: :data:`viewer.query.sql.CSV_LINE`), the
reader hands on one read (NDJSON, 64 KiB) or one block of lines (CSV) at a time, and
nothing keeps a reference to what was already sent (a CSV block is about 3 MB of lines;
peak RSS of a fresh process +25 MB exporting 50k events, +33 MB for 250k and for 500k).
No row is decoded and no record encoded in Python on the way: ``bench/viewer_export.py``
(500k events) measured CSV at 36-48k events/s when Python wrote it, 280-410k since
(NDJSON 110-390k in the same runs: the machine is shared and noisy).

- NDJSON: one record (:func:`viewer.query.records.record`, the shape of pages) per line.
- CSV (RFC 4180, ``\\r\\n``): a header row (:data:`viewer.query.records.CSV_HEADER`,
  nested fields flattened with dotted names; the activity fields and the changes as JSON
  cells), then one row per event. Every cell that a spreadsheet would read as a formula
  (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) gets a leading ``'``
  (OWASP's CSV injection advice); event fields are tenant input.

The Python encoders here (:func:`encoded_rows`: :func:`ndjson_chunk`,
:class:`CsvEncoder`, :func:`csv_cell`, over :func:`viewer.query.records.flat`) are the
reference of both formats: the tests check that the lines ClickHouse builds equal what
they write for the same stored rows, hostile values included. One known difference, in
the JSON cells and NDJSON only: a control character is escaped ``\\u001F`` by ClickHouse
and ``\\u001f`` by the reference, and U+2028/U+2029 are escaped by ClickHouse and written
as they are by the reference, and NDJSON writes ``/`` as ``\\/`` (the same JSON either way).

``ExportStream.count`` counts records, not line ends: a quoted CSV cell may hold a line
break, so CSV lines come from ClickHouse as one value per record (a column of bytes)
and are counted as values; NDJSON escapes line breaks, so its lines are counted by
their ends.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import orjson

from viewer.query.records import CSV_HEADER, flat, record

MEDIA_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """``value`` made safe to open in a spreadsheet."""
    return "'" + value if value.startswith(_FORMULA_START) else value


Chunk = tuple[bytes, int]  # encoded bytes, and the number of records in them


def raw_ndjson_chunk(data: bytes) -> Chunk:
    """NDJSON bytes ClickHouse made (:data:`viewer.query.sql.NDJSON_LINE`) pass as they
    are; records counted by their line ends (JSON escapes a line break inside a value)."""
    return data, data.count(b"\n")


def csv_lines_chunk(lines: Sequence[bytes]) -> Chunk:
    """CSV lines ClickHouse made (:data:`viewer.query.sql.CSV_LINE`), one per record, each
    with its ``\\r\\n``; counted as values, since a cell may hold a line break."""
    return b"".join(lines), len(lines)


def ndjson_chunk(rows: Iterable[Sequence[Any]]) -> Chunk:
    """Reference: the NDJSON of stored rows (:data:`viewer.query.sql.COLUMNS`)."""
    lines = [orjson.dumps(record(row)) for row in rows]
    if not lines:
        return b"", 0
    return b"\n".join(lines) + b"\n", len(lines)


class CsvEncoder:
    """Reference: CSV text of stored rows (:data:`viewer.query.sql.COLUMNS`)."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def header(self) -> bytes:
        self._writer.writerow(CSV_HEADER)
        return self._take()

    def chunk(self, rows: Iterable[Sequence[Any]]) -> Chunk:
        n = 0
        for row in rows:
            self._writer.writerow([csv_cell(c) for c in flat(record(row))])
            n += 1
        return self._take(), n

    def _take(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode("utf-8")


def csv_header() -> bytes:
    """The CSV header line, ``\\r\\n`` included."""
    return CsvEncoder().header()


def encoded_rows(blocks: Iterable[Iterable[Sequence[Any]]], fmt: str) -> Iterator[Chunk]:
    """Reference: blocks of stored rows encoded in Python, one chunk per block."""
    csv_encoder = CsvEncoder()
    for block in blocks:
        yield csv_encoder.chunk(block) if fmt == "csv" else ndjson_chunk(block)


class ExportStream:
    """The bytes of one export, as an iterator of chunks (the CSV header, then one per
    piece ClickHouse sent).

    ``chunks`` yields encoded bytes with the number of records in them; ``count`` is the
    number of records sent so far. Iterating blocks on ClickHouse; its errors propagate
    (the HTTP response is then cut short: a client sees a truncated file, never a
    silently shorter one that looks complete, since CSV/NDJSON have no trailer, the app
    should log it). ``close()`` ends the query and releases the connection; call it when
    the client goes away (Starlette calls it through the response's background or when
    the iterator is garbage collected). Safe to iterate from whichever thread: it owns
    its client.
    """

    def __init__(self, chunks: Iterator[Chunk], fmt: str, on_close: Callable[[], None]) -> None:
        self.media_type = MEDIA_TYPES[fmt]
        self.format = fmt
        self.count = 0
        self._chunks = chunks
        self._on_close = on_close
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            if self.format == "csv":
                yield csv_header()
            for data, n in self._chunks:
                self.count += n
                if data:
                    yield data
        finally:
            self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close()
