"""Leaves held packed, for a verifier of a million-leaf log: no Python object per leaf.

- :class:`PackedLeaves`: one account's stored leaves in index order, their 32-byte hashes
  in one ``bytearray``, their event ids as 16 raw bytes in another, index, partition and
  offset in ``array`` columns (68 bytes a leaf in all). Reads as a
  ``Sequence[StoredLeaf]``, a leaf made on demand.
- :class:`KeyIndex`: which positions of a packed column of fixed-width keys (event ids,
  leaf hashes) hold a given key, duplicates included: open addressing over an
  ``array`` of positions (16 bytes a key at most). Keys are hashed with Python's keyed
  (randomised) bytes hash, so hostile keys (a tenant chooses its event ids) cannot be
  chosen to collide.

Pure, no I/O.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from integrity.leaf import uuid_text
from integrity.merkle import HASH_SIZE
from integrity.verify_model import StoredLeaf

ID_SIZE = 16


def id_bytes(event_id: str) -> bytes:
    """The 16 bytes of a UUID in 8-4-4-4-12 hex form; ValueError otherwise."""
    if not uuid_text(event_id):
        raise ValueError(f"event_id: expected a UUID (8-4-4-4-12 hex digits), got {event_id!r:.80}")
    return bytes.fromhex(event_id.replace("-", ""))


def id_text(raw: bytes) -> str:
    """The lower-case 8-4-4-4-12 text of 16 UUID bytes."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class PackedLeaves(Sequence[StoredLeaf]):
    """Stored leaves, packed (see the module docstring). Append in index order."""

    __slots__ = ("_hashes", "_ids", "_indexes", "_offsets", "_partitions")

    def __init__(self) -> None:
        self._hashes = bytearray()
        self._ids = bytearray()
        self._indexes = array("q")
        self._partitions = array("q")
        self._offsets = array("q")

    @classmethod
    def of(cls, leaves: Iterable[StoredLeaf]) -> PackedLeaves:
        """``leaves`` packed (the same object when they already are)."""
        if isinstance(leaves, PackedLeaves):
            return leaves
        packed = cls()
        for leaf in leaves:
            packed.append(leaf.index, leaf.event_id, leaf.leaf_hash, leaf.partition, leaf.offset)
        return packed

    def append(
        self, index: int, event_id: str, leaf_hash: bytes, partition: int, offset: int
    ) -> None:
        """Add one leaf; ValueError for a hash that is not 32 bytes or an id not a UUID."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(leaf_hash)}")
        self._ids += id_bytes(event_id)
        self._hashes += leaf_hash
        self._indexes.append(index)
        self._partitions.append(partition)
        self._offsets.append(offset)

    def __len__(self) -> int:
        return len(self._indexes)

    @overload
    def __getitem__(self, position: int) -> StoredLeaf: ...
    @overload
    def __getitem__(self, position: slice) -> Sequence[StoredLeaf]: ...
    def __getitem__(self, position: int | slice) -> StoredLeaf | Sequence[StoredLeaf]:
        if isinstance(position, slice):
            return [self[p] for p in range(*position.indices(len(self)))]
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError(position)
        return StoredLeaf(
            self._indexes[position],
            self.event_id(position),
            self.leaf_hash(position),
            self._partitions[position],
            self._offsets[position],
        )

    def __iter__(self) -> Iterator[StoredLeaf]:
        return (self[p] for p in range(len(self)))

    def leaf_hash(self, position: int) -> bytes:
        return bytes(self._hashes[position * HASH_SIZE : (position + 1) * HASH_SIZE])

    def event_id(self, position: int) -> str:
        return id_text(bytes(self._ids[position * ID_SIZE : (position + 1) * ID_SIZE]))

    def hashes(self) -> Iterator[bytes]:
        """Every leaf hash in order."""
        view = memoryview(self._hashes)
        return (bytes(view[at : at + HASH_SIZE]) for at in range(0, len(view), HASH_SIZE))

    @property
    def hash_column(self) -> bytes | bytearray:
        return self._hashes

    @property
    def id_column(self) -> bytes | bytearray:
        return self._ids

    @property
    def indexes(self) -> array[int]:
        return self._indexes

    @property
    def partitions(self) -> array[int]:
        return self._partitions

    @property
    def offsets(self) -> array[int]:
        return self._offsets

    @property
    def nbytes(self) -> int:
        """The bytes the columns hold (what the leaves cost beyond a few objects)."""
        columns = (self._indexes, self._partitions, self._offsets)
        return len(self._hashes) + len(self._ids) + sum(c.itemsize * len(c) for c in columns)


class KeyIndex:
    """Positions of ``column`` (keys of ``width`` bytes back to back) by key. The column is
    read, not copied: do not change it while the index is in use."""

    __slots__ = ("_column", "_mask", "_slots", "_width")

    def __init__(self, column: bytes | bytearray, width: int) -> None:
        if width <= 0 or len(column) % width:
            raise ValueError(f"a column of {len(column)} bytes is not keys of {width} bytes")
        count = len(column) // width
        size = 1 << max(4, (2 * count).bit_length())  # at most half full
        self._column = memoryview(column)
        self._width = width
        self._mask = size - 1
        self._slots = array("q", bytes(8 * size))  # position + 1; 0 is an empty slot
        slots, mask, view = self._slots, self._mask, self._column
        for position in range(count):
            slot = hash(bytes(view[position * width : (position + 1) * width])) & mask
            while slots[slot]:
                slot = (slot + 1) & mask
            slots[slot] = position + 1

    def positions(self, key: bytes) -> list[int]:
        """Every position holding ``key``, in ascending order (empty: none)."""
        if len(key) != self._width:
            return []
        slots, mask, view, width = self._slots, self._mask, self._column, self._width
        found = []
        slot = hash(bytes(key)) & mask
        while held := slots[slot]:
            position = held - 1
            if view[position * width : (position + 1) * width] == key:
                found.append(position)
            slot = (slot + 1) & mask
        found.sort()
        return found
