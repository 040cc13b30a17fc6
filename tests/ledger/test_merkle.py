"""RFC 6962/9162 Merkle tree: roots, inclusion and consistency proofs against a reference."""

from __future__ import annotations

import hashlib

import pytest

from mpc_ledger.merkle import (
    EMPTY_ROOT,
    MerkleFrontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

# -- a straightforward recursive reference, written from the RFC text -----------------


def ref_mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def data(n: int) -> list[bytes]:
    return [f"record-{i}".encode() for i in range(n)]


INTERESTING_SIZES = [1, 2, 3, 4, 5, 8, 9, 16, 17, 32, 33, 64, 65]


# -- roots -----------------------------------------------------------------------------


def test_empty_tree_is_hash_of_empty_string() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_single_leaf_and_pair_follow_the_rfc_prefixes() -> None:
    assert merkle_root([b"a"]) == hashlib.sha256(b"\x00a").digest()
    assert leaf_hash(b"a") == hashlib.sha256(b"\x00a").digest()
    assert merkle_root([b"a", b"b"]) == node_hash(leaf_hash(b"a"), leaf_hash(b"b"))


def test_known_rfc6962_test_vector() -> None:
    # The 8-leaf tree from the certificate-transparency test suite.
    leaves = [
        bytes.fromhex(h)
        for h in [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
    ]
    assert (
        merkle_root(leaves[:1]).hex()
        == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    # The published root for the first 8 test leaves (RFC 6962 test data).
    assert (
        merkle_root(leaves).hex()
        == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


@pytest.mark.parametrize("size", range(0, 71))
def test_root_matches_reference(size: int) -> None:
    assert merkle_root(data(size)) == ref_mth(data(size))


@pytest.mark.parametrize("size", range(0, 71))
def test_frontier_root_matches_full_root_at_every_size(size: int) -> None:
    frontier = MerkleFrontier()
    frontier.extend(data(size))
    assert frontier.size == size
    assert frontier.root() == ref_mth(data(size))
    rebuilt = MerkleFrontier(frontier.size, frontier.peaks)
    rebuilt.append(b"next")
    assert rebuilt.root() == ref_mth([*data(size), b"next"])


def test_frontier_rejects_inconsistent_peaks() -> None:
    with pytest.raises(ValueError, match="one peak per set bit"):
        MerkleFrontier(3, [bytes(32)])
    with pytest.raises(ValueError, match="32-byte"):
        MerkleFrontier(1, [b"short"])


# -- inclusion proofs -------------------------------------------------------------------


@pytest.mark.parametrize("size", range(1, 71))
def test_inclusion_proofs_match_reference_and_verify(size: int) -> None:
    leaves = data(size)
    root = ref_mth(leaves)
    for index in range(size):
        proof = inclusion_proof(leaves, index)
        assert proof == ref_path(index, leaves)
        assert verify_inclusion(leaves[index], index, size, proof, root)


@pytest.mark.parametrize("size", INTERESTING_SIZES)
def test_tampered_inclusion_proofs_fail(size: int) -> None:
    leaves = data(size)
    root = merkle_root(leaves)
    for index in range(size):
        proof = inclusion_proof(leaves, index)
        assert not verify_inclusion(b"other", index, size, proof, root)
        assert not verify_inclusion(leaves[index], index, size, proof, bytes(32))
        if size > 1:
            assert not verify_inclusion(leaves[index], (index + 1) % size, size, proof, root)
            assert not verify_inclusion(leaves[index], index, size, proof[:-1], root)
            assert not verify_inclusion(leaves[index], index, size, [*proof, bytes(32)], root)
            flipped = bytes([proof[0][0] ^ 1]) + proof[0][1:]
            assert not verify_inclusion(leaves[index], index, size, [flipped, *proof[1:]], root)
        else:
            assert not verify_inclusion(leaves[index], index, size, [bytes(32)], root)


def test_inclusion_index_out_of_range() -> None:
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof(data(4), 4)
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof(data(4), -1)
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof([], 0)
    # Verification is given untrusted input: it answers False, never raises.
    assert not verify_inclusion(b"x", 4, 4, [], merkle_root(data(4)))
    assert not verify_inclusion(b"x", -1, 4, [], merkle_root(data(4)))
    assert not verify_inclusion(b"x", 0, 0, [], EMPTY_ROOT)


def test_inclusion_rejects_malformed_hashes() -> None:
    leaves = data(4)
    proof = inclusion_proof(leaves, 1)
    assert not verify_inclusion(leaves[1], 1, 4, [proof[0][:31], *proof[1:]], merkle_root(leaves))


# -- consistency proofs -----------------------------------------------------------------


@pytest.mark.parametrize("new_size", range(1, 71))
def test_consistency_proofs_match_reference_and_verify(new_size: int) -> None:
    leaves = data(new_size)
    new_root = ref_mth(leaves)
    for old_size in range(1, new_size + 1):
        proof = consistency_proof(leaves, old_size)
        expected = [] if old_size == new_size else ref_subproof(old_size, leaves, True)
        assert proof == expected
        old_root = ref_mth(leaves[:old_size])
        assert verify_consistency(old_size, new_size, old_root, new_root, proof)


@pytest.mark.parametrize("new_size", INTERESTING_SIZES)
def test_tampered_consistency_proofs_fail(new_size: int) -> None:
    leaves = data(new_size)
    new_root = merkle_root(leaves)
    for old_size in range(1, new_size):
        proof = consistency_proof(leaves, old_size)
        old_root = merkle_root(leaves[:old_size])
        assert not verify_consistency(old_size, new_size, bytes(32), new_root, proof)
        assert not verify_consistency(old_size, new_size, old_root, bytes(32), proof)
        assert not verify_consistency(old_size, new_size, old_root, new_root, [])
        assert not verify_consistency(old_size, new_size, old_root, new_root, proof[:-1])
        assert not verify_consistency(old_size, new_size, old_root, new_root, [*proof, bytes(32)])
        flipped = bytes([proof[-1][0] ^ 1]) + proof[-1][1:]
        assert not verify_consistency(
            old_size, new_size, old_root, new_root, [*proof[:-1], flipped]
        )
        # A rewritten history is not consistent with the old root.
        rewritten = [b"rewritten", *leaves[1:]]
        assert not verify_consistency(
            old_size,
            new_size,
            old_root,
            merkle_root(rewritten),
            consistency_proof(rewritten, old_size),
        )


def test_consistency_edge_sizes() -> None:
    leaves = data(5)
    root = merkle_root(leaves)
    assert consistency_proof(leaves, 0) == []
    assert verify_consistency(0, 5, EMPTY_ROOT, root, [])
    assert not verify_consistency(0, 5, bytes(32), root, [])
    assert consistency_proof(leaves, 5) == []
    assert verify_consistency(5, 5, root, root, [])
    assert not verify_consistency(5, 5, root, bytes(32), [])
    assert not verify_consistency(5, 5, root, root, [bytes(32)])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])


def test_consistency_size_out_of_range() -> None:
    with pytest.raises(ValueError, match="out of range"):
        consistency_proof(data(3), 4)
    with pytest.raises(ValueError, match="out of range"):
        consistency_proof(data(3), -1)
    assert not verify_consistency(4, 3, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(-1, 3, EMPTY_ROOT, EMPTY_ROOT, [])
