"""A batch's body, compressed chunk by chunk, is byte for byte the body joined whole and
compressed at once (what the sinks wrote before, and what a retry must repeat)."""

from __future__ import annotations

import gzip
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.encoding import GZIP_CHUNK_LINES, GZIP_LEVEL, assemble

_events = st.lists(st.binary(min_size=1, max_size=60), max_size=3 * GZIP_CHUNK_LINES + 7)
_formats = st.sampled_from(["ndjson", "json_array"])


def _joined(events: list[bytes], fmt: str) -> bytes:
    if fmt == "ndjson":
        return b"\n".join(events) + b"\n" if events else b""
    return b"[" + b",".join(events) + b"]"


@settings(max_examples=150, deadline=None)
@given(_events, _formats)
def test_gzip_bodies_are_the_whole_body_compressed_at_once(events: list[bytes], fmt: str) -> None:
    body = assemble(events, fmt, "gzip")  # type: ignore[arg-type]
    raw = _joined(events, fmt)
    assert body.body == gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)
    assert gzip.decompress(body.body) == raw
    assert body.content_encoding == "gzip"


@settings(max_examples=50, deadline=None)
@given(_events, _formats)
def test_plain_bodies_are_the_events_joined(events: list[bytes], fmt: str) -> None:
    body = assemble(events, fmt, "none")  # type: ignore[arg-type]
    assert body.body == _joined(events, fmt)
    assert body.content_encoding is None


def test_a_json_array_body_parses() -> None:
    lines = [json.dumps({"n": n}).encode() for n in range(2 * GZIP_CHUNK_LINES + 1)]
    body = assemble(lines, "json_array", "gzip")
    assert json.loads(gzip.decompress(body.body)) == [{"n": n} for n in range(len(lines))]
    assert body.file_extension == "json.gz"
