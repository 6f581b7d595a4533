"""The streamed copy's two record types: built, encoded, parsed back; malformed lines refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from integrity.copy_records import (
    MAX_HASHES,
    CheckpointRecord,
    CopyRecordError,
    LeavesRecord,
    encode,
    leaves_records,
    parse,
)
from integrity.merkle import Frontier, leaf_hash, root
from schemas.headers import INTEGRITY, RECORD_KIND, is_integrity


def _hashes(n: int, start: int = 0) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(start, start + n)]


def _tree(hashes: list[bytes]) -> Frontier:
    tree = Frontier.empty()
    for h in hashes:
        tree.append(h)
    return tree


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


NOTE = "auditlog/acme\n3\nAAAA\ntime 1\n\n\u2014 k AAAA\n"


def test_leaves_round_trip() -> None:
    base = _tree(_hashes(5))
    [record] = leaves_records("acme", base, _hashes(3, 5))
    assert record == LeavesRecord("acme", 5, base.hashes, tuple(_hashes(3, 5)))
    line = encode(record)
    assert b"\n" not in line
    assert parse(line) == record
    assert parse(line.decode()) == record
    assert list(json.loads(line)) == ["type", "version", "tenant_id", "first", "frontier", "hashes"]


def test_checkpoint_round_trip_escapes_newlines_and_non_ascii() -> None:
    record = CheckpointRecord("acme-\u00e9\u2028", NOTE)
    line = encode(record)
    assert b"\n" not in line
    assert line.isascii()
    assert parse(line) == record


def test_encoding_is_deterministic() -> None:
    records = leaves_records("acme", Frontier.empty(), _hashes(4))
    assert [encode(r) for r in records] == [
        encode(r) for r in leaves_records("acme", Frontier.empty(), _hashes(4))
    ]


def test_first_record_of_an_empty_tree_has_an_empty_frontier() -> None:
    [record] = leaves_records("acme", Frontier.empty(), _hashes(1))
    assert json.loads(encode(record))["frontier"] == []
    assert record.first == 0


def test_split_every_max_hashes_and_each_frontier_is_the_tree_before_it() -> None:
    hashes = _hashes(2 * MAX_HASHES + 3)
    records = leaves_records("acme", Frontier.empty(), hashes)
    assert [(r.first, len(r.hashes)) for r in records] == [
        (0, MAX_HASHES),
        (MAX_HASHES, MAX_HASHES),
        (2 * MAX_HASHES, 3),
    ]
    for record in records:
        assert record.frontier == _tree(hashes[: record.first]).hashes
        assert parse(encode(record)) == record
    assert [h for r in records for h in r.hashes] == hashes


def test_small_split_chains_to_the_root() -> None:
    base_hashes = _hashes(7)
    base = _tree(base_hashes)
    records = leaves_records("acme", base, _hashes(10, 7), max_hashes=3)
    assert [r.first for r in records] == [7, 10, 13, 16]
    assert base.size == 7  # the base is not changed
    last = records[-1]
    tree = Frontier.restore(last.first, last.frontier)
    for h in last.hashes:
        tree.append(h)
    assert tree.root() == root(_hashes(17))


def test_no_hashes_no_record() -> None:
    assert leaves_records("acme", Frontier.empty(), []) == []


def test_a_short_hash_is_refused_when_building() -> None:
    with pytest.raises(ValueError):
        leaves_records("acme", Frontier.empty(), [b"short"])


def _leaves_doc(**changes: Any) -> dict[str, Any]:
    base = _tree(_hashes(3))
    doc: dict[str, Any] = {
        "type": "auditlog.leaves",
        "version": 1,
        "tenant_id": "acme",
        "first": 3,
        "frontier": [_b64(h) for h in base.hashes],
        "hashes": [_b64(h) for h in _hashes(2, 3)],
    }
    doc.update(changes)
    return doc


def _line(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def test_the_valid_document_parses() -> None:
    assert isinstance(parse(_line(_leaves_doc())), LeavesRecord)


GOOD_HASH = _b64(_hashes(1)[0])


@pytest.mark.parametrize(
    "changes",
    [
        {"type": "auditlog.leaf"},
        {"type": 1},
        {"version": 2},
        {"version": True},
        {"version": 1.0},
        {"version": "1"},
        {"tenant_id": ""},
        {"tenant_id": 5},
        {"first": -1},
        {"first": True},
        {"first": 3.0},
        {"first": "3"},
        {"first": 2**63},
        {"first": 4},  # popcount(4) = 1 frontier hash, two given
        {"frontier": "x"},
        {"frontier": [GOOD_HASH]},  # popcount(3) = 2
        {"hashes": []},
        {"hashes": GOOD_HASH},
        {"hashes": [5]},
        {"hashes": ["not base64!"]},
        {"hashes": [GOOD_HASH.rstrip("=")]},  # unpadded
        {"hashes": [base64.urlsafe_b64encode(b"\xff" * 32).decode()]},
        {"hashes": [_b64(b"\x00" * 31)]},
        {"hashes": [_b64(b"\x00" * 33)]},
        {"hashes": [GOOD_HASH[:-2] + "B="]},  # non-canonical trailing bits
        {"hashes": [GOOD_HASH] * (MAX_HASHES + 1)},
        {"extra": 1},
        {"note": NOTE},
    ],
)
def test_malformed_leaves_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(CopyRecordError):
        parse(_line(_leaves_doc(**changes)))


@pytest.mark.parametrize("key", ["type", "version", "tenant_id", "first", "frontier", "hashes"])
def test_a_missing_key_is_refused(key: str) -> None:
    doc = _leaves_doc()
    del doc[key]
    with pytest.raises(CopyRecordError):
        parse(_line(doc))


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"[]",
        b"null",
        b"\xff\xfe",
        b'{"type":"auditlog.checkpoint","version":1,"tenant_id":"a","note":"x"}\n',
        b'{"type":"auditlog.checkpoint","version":1,\n"tenant_id":"a","note":"x"}',
        b'{"type":"auditlog.checkpoint","version":1,"tenant_id":"a","note":"x"}\r',
        b'{"type":"auditlog.checkpoint","version":1,"tenant_id":"a","note":""}',
        b'{"type":"auditlog.checkpoint","version":1,"tenant_id":"a","note":7}',
        b'{"type":"auditlog.checkpoint","version":1,"tenant_id":"a","note":"x","first":0}',
        b'{"type":"auditlog.checkpoint","version":1,"tenant_id":"a"}',
        b'{"type":"auditlog.checkpoint","version":1,"tenant_id":"a","tenant_id":"b","note":"x"}',
        b'{"type":"auditlog.checkpoint","version":NaN,"tenant_id":"a","note":"x"}',
        b'{"type":"auditlog.checkpoint","version":1,"tenant_id":"a","note":"x"} trailing',
    ],
)
def test_malformed_lines_are_refused(line: bytes) -> None:
    with pytest.raises(CopyRecordError):
        parse(line)


def test_the_header_marks_integrity_records_only() -> None:
    assert is_integrity([("auditlog-tenant", b"acme"), (RECORD_KIND, INTEGRITY.encode())])
    assert not is_integrity([("auditlog-tenant", b"acme")])
    assert not is_integrity([(RECORD_KIND, b"other")])
    assert not is_integrity(None)
    assert not is_integrity([])
