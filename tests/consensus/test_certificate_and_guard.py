"""Commit certificates (what an auditor checks) and the signing guard (what crashes must keep)."""

from __future__ import annotations

import pytest

from mpc_ledger.consensus import (
    Reason,
    Rejection,
    SigningGuard,
    make_certificate,
    verify_certificate,
)
from mpc_ledger.proto.v1 import consensus_pb2 as pb

PREVOTE, PRECOMMIT = pb.STEP_PREVOTE, pb.STEP_PRECOMMIT


def detail(problem: Rejection | None) -> str:
    assert problem is not None
    assert problem.reason == Reason.BAD_CERTIFICATE
    return problem.detail


def test_a_quorum_certificate_verifies(h4) -> None:
    block = h4.block([b"a", b"b"])
    certificate = h4.certificate(block, ["v3", "v1", "v2"])
    assert [s.validator_id for s in certificate.signatures] == ["v1", "v2", "v3"]
    assert verify_certificate(h4.validators, h4.chain_id, block, certificate) is None
    # Genesis validators may be given as plain (id, key) pairs.
    pairs = [(v.id, v.public_key) for v in h4.validators.validators]
    assert verify_certificate(pairs, h4.chain_id, block, certificate) is None


def test_too_few_signers(h4) -> None:
    block = h4.block()
    assert "quorum" in detail(
        verify_certificate(h4.validators, h4.chain_id, block, h4.certificate(block, ["v1", "v2"]))
    )


def test_duplicate_signer(h4) -> None:
    block = h4.block()
    certificate = h4.certificate(block, ["v1", "v2"])
    certificate.signatures.append(certificate.signatures[0])
    assert "duplicate" in detail(verify_certificate(h4.validators, h4.chain_id, block, certificate))


def test_non_validator_signer(h4, make_harness) -> None:
    block = h4.block()
    certificate = h4.certificate(block, ["v1", "v2", "v3"])
    certificate.signatures[0].validator_id = "mallory"
    assert "not a validator" in detail(
        verify_certificate(h4.validators, h4.chain_id, block, certificate)
    )


def test_wrong_round_height_block_or_chain(h4) -> None:
    block = h4.block([b"x"])
    certificate = h4.certificate(block, ["v1", "v2", "v3"], round_=2)
    assert verify_certificate(h4.validators, h4.chain_id, block, certificate) is None

    moved = pb.Certificate()
    moved.CopyFrom(certificate)
    moved.round = 3  # signatures were made for round 2
    assert "does not verify" in detail(verify_certificate(h4.validators, h4.chain_id, block, moved))

    moved.CopyFrom(certificate)
    moved.height = 2
    assert "height" in detail(verify_certificate(h4.validators, h4.chain_id, block, moved))

    other = h4.block([b"y"])
    assert "block id" in detail(verify_certificate(h4.validators, h4.chain_id, other, certificate))

    assert "does not verify" in detail(
        verify_certificate(h4.validators, b"another-chain", block, certificate)
    )


def test_records_must_match_the_certified_header(h4) -> None:
    block = h4.block([b"x"])
    certificate = h4.certificate(block, ["v1", "v2", "v3"])
    block.records[0] = b"tampered"
    assert "records" in detail(verify_certificate(h4.validators, h4.chain_id, block, certificate))


def test_another_validator_set_is_refused(h4, make_harness) -> None:
    block = h4.block()
    certificate = h4.certificate(block, ["v1", "v2", "v3"])
    bigger = make_harness(5)
    assert "validator set" in detail(
        verify_certificate(bigger.validators, h4.chain_id, block, certificate)
    )


def test_prevotes_do_not_make_a_certificate(h4) -> None:
    block = h4.block()
    prevotes = [h4.vote(v, PREVOTE, block).vote for v in ("v1", "v2", "v3")]
    certificate = make_certificate(prevotes)  # the signatures are for prevotes
    assert "does not verify" in detail(
        verify_certificate(h4.validators, h4.chain_id, block, certificate)
    )


def test_make_certificate_needs_agreeing_precommits(h4) -> None:
    with pytest.raises(ValueError, match="at least one"):
        make_certificate([])
    a = h4.vote("v1", PRECOMMIT, b"\x01" * 32).vote
    b = h4.vote("v2", PRECOMMIT, b"\x02" * 32).vote
    with pytest.raises(ValueError, match="agree"):
        make_certificate([a, b])


# -- the signing guard ------------------------------------------------------------------------


def vote_body(h, round_: int, step: pb.Step, voted: bytes) -> pb.VoteBody:
    return pb.VoteBody(
        chain_id=h.chain_id, step=step, height=1, round=round_, block_id=voted, validator_id="v0"
    )


def test_guard_signs_forward_only(h4) -> None:
    guard = SigningGuard(h4.signers["v0"])
    first = guard.sign_vote(vote_body(h4, 1, PREVOTE, b"\x01" * 32))
    assert isinstance(first, pb.Vote)
    # The same body again: the same signed vote.
    assert guard.sign_vote(vote_body(h4, 1, PREVOTE, b"\x01" * 32)) == first
    # Something else at the same position, or anything below it: refused.
    refused = guard.sign_vote(vote_body(h4, 1, PREVOTE, b"\x02" * 32))
    assert isinstance(refused, Rejection) and refused.reason == Reason.SIGNING_REFUSED
    assert isinstance(guard.sign_vote(vote_body(h4, 0, PRECOMMIT, b"")), Rejection)
    # Above it: fine.
    assert isinstance(guard.sign_vote(vote_body(h4, 1, PRECOMMIT, b"")), pb.Vote)
    assert guard.signed_count == 2


def test_guard_survives_a_restart_from_its_mark(h4) -> None:
    guard = SigningGuard(h4.signers["v0"])
    signed = guard.sign_vote(vote_body(h4, 3, PRECOMMIT, b"\x01" * 32))
    assert isinstance(signed, pb.Vote)
    mark = guard.last_signed
    restarted = SigningGuard(h4.signers["v0"], mark)
    assert isinstance(restarted.sign_vote(vote_body(h4, 3, PRECOMMIT, b"")), Rejection)
    assert restarted.sign_vote(vote_body(h4, 3, PRECOMMIT, b"\x01" * 32)) == signed
    block = h4.block()
    proposal_body = pb.ProposalBody(
        chain_id=h4.chain_id, height=1, round=3, pol_round=-1, block_id=b"\x05" * 32
    )
    assert isinstance(restarted.sign_proposal(proposal_body, block), Rejection)
    proposal_body.round = 4
    assert isinstance(restarted.sign_proposal(proposal_body, block), pb.Proposal)


@pytest.mark.parametrize("part", ["block", "certificate"])
def test_unknown_fields_in_a_certified_block_are_refused(h4, part) -> None:
    block = h4.block([b"a"])
    certificate = h4.certificate(block, ["v1", "v2", "v3"])
    (block if part == "block" else certificate).MergeFromString(b"\x7a\x03abc")
    assert f"unknown field at {part}: field number 15" in detail(
        verify_certificate(h4.validators, h4.chain_id, block, certificate)
    )
