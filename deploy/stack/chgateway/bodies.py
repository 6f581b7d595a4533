"""Request bodies: framing (Content-Length, chunked), Content-Encoding, and forms.

A body is read through :class:`ByteSource`: ``read(size)`` returns the next bytes, ``b""``
at the end. Sources read lazily from the socket, so an insert body streams through the
gateway in bounded pieces. Malformed framing or encoding raises :class:`ClientError`.

Content encodings: ``gzip``, ``deflate`` (zlib), ``zstd`` and ``lz4`` (LZ4 frame format).
A body may hold several concatenated frames or gzip members: clickhouse-connect compresses
each insert block as its own frame.
"""

from __future__ import annotations

import email.policy
import sys
import zlib
from collections.abc import Callable, Iterator
from email.parser import BytesParser
from typing import Protocol

import lz4.frame  # type: ignore[import-untyped]

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

from deploy.stack.chgateway.protocol import ClientError

READ_SIZE = 1 << 20


class ByteSource(Protocol):
    """Something that hands out a body piece by piece."""

    def read(self, size: int) -> bytes:
        """Up to about ``size`` bytes (a decoder may hand out more); ``b""`` at the end."""
        ...


class Stream(Protocol):
    """The socket side of a request: a buffered binary reader."""

    def read(self, size: int = ..., /) -> bytes: ...
    def readline(self, size: int = ..., /) -> bytes: ...


class EmptyBody:
    """A request without a body."""

    def read(self, size: int) -> bytes:
        return b""


class BytesBody:
    """A body already in memory (a query text, or the remainder of a scanned buffer)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, size: int) -> bytes:
        piece = bytes(self._data[self._pos : self._pos + size])
        self._pos += len(piece)
        return piece


class LengthBody:
    """A body of ``Content-Length`` bytes."""

    def __init__(self, stream: Stream, length: int) -> None:
        self._stream = stream
        self._remaining = length

    def read(self, size: int) -> bytes:
        if self._remaining <= 0:
            return b""
        piece = _read(self._stream.read, min(size, self._remaining))
        if not piece:
            raise ClientError("clickhouse-gateway: the request body ended before Content-Length")
        self._remaining -= len(piece)
        return piece


class ChunkedBody:
    """A body sent with ``Transfer-Encoding: chunked`` (what urllib3 does for generators)."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._left_in_chunk = 0
        self._done = False

    def read(self, size: int) -> bytes:
        if self._done:
            return b""
        if self._left_in_chunk == 0:
            self._left_in_chunk = self._chunk_size()
            if self._left_in_chunk == 0:
                self._skip_trailers()
                self._done = True
                return b""
        piece = _read(self._stream.read, min(size, self._left_in_chunk))
        if not piece:
            raise ClientError("clickhouse-gateway: the chunked request body ended early")
        self._left_in_chunk -= len(piece)
        if self._left_in_chunk == 0 and _read(self._stream.readline, 8) not in (b"\r\n", b"\n"):
            raise ClientError("clickhouse-gateway: malformed chunked request body")
        return piece

    def _chunk_size(self) -> int:
        line = _read(self._stream.readline, 1024)
        try:
            return int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ClientError("clickhouse-gateway: malformed chunk size in request body") from None

    def _skip_trailers(self) -> None:
        while _read(self._stream.readline, 8192) not in (b"\r\n", b"\n", b""):
            pass


def _read(read: Callable[[int], bytes], size: int) -> bytes:
    """A socket read; a timeout or reset is the client's failure (ClientError)."""
    try:
        return read(size)
    except OSError as ex:
        raise ClientError(f"clickhouse-gateway: cannot read the request body: {ex}") from ex


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    def decompress(self, data: bytes) -> bytes: ...


_DECOMPRESSORS: dict[str, Callable[[], _Decompressor]] = {
    "gzip": lambda: zlib.decompressobj(wbits=31),
    "x-gzip": lambda: zlib.decompressobj(wbits=31),
    "deflate": lambda: zlib.decompressobj(wbits=47),  # zlib framing (or gzip)
    "zstd": zstd.ZstdDecompressor,
    "lz4": lz4.frame.LZ4FrameDecompressor,
}

SUPPORTED_ENCODINGS = (*_DECOMPRESSORS, "identity")


class DecodedBody:
    """``source`` decoded with one Content-Encoding, frame after frame."""

    def __init__(self, source: ByteSource, encoding: str) -> None:
        self._source = source
        self._encoding = encoding
        self._factory = _DECOMPRESSORS[encoding]
        self._decompressor = self._factory()
        self._fed = False

    def read(self, size: int) -> bytes:
        while True:
            raw = self._source.read(size)
            if not raw:
                if self._fed and not self._decompressor.eof:
                    raise ClientError(f"clickhouse-gateway: truncated {self._encoding} body")
                return b""
            decoded = self._feed(raw)
            if decoded:
                return decoded

    def _feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data:
            self._fed = True
            try:
                out.append(self._decompressor.decompress(data))
            except Exception as ex:  # each codec has its own error type
                raise ClientError(
                    f"clickhouse-gateway: cannot decode the {self._encoding} body: {ex}"
                ) from ex
            if not self._decompressor.eof:
                break
            data = self._decompressor.unused_data
            self._decompressor = self._factory()
            self._fed = False
        return b"".join(out)


def decode(source: ByteSource, content_encoding: str | None) -> ByteSource:
    """``source`` with its ``Content-Encoding`` undone. Raises :class:`ClientError` for an
    encoding the gateway does not know."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return source
    if encoding not in _DECOMPRESSORS:
        raise ClientError(
            f"clickhouse-gateway: unsupported Content-Encoding {encoding!r}; "
            f"supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    return DecodedBody(source, encoding)


def chunks(source: ByteSource, size: int = READ_SIZE) -> Iterator[bytes]:
    """The rest of ``source`` as non-empty pieces."""
    while piece := source.read(size):
        yield piece


def read_all(source: ByteSource) -> bytes:
    """The rest of ``source``."""
    return b"".join(chunks(source))


def drain(source: ByteSource) -> None:
    """Read and drop the rest of ``source`` (so a kept-alive connection stays in step)."""
    for _ in chunks(source):
        pass


def form_fields(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The text fields of a ``multipart/form-data`` body (clickhouse-connect sends the
    query and its ``param_*`` values this way when they are too long for a URL).

    Raises :class:`ClientError` for file parts (ClickHouse "external data"), which the
    gateway does not support, and for bodies that are not multipart.
    """
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise ClientError("clickhouse-gateway: malformed multipart/form-data body")
    fields: list[tuple[str, str]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise ClientError("clickhouse-gateway: a form part has no name")
        if part.get_filename() is not None:
            raise ClientError(
                "clickhouse-gateway: external data (file parts in a form) is not supported"
            )
        payload = part.get_payload(decode=True)
        value = payload.decode("utf-8") if isinstance(payload, bytes) else ""
        fields.append((name, value))
    return fields
