"""The signing guard: never two different signatures for one (height, round, step).

Tendermint's safety proof assumes an honest validator signs at most one value
per (height, round, step). A crash must not break that: the guard remembers
the last message it signed (the *high-water mark*), the core puts it in the
state the caller persists, and the caller writes that state durably before the
signature leaves the process. A core rebuilt from the persisted state gets the
mark back, so after a restart it

- signs nothing at a (height, round, step) below the mark,
- at the mark itself, signs only the identical body again (and returns the
  identical signed message), and
- signs freely above the mark.

Proposals order before prevotes before precommits within a round.
"""

from __future__ import annotations

from mpc_ledger.consensus.messages import (
    Reason,
    Rejection,
    sign_proposal_body,
    sign_vote_body,
)
from mpc_ledger.identity.signing import Signer
from mpc_ledger.proto.v1 import consensus_pb2 as pb

__all__ = ["SigningGuard", "signed_position"]

Position = tuple[int, int, int]


def signed_position(message: pb.ConsensusMessage) -> Position:
    """(height, round, step) of a signed message; propose < prevote < precommit."""
    if message.WhichOneof("kind") == "proposal":
        body = message.proposal.body
        return (body.height, body.round, pb.STEP_PROPOSE)
    vote = message.vote.body
    return (vote.height, vote.round, vote.step)


def _signed_body(message: pb.ConsensusMessage) -> bytes:
    if message.WhichOneof("kind") == "proposal":
        return message.proposal.body.SerializeToString(deterministic=True)
    return message.vote.body.SerializeToString(deterministic=True)


class SigningGuard:
    """Signs consensus messages for one validator, enforcing the high-water mark."""

    __slots__ = ("_last_signed", "_signer", "signed_count")

    def __init__(self, signer: Signer, last_signed: pb.ConsensusMessage | None = None) -> None:
        self._signer = signer
        # How many new signatures this guard made (a cheap "did the mark move").
        self.signed_count = 0
        self._last_signed: pb.ConsensusMessage | None = None
        if last_signed is not None and last_signed.WhichOneof("kind") is not None:
            self._last_signed = pb.ConsensusMessage()
            self._last_signed.CopyFrom(last_signed)

    @property
    def last_signed(self) -> pb.ConsensusMessage | None:
        """The high-water mark (a copy): persist it before sending what was signed."""
        if self._last_signed is None:
            return None
        copy = pb.ConsensusMessage()
        copy.CopyFrom(self._last_signed)
        return copy

    def sign_vote(self, body: pb.VoteBody) -> pb.Vote | Rejection:
        unsigned = pb.ConsensusMessage(vote=pb.Vote(body=body))
        repeat = self._admit(unsigned)
        if isinstance(repeat, Rejection):
            return repeat
        if repeat is not None:
            return repeat.vote
        vote = pb.Vote(body=body, signature=sign_vote_body(self._signer, body))
        self._last_signed = pb.ConsensusMessage(vote=vote)
        self.signed_count += 1
        return vote

    def sign_proposal(self, body: pb.ProposalBody, block: pb.Block) -> pb.Proposal | Rejection:
        unsigned = pb.ConsensusMessage(proposal=pb.Proposal(body=body))
        repeat = self._admit(unsigned)
        if isinstance(repeat, Rejection):
            return repeat
        if repeat is not None:
            return repeat.proposal
        signature = sign_proposal_body(self._signer, body)
        proposal = pb.Proposal(body=body, signature=signature, block=block)
        self._last_signed = pb.ConsensusMessage(proposal=proposal)
        self.signed_count += 1
        return proposal

    def _admit(self, unsigned: pb.ConsensusMessage) -> pb.ConsensusMessage | Rejection | None:
        """None: sign it. A message: the identical one signed before. A rejection: refuse."""
        last = self._last_signed
        if last is None:
            return None
        position, last_position = signed_position(unsigned), signed_position(last)
        if position > last_position:
            return None
        if position == last_position and _signed_body(unsigned) == _signed_body(last):
            return self.last_signed
        return Rejection(
            Reason.SIGNING_REFUSED,
            f"already signed at {last_position}; refusing a different message at {position}",
        )
