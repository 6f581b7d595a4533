"""The integrity log's streamed copy: the two records the appender publishes beside the
events (docs/integrity.md, "Streamed copies"). Pure: building, encoding and strict parsing;
no I/O.

Each record is one line of compact JSON (ASCII, hence UTF-8; no newline inside; keys in a
fixed order, so the same content always encodes to the same bytes), published with the
header ``auditlog-record: integrity`` (:data:`schemas.headers.RECORD_KIND`)::

    {"type":"auditlog.leaves","version":1,"tenant_id":T,"first":M,
     "frontier":[b64,...],"hashes":[b64,...]}
    {"type":"auditlog.checkpoint","version":1,"tenant_id":T,"note":"<signed note text>"}

``auditlog.leaves``: the RFC 9162 leaf hashes of the account's leaves ``first ..
first+len(hashes)-1`` in order, and ``frontier``, the compact range of the tree of size
``first`` (:class:`integrity.merkle.Frontier`'s hashes; empty when ``first`` is 0). At most
:data:`MAX_HASHES` hashes a record. ``auditlog.checkpoint``: a signed checkpoint note as
``integrity_checkpoints`` stores it (its signature is the verifier's business, not this
module's). Base64 is the standard alphabet, padded, canonical.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from integrity.merkle import HASH_SIZE, Frontier

LEAVES: Final = "auditlog.leaves"
CHECKPOINT: Final = "auditlog.checkpoint"
VERSION: Final = 1
MAX_HASHES: Final = 8192
"""At most this many hashes in one ``auditlog.leaves`` record (about 360 KB of JSON)."""
_MAX_INT: Final = 2**63 - 1
_LEAVES_KEYS: Final = ("type", "version", "tenant_id", "first", "frontier", "hashes")
_CHECKPOINT_KEYS: Final = ("type", "version", "tenant_id", "note")


class CopyRecordError(ValueError):
    """A line that is not a well-formed integrity record (the message says which part)."""


@dataclass(frozen=True)
class LeavesRecord:
    """Leaves ``first .. first + len(hashes) - 1`` of ``tenant_id``'s log; ``frontier`` is
    the compact range of its tree of size ``first``."""

    tenant_id: str
    first: int
    frontier: tuple[bytes, ...]
    hashes: tuple[bytes, ...]

    @property
    def end(self) -> int:
        """The index after the last leaf listed (the tree size it brings the log to)."""
        return self.first + len(self.hashes)


@dataclass(frozen=True)
class CheckpointRecord:
    """A signed checkpoint note of ``tenant_id``'s log."""

    tenant_id: str
    note: str


CopyRecord = LeavesRecord | CheckpointRecord


def leaves_records(
    tenant_id: str, base: Frontier, hashes: Sequence[bytes], *, max_hashes: int = MAX_HASHES
) -> list[LeavesRecord]:
    """The records listing ``hashes`` appended to the tree ``base`` (not changed), split
    every ``max_hashes``; each record's ``frontier`` is the tree's before its first hash.
    Raises ValueError for a hash that is not 32 bytes."""
    if max_hashes < 1:
        raise ValueError("max_hashes must be at least 1")
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
    tree = Frontier.restore(base.size, base.hashes)
    records = []
    for start in range(0, len(hashes), max_hashes):
        chunk = tuple(hashes[start : start + max_hashes])
        records.append(LeavesRecord(tenant_id, tree.size, tree.hashes, chunk))
        if start + max_hashes < len(hashes):
            for leaf_hash in chunk:
                tree.append(leaf_hash)
    return records


def encode(record: CopyRecord) -> bytes:
    """The record's line (no trailing newline)."""
    document: dict[str, Any]
    if isinstance(record, LeavesRecord):
        document = {
            "type": LEAVES,
            "version": VERSION,
            "tenant_id": record.tenant_id,
            "first": record.first,
            "frontier": [_b64(h) for h in record.frontier],
            "hashes": [_b64(h) for h in record.hashes],
        }
    else:
        document = {
            "type": CHECKPOINT,
            "version": VERSION,
            "tenant_id": record.tenant_id,
            "note": record.note,
        }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def parse(line: bytes | str) -> CopyRecord:
    """The record a line holds, checked strictly: UTF-8, one JSON object without a newline
    inside (a trailing ``\\n`` or ``\\r\\n`` is not part of the line: strip it first), no
    duplicate or unknown keys, no missing ones, every value of its type (no booleans for
    numbers, no floats), version 1, base64 canonical and 32 bytes a hash, a frontier of
    ``popcount(first)`` hashes, 1 to :data:`MAX_HASHES` hashes. Raises
    :class:`CopyRecordError`."""
    if isinstance(line, bytes):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CopyRecordError("not UTF-8") from exc
    else:
        text = line
    if "\n" in text or "\r" in text:
        raise CopyRecordError("a newline inside the line")
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except CopyRecordError:
        raise
    except (ValueError, RecursionError) as exc:
        raise CopyRecordError(f"not JSON: {str(exc)[:200]}") from exc
    if not isinstance(document, dict):
        raise CopyRecordError("not a JSON object")
    kind = document.get("type")
    if kind == LEAVES:
        return _leaves(document)
    if kind == CHECKPOINT:
        _keys(document, _CHECKPOINT_KEYS)
        note = document["note"]
        if not isinstance(note, str) or not note:
            raise CopyRecordError("note: a non-empty string")
        return CheckpointRecord(_tenant(document), note)
    raise CopyRecordError(f"type {str(kind)[:60]!r}: not {LEAVES!r} nor {CHECKPOINT!r}")


def _leaves(document: dict[str, Any]) -> LeavesRecord:
    _keys(document, _LEAVES_KEYS)
    tenant_id = _tenant(document)
    first = document["first"]
    if type(first) is not int or not 0 <= first <= _MAX_INT:
        raise CopyRecordError("first: an integer from 0 to 2^63-1")
    frontier = _hash_list(document["frontier"], "frontier")
    hashes = _hash_list(document["hashes"], "hashes")
    if len(frontier) != first.bit_count():
        raise CopyRecordError(
            f"frontier: a tree of {first} leaves has {first.bit_count()} hashes, "
            f"not {len(frontier)}"
        )
    if not 1 <= len(hashes) <= MAX_HASHES:
        raise CopyRecordError(f"hashes: 1 to {MAX_HASHES} of them, not {len(hashes)}")
    if first + len(hashes) > _MAX_INT:
        raise CopyRecordError("first + len(hashes): beyond 2^63-1")
    return LeavesRecord(tenant_id, first, frontier, hashes)


def _keys(document: dict[str, Any], expected: tuple[str, ...]) -> None:
    if set(document) != set(expected):
        extra = sorted(set(document) - set(expected))
        missing = sorted(set(expected) - set(document))
        raise CopyRecordError(f"keys: unexpected {extra[:5]!r:.200}, missing {missing!r}")
    version = document["version"]
    if type(version) is not int or version != VERSION:
        raise CopyRecordError(f"version: {VERSION}, not {str(version)[:20]!r}")


def _tenant(document: dict[str, Any]) -> str:
    tenant_id = document["tenant_id"]
    if not isinstance(tenant_id, str) or not tenant_id:
        raise CopyRecordError("tenant_id: a non-empty string")
    return tenant_id


def _hash_list(value: Any, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise CopyRecordError(f"{what}: a list of base64 hashes")
    return tuple(_hash(item, f"{what}[{i}]") for i, item in enumerate(value))


def _hash(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise CopyRecordError(f"{what}: a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CopyRecordError(f"{what}: not base64") from exc
    if len(raw) != HASH_SIZE:
        raise CopyRecordError(f"{what}: {len(raw)} bytes, not {HASH_SIZE}")
    if _b64(raw) != value:
        raise CopyRecordError(f"{what}: not canonical base64")
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise CopyRecordError("a key twice")
    return document


def _no_constant(name: str) -> Any:
    raise CopyRecordError(f"{name}: not JSON")
