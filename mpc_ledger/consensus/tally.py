"""Per-height bookkeeping: the proposals and votes a validator holds, by round.

Counts are kept per block id (``b""`` is nil): the number of distinct
validators that signed a vote for that id, so the rules of Algorithm 1 read as
"a quorum of prevotes for id(v)" without rescanning. A validator that signs
two different votes for one (round, step) is Byzantine (the core keeps the
pair as evidence) and may be counted for both ids, as the paper counts
messages: quorum intersection still holds, because two quorums share an
honest validator, and honest validators sign one vote per step. Counting the
second vote matters for liveness: a node that first heard the "wrong" half of
an equivocation must still be able to see a polka the others saw. The core
bounds how many such votes it keeps. The "for the first time" rules of the
paper keep their once-per-round flags here too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from mpc_ledger.proto.v1 import consensus_pb2 as pb

__all__ = ["NIL", "HeightTally", "RoundTally"]

NIL = b""


@dataclass(slots=True)
class RoundTally:
    # validator id -> block id -> that validator's signed vote
    prevotes: dict[str, dict[bytes, pb.Vote]] = field(default_factory=dict)
    precommits: dict[str, dict[bytes, pb.Vote]] = field(default_factory=dict)
    prevote_count: Counter[bytes] = field(default_factory=Counter)
    precommit_count: Counter[bytes] = field(default_factory=Counter)
    # Block id -> proposal from the round's proposer, in arrival order.
    proposals: dict[bytes, pb.Proposal] = field(default_factory=dict)
    senders: set[str] = field(default_factory=set)
    prevote_timeout_scheduled: bool = False
    precommit_timeout_scheduled: bool = False
    polka_handled: bool = False

    def votes(self, step: pb.Step) -> dict[str, dict[bytes, pb.Vote]]:
        return self.prevotes if step == pb.STEP_PREVOTE else self.precommits

    def has_vote(self, body: pb.VoteBody) -> bool:
        return body.block_id in self.votes(body.step).get(body.validator_id, {})

    def add_vote(self, vote: pb.Vote) -> None:
        """Count ``vote``; the caller has checked that it is not already held."""
        body = vote.body
        self.votes(body.step).setdefault(body.validator_id, {})[body.block_id] = vote
        counts = self.prevote_count if body.step == pb.STEP_PREVOTE else self.precommit_count
        counts[body.block_id] += 1
        self.senders.add(body.validator_id)

    def add_proposal(self, proposal: pb.Proposal) -> None:
        self.proposals[proposal.body.block_id] = proposal
        self.senders.add(proposal.body.proposer_id)

    def precommits_for(self, block_id: bytes) -> list[pb.Vote]:
        return [by_id[block_id] for by_id in self.precommits.values() if block_id in by_id]

    def all_votes(self, step: pb.Step) -> list[pb.Vote]:
        return [vote for by_id in self.votes(step).values() for vote in by_id.values()]


@dataclass(slots=True)
class HeightTally:
    rounds: dict[int, RoundTally] = field(default_factory=dict)

    def at(self, round_: int) -> RoundTally:
        tally = self.rounds.get(round_)
        if tally is None:
            tally = self.rounds[round_] = RoundTally()
        return tally

    def peek(self, round_: int) -> RoundTally | None:
        return self.rounds.get(round_)
