"""RFC 9162 trees, proofs and the frontier, checked against pymerkle (an independent
implementation with the same 0x00/0x01 prefixes) and against tampering."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree
from pymerkle import verify_consistency as their_verify_consistency
from pymerkle import verify_inclusion as their_verify_inclusion

from integrity.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _their_tree(n: int) -> InmemoryTree:
    tree = InmemoryTree(algorithm="sha256")
    for i in range(n):
        tree.append_entry(i.to_bytes(4, "big"))
    return tree


def _flip(proof: list[bytes], at: int) -> list[bytes]:
    changed = bytearray(proof[at])
    changed[0] ^= 1
    return [*proof[:at], bytes(changed), *proof[at + 1 :]]


def test_hashes_are_rfc_9162() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert root([]) == EMPTY_ROOT
    one, two, three = _leaves(3)
    assert root([one]) == one
    assert root([one, two, three]) == node_hash(node_hash(one, two), three)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(min_value=1, max_value=300), data=st.data())
def test_roots_and_proofs_agree_with_pymerkle(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size)
    theirs = _their_tree(size)
    tree_root = root(leaves)
    assert theirs.get_root() == tree_root
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    proof = inclusion_proof(index, leaves)
    assert verify_inclusion(index, size, leaves[index], proof, tree_root)
    # pymerkle's path starts with the leaf itself; the rest is RFC 9162's audit path.
    their_proof = theirs.prove_inclusion(index + 1)
    their_verify_inclusion(leaves[index], tree_root, their_proof)
    assert their_proof.path[1:] == proof
    old = data.draw(st.integers(min_value=1, max_value=size), label="old size")
    old_root = root(leaves[:old])
    assert theirs.get_root(old) == old_root
    ours = consistency_proof(old, leaves)
    assert verify_consistency(old, size, old_root, tree_root, ours)
    # pymerkle's consistency proofs have their own layout (not RFC 9162's): each side
    # verifies its own proof over the same two roots.
    their_verify_consistency(old_root, tree_root, theirs.prove_consistency(old))


@settings(max_examples=40, deadline=None)
@given(size=st.integers(min_value=2, max_value=200), data=st.data())
def test_every_tampered_inclusion_proof_fails(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size)
    tree_root = root(leaves)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = inclusion_proof(index, leaves)
    for at in range(len(proof)):
        assert not verify_inclusion(index, size, leaves[index], _flip(proof, at), tree_root)
        assert not verify_inclusion(
            index, size, leaves[index], proof[:at] + proof[at + 1 :], tree_root
        )
    assert not verify_inclusion(index, size, leaves[index], [*proof, leaves[0]], tree_root)
    assert not verify_inclusion(index, size, leaves[(index + 1) % size], proof, tree_root)
    for wrong_index in {index - 1, index + 1, index ^ 1} - {index}:
        assert not verify_inclusion(wrong_index, size, leaves[index], proof, tree_root)
    # (a wrong size is caught by the root: the checkpoint signs size and root together)
    assert not verify_inclusion(index, index, leaves[index], proof, tree_root)
    assert not verify_inclusion(index, size, leaves[index], proof, _flip([tree_root], 0)[0])


@settings(max_examples=40, deadline=None)
@given(size=st.integers(min_value=2, max_value=200), data=st.data())
def test_every_tampered_consistency_proof_fails(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size)
    old = data.draw(st.integers(min_value=1, max_value=size - 1))
    old_root, new_root = root(leaves[:old]), root(leaves)
    proof = consistency_proof(old, leaves)
    assert verify_consistency(old, size, old_root, new_root, proof)
    for at in range(len(proof)):
        assert not verify_consistency(old, size, old_root, new_root, _flip(proof, at))
        assert not verify_consistency(old, size, old_root, new_root, proof[:at] + proof[at + 1 :])
    assert not verify_consistency(old, size, old_root, new_root, [*proof, leaves[0]])
    assert not verify_consistency(old, size, _flip([old_root], 0)[0], new_root, proof)
    assert not verify_consistency(old, size, old_root, _flip([new_root], 0)[0], proof)
    assert not verify_consistency(old + 1, size, old_root, new_root, proof)
    assert not verify_consistency(size, old, new_root, old_root, proof)
    # a rewritten prefix: the old tree with one leaf changed is not a prefix any more
    forged = [*leaves[: old - 1], leaf_hash(b"forged"), *leaves[old:]]
    assert not verify_consistency(old, size, old_root, root(forged), consistency_proof(old, forged))


def test_consistency_edge_cases() -> None:
    leaves = _leaves(5)
    assert consistency_proof(0, leaves) == []
    assert consistency_proof(5, leaves) == []
    assert verify_consistency(5, 5, root(leaves), root(leaves), [])
    assert not verify_consistency(5, 5, root(leaves), root(leaves[:4]), [])
    assert not verify_consistency(5, 5, root(leaves), root(leaves), [leaves[0]])
    assert verify_consistency(0, 5, EMPTY_ROOT, root(leaves), [])
    assert not verify_consistency(0, 5, leaves[0], root(leaves), [])
    assert not verify_consistency(3, 5, root(leaves[:3]), root(leaves), [])
    with pytest.raises(ValueError, match="old size 6"):
        consistency_proof(6, leaves)
    with pytest.raises(ValueError, match="leaf index 5"):
        inclusion_proof(5, leaves)
    assert not verify_inclusion(0, 0, leaves[0], [], EMPTY_ROOT)
    assert not verify_inclusion(0, 1, leaves[0], [b"short"], leaves[0])


def test_frontier_equals_the_root_at_every_size_and_restores() -> None:
    leaves = _leaves(300)
    frontier = Frontier.empty()
    assert frontier.root() == EMPTY_ROOT
    assert frontier.size == 0
    for n, leaf in enumerate(leaves, start=1):
        frontier.append(leaf)
        assert frontier.size == n
        assert frontier.root() == root(leaves[:n])
        assert len(frontier.hashes) == n.bit_count()
        restored = Frontier.restore(frontier.size, frontier.hashes)
        assert restored.root() == frontier.root()
    restored = Frontier.restore(frontier.size, frontier.hashes)
    restored.append(leaf_hash(b"next"))
    assert restored.root() == root([*leaves, leaf_hash(b"next")])


@pytest.mark.parametrize(
    ("size", "count", "message"),
    [
        (3, 1, "has 2 frontier hashes, not 1"),
        (4, 2, "has 1 frontier"),
        (0, 1, "has 0"),
        (-1, 0, "negative"),
    ],
)
def test_frontier_restore_is_validated(size: int, count: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Frontier.restore(size, [b"\x00" * 32] * count)


def test_frontier_refuses_hashes_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Frontier.restore(1, [b"\x00" * 31])
    with pytest.raises(ValueError, match="32 bytes"):
        Frontier.empty().append(b"short")
