"""Commit certificates and misbehaviour evidence, checkable by anyone offline.

A block is final when a quorum (n - f) of distinct validators precommitted
its id in one round. The certificate keeps just the signer ids and their
signatures: each precommit body is rebuilt from (chain id, height, round,
block id, signer id), so the certificate cannot claim one block while its
signatures cover another. ``verify_certificate`` needs only the genesis
validator set and chain id, which is what a catching-up node and an auditor
have.
"""

from __future__ import annotations

from collections.abc import Iterable

from mpc_ledger.consensus.messages import (
    Reason,
    Rejection,
    block_id,
    proposal_signature_ok,
    vote_signature_ok,
)
from mpc_ledger.consensus.validators import Validator, ValidatorSet
from mpc_ledger.identity.signing import unknown_field_path
from mpc_ledger.merkle import merkle_root
from mpc_ledger.proto.v1 import consensus_pb2 as pb

__all__ = ["make_certificate", "precommit_body", "verify_certificate", "verify_evidence"]


def precommit_body(
    chain_id: bytes, height: int, round_: int, block_id_: bytes, validator_id: str
) -> pb.VoteBody:
    return pb.VoteBody(
        chain_id=chain_id,
        step=pb.STEP_PRECOMMIT,
        height=height,
        round=round_,
        block_id=block_id_,
        validator_id=validator_id,
    )


def make_certificate(precommits: Iterable[pb.Vote]) -> pb.Certificate:
    """A certificate from precommits for one (height, round, block id), sorted by signer."""
    votes = sorted(precommits, key=lambda vote: vote.body.validator_id)
    if not votes:
        raise ValueError("a certificate needs at least one precommit")
    first = votes[0].body
    if any(
        (v.body.height, v.body.round, v.body.block_id)
        != (first.height, first.round, first.block_id)
        for v in votes
    ):
        raise ValueError("precommits of a certificate must agree on height, round and block")
    return pb.Certificate(
        height=first.height,
        round=first.round,
        block_id=first.block_id,
        signatures=[
            pb.CommitSignature(validator_id=v.body.validator_id, signature=v.signature)
            for v in votes
        ],
    )


def _as_set(validators: ValidatorSet | Iterable[Validator | tuple[str, bytes]]) -> ValidatorSet:
    return validators if isinstance(validators, ValidatorSet) else ValidatorSet(validators)


def verify_certificate(
    validators: ValidatorSet | Iterable[Validator | tuple[str, bytes]],
    chain_id: bytes,
    block: pb.Block,
    certificate: pb.Certificate,
) -> Rejection | None:
    """None when ``certificate`` proves ``block`` final on ``chain_id``, else why not."""
    members = _as_set(validators)
    problem = _unknown_fields(block, certificate)
    if problem is None:
        problem = _check_certified_block(members, block, certificate)
    if problem is None:
        problem = _check_signers(members, chain_id, certificate)
    return None if problem is None else Rejection(Reason.BAD_CERTIFICATE, problem)


def _unknown_fields(block: pb.Block, certificate: pb.Certificate) -> str | None:
    # A block is stored and served to others as received: bytes its schema
    # does not know are outside the header hash and the precommits.
    for name, message in (("block", block), ("certificate", certificate)):
        unknown = unknown_field_path(message, name)
        if unknown is not None:
            return f"unknown field at {unknown}"
    return None


def _check_certified_block(
    members: ValidatorSet, block: pb.Block, certificate: pb.Certificate
) -> str | None:
    header = block.header
    if certificate.height != header.height:
        return f"certificate height {certificate.height} is not block height {header.height}"
    if certificate.block_id != block_id(header):
        return "certificate block id is not the block header's hash"
    if header.validator_set_hash != members.hash:
        return "block names another validator set"
    if header.records_count != len(block.records):
        return "records_count differs from the number of records"
    if header.records_root != merkle_root(block.records):
        return "records do not match the header's records root"
    return None


def _check_signers(
    members: ValidatorSet, chain_id: bytes, certificate: pb.Certificate
) -> str | None:
    seen: set[str] = set()
    for entry in certificate.signatures:
        signer = entry.validator_id
        if signer in seen:
            return f"duplicate signer {signer!r}"
        seen.add(signer)
        public_key = members.public_key(signer)
        if public_key is None:
            return f"signer {signer!r} is not a validator"
        body = precommit_body(
            chain_id, certificate.height, certificate.round, certificate.block_id, signer
        )
        if not vote_signature_ok(
            public_key, chain_id, pb.Vote(body=body, signature=entry.signature)
        ):
            return f"precommit signature of {signer!r} does not verify"
    if len(seen) < members.quorum:
        return f"{len(seen)} distinct signers, a quorum is {members.quorum}"
    return None


def verify_evidence(
    validators: ValidatorSet | Iterable[Validator | tuple[str, bytes]],
    chain_id: bytes,
    evidence: pb.Evidence,
) -> Rejection | None:
    """None when ``evidence`` proves a validator signed two conflicting messages."""
    members = _as_set(validators)
    kind = evidence.WhichOneof("kind")
    if kind == "duplicate_vote":
        problem = _check_vote_pair(members, chain_id, evidence.duplicate_vote)
    elif kind == "duplicate_proposal":
        problem = _check_proposal_pair(members, chain_id, evidence.duplicate_proposal)
    else:
        problem = "evidence of no known kind"
    return None if problem is None else Rejection(Reason.MALFORMED, problem)


def _check_vote_pair(
    members: ValidatorSet, chain_id: bytes, pair: pb.DuplicateVoteEvidence
) -> str | None:
    a, b = pair.first.body, pair.second.body
    if (a.validator_id, a.step, a.height, a.round) != (b.validator_id, b.step, b.height, b.round):
        return "votes are not for one validator, step, height and round"
    if a.block_id == b.block_id:
        return "votes do not conflict"
    public_key = members.public_key(a.validator_id)
    if public_key is None:
        return f"{a.validator_id!r} is not a validator"
    if a.chain_id != chain_id or b.chain_id != chain_id:
        return "votes are for another chain"
    for vote in (pair.first, pair.second):
        if not vote_signature_ok(public_key, chain_id, vote):
            return "a vote signature does not verify"
    return None


def _check_proposal_pair(
    members: ValidatorSet, chain_id: bytes, pair: pb.DuplicateProposalEvidence
) -> str | None:
    a, b = pair.first_body, pair.second_body
    if (a.proposer_id, a.height, a.round) != (b.proposer_id, b.height, b.round):
        return "proposals are not for one proposer, height and round"
    if a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True):
        return "proposals do not conflict"
    public_key = members.public_key(a.proposer_id)
    if public_key is None:
        return f"{a.proposer_id!r} is not a validator"
    if a.chain_id != chain_id or b.chain_id != chain_id:
        return "proposals are for another chain"
    if not proposal_signature_ok(public_key, chain_id, a, pair.first_signature):
        return "first proposal signature does not verify"
    if not proposal_signature_ok(public_key, chain_id, b, pair.second_signature):
        return "second proposal signature does not verify"
    return None
