"""ConsensusCore driven by hand: Algorithm 1's rules, one at a time, with real signatures."""

from __future__ import annotations

import pytest

from mpc_ledger.consensus import (
    Reason,
    Timeout,
    block_id,
    max_faulty,
    quorum_size,
    signed_position,
    verify_certificate,
)
from mpc_ledger.consensus.validators import ValidatorSet
from mpc_ledger.proto.v1 import consensus_pb2 as pb

PROPOSE, PREVOTE, PRECOMMIT = pb.STEP_PROPOSE, pb.STEP_PREVOTE, pb.STEP_PRECOMMIT


# -- arithmetic ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "f", "quorum"),
    [(1, 0, 1), (2, 0, 2), (3, 0, 3), (4, 1, 3), (5, 1, 4), (6, 1, 5), (7, 2, 5), (10, 3, 7)],
)
def test_quorum_math(n: int, f: int, quorum: int) -> None:
    assert max_faulty(n) == f
    assert quorum_size(n) == quorum
    # Two quorums always share f + 1 validators, so at least one honest one.
    assert 2 * quorum - n >= f + 1
    # The honest validators alone make a quorum (liveness).
    assert n - f >= quorum


def test_validator_set_is_sorted_and_proposer_rotates(make_harness) -> None:
    h = make_harness(4)
    shuffled = ValidatorSet(reversed([(v.id, v.public_key) for v in h.validators.validators]))
    assert shuffled.ids == ("v0", "v1", "v2", "v3")
    assert shuffled.hash == h.validators.hash
    assert [shuffled.proposer(1, r) for r in range(5)] == ["v1", "v2", "v3", "v0", "v1"]
    assert [shuffled.proposer(h_, 0) for h_ in range(1, 5)] == ["v1", "v2", "v3", "v0"]


def test_validator_set_refuses_bad_members(make_harness) -> None:
    h = make_harness(2)
    key = h.signers["v0"].public_key
    with pytest.raises(ValueError, match="unique"):
        ValidatorSet([("a", key), ("a", key)])
    with pytest.raises(ValueError, match="32 bytes"):
        ValidatorSet([("a", b"short")])
    with pytest.raises(ValueError, match="at least one"):
        ValidatorSet([])


def test_timeouts_grow_linearly_with_round(h4) -> None:
    timeouts = h4.config.timeouts
    assert [timeouts.duration_ms(PROPOSE, r) for r in range(3)] == [100, 110, 120]
    assert [timeouts.duration_ms(PREVOTE, r) for r in range(3)] == [50, 55, 60]
    assert [timeouts.duration_ms(PRECOMMIT, r) for r in range(3)] == [60, 66, 72]
    core, ready = h4.core("v0")
    assert ready.timeouts == [Timeout(1, 0, PROPOSE, 100)]
    # f + 1 = 2 validators in round 7 pull us there; its timeout is longer.
    core.receive(h4.vote("v1", PREVOTE, None, round_=7))
    ready = core.receive(h4.vote("v2", PREVOTE, None, round_=7))
    assert core.round == 7
    assert Timeout(1, 7, PROPOSE, 170) in ready.timeouts


# -- the normal case ---------------------------------------------------------------------


def test_a_height_commits_with_a_certificate(h4) -> None:
    core, ready = h4.core("v0")
    assert ready.proposal_request is None  # v1 proposes at (1, 0)
    block = h4.block([b"record-a", b"record-b"], proposer="v1")
    ready = core.receive(h4.proposal("v1", block).SerializeToString())
    [prevote] = h4.own_votes(ready, PREVOTE)
    assert prevote.body.block_id == block_id(block.header)
    assert ready.persist is not None
    assert ready.persist.last_signed.vote == prevote  # persisted before it is sent
    core.receive(h4.vote("v1", PREVOTE, block))
    ready = core.receive(h4.vote("v2", PREVOTE, block))
    [precommit] = h4.own_votes(ready, PRECOMMIT)
    assert precommit.body.block_id == block_id(block.header)
    assert core.locked_round == 0
    assert Timeout(1, 0, PREVOTE, 50) in ready.timeouts
    core.receive(h4.vote("v1", PRECOMMIT, block))
    ready = core.receive(h4.vote("v3", PRECOMMIT, block))
    [committed] = ready.committed
    assert committed.block == block
    assert verify_certificate(h4.validators, h4.chain_id, block, committed.certificate) is None
    assert [s.validator_id for s in committed.certificate.signatures] == ["v0", "v1", "v3"]
    assert (core.height, core.round, core.locked_round) == (2, 0, -1)
    assert core.tip.log_size == 2
    assert ready.persist is not None and ready.persist.tip.height == 1
    assert core.proposer(2, 0) == "v2"
    assert ready.proposal_request is None
    assert ready.timeouts == [Timeout(2, 0, PROPOSE, 100)]


def test_proposer_asks_for_records_and_proposes(h4) -> None:
    core, ready = h4.core("v1")
    assert ready.proposal_request is not None
    ready = core.propose(ready.proposal_request, [b"r1"], time_ms=5_000)
    [message] = [m for m in ready.messages if m.WhichOneof("kind") == "proposal"]
    header = message.proposal.block.header
    assert (header.height, header.proposer_id, header.time_ms, header.records_count) == (
        1,
        "v1",
        5_000,
        1,
    )
    assert h4.own_votes(ready, PREVOTE)[0].body.block_id == message.proposal.body.block_id
    assert signed_position(ready.persist.last_signed) == (1, 0, PREVOTE)
    # A second answer to the same request is stale.
    again = core.propose(pb_request(1, 0), [b"r2"], time_ms=5_001)
    assert h4.reasons(again) == [Reason.STALE_REQUEST]
    assert again.messages == []


def pb_request(height: int, round_: int):
    from mpc_ledger.consensus import ProposalRequest

    return ProposalRequest(height, round_)


def test_proposer_refuses_records_that_fail_the_validator(h4) -> None:
    core, ready = h4.core("v1")
    ready = core.propose(ready.proposal_request, [b"poison"], time_ms=1)
    assert h4.reasons(ready) == [Reason.INVALID_BLOCK]
    assert ready.messages == []


def test_invalid_proposal_is_prevoted_nil(h4) -> None:
    core, _ = h4.core("v0")
    ready = core.receive(h4.proposal("v1", h4.block([b"poison"])))
    assert Reason.INVALID_BLOCK in h4.reasons(ready)
    [prevote] = h4.own_votes(ready, PREVOTE)
    assert prevote.body.block_id == b""


def test_block_not_extending_the_tip_is_invalid(h4) -> None:
    core, _ = h4.core("v0")
    block = h4.block([b"x"])
    block.header.previous_block_hash = b"\x01" * 32
    ready = core.receive(h4.proposal("v1", block))
    assert Reason.INVALID_BLOCK in h4.reasons(ready)
    assert h4.own_votes(ready, PREVOTE)[0].body.block_id == b""


# -- timeouts and nil votes -------------------------------------------------------------------


def test_timeouts_move_the_steps(h4) -> None:
    core, _ = h4.core("v0")
    ready = core.on_timeout(Timeout(1, 0, PROPOSE, 100))
    assert h4.own_votes(ready, PREVOTE)[0].body.block_id == b""
    assert core.step == PREVOTE
    # A stale timeout (older round) does nothing.
    assert core.on_timeout(Timeout(1, 5, PREVOTE, 1)).messages == []
    ready = core.on_timeout(Timeout(1, 0, PREVOTE, 50))
    assert h4.own_votes(ready, PRECOMMIT)[0].body.block_id == b""
    ready = core.on_timeout(Timeout(1, 0, PRECOMMIT, 60))
    assert (core.round, core.step) == (1, PROPOSE)
    assert Timeout(1, 1, PROPOSE, 110) in ready.timeouts


def test_quorum_of_nil_prevotes_precommits_nil(h4) -> None:
    core, _ = h4.core("v0")
    core.on_timeout(Timeout(1, 0, PROPOSE, 100))
    core.receive(h4.vote("v1", PREVOTE, None))
    ready = core.receive(h4.vote("v2", PREVOTE, None))
    assert h4.own_votes(ready, PRECOMMIT)[0].body.block_id == b""
    assert Timeout(1, 0, PREVOTE, 50) in ready.timeouts


def test_mixed_prevotes_schedule_the_prevote_timeout_once(h4) -> None:
    core, _ = h4.core("v0")
    block = h4.block()
    core.receive(h4.proposal("v1", block))
    core.receive(h4.vote("v1", PREVOTE, None))
    ready = core.receive(h4.vote("v2", PREVOTE, b"\x07" * 32))
    assert ready.timeouts == [Timeout(1, 0, PREVOTE, 50)]
    assert core.step == PREVOTE
    assert core.receive(h4.vote("v3", PREVOTE, None)).timeouts == []


def test_quorum_of_precommits_for_any_schedules_the_precommit_timeout(h4) -> None:
    core, _ = h4.core("v0")
    core.receive(h4.vote("v1", PRECOMMIT, None))
    core.receive(h4.vote("v2", PRECOMMIT, b"\x07" * 32))
    ready = core.receive(h4.vote("v3", PRECOMMIT, None))
    assert Timeout(1, 0, PRECOMMIT, 60) in ready.timeouts


def test_quorum_of_nil_precommits_starts_the_next_round_without_waiting(h4) -> None:
    # A dead proposer's round: nobody can decide in it, so no precommit timeout.
    core, _ = h4.core("v0")
    core.on_timeout(Timeout(1, 0, PROPOSE, 100))
    core.receive(h4.vote("v1", PREVOTE, None))
    core.receive(h4.vote("v2", PREVOTE, None))
    assert core.step == PRECOMMIT
    ready = core.receive(h4.vote("v1", PRECOMMIT, None))
    assert core.round == 0
    ready = core.receive(h4.vote("v2", PRECOMMIT, None))
    assert (core.round, core.step) == (1, PROPOSE)
    assert Timeout(1, 1, PROPOSE, 110) in ready.timeouts
    assert not any(t.step == PRECOMMIT for t in ready.timeouts)


def test_commit_in_an_earlier_round_still_decides(h4) -> None:
    core, _ = h4.core("v0")
    block = h4.block([b"late"])
    core.receive(h4.proposal("v1", block))
    # We move on to round 3 first ...
    core.receive(h4.vote("v2", PREVOTE, None, round_=3))
    core.receive(h4.vote("v3", PREVOTE, None, round_=3))
    assert core.round == 3
    # ... and the round-0 precommits arrive late: line 49 holds for any round.
    for voter in ("v1", "v2"):
        core.receive(h4.vote(voter, PRECOMMIT, block))
    ready = core.receive(h4.vote("v3", PRECOMMIT, block))
    assert [c.block for c in ready.committed] == [block]
    assert ready.committed[0].certificate.round == 0


# -- the locking rule ---------------------------------------------------------------------


def test_locked_node_prevotes_only_its_value_or_a_newer_polka(h5) -> None:
    """n = 5 (quorum 4): proposers at height 1 are v1, v2, v3, v4, v0, v1 for rounds 0..5."""
    h = h5
    core, _ = h.core("v0")
    v = h.block([b"v"], proposer="v2")
    v_other = h.block([b"v-other"], proposer="v3")
    others = ("v1", "v2", "v3", "v4")

    # Round 0: no proposal reaches us; we prevote nil, and a polka for v_other forms.
    core.on_timeout(Timeout(1, 0, PROPOSE, 100))
    for voter in others:
        core.receive(h.vote(voter, PREVOTE, v_other, round_=0))
    assert core.locked_round == -1  # a polka without its proposal does not lock

    # Round 1: lock on v.
    core.receive(h.vote("v1", PREVOTE, v, round_=1))
    core.receive(h.vote("v3", PREVOTE, v, round_=1))
    assert core.round == 1
    ready = core.receive(h.proposal("v2", v, round_=1))
    assert h.own_votes(ready, PREVOTE)[0].body.block_id == block_id(v.header)
    ready = core.receive(h.vote("v2", PREVOTE, v, round_=1))
    assert h.own_votes(ready, PRECOMMIT)[0].body.block_id == block_id(v.header)
    assert (core.locked_round, core.locked_block_id) == (1, block_id(v.header))

    # Round 2: a fresh proposal of another value: locked, so nil (line 22).
    core.receive(h.vote("v1", PRECOMMIT, None, round_=2))
    core.receive(h.vote("v2", PRECOMMIT, None, round_=2))
    assert core.round == 2
    ready = core.receive(h.proposal("v3", v_other, round_=2))
    assert h.own_votes(ready, PREVOTE)[0].body.block_id == b""

    # Round 3: re-proposed with a polka from round 0 < locked round 1: still nil (line 28).
    core.receive(h.vote("v1", PRECOMMIT, None, round_=3))
    core.receive(h.vote("v2", PRECOMMIT, None, round_=3))
    ready = core.receive(h.proposal("v4", v_other, round_=3, pol_round=0))
    assert h.own_votes(ready, PREVOTE)[0].body.block_id == b""
    assert core.locked_round == 1

    # Round 5: re-proposed with a polka from round 4 >= locked round: prevote it.
    core.receive(h.vote("v1", PRECOMMIT, None, round_=5))
    core.receive(h.vote("v2", PRECOMMIT, None, round_=5))
    assert core.round == 5
    for voter in others:
        core.receive(h.vote(voter, PREVOTE, v_other, round_=4))
    ready = core.receive(h.proposal("v1", v_other, round_=5, pol_round=4))
    assert h.own_votes(ready, PREVOTE)[0].body.block_id == block_id(v_other.header)


def test_proposal_waits_for_the_polka_it_names(h4) -> None:
    core, _ = h4.core("v0")
    block = h4.block()
    core.receive(h4.vote("v2", PRECOMMIT, None, round_=2))
    core.receive(h4.vote("v3", PRECOMMIT, None, round_=2))
    ready = core.receive(h4.proposal("v3", block, round_=2, pol_round=1))
    assert h4.own_votes(ready, PREVOTE) == []  # line 28 needs the round-1 polka first
    core.receive(h4.vote("v1", PREVOTE, block, round_=1))
    core.receive(h4.vote("v2", PREVOTE, block, round_=1))
    ready = core.receive(h4.vote("v3", PREVOTE, block, round_=1))
    assert h4.own_votes(ready, PREVOTE)[0].body.block_id == block_id(block.header)


def test_locked_node_prevotes_its_own_value_again(h4) -> None:
    core, _ = h4.core("v0")
    block = h4.block([b"mine"])
    core.receive(h4.proposal("v1", block))
    core.receive(h4.vote("v1", PREVOTE, block))
    core.receive(h4.vote("v2", PREVOTE, block))
    assert core.locked_round == 0
    core.receive(h4.vote("v1", PRECOMMIT, None, round_=1))
    core.receive(h4.vote("v2", PRECOMMIT, None, round_=1))
    ready = core.receive(h4.proposal("v2", block, round_=1))
    assert h4.own_votes(ready, PREVOTE)[0].body.block_id == block_id(block.header)


def test_proposer_reproposes_its_valid_value(h4) -> None:
    core, _ = h4.core("v3")  # proposer of (1, 2)
    block = h4.block([b"valid"])
    core.receive(h4.proposal("v1", block))
    core.receive(h4.vote("v1", PREVOTE, block))
    core.receive(h4.vote("v2", PREVOTE, block))
    assert core.valid_round == 0
    core.receive(h4.vote("v1", PRECOMMIT, None, round_=2))
    ready = core.receive(h4.vote("v2", PRECOMMIT, None, round_=2))
    assert ready.proposal_request is None
    [proposal] = [m.proposal for m in ready.messages if m.WhichOneof("kind") == "proposal"]
    assert proposal.body.pol_round == 0
    assert proposal.block == block


# -- restart from persisted state --------------------------------------------------------------


def test_restart_resends_the_same_vote_and_refuses_a_different_one(h4) -> None:
    core, _ = h4.core("v0")
    block = h4.block([b"first"])
    ready = core.receive(h4.proposal("v1", block))
    persisted = ready.persist
    [prevote] = h4.own_votes(ready, PREVOTE)

    restarted, ready = h4.core("v0", state=persisted)
    assert restarted.step == PREVOTE
    assert h4.own_votes(ready, PREVOTE) == [prevote]  # identical bytes, not a new signature

    # A state rolled back to the propose step (as if the step had been lost) still
    # carries the signing mark: a different value at (1, 0, prevote) is refused ...
    rolled_back = pb.ConsensusState()
    rolled_back.CopyFrom(persisted)
    rolled_back.step = PROPOSE
    stale, _ = h4.core("v0", state=rolled_back)
    other = h4.block([b"second"])
    ready = stale.receive(h4.proposal("v1", other))
    assert Reason.SIGNING_REFUSED in h4.reasons(ready)
    assert h4.own_votes(ready, PREVOTE) == []
    # ... while the very same value gets the very same signed vote.
    stale_again, _ = h4.core("v0", state=rolled_back)
    ready = stale_again.receive(h4.proposal("v1", block))
    assert h4.own_votes(ready, PREVOTE) == [prevote]


def test_restart_keeps_the_lock_and_its_polka(h4) -> None:
    core, _ = h4.core("v0")
    block = h4.block([b"locked"])
    core.receive(h4.proposal("v1", block))
    core.receive(h4.vote("v1", PREVOTE, block))
    ready = core.receive(h4.vote("v2", PREVOTE, block))
    persisted = ready.persist
    assert persisted.locked_round == 0
    assert len(persisted.valid_round_prevotes) == 3

    restarted, ready = h4.core("v0", state=persisted)
    assert restarted.locked_block_id == block_id(block.header)
    restarted.receive(h4.vote("v1", PRECOMMIT, None, round_=1))
    restarted.receive(h4.vote("v2", PRECOMMIT, None, round_=1))
    ready = restarted.receive(h4.proposal("v2", h4.block([b"other"]), round_=1))
    assert h4.own_votes(ready, PREVOTE)[0].body.block_id == b""
    # Its gossip still carries the round-0 polka that justifies the lock.
    gossip = restarted.gossip()
    round0 = [m.vote for m in gossip.messages if m.vote.body.round == 0]
    assert {v.body.validator_id for v in round0 if v.body.step == PREVOTE} >= {"v0", "v1", "v2"}


def test_nothing_to_persist_when_nothing_changed(h4) -> None:
    core, _ = h4.core("v0")
    vote = h4.vote("v1", PREVOTE, None)
    assert core.receive(vote).persist is None
    assert core.receive(vote).persist is None


def test_core_must_be_started_and_configured(h4) -> None:
    core, _ = h4.core("v0", start=False)
    with pytest.raises(RuntimeError, match="start"):
        core.receive(h4.vote("v1", PREVOTE, None))
    from mpc_ledger.consensus import ConsensusCore

    with pytest.raises(ValueError, match="not in the validator set"):
        ConsensusCore(h4.config, "nobody", h4.signers["v0"], h4.accept_all)
    with pytest.raises(ValueError, match="key"):
        ConsensusCore(h4.config, "v0", h4.signers["v1"], h4.accept_all)


# -- catch-up ---------------------------------------------------------------------------


def test_catch_up_commits_a_certified_block(h4) -> None:
    core, _ = h4.core("v0")
    block = h4.block([b"from-a-peer"])
    ready = core.commit_certified(block, h4.certificate(block, ["v1", "v2", "v3"]))
    assert [c.block for c in ready.committed] == [block]
    assert core.height == 2
    assert ready.persist is not None and ready.persist.tip.height == 1
    # The next block must chain on it.
    tip = core.tip
    following = h4.block([b"next"], proposer="v2", tip=tip)
    ready = core.commit_certified(following, h4.certificate(following, ["v0", "v1", "v2"]))
    assert core.height == 3


def test_catch_up_refuses_what_does_not_check(h4) -> None:
    core, _ = h4.core("v0")
    block = h4.block([b"x"])
    ready = core.commit_certified(block, h4.certificate(block, ["v1", "v2"]))
    assert h4.reasons(ready) == [Reason.BAD_CERTIFICATE]
    later = h4.block(tip=pb.ChainTip(height=1, block_id=b"\x01" * 32))
    ready = core.commit_certified(later, h4.certificate(later, ["v1", "v2", "v3"]))
    assert h4.reasons(ready) == [Reason.FUTURE_HEIGHT]
    poisoned = h4.block([b"poison"])
    ready = core.commit_certified(poisoned, h4.certificate(poisoned, ["v1", "v2", "v3"]))
    assert h4.reasons(ready) == [Reason.INVALID_BLOCK]
    assert core.height == 1


def test_next_height_messages_wait_for_us(h4) -> None:
    core, _ = h4.core("v0")
    block = h4.block([b"one"])
    second = h4.block([b"two"], proposer="v2", tip=_tip_after(h4, block))
    # The height-2 proposal arrives before we committed height 1: it is kept ...
    ready = core.receive(h4.proposal("v2", second, height=2))
    assert ready.rejections == []
    # ... and acted on at the first input after height 1 commits (by then the
    # caller has applied the commit to its records validator).
    ready = core.commit_certified(block, h4.certificate(block, ["v1", "v2", "v3"]))
    assert h4.own_votes(ready, PREVOTE) == []
    ready = core.gossip()
    assert h4.own_votes(ready, PREVOTE)[0].body.block_id == block_id(second.header)
    # Two heights ahead is refused.
    assert h4.reasons(core.receive(h4.vote("v1", PREVOTE, None, height=4))) == [
        Reason.FUTURE_HEIGHT
    ]


def _tip_after(h, block):
    from mpc_ledger.consensus import tip_after

    return tip_after(pb.ChainTip(block_id=bytes(32)), block, block_id(block.header))


def test_gossip_repeats_the_round_without_new_signatures(h4) -> None:
    core, _ = h4.core("v0")
    block = h4.block()
    core.receive(h4.proposal("v1", block))
    core.receive(h4.vote("v1", PREVOTE, block))
    ready = core.gossip()
    assert ready.persist is None
    kinds = sorted(m.WhichOneof("kind") for m in ready.messages)
    assert kinds == ["proposal", "vote", "vote"]
    assert max_faulty(4) == 1
