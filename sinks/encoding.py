"""How events look at a destination: one JSON object per event, in NDJSON (gzip by
default) or a JSON array.

An event is the decoded Avro record with JSON-friendly scalars: ``event_id`` as a string,
``occurred_at`` as RFC 3339 UTC with milliseconds (``2026-11-25T19:46:37.462Z``). Keys keep
the schema's field order, so the same event always encodes to the same bytes.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from sinks.destinations.model import Compression, PayloadFormat


def _scalar(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
            f"{value.microsecond // 1000:03d}Z"
        )
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def event_json(datum: Mapping[str, Any]) -> bytes:
    """One event as compact JSON (UTF-8, no trailing newline). orjson: about 2.5 us per
    event here, against 7.7 us for the standard library's encoder (the sink's hot path)."""
    return orjson.dumps(datum, default=_scalar, option=orjson.OPT_PASSTHROUGH_DATETIME)


@dataclass(frozen=True)
class EncodedBody:
    body: bytes
    content_type: str
    content_encoding: str | None
    file_extension: str


# Level 1: on the audit events' NDJSON (about 800 bytes an event) it takes 4.9 us of CPU
# per event against 11.9 for level 6 (zlib's default), for 177 compressed bytes an event
# instead of 142 (bench/README.md, "The sink worker's CPU and memory per event"): it was
# the largest single cost of a delivered event. Changing the level changes the bytes of a
# batch, not its events: a batch re-formed across an upgrade is written again under the
# same key with the same lines.
GZIP_LEVEL = 1


#: Lines joined and compressed at a time: a body of 10,000 events is never joined whole
#: before it is compressed (each delivery thread would hold it twice, and glibc keeps what
#: a thread's arena once held). The deflate stream does not depend on how its input is cut,
#: so the bytes are those of compressing the whole body at once.
GZIP_CHUNK_LINES = 1000


def assemble(events: Sequence[bytes], fmt: PayloadFormat, compression: Compression) -> EncodedBody:
    """Join encoded events (from :func:`event_json`) into one body."""
    if fmt == "ndjson":
        head, separator, tail = b"", b"\n", b"\n" if events else b""
        content_type, extension = "application/x-ndjson", "ndjson"
    else:
        head, separator, tail = b"[", b",", b"]"
        content_type, extension = "application/json", "json"
    if compression == "gzip":
        # wbits 31: a gzip member with mtime 0, so the same events always give the same
        # bytes (replays overwrite alike).
        deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        parts = [deflate.compress(head)]
        for start in range(0, len(events), GZIP_CHUNK_LINES):
            chunk = separator.join(events[start : start + GZIP_CHUNK_LINES])
            parts.append(deflate.compress(separator + chunk if start else chunk))
        parts.append(deflate.compress(tail))
        parts.append(deflate.flush())
        return EncodedBody(b"".join(parts), content_type, "gzip", extension + ".gz")
    return EncodedBody(head + separator.join(events) + tail, content_type, None, extension)
