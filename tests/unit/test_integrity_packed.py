"""Packed leaves and their key index (integrity.packed): the same answers as a list of
leaves and a dict, duplicates and colliding slots included."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrity.packed import ID_SIZE, KeyIndex, PackedLeaves, id_bytes, id_text
from integrity.verify_model import StoredLeaf


def _leaf(n: int, event: int | None = None) -> StoredLeaf:
    event_id = str(uuid.UUID(int=n if event is None else event))
    return StoredLeaf(n, event_id, hashlib.sha256(str(n).encode()).digest(), n % 3, 100 + n)


def test_packed_leaves_read_back_as_they_were_given() -> None:
    leaves = [_leaf(n) for n in range(50)]
    packed = PackedLeaves.of(leaves)
    assert len(packed) == 50
    assert list(packed) == leaves
    assert packed[7] == leaves[7]
    assert packed[-1] == leaves[-1]
    assert packed[2:4] == leaves[2:4]
    assert list(packed.hashes()) == [leaf.leaf_hash for leaf in leaves]
    assert packed.nbytes == 50 * (32 + 16 + 8 * 3)
    assert PackedLeaves.of(packed) is packed
    with pytest.raises(IndexError):
        packed[50]


def test_an_upper_case_event_id_reads_back_in_lower_case() -> None:
    text = "0A0B0C0D-0000-4000-8000-00000000ABCD"
    assert id_text(id_bytes(text)) == text.lower()


@pytest.mark.parametrize("bad", ["", "not-a-uuid", "0a0b0c0d00004000800000000000abcd", "x" * 36])
def test_an_event_id_that_is_no_uuid_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="event_id"):
        PackedLeaves().append(0, bad, bytes(32), 0, 0)


def test_a_hash_of_another_size_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PackedLeaves().append(0, str(uuid.UUID(int=1)), bytes(31), 0, 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=80), st.integers(0, 40))
def test_the_index_finds_every_position_of_a_key(keys: list[int], wanted: int) -> None:
    column = b"".join(uuid.UUID(int=k).bytes for k in keys)
    index = KeyIndex(column, ID_SIZE)
    expected = [position for position, k in enumerate(keys) if k == wanted]
    assert index.positions(uuid.UUID(int=wanted).bytes) == expected
    assert index.positions(b"short") == []


def test_the_index_refuses_a_column_that_is_not_whole_keys() -> None:
    with pytest.raises(ValueError, match="keys of 16 bytes"):
        KeyIndex(bytes(17), ID_SIZE)
