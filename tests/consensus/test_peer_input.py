"""Every check on a peer's message answers a reason; nothing from a peer raises."""

from __future__ import annotations

import random

import nacl.signing
import pytest

from mpc_ledger.consensus import Reason, block_id, verify_evidence
from mpc_ledger.identity.signing import Signer
from mpc_ledger.proto.v1 import consensus_pb2 as pb

PROPOSE, PREVOTE, PRECOMMIT = pb.STEP_PROPOSE, pb.STEP_PREVOTE, pb.STEP_PRECOMMIT
OUTSIDER = nacl.signing.SigningKey(b"\x55" * 32)


def only_reason(h, ready) -> str:
    assert len(ready.rejections) == 1, ready.rejections
    assert ready.messages == [] and ready.persist is None
    return h.reasons(ready)[0]


def test_undecodable_bytes_are_malformed(h4) -> None:
    core, _ = h4.core("v0")
    assert only_reason(h4, core.receive(b"\xff\xff\xff")) == Reason.MALFORMED
    assert only_reason(h4, core.receive(b"")) == Reason.MALFORMED  # neither kind set


@pytest.mark.parametrize(
    "mutate",
    [
        lambda v: v.body.ClearField("step"),
        lambda v: setattr(v.body, "block_id", b"short"),
        lambda v: setattr(v, "signature", b"\x00" * 10),
        lambda v: setattr(v.body, "height", 0),
        lambda v: v.ClearField("body"),
    ],
    ids=["no-step", "short-block-id", "short-signature", "height-0", "no-body"],
)
def test_malformed_votes(h4, mutate) -> None:
    core, _ = h4.core("v0")
    message = h4.vote("v1", PREVOTE, None)
    mutate(message.vote)
    assert only_reason(h4, core.receive(message)) == Reason.MALFORMED


def test_malformed_proposals(h4) -> None:
    core, _ = h4.core("v0")
    no_block = h4.proposal("v1", h4.block())
    no_block.proposal.ClearField("block")
    assert only_reason(h4, core.receive(no_block)) == Reason.MALFORMED
    bad_pol = h4.proposal("v1", h4.block(), pol_round=0)  # pol_round must be < round
    assert only_reason(h4, core.receive(bad_pol)) == Reason.MALFORMED


def test_wrong_chain_id(h4) -> None:
    core, _ = h4.core("v0")
    other_chain = Signer(h4.keys["v1"], b"another-chain")
    message = h4.vote("v1", PREVOTE, None, signer=other_chain, chain_id=b"another-chain")
    assert only_reason(h4, core.receive(message)) == Reason.WRONG_CHAIN


def test_signed_for_another_chain_is_a_bad_signature(h4) -> None:
    core, _ = h4.core("v0")
    # The body names our chain, the signature covers another chain's bytes.
    message = h4.vote("v1", PREVOTE, None, signer=Signer(h4.keys["v1"], b"another-chain"))
    assert only_reason(h4, core.receive(message)) == Reason.BAD_SIGNATURE


def test_bad_signatures(h4) -> None:
    core, _ = h4.core("v0")
    impostor = h4.vote("v1", PREVOTE, None, signer=h4.signers["v2"])
    assert only_reason(h4, core.receive(impostor)) == Reason.BAD_SIGNATURE
    flipped = h4.vote("v1", PRECOMMIT, None)
    flipped.vote.signature = bytes([flipped.vote.signature[0] ^ 1]) + flipped.vote.signature[1:]
    assert only_reason(h4, core.receive(flipped)) == Reason.BAD_SIGNATURE
    proposal = h4.proposal("v1", h4.block(), signer=h4.signers["v3"])
    assert only_reason(h4, core.receive(proposal)) == Reason.BAD_SIGNATURE
    # A prevote signature does not pass for a precommit.
    prevote = h4.vote("v1", PREVOTE, None)
    prevote.vote.body.step = PRECOMMIT
    assert only_reason(h4, core.receive(prevote)) == Reason.BAD_SIGNATURE


def test_sender_not_a_validator(h4) -> None:
    core, _ = h4.core("v0")
    outsider = Signer(OUTSIDER, h4.chain_id)
    assert (
        only_reason(h4, core.receive(h4.vote("intruder", PREVOTE, None, signer=outsider)))
        == Reason.NOT_A_VALIDATOR
    )
    proposal = h4.proposal("intruder", h4.block(), signer=outsider)
    assert only_reason(h4, core.receive(proposal)) == Reason.NOT_A_VALIDATOR


def test_wrong_height_and_round(h4) -> None:
    core, _ = h4.core("v0")
    block = h4.block()
    core.commit_certified(block, h4.certificate(block, ["v1", "v2", "v3"]))
    assert only_reason(h4, core.receive(h4.vote("v1", PREVOTE, None))) == Reason.PAST_HEIGHT
    assert (
        only_reason(h4, core.receive(h4.vote("v1", PREVOTE, None, height=9)))
        == Reason.FUTURE_HEIGHT
    )
    far = h4.vote("v1", PREVOTE, None, height=2, round_=10_000)
    assert only_reason(h4, core.receive(far)) == Reason.ROUND_TOO_FAR


def test_proposal_from_someone_else_than_the_proposer(h4) -> None:
    core, _ = h4.core("v0")
    message = h4.proposal("v2", h4.block(proposer="v2"))  # v1 proposes (1, 0)
    assert only_reason(h4, core.receive(message)) == Reason.NOT_PROPOSER


def test_proposal_whose_block_is_not_the_one_signed(h4) -> None:
    core, _ = h4.core("v0")
    message = h4.proposal("v1", h4.block([b"signed"]))
    message.proposal.block.records.append(b"smuggled")
    message.proposal.block.header.records_count = 2
    assert only_reason(h4, core.receive(message)) == Reason.BLOCK_ID_MISMATCH


def test_duplicates(h4) -> None:
    core, _ = h4.core("v0")
    vote = h4.vote("v1", PREVOTE, None)
    core.receive(vote)
    assert only_reason(h4, core.receive(vote)) == Reason.DUPLICATE
    proposal = h4.proposal("v1", h4.block())
    core.receive(proposal)
    ready = core.receive(proposal)
    assert h4.reasons(ready) == [Reason.DUPLICATE]


def test_conflicting_votes_become_evidence(h4) -> None:
    core, _ = h4.core("v0")
    first = h4.vote("v1", PREVOTE, b"\x01" * 32)
    second = h4.vote("v1", PREVOTE, b"\x02" * 32)
    core.receive(first)
    ready = core.receive(second)
    [evidence] = ready.evidence
    assert evidence.duplicate_vote.first == first.vote
    assert evidence.duplicate_vote.second == second.vote
    assert verify_evidence(h4.validators, h4.chain_id, evidence) is None
    # A third distinct vote for an unknown block is neither counted nor new evidence.
    ready = core.receive(h4.vote("v1", PREVOTE, b"\x03" * 32))
    assert h4.reasons(ready) == [Reason.CONFLICTING_VOTE]
    assert ready.evidence == []
    # A conflicting vote with a bad signature is just a bad signature, not evidence.
    forged = h4.vote("v1", PREVOTE, b"\x04" * 32, signer=h4.signers["v2"])
    ready = core.receive(forged)
    assert h4.reasons(ready) == [Reason.BAD_SIGNATURE] and ready.evidence == []


def test_evidence_that_does_not_hold_is_refused(h4) -> None:
    pair = pb.DuplicateVoteEvidence(
        first=h4.vote("v1", PREVOTE, b"\x01" * 32).vote,
        second=h4.vote("v1", PREVOTE, b"\x01" * 32).vote,
    )
    assert verify_evidence(h4.validators, h4.chain_id, pb.Evidence(duplicate_vote=pair))
    pair.second.CopyFrom(h4.vote("v1", PREVOTE, b"\x02" * 32, round_=1).vote)
    assert verify_evidence(h4.validators, h4.chain_id, pb.Evidence(duplicate_vote=pair))
    pair.second.CopyFrom(h4.vote("v1", PREVOTE, b"\x02" * 32).vote)
    pair.second.signature = b"\x00" * 64
    assert verify_evidence(h4.validators, h4.chain_id, pb.Evidence(duplicate_vote=pair))
    assert verify_evidence(h4.validators, h4.chain_id, pb.Evidence())


def test_equivocating_proposer_leaves_evidence_and_a_bound(h4) -> None:
    core, _ = h4.core("v0")
    first = h4.proposal("v1", h4.block([b"a"]))
    second = h4.proposal("v1", h4.block([b"b"]))
    third = h4.proposal("v1", h4.block([b"c"]))
    core.receive(first)
    ready = core.receive(second)
    assert h4.reasons(ready) == [Reason.CONFLICTING_PROPOSAL]
    [evidence] = ready.evidence
    assert verify_evidence(h4.validators, h4.chain_id, evidence) is None
    ready = core.receive(third)
    assert Reason.TOO_MANY_PROPOSALS in h4.reasons(ready)


def test_a_polka_is_seen_despite_an_equivocating_voter(h4) -> None:
    """A node that first heard a Byzantine voter's other vote still sees the polka."""
    core, _ = h4.core("v0")
    block = h4.block([b"polka"])
    core.receive(h4.vote("v3", PREVOTE, None))  # v3 equivocates: nil to us first
    core.receive(h4.proposal("v1", block))
    core.receive(h4.vote("v1", PREVOTE, block))
    ready = core.receive(h4.vote("v3", PREVOTE, block))  # ... and the block to others
    assert len(ready.evidence) == 1
    assert h4.own_votes(ready, PRECOMMIT)[0].body.block_id == block_id(block.header)


def test_random_corruption_never_raises(h4) -> None:
    rng = random.Random(7)
    core, _ = h4.core("v0")
    samples = [
        h4.vote("v1", PREVOTE, None).SerializeToString(),
        h4.vote("v2", PRECOMMIT, b"\x01" * 32).SerializeToString(),
        h4.proposal("v1", h4.block([b"r"])).SerializeToString(),
    ]
    for _ in range(600):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.2:
            data = data[: rng.randrange(len(data))]
        ready = core.receive(bytes(data))  # must not raise
        assert all(isinstance(r.reason, Reason) for r in ready.rejections)


PADDING = b"\x7a\x03abc"  # an unknown length-delimited field, number 15


@pytest.mark.parametrize("where", ["vote", "vote.body"])
def test_votes_with_unknown_fields_are_malformed(h4, where) -> None:
    core, _ = h4.core("v0")
    message = h4.vote("v1", PREVOTE, None)
    target = message.vote if where == "vote" else message.vote.body
    target.MergeFromString(PADDING)
    assert only_reason(h4, core.receive(message)) == Reason.MALFORMED
    assert only_reason(h4, core.receive(message.SerializeToString())) == Reason.MALFORMED


def test_a_proposal_whose_block_has_unknown_fields_is_malformed(h4) -> None:
    core, _ = h4.core("v0")
    message = h4.proposal("v1", h4.block())
    message.proposal.block.MergeFromString(PADDING)  # outside the header: not hashed
    assert only_reason(h4, core.receive(message)) == Reason.MALFORMED
