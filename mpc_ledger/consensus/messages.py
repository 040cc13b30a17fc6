"""Signed consensus messages: what is signed, how it is checked, why it is refused.

A proposal signs a :class:`ProposalBody` (chain id, height, round, pol_round,
block id, proposer id); a vote signs a :class:`VoteBody` (chain id, step,
height, round, block id or empty for nil, validator id). Both are signed over
``signing_bytes(purpose, chain_id, body)`` from :mod:`mpc_ledger.identity.signing`,
so a prevote cannot pass for a precommit, nor a vote for another consortium.
The chain id is also *inside* the body so that a message meant for another
chain is refused as such rather than as a bad signature.

Every check of bytes from a peer answers a :class:`Rejection` (a
:class:`Reason` and a detail for the log) or None; nothing here raises on
peer input.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from google.protobuf.message import DecodeError

from mpc_ledger.identity.signing import (
    SIGNATURE_SIZE_BYTES,
    Purpose,
    Signer,
    unknown_field_path,
    verify_signature,
)
from mpc_ledger.proto.v1 import consensus_pb2 as pb

__all__ = [
    "BLOCK_ID_SIZE_BYTES",
    "Reason",
    "Rejection",
    "block_id",
    "check_proposal_shape",
    "check_vote_shape",
    "parse_message",
    "proposal_signature_ok",
    "sign_proposal_body",
    "sign_vote_body",
    "vote_purpose",
    "vote_signature_ok",
]

BLOCK_ID_SIZE_BYTES = 32


class Reason(StrEnum):
    """Why input from a peer (or a caller) was refused or found wanting."""

    MALFORMED = "malformed"
    WRONG_CHAIN = "wrong-chain-id"
    NOT_A_VALIDATOR = "not-a-validator"
    PAST_HEIGHT = "past-height"
    FUTURE_HEIGHT = "future-height"
    ROUND_TOO_FAR = "round-too-far-ahead"
    NOT_PROPOSER = "not-the-round-proposer"
    BLOCK_ID_MISMATCH = "block-id-mismatch"
    BAD_SIGNATURE = "bad-signature"
    DUPLICATE = "duplicate"
    CONFLICTING_VOTE = "conflicting-vote"
    CONFLICTING_PROPOSAL = "conflicting-proposal"
    TOO_MANY_PROPOSALS = "too-many-proposals"
    INVALID_BLOCK = "invalid-block"
    BAD_CERTIFICATE = "bad-certificate"
    STALE_REQUEST = "stale-request"
    SIGNING_REFUSED = "signing-refused"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else str(self.reason)


def block_id(header: pb.BlockHeader) -> bytes:
    """SHA-256 of the deterministic encoding of the header."""
    return hashlib.sha256(header.SerializeToString(deterministic=True)).digest()


def vote_purpose(step: pb.Step) -> Purpose:
    return Purpose.PREVOTE if step == pb.STEP_PREVOTE else Purpose.PRECOMMIT


def sign_vote_body(signer: Signer, body: pb.VoteBody) -> bytes:
    return signer.sign(vote_purpose(body.step), body)


def sign_proposal_body(signer: Signer, body: pb.ProposalBody) -> bytes:
    return signer.sign(Purpose.PROPOSAL, body)


def vote_signature_ok(public_key: bytes, chain_id: bytes, vote: pb.Vote) -> bool:
    return verify_signature(
        public_key, vote_purpose(vote.body.step), chain_id, vote.body, vote.signature
    )


def proposal_signature_ok(
    public_key: bytes, chain_id: bytes, body: pb.ProposalBody, signature: bytes
) -> bool:
    return verify_signature(public_key, Purpose.PROPOSAL, chain_id, body, signature)


def parse_message(data: bytes | pb.ConsensusMessage) -> pb.ConsensusMessage | Rejection:
    """Decode a message from the wire (a message object is checked the same way)."""
    if isinstance(data, pb.ConsensusMessage):
        message = data
    else:
        message = pb.ConsensusMessage()
        try:
            message.ParseFromString(data)
        except (DecodeError, ValueError, TypeError) as error:
            return Rejection(Reason.MALFORMED, f"undecodable consensus message: {error}")
    if message.WhichOneof("kind") is None:
        return Rejection(Reason.MALFORMED, "consensus message carries neither proposal nor vote")
    # Unsigned bytes beside a signed body (or inside a block) would be stored
    # and relayed as if they were part of what was agreed.
    unknown = unknown_field_path(message)
    if unknown is not None:
        return Rejection(Reason.MALFORMED, f"unknown field at {unknown}")
    return message


def _block_id_ok(value: bytes, *, nil_allowed: bool) -> bool:
    return len(value) == BLOCK_ID_SIZE_BYTES or (nil_allowed and not value)


def check_vote_shape(vote: pb.Vote, chain_id: bytes) -> Rejection | None:
    """Field-level checks that need no state (chain id included)."""
    body = vote.body
    if not vote.HasField("body"):
        return Rejection(Reason.MALFORMED, "vote without body")
    if body.step not in (pb.STEP_PREVOTE, pb.STEP_PRECOMMIT):
        return Rejection(
            Reason.MALFORMED, f"vote step {body.step} is neither prevote nor precommit"
        )
    if not _block_id_ok(body.block_id, nil_allowed=True):
        return Rejection(Reason.MALFORMED, "vote block id is neither 32 bytes nor empty")
    if len(vote.signature) != SIGNATURE_SIZE_BYTES:
        return Rejection(Reason.MALFORMED, "vote signature is not 64 bytes")
    if body.height < 1:
        return Rejection(Reason.MALFORMED, "vote height 0")
    if body.chain_id != chain_id:
        return Rejection(Reason.WRONG_CHAIN, f"vote for chain {body.chain_id.hex()[:16]}")
    return None


def check_proposal_shape(proposal: pb.Proposal, chain_id: bytes) -> Rejection | None:
    """Field-level checks that need no state (chain id and block id included)."""
    body = proposal.body
    if not proposal.HasField("body") or not proposal.HasField("block"):
        return Rejection(Reason.MALFORMED, "proposal without body or block")
    if not _block_id_ok(body.block_id, nil_allowed=False):
        return Rejection(Reason.MALFORMED, "proposal block id is not 32 bytes")
    if not -1 <= body.pol_round < body.round:
        return Rejection(Reason.MALFORMED, f"pol_round {body.pol_round} not in [-1, round)")
    if len(proposal.signature) != SIGNATURE_SIZE_BYTES:
        return Rejection(Reason.MALFORMED, "proposal signature is not 64 bytes")
    if body.height < 1:
        return Rejection(Reason.MALFORMED, "proposal height 0")
    if body.chain_id != chain_id:
        return Rejection(Reason.WRONG_CHAIN, f"proposal for chain {body.chain_id.hex()[:16]}")
    if block_id(proposal.block.header) != body.block_id:
        return Rejection(Reason.BLOCK_ID_MISMATCH, "proposal block id is not its header's hash")
    return None
