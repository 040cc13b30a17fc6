"""RFC 6962 proofs built from leaf *hashes*, possibly after a Merkle frontier.

:mod:`mpc_ledger.merkle` builds proofs from the records themselves.
The export tools hold less: 32 bytes per record rather than the record, and
a partial export holds no leaf before its start at all, only the frontier (the
roots of the perfect subtrees of the log at the start). :class:`LeafHashLog`
is the log as such a reader sees it: the frontier's peaks, then one hash per
later leaf. Any node of the tree that does not lie strictly inside one peak
can be computed from that, which is every node an inclusion proof for a
later leaf needs and every node a consistency proof from an old size at or
after the start needs (each is either a peak, a node over leaves after the
start, or a node built from peaks and later leaves). Asking for a node
strictly inside a peak raises :class:`ValueError`.

Proofs built here are checked with the same
:func:`mpc_ledger.merkle.verify_inclusion` and
:func:`~mpc_ledger.merkle.verify_consistency` as everyone else's, and
tests hold them equal to ``merkle.inclusion_proof`` / ``consistency_proof``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mpc_ledger.merkle import (
    EMPTY_ROOT,
    MerkleFrontier,
    node_hash,
    root_of_leaf_hashes,
    split_point,
)

__all__ = ["LeafHashLog"]


class LeafHashLog:
    """A record log known by its frontier at ``base_size`` plus the leaf hashes after it."""

    def __init__(self, base: MerkleFrontier | None = None) -> None:
        base = base or MerkleFrontier()
        self.base_size = base.size
        # (start, size, hash) of each peak, left to right.
        self._peaks: list[tuple[int, int, bytes]] = []
        start = 0
        sizes = [
            1 << bit for bit in range(base.size.bit_length() - 1, -1, -1) if base.size >> bit & 1
        ]
        for size, peak in zip(sizes, base.peaks, strict=True):
            self._peaks.append((start, size, peak))
            start += size
        self._leaf_hashes: list[bytes] = []

    @property
    def size(self) -> int:
        return self.base_size + len(self._leaf_hashes)

    def append(self, leaf_hash: bytes) -> None:
        self._leaf_hashes.append(leaf_hash)

    def extend(self, leaf_hashes: Sequence[bytes]) -> None:
        self._leaf_hashes.extend(leaf_hashes)

    def leaf_hash(self, index: int) -> bytes:
        return self._leaf_hashes[index - self.base_size]

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return EMPTY_ROOT if size == 0 else self._hash(0, size)

    def _hash(self, lo: int, hi: int) -> bytes:
        """MTH of leaves [lo, hi) (a node of some tree, never strictly inside a peak)."""
        if lo >= self.base_size:
            return root_of_leaf_hashes(self._leaf_hashes[lo - self.base_size : hi - self.base_size])
        for start, size, peak in self._peaks:
            if (start, start + size) == (lo, hi):
                return peak
            if start <= lo and hi <= start + size:
                raise ValueError(f"node [{lo}, {hi}) lies inside a frontier peak; not known")
        k = split_point(hi - lo)
        return node_hash(self._hash(lo, lo + k), self._hash(lo + k, hi))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The RFC 9162 audit path of leaf ``index`` in the tree of the first ``size`` leaves."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ValueError(f"leaf index {index} out of range for a tree of size {size}")
        if index < self.base_size:
            raise ValueError(f"leaf {index} is before this log's first known leaf")
        path: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = split_point(hi - lo)
            if index < lo + k:
                path.append(self._hash(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._hash(lo, lo + k))
                lo += k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 section 2.1.4.1 proof that the first ``old_size`` leaves are a prefix."""
        new_size = self.size if new_size is None else new_size
        if not 0 <= old_size <= new_size <= self.size:
            raise ValueError(f"old size {old_size} out of range for a tree of size {new_size}")
        if old_size in (0, new_size):
            return []
        return self._subproof(old_size, 0, new_size, complete=True)

    def _subproof(self, m: int, lo: int, hi: int, *, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [self._hash(lo, hi)]
        k = split_point(n)
        if m <= k:
            return [*self._subproof(m, lo, lo + k, complete=complete), self._hash(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, complete=False), self._hash(lo, lo + k)]
