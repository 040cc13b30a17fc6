"""Record proofs, the log proofs they are made of, and certificates checked on headers."""

from __future__ import annotations

import hashlib

import nacl.signing
import pytest

from mpc_ledger import merkle
from mpc_ledger.consensus import verify_certificate
from mpc_ledger.identity.signing import Signer
from mpc_ledger.ledger.records import parse_record
from mpc_ledger.proto.v1 import consensus_pb2
from mpc_ledger.verify import build_record_proof, read_proof, verify_record_proof, write_proof
from mpc_ledger.verify.certificates import assess_certificate
from mpc_ledger.verify.chain import genesis_validators
from mpc_ledger.verify.container import ExportFormatError
from mpc_ledger.verify.logproofs import LeafHashLog

from .conftest import run_cli_inprocess, standard_chain

# -- record proofs ------------------------------------------------------------------------


def _proof_for(builder, height, index_in_block):
    raw = builder.blocks[height - 1].block.records[index_in_block]
    target = parse_record(raw).id
    return build_record_proof(builder.blocks, builder.chain_id, target), raw


def test_a_members_record_proof_verifies(consortium, builder, tmp_path):
    standard_chain(builder)
    proof, raw = _proof_for(builder, 3, 1)
    assert proof.inclusion.log_index == 5 and proof.header.height == 3
    write_proof(tmp_path / "p", proof)
    verdict = verify_record_proof(read_proof(tmp_path / "p"), consortium.genesis)
    assert verdict.ok, verdict.checks
    assert verdict.record["author"] == "b" and verdict.record["id"] == parse_record(raw).id.hex()
    assert [c.check for c in verdict.checks] == ["chain", "certificate", "inclusion", "signature"]


def test_a_users_record_proof_carries_the_key_binding(consortium, builder, tmp_path):
    standard_chain(builder)
    proof, _ = _proof_for(builder, 5, 0)  # alice's, her key bound at #0
    assert proof.HasField("author_binding") and proof.author_binding.log_index == 0
    verdict = verify_record_proof(proof, consortium.genesis)
    assert verdict.ok, verdict.checks
    assert "user 'a/alice' (key bound at #0)" in verdict.checks[-1].detail


def test_a_changed_byte_in_a_proof_fails(consortium, builder, tmp_path):
    standard_chain(builder)
    proof, _ = _proof_for(builder, 3, 1)
    write_proof(tmp_path / "p", proof)
    data = (tmp_path / "p").read_bytes()
    assert data.count(b"two") == 1
    (tmp_path / "bad").write_bytes(data.replace(b"two", b"twO"))
    verdict = verify_record_proof(read_proof(tmp_path / "bad"), consortium.genesis)
    failed = {c.check for c in verdict.checks if not c.ok}
    assert failed == {"inclusion", "signature"}
    code = run_cli_inprocess("verify-proof", tmp_path / "bad", "--genesis", consortium.genesis_path)
    assert code == 1


def test_a_changed_audit_path_or_header_fails(consortium, builder):
    standard_chain(builder)
    proof, _ = _proof_for(builder, 3, 1)
    proof.inclusion.audit_path[0] = hashlib.sha256(b"x").digest()
    assert not verify_record_proof(proof, consortium.genesis).ok
    proof, _ = _proof_for(builder, 3, 1)
    proof.header.log_size += 100
    verdict = verify_record_proof(proof, consortium.genesis)
    assert {c.check for c in verdict.checks if not c.ok} == {"certificate", "inclusion"}


def test_a_proof_for_another_chain_fails(consortium, other_consortium, builder, tmp_path):
    standard_chain(builder)
    proof, _ = _proof_for(builder, 2, 0)
    verdict = verify_record_proof(proof, other_consortium.genesis)
    assert not verdict.ok
    assert (
        verdict.checks[0].check == "chain" and "the proof is for chain" in verdict.checks[0].detail
    )
    write_proof(tmp_path / "p", proof)
    code = run_cli_inprocess(
        "verify-proof", tmp_path / "p", "--genesis", other_consortium.genesis_path
    )
    assert code == 1


def test_no_proof_for_a_record_not_on_the_ledger(builder):
    standard_chain(builder)
    assert build_record_proof(builder.blocks, builder.chain_id, bytes(32)) is None


def test_a_proof_file_that_is_not_one(consortium, tmp_path, capsys):
    (tmp_path / "p").write_bytes(b"mpc-ledger-proof\n\x00\x00\x00\x02\xff\xff")
    with pytest.raises(ExportFormatError, match="not a record proof"):
        read_proof(tmp_path / "p")
    code = run_cli_inprocess("verify-proof", tmp_path / "p", "--genesis", consortium.genesis_path)
    assert code == 2 and str(tmp_path / "p") in capsys.readouterr().err


# -- log proofs from leaf hashes ----------------------------------------------------------

SIZES = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33]


def _leaves(n):
    return [f"leaf {i}".encode() for i in range(n)]


def _log(leaves, base_size=0):
    frontier = merkle.MerkleFrontier()
    frontier.extend(leaves[:base_size])
    log = LeafHashLog(frontier)
    log.extend([merkle.leaf_hash(leaf) for leaf in leaves[base_size:]])
    return log


@pytest.mark.parametrize("size", SIZES)
def test_leaf_hash_log_matches_the_merkle_module(size):
    leaves = _leaves(size)
    log = _log(leaves)
    assert log.root() == merkle.merkle_root(leaves)
    for index in range(size):
        assert log.inclusion_proof(index) == merkle.inclusion_proof(leaves, index)
    for old in range(size + 1):
        assert log.consistency_proof(old) == merkle.consistency_proof(leaves, old)


@pytest.mark.parametrize("size", [s for s in SIZES if s])
def test_leaf_hash_log_after_a_frontier(size):
    leaves = _leaves(size)
    for base in range(size + 1):
        log = _log(leaves, base)
        assert log.root() == merkle.merkle_root(leaves)
        for index in range(base, size):
            assert log.inclusion_proof(index) == merkle.inclusion_proof(leaves, index)
        for old in range(base, size + 1):
            proof = log.consistency_proof(old)
            assert proof == merkle.consistency_proof(leaves, old)


def test_leaf_hash_log_refuses_what_it_cannot_know():
    leaves = _leaves(8)
    log = _log(leaves, 6)  # peaks [0,4) [4,6)
    with pytest.raises(ValueError, match="out of range"):
        log.inclusion_proof(8)
    with pytest.raises(ValueError, match="before this log's first known leaf"):
        log.inclusion_proof(2)
    with pytest.raises(ValueError, match="inside a frontier peak"):
        log.consistency_proof(2)


# -- certificates checked on a header agree with consensus.verify_certificate -------------


def _variants(builder):
    good = builder.blocks[-1]
    outsider = Signer(nacl.signing.SigningKey.generate(), builder.chain_id)

    def copy():
        return consensus_pb2.CommittedBlock.FromString(good.SerializeToString())

    short, duplicate, stranger, wrong_key, wrong_height, wrong_id = (copy() for _ in range(6))
    del short.certificate.signatures[0]
    duplicate.certificate.signatures[1].CopyFrom(duplicate.certificate.signatures[0])
    stranger.certificate.signatures[0].validator_id = "zed"
    from mpc_ledger.consensus import precommit_body
    from mpc_ledger.identity.signing import Purpose

    body = precommit_body(
        builder.chain_id, good.block.header.height, 0, good.certificate.block_id, "a"
    )
    wrong_key.certificate.signatures[0].signature = outsider.sign(Purpose.PRECOMMIT, body)
    wrong_height.certificate.height += 1
    wrong_id.certificate.block_id = bytes(32)
    return {
        "good": good,
        "short": short,
        "duplicate": duplicate,
        "stranger": stranger,
        "wrong_key": wrong_key,
        "wrong_height": wrong_height,
        "wrong_id": wrong_id,
    }


def test_header_certificate_verdicts_match_consensus(consortium, builder):
    standard_chain(builder)
    validators = genesis_validators(consortium.genesis)
    for name, item in _variants(builder).items():
        ours = assess_certificate(validators, builder.chain_id, item.block.header, item.certificate)
        theirs = verify_certificate(validators, builder.chain_id, item.block, item.certificate)
        assert ours.ok == (theirs is None), name
        assert ours.ok == (name == "good"), (name, ours.problems)
