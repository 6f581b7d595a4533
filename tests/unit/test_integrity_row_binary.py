"""The leaves' RowBinary insert block (integrity.heads.leaves_row_binary): ClickHouse's
layout, byte for byte (a round trip through the engine is in the stack tests)."""

from __future__ import annotations

import struct
import uuid

import pytest

from integrity.appending import LeafRow
from integrity.heads import leaves_row_binary

EVENT_ID = uuid.UUID("7c7e0ee6-6b14-44fe-923c-7f90fa095cb5")
HASH = bytes(range(32))


def test_one_leaf_in_columns_order() -> None:
    block = leaves_row_binary([LeafRow("acme", 5, 3, 1_000, EVENT_ID, HASH)])
    assert block == (
        b"\x04acme"  # String: LEB128 length, UTF-8
        + struct.pack("<Q", 5)  # leaf_index UInt64
        + struct.pack("<I", 3)  # partition UInt32
        + struct.pack("<Q", 1_000)  # kafka_offset UInt64
        # UUID: the high 64 bits, then the low 64 bits, each little-endian
        + bytes.fromhex("7c7e0ee66b1444fe")[::-1]
        + bytes.fromhex("923c7f90fa095cb5")[::-1]
        + HASH  # FixedString(32)
        + b"\x01"  # leaf_version UInt8
    )


def test_long_and_non_ascii_account_names_get_their_byte_length() -> None:
    name = "é" * 100  # 200 bytes: a two-byte LEB128 length
    block = leaves_row_binary([LeafRow(name, 0, 0, 0, uuid.UUID(int=0), HASH)] * 2)
    row = b"\xc8\x01" + name.encode() + bytes(8 + 4 + 8 + 16) + HASH + b"\x01"
    assert block == row * 2


def test_a_hash_that_is_not_32_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        leaves_row_binary([LeafRow("acme", 0, 0, 0, EVENT_ID, HASH[:31])])
