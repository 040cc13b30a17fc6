"""Byzantine behaviour for simulated validators.

A Byzantine node runs an honest core (so it takes part and knows the current
height) and passes everything it sends through :class:`Mischief`, which
holds its raw signing key and bypasses the signing guard. Behaviours:

- ``equivocate``: each proposal goes out in two versions, one to each half of
  the peers;
- ``double_vote``: each vote goes out for two different block ids;
- ``invalid_block``: proposals carry a record the record rule refuses;
- ``bad_signature``: copies of votes with random signatures;
- ``replay``: old messages from other heights and rounds again, and votes
  signed for another chain id;
- ``intruder``: messages from a key outside the validator set, messages
  claiming an honest id, proposals out of turn, undecodable bytes;
- ``forge_sync``: catch-up blocks with certificates that do not hold.

At most f validators are Byzantine in any scenario.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import nacl.signing

from mpc_ledger.consensus import ValidatorSet, block_id, build_block, make_certificate
from mpc_ledger.identity.signing import Purpose, Signer
from mpc_ledger.proto.v1 import consensus_pb2 as pb
from mpc_ledger.testing._sim_network import Wire

__all__ = ["BEHAVIOURS", "Mischief"]

BEHAVIOURS = (
    "equivocate",
    "double_vote",
    "invalid_block",
    "bad_signature",
    "replay",
    "intruder",
    "forge_sync",
)
_REPLAY_MEMORY = 64

Outgoing = list[tuple[int, Wire]]


def _wire(message: pb.ConsensusMessage) -> Wire:
    return ("consensus", message.SerializeToString(deterministic=True))


class Mischief:
    def __init__(
        self,
        rng: random.Random,
        behaviours: frozenset[str],
        signer: Signer,
        validator_id: str,
        validators: ValidatorSet,
        invalid_record: Callable[[], bytes],
    ) -> None:
        self._rng = rng
        self.behaviours = behaviours
        self._signer = signer
        self._id = validator_id
        self._validators = validators
        self._invalid_record = invalid_record
        self._other_chain = Signer(nacl.signing.SigningKey(rng.randbytes(32)), b"another-chain")
        self._intruder = Signer(nacl.signing.SigningKey(rng.randbytes(32)), signer.chain_id)
        self._heard: list[bytes] = []

    # -- what the honest core sends, distorted -------------------------------------------

    def outgoing(
        self, message: pb.ConsensusMessage, peers: list[int], tip: pb.ChainTip
    ) -> Outgoing:
        """Sends for one message the node's core wants to broadcast."""
        kind = message.WhichOneof("kind")
        signer_id = (
            message.proposal.body.proposer_id
            if kind == "proposal"
            else message.vote.body.validator_id
        )
        if signer_id != self._id:  # relayed gossip goes out unchanged
            return [(peer, _wire(message)) for peer in peers]
        if kind == "proposal":
            return self._proposal(message.proposal, peers, tip)
        return self._vote(message.vote, peers)

    def _split(self, peers: list[int]) -> tuple[list[int], list[int]]:
        shuffled = list(peers)
        self._rng.shuffle(shuffled)
        half = len(shuffled) // 2
        return shuffled[:half], shuffled[half:]

    def _proposal(self, proposal: pb.Proposal, peers: list[int], tip: pb.ChainTip) -> Outgoing:
        if "invalid_block" in self.behaviours and self._rng.random() < 0.5:
            records = [*proposal.block.records, self._invalid_record()]
            block = build_block(
                tip, self._validators, self._id, records, proposal.block.header.time_ms
            )
            proposal = self._resign(proposal, block)
        if "equivocate" not in self.behaviours:
            return [(peer, _wire(pb.ConsensusMessage(proposal=proposal))) for peer in peers]
        other_block = pb.Block()
        other_block.CopyFrom(proposal.block)
        other_block.header.time_ms += 1 + self._rng.randrange(1000)
        other = self._resign(proposal, other_block)
        first, second = self._split(peers)
        return [(p, _wire(pb.ConsensusMessage(proposal=proposal))) for p in first] + [
            (p, _wire(pb.ConsensusMessage(proposal=other))) for p in second
        ]

    def _resign(self, proposal: pb.Proposal, block: pb.Block) -> pb.Proposal:
        body = pb.ProposalBody()
        body.CopyFrom(proposal.body)
        body.block_id = block_id(block.header)
        return pb.Proposal(
            body=body, signature=self._signer.sign(Purpose.PROPOSAL, body), block=block
        )

    def _vote(self, vote: pb.Vote, peers: list[int]) -> Outgoing:
        sends: Outgoing = []
        if "double_vote" in self.behaviours:
            first, second = self._split(peers)
            conflicting = self._sign_vote_for(vote.body, self._conflicting_id(vote.body.block_id))
            sends += [(p, _wire(pb.ConsensusMessage(vote=vote))) for p in first]
            sends += [(p, _wire(pb.ConsensusMessage(vote=conflicting))) for p in second]
        else:
            sends += [(p, _wire(pb.ConsensusMessage(vote=vote))) for p in peers]
        if "bad_signature" in self.behaviours:
            forged = pb.Vote()
            forged.CopyFrom(vote)
            forged.body.block_id = self._rng.randbytes(32)
            forged.signature = self._rng.randbytes(64)
            sends.append((self._rng.choice(peers), _wire(pb.ConsensusMessage(vote=forged))))
        return sends

    def _conflicting_id(self, voted: bytes) -> bytes:
        return b"" if voted and self._rng.random() < 0.5 else self._rng.randbytes(32)

    def _sign_vote_for(
        self, body: pb.VoteBody, voted: bytes, signer: Signer | None = None
    ) -> pb.Vote:
        other = pb.VoteBody()
        other.CopyFrom(body)
        other.block_id = voted
        signer = signer or self._signer
        purpose = Purpose.PREVOTE if other.step == pb.STEP_PREVOTE else Purpose.PRECOMMIT
        return pb.Vote(body=other, signature=signer.sign(purpose, other))

    # -- spontaneous mischief on the node's gossip tick ------------------------------------

    def remember(self, wire: Wire) -> None:
        if wire[0] == "consensus" and "replay" in self.behaviours:
            if len(self._heard) >= _REPLAY_MEMORY:
                self._heard[self._rng.randrange(_REPLAY_MEMORY)] = wire[1]
            else:
                self._heard.append(wire[1])

    def on_tick(
        self,
        peers: list[int],
        height: int,
        round_: int,
        tip: pb.ChainTip,
        recent_commit: pb.CommittedBlock | None,
    ) -> Outgoing:
        sends: Outgoing = []
        target = self._rng.choice(peers)
        vote_body = pb.VoteBody(
            chain_id=self._signer.chain_id,
            step=pb.STEP_PREVOTE,
            height=height,
            round=round_,
            block_id=self._rng.randbytes(32),
            validator_id=self._id,
        )
        if "replay" in self.behaviours:
            sends += self._replays(peers, vote_body)
        if "intruder" in self.behaviours:
            sends += self._intrusions(target, vote_body, tip)
        if "forge_sync" in self.behaviours and recent_commit is not None:
            sends.append((target, ("sync", self._forge(recent_commit, tip))))
        return sends

    def _replays(self, peers: list[int], vote_body: pb.VoteBody) -> Outgoing:
        sends: Outgoing = []
        for _ in range(min(2, len(self._heard))):
            sends.append((self._rng.choice(peers), ("consensus", self._rng.choice(self._heard))))
        wrong_chain = pb.VoteBody()
        wrong_chain.CopyFrom(vote_body)
        wrong_chain.chain_id = self._other_chain.chain_id
        vote = pb.Vote(
            body=wrong_chain, signature=self._other_chain.sign(Purpose.PREVOTE, wrong_chain)
        )
        sends.append((self._rng.choice(peers), _wire(pb.ConsensusMessage(vote=vote))))
        # The right chain id in the body, signed for another chain: a bad signature.
        crossed = pb.Vote(
            body=vote_body, signature=self._other_chain.sign(Purpose.PREVOTE, vote_body)
        )
        sends.append((self._rng.choice(peers), _wire(pb.ConsensusMessage(vote=crossed))))
        return sends

    def _intrusions(self, target: int, vote_body: pb.VoteBody, tip: pb.ChainTip) -> Outgoing:
        outsider = pb.VoteBody()
        outsider.CopyFrom(vote_body)
        outsider.validator_id = "intruder"
        impostor = pb.VoteBody()
        impostor.CopyFrom(vote_body)
        impostor.validator_id = self._rng.choice(self._validators.ids)
        messages = [
            self._sign_vote_for(outsider, outsider.block_id, self._intruder),
            self._sign_vote_for(impostor, impostor.block_id, self._intruder),
        ]
        sends: Outgoing = [(target, _wire(pb.ConsensusMessage(vote=v))) for v in messages]
        sends.append(
            (target, _wire(pb.ConsensusMessage(proposal=self._out_of_turn(vote_body, tip))))
        )
        sends.append((target, ("consensus", self._rng.randbytes(self._rng.randrange(1, 64)))))
        return sends

    def _out_of_turn(self, vote_body: pb.VoteBody, tip: pb.ChainTip) -> pb.Proposal:
        """A proposal for a round in which this validator is not the proposer."""
        height, round_ = vote_body.height, vote_body.round
        while self._validators.proposer(height, round_) == self._id:
            round_ += 1
        block = build_block(tip, self._validators, self._id, [], 0)
        body = pb.ProposalBody(
            chain_id=self._signer.chain_id,
            height=height,
            round=round_,
            pol_round=-1,
            block_id=block_id(block.header),
            proposer_id=self._id,
        )
        return pb.Proposal(
            body=body, signature=self._signer.sign(Purpose.PROPOSAL, body), block=block
        )

    def _forge(self, recent: pb.CommittedBlock, tip: pb.ChainTip) -> bytes:
        """A block for the next height certified by this validator alone, or a tampered one."""
        if self._rng.random() < 0.5:
            block = build_block(tip, self._validators, self._id, [], 0)
            body = pb.VoteBody(
                chain_id=self._signer.chain_id,
                step=pb.STEP_PRECOMMIT,
                height=block.header.height,
                round=0,
                block_id=block_id(block.header),
                validator_id=self._id,
            )
            vote = pb.Vote(body=body, signature=self._signer.sign(Purpose.PRECOMMIT, body))
            forged = pb.CommittedBlock(block=block, certificate=make_certificate([vote]))
        else:
            forged = pb.CommittedBlock()
            forged.CopyFrom(recent)
            forged.block.records.append(self._invalid_record())
        return forged.SerializeToString(deterministic=True)
