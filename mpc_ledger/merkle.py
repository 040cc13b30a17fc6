"""RFC 6962 / RFC 9162 Merkle tree hashes and proofs over the ledger's records.

Theory of operation
-------------------
The records of the whole ledger, in commit order, are the leaves of one
Merkle tree built as RFC 9162 section 2.1.1 defines it:

    MTH({})       = SHA-256("")
    MTH({d0})     = SHA-256(0x00 || d0)                     (leaf hash)
    MTH(D[n])     = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))   (node hash)

where k is the largest power of two smaller than n. Every block header carries
the size and root of this tree, so an auditor holding one header can check that
a record is in the log (an *inclusion proof*, section 2.1.3) and that a later
export extends an earlier one without rewriting it (a *consistency proof*,
section 2.1.4).

A node that appends records does not need every leaf to know the new root:
:class:`MerkleFrontier` keeps only the roots of the perfect subtrees that the
binary expansion of the size splits the tree into (at most 64 hashes), which
is all the consensus core persists about the log.

Everything here is a pure function of its arguments. Proof *generation* is
given our own data and raises :class:`ValueError` for a size or index out of
range; proof *verification* is given data from elsewhere and answers ``False``
for anything that does not check, never an exception.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE_BYTES",
    "MerkleFrontier",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_inclusion_proof",
    "root_of_leaf_hashes",
    "split_point",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE_BYTES = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def root_of_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes already computed (iterative, no recursion limit)."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    # Pairing left to right and carrying an odd last node up unchanged builds
    # exactly the RFC tree: its left subtrees are always perfect.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The RFC 9162 Merkle tree hash of the leaf data ``leaves``."""
    return root_of_leaf_hashes([leaf_hash(leaf) for leaf in leaves])


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path for ``leaves[index]`` (RFC 9162 section 2.1.3.1)."""
    size = len(leaves)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} out of range for a tree of size {size}")
    return _path(index, [leaf_hash(leaf) for leaf in leaves])


def _path(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    if len(hashes) <= 1:
        return []
    k = split_point(len(hashes))
    if index < k:
        return [*_path(index, hashes[:k]), root_of_leaf_hashes(hashes[k:])]
    return [*_path(index - k, hashes[k:]), root_of_leaf_hashes(hashes[:k])]


def root_from_inclusion_proof(
    leaf_data: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes | None:
    """The root that ``proof`` implies for ``leaf_data`` at ``index``, or None.

    RFC 9162 section 2.1.3.2; None when the proof has the wrong shape.
    """
    if not 0 <= index < tree_size:
        return None
    fn, sn = index, tree_size - 1
    result = leaf_hash(leaf_data)
    for sibling in proof:
        if sn == 0 or len(sibling) != HASH_SIZE_BYTES:
            return None
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None
    return result


def verify_inclusion(
    leaf_data: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True when ``proof`` shows ``leaf_data`` at ``index`` in the tree with ``root``."""
    computed = root_from_inclusion_proof(leaf_data, index, tree_size, proof)
    return computed is not None and computed == root


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Proof that the first ``old_size`` leaves are a prefix (RFC 9162 section 2.1.4.1).

    Sizes 0 and ``len(leaves)`` give an empty proof.
    """
    new_size = len(leaves)
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} out of range for a tree of size {new_size}")
    if old_size in (0, new_size):
        return []
    return _subproof(old_size, [leaf_hash(leaf) for leaf in leaves], complete=True)


def _subproof(m: int, hashes: Sequence[bytes], *, complete: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if complete else [root_of_leaf_hashes(hashes)]
    k = split_point(n)
    if m <= k:
        return [*_subproof(m, hashes[:k], complete=complete), root_of_leaf_hashes(hashes[k:])]
    return [*_subproof(m - k, hashes[k:], complete=False), root_of_leaf_hashes(hashes[:k])]


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """True when ``proof`` shows the tree (old_size, old_root) is a prefix of (new_size, new_root).

    RFC 9162 section 2.1.4.2; an empty old tree is a prefix of every tree.
    """
    if not 0 <= old_size <= new_size:
        return False
    if any(len(node) != HASH_SIZE_BYTES for node in proof):
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if old_size == new_size:
        return not proof and old_root == new_root
    return _check_consistency_path(old_size, new_size, old_root, new_root, list(proof))


def _check_consistency_path(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    if not proof:
        return False
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node
        proof = [old_root, *proof]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for node in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(node, fr)
            sr = node_hash(node, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class MerkleFrontier:
    """The right edge of an append-only Merkle tree: enough to append and get the root.

    ``peaks`` are the roots of the perfect subtrees of sizes given by the set
    bits of ``size``, largest (leftmost) first.
    """

    __slots__ = ("_peaks", "_size")

    def __init__(self, size: int = 0, peaks: Sequence[bytes] = ()) -> None:
        if size < 0 or bin(size).count("1") != len(peaks):
            raise ValueError(f"a frontier of size {size} has one peak per set bit of the size")
        if any(len(peak) != HASH_SIZE_BYTES for peak in peaks):
            raise ValueError("frontier peaks are 32-byte hashes")
        self._size = size
        self._peaks = list(peaks)

    @property
    def size(self) -> int:
        return self._size

    @property
    def peaks(self) -> tuple[bytes, ...]:
        return tuple(self._peaks)

    def copy(self) -> MerkleFrontier:
        return MerkleFrontier(self._size, self._peaks)

    def append(self, leaf_data: bytes) -> None:
        node = leaf_hash(leaf_data)
        size = self._size
        # Each trailing set bit of the old size is a peak of equal size to merge with.
        while size & 1:
            node = node_hash(self._peaks.pop(), node)
            size >>= 1
        self._peaks.append(node)
        self._size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self._peaks:
            return EMPTY_ROOT
        result = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            result = node_hash(peak, result)
        return result
