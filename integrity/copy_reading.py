"""Reading a streamed copy into :class:`integrity.copy_verification.Copy` per account: the
lines of NDJSON or JSON-array bodies (gzip or not), from an S3 bucket's objects or from a
directory of files (a webhook receiver's saved payloads, a downloaded bucket).

Everything read is hostile: sizes are capped before and while reading (a gzip bomb stops
at the cap), a line is JSON or a ``bad-record``, a line whose ``type`` is
``auditlog.*`` is parsed strictly (:func:`integrity.copy_records.parse`), an S3 object is
read only when its key has the name the S3 sender gives (:mod:`sinks.senders.s3_objects`)
and files only when they are regular files (no links followed).
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from integrity.copy_records import CheckpointRecord, CopyRecordError, LeavesRecord, parse
from integrity.copy_verification import Copy

MAX_BODY_BYTES = 256 * 1024 * 1024  # one object or file, after decompression
MAX_LINE_BYTES = 4 * 1024 * 1024  # a leaves record of 8,192 hashes is about 360 KB
MAX_ACCOUNTS = 10_000
MAX_OBJECTS = 1_000_000

# <...>_<partition>_<first>-<last>[_replay-<id>].<ext> (the S3 sender's names; objects of
# older releases have the first offset only).
_OBJECT_NAME = re.compile(
    r"(?P<stem>[^/]+)_(?P<partition>\d{1,10})_(?P<first>\d{20})(?:-(?P<last>\d{20}))?"
    r"(?:_replay-(?P<replay>[A-Za-z0-9%_.-]{1,200}))?"
    r"\.(?P<ext>integrity\.ndjson(?:\.gz)?|ndjson(?:\.gz)?|json(?:\.gz)?)\Z"
)


class CopyReadError(Exception):
    """The copy cannot be read at all (a refusal, not a finding)."""


@dataclass
class CopyReader:
    """Sorts lines into one :class:`Copy` per account (only ``account``'s when given)."""

    account: str | None = None
    copies: dict[str, Copy] = field(default_factory=dict)
    unattributed: list[str] = field(default_factory=list)  # bad lines of no known account
    other_accounts: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)  # objects or files not read, and why

    def _copy(self, tenant: Any) -> Copy | None:
        if not isinstance(tenant, str) or not tenant:
            return None
        if self.account is not None and tenant != self.account:
            if len(self.other_accounts) < MAX_ACCOUNTS:
                self.other_accounts.add(tenant)
            return None
        copy = self.copies.get(tenant)
        if copy is None:
            if len(self.copies) >= MAX_ACCOUNTS:
                raise CopyReadError(f"more than {MAX_ACCOUNTS} accounts: give --account")
            copy = self.copies[tenant] = Copy(tenant)
        return copy

    def line(self, where: str, raw: bytes) -> None:
        """One NDJSON line (without its newline)."""
        if len(raw) > MAX_LINE_BYTES:
            self.unattributed.append(f"{where}: a line of {len(raw)} bytes")
            return
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self.unattributed.append(f"{where}: not JSON ({str(exc)[:100]})")
            return
        self.document(where, document, raw)

    def document(self, where: str, document: Any, raw: bytes | None = None) -> None:
        """One decoded JSON value: an event or an integrity record (``raw``: its line)."""
        if not isinstance(document, dict):
            self.unattributed.append(f"{where}: not a JSON object")
            return
        kind = document.get("type")
        if isinstance(kind, str) and kind.startswith("auditlog."):
            line = raw if raw is not None else _compact(document)
            try:
                record = parse(line.rstrip(b"\r"))
            except CopyRecordError as exc:
                copy = self._copy(document.get("tenant_id"))
                problem = f"{where}: an integrity record that does not parse: {exc}"
                if copy is not None:
                    copy.add_bad(where, problem)
                elif self.account is None or document.get("tenant_id") == self.account:
                    self.unattributed.append(problem)
                return
            copy = self._copy(record.tenant_id)
            if copy is None:
                return
            if isinstance(record, LeavesRecord):
                copy.add_leaves(record)
            elif isinstance(record, CheckpointRecord):
                copy.add_checkpoint(record.note)
            return
        copy = self._copy(document.get("tenant_id"))
        if copy is not None:
            copy.add_event(document)
        elif not isinstance(document.get("tenant_id"), str):
            self.unattributed.append(f"{where}: an object with no tenant_id")

    def body(self, where: str, data: bytes) -> None:
        """A payload or object body: gzip (by its magic bytes) or not, then a JSON array
        (first byte ``[``) or NDJSON."""
        if data[:2] == b"\x1f\x8b":
            data = gunzip(data, where)
        if len(data) > MAX_BODY_BYTES:
            raise CopyReadError(f"{where}: more than {MAX_BODY_BYTES} bytes")
        if data.lstrip()[:1] == b"[":
            try:
                items = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                self.unattributed.append(f"{where}: not a JSON array ({str(exc)[:100]})")
                return
            for number, item in enumerate(items if isinstance(items, list) else [items], 1):
                self.document(f"{where}[{number}]", item)
            return
        for number, raw in enumerate(data.split(b"\n"), 1):
            if raw.strip():
                self.line(f"{where}:{number}", raw.rstrip(b"\r"))


def _compact(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def gunzip(data: bytes, where: str, limit: int = MAX_BODY_BYTES) -> bytes:
    """``data`` decompressed (concatenated members too), at most ``limit`` bytes;
    :class:`CopyReadError` beyond or when it is no valid gzip."""
    out = bytearray()
    rest = data
    try:
        while rest:
            inflater = zlib.decompressobj(wbits=31)
            out += inflater.decompress(rest, limit + 1 - len(out))
            if len(out) > limit:
                raise CopyReadError(f"{where}: more than {limit} bytes once decompressed")
            if inflater.unconsumed_tail:
                raise CopyReadError(f"{where}: more than {limit} bytes once decompressed")
            if not inflater.eof:
                raise CopyReadError(f"{where}: a truncated gzip stream")
            rest = inflater.unused_data
    except zlib.error as exc:
        raise CopyReadError(f"{where}: not gzip ({exc})") from exc
    return bytes(out)


def directory_files(root: Path) -> Iterator[Path]:
    """The regular files under ``root`` (not hidden, no links followed), by path."""
    if not root.is_dir():
        raise CopyReadError(f"{root}: not a directory")
    found = []
    for folder, folders, files in os.walk(root, followlinks=False):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in files:
            path = Path(folder) / name
            if not name.startswith(".") and path.is_file() and not path.is_symlink():
                found.append(path)
    return iter(sorted(found, key=lambda p: p.relative_to(root).parts))


def read_directory(reader: CopyReader, root: Path) -> int:
    """Every file under ``root`` into ``reader``, in path order; how many were read."""
    count = 0
    for path in directory_files(root):
        if path.stat().st_size > MAX_BODY_BYTES:
            raise CopyReadError(f"{path}: more than {MAX_BODY_BYTES} bytes")
        reader.body(str(path.relative_to(root)), path.read_bytes())
        count += 1
    return count


class S3Reading(Protocol):
    """What is needed of a boto3 S3 client."""

    def get_paginator(self, operation_name: str) -> Any: ...
    def get_object(self, **kwargs: Any) -> Any: ...


@dataclass(frozen=True, order=True)
class ObjectName:
    partition: int
    first: int
    last: int
    replay: str
    companion: bool  # the .integrity.ndjson[.gz] object of a batch (after its events)
    key: str


def object_name(key: str) -> ObjectName | None:
    """The sort key of an object the S3 sender wrote, None for any other key."""
    name = key.rsplit("/", 1)[-1]
    match = _OBJECT_NAME.match(name)
    if match is None:
        return None
    first = int(match["first"])
    last = int(match["last"]) if match["last"] is not None else first
    return ObjectName(
        int(match["partition"]),
        first,
        last,
        match["replay"] or "",
        match["ext"].startswith("integrity."),
        key,
    )


def list_objects(client: S3Reading, bucket: str, prefix: str) -> tuple[list[ObjectName], list[str]]:
    """The objects under ``prefix`` the S3 sender named, in stream order (partition, offsets,
    events before their companion), and the keys left out."""
    names: list[ObjectName] = []
    skipped: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = str(item.get("Key", ""))
            size = int(item.get("Size", 0))
            name = object_name(key)
            if name is None:
                skipped.append(f"{key[:200]!r}: not an object name the S3 sender gives")
            elif size > MAX_BODY_BYTES:
                skipped.append(f"{key[:200]!r}: {size} bytes, more than {MAX_BODY_BYTES}")
            else:
                names.append(name)
            if len(names) + len(skipped) > MAX_OBJECTS:
                raise CopyReadError(f"more than {MAX_OBJECTS} objects under the prefix")
    return sorted(names), skipped


def read_s3(reader: CopyReader, client: S3Reading, bucket: str, prefix: str) -> int:
    """Every object the S3 sender named under ``prefix`` into ``reader``, in stream order;
    how many were read. Objects named otherwise are listed in ``reader.skipped``."""
    names, skipped = list_objects(client, bucket, prefix)
    reader.skipped += skipped
    for name in names:
        answer = client.get_object(Bucket=bucket, Key=name.key)
        body = answer["Body"]
        data = body.read(MAX_BODY_BYTES + 1)
        body.close()
        if len(data) > MAX_BODY_BYTES:
            raise CopyReadError(f"{name.key[:200]!r}: more than {MAX_BODY_BYTES} bytes")
        reader.body(name.key, data)
    return len(names)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as (bucket, prefix); CopyReadError otherwise."""
    match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?", uri)
    if match is None:
        raise CopyReadError(f"{uri[:200]!r}: expected s3://bucket[/prefix]")
    prefix = match[2] or ""
    if any(ord(c) < 0x20 for c in prefix) or len(prefix) > 1024:
        raise CopyReadError("the prefix holds control characters or is too long")
    return match[1], prefix
