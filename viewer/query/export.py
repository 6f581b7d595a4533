"""Streamed exports: rows from ClickHouse -> NDJSON or CSV bytes, a block at a time.

Memory stays flat whatever the range: rows come from ``query_row_block_stream`` (the
Native format read block by block off the HTTP response), each block is encoded and
handed on as one bytes chunk, and nothing keeps a reference to rows already sent.

- NDJSON: one record (:func:`viewer.query.records.record`, the shape of pages) per line.
- CSV (RFC 4180, ``\\r\\n``): a header row (:data:`viewer.query.records.CSV_HEADER`,
  nested fields flattened with dotted names; the activity fields and the changes as JSON
  cells), then one row per event. Every cell that a spreadsheet would read as a formula
  (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) gets a leading ``'``
  (OWASP's CSV injection advice); event fields are tenant input.
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


def raw_ndjson_chunk(data: bytes) -> tuple[bytes, int]:
    """NDJSON bytes ClickHouse made (:data:`viewer.query.sql.NDJSON_LINE`) pass as they
    are; records counted by their line ends."""
    return data, data.count(b"\n")


def ndjson_chunk(rows: Iterable[Sequence[Any]]) -> tuple[bytes, int]:
    lines = [orjson.dumps(record(row)) for row in rows]
    if not lines:
        return b"", 0
    return b"\n".join(lines) + b"\n", len(lines)


class CsvEncoder:
    """CSV text of records, the header first."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def header(self) -> bytes:
        self._writer.writerow(CSV_HEADER)
        return self._take()

    def chunk(self, rows: Iterable[Sequence[Any]]) -> tuple[bytes, int]:
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


class ExportStream:
    """The bytes of one export, as an iterator of chunks (one per block ClickHouse sent).

    ``count`` is the number of records sent so far. Iterating blocks on ClickHouse; its
    errors propagate (the HTTP response is then cut short: a client sees a truncated
    file, never a silently shorter one that looks complete, since CSV/NDJSON have no
    trailer, the app should log it). ``close()`` ends the query and releases the
    connection; call it when the client goes away (Starlette calls it through the
    response's background or when the iterator is garbage collected). Safe to iterate
    from whichever thread: it owns its client.
    """

    def __init__(
        self,
        blocks: Iterator[Any],
        fmt: str,
        on_close: Callable[[], None],
        *,
        raw: bool = False,
    ) -> None:
        self.media_type = MEDIA_TYPES[fmt]
        self.format = fmt
        self.count = 0
        self._blocks = blocks
        self._on_close = on_close
        self._closed = False
        self._csv = CsvEncoder() if fmt == "csv" else None
        self._raw = raw  # blocks are NDJSON bytes already

    def __iter__(self) -> Iterator[bytes]:
        try:
            if self._csv is not None:
                yield self._csv.header()
            for block in self._blocks:
                if self._raw:
                    data, n = raw_ndjson_chunk(block)
                elif self._csv is not None:
                    data, n = self._csv.chunk(block)
                else:
                    data, n = ndjson_chunk(block)
                self.count += n
                if data:
                    yield data
        finally:
            self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close()
