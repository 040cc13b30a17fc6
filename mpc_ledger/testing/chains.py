"""Certified chains built in-process with real keys, for tests and benchmarks of the verifier.

:class:`ChainBuilder` plays a whole validator set: it builds each block on its
tip exactly as a proposer does (:func:`mpc_ledger.consensus.build_block`) and
certifies it with real Ed25519 precommits of the validators it is told to use
(a quorum by default), so every block passes the same checks as one a live
consortium committed. Because it holds every key it can also certify what an
honest consortium never would (a block with a forged record, a second block at
a height): that is how tests build exports that must fail in one precise way.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import nacl.signing

from mpc_ledger.consensus import (
    ValidatorSet,
    block_id,
    build_block,
    genesis_tip,
    make_certificate,
    precommit_body,
    tip_after,
)
from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.identity.signing import Purpose, Signer
from mpc_ledger.ledger.records import make_record
from mpc_ledger.proto.v1 import consensus_pb2, ledger_pb2

__all__ = ["ChainBuilder"]


class ChainBuilder:
    """A chain of certified blocks over ``genesis``; see the module docstring."""

    def __init__(
        self,
        genesis: Genesis,
        member_keys: Mapping[str, nacl.signing.SigningKey],
        *,
        start_time_ms: int = 1_700_000_000_000,
    ) -> None:
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.signers = {m: Signer(key, self.chain_id) for m, key in member_keys.items()}
        self.validators = ValidatorSet((m.id, m.signing_public_key) for m in genesis.validators)
        self.user_signers: dict[str, Signer] = {}
        self.tip = genesis_tip()
        self.time_ms = start_time_ms
        self.blocks: list[consensus_pb2.CommittedBlock] = []
        self._nonce = itertools.count(1)

    def fork(self) -> ChainBuilder:
        """An independent copy at the same tip (to build a second chain from here)."""
        other = copy.copy(self)
        other.blocks = list(self.blocks)
        other.tip = consensus_pb2.ChainTip()
        other.tip.CopyFrom(self.tip)
        other._nonce = itertools.count(next(self._nonce) + 1_000_000)
        return other

    # -- records ---------------------------------------------------------------------------

    def signer_of(self, author: str) -> Signer:
        signer = self.signers.get(author) or self.user_signers.get(author)
        if signer is None:
            key = nacl.signing.SigningKey.generate()
            signer = self.user_signers[author] = Signer(key, self.chain_id)
        return signer

    def record(self, author: str, *, signer: Signer | None = None, **payload: Any) -> bytes:
        body = ledger_pb2.RecordBody(
            author=author, nonce=next(self._nonce), created_ms=self.time_ms, **payload
        )
        record = make_record(signer or self.signer_of(author), body)
        return record.SerializeToString(deterministic=True)

    def note(self, author: str, text: str = "note", data: bytes = b"") -> bytes:
        return self.record(author, note=ledger_pb2.Note(text=text, data=data))

    def bind(self, member: str, user_id: str, roles: Sequence[str] = ("compliance",)) -> bytes:
        binding = ledger_pb2.UserKeyBinding(
            user_id=user_id,
            public_key=self.signer_of(user_id).public_key,
            roles=list(roles),
        )
        return self.record(member, bind_user=binding)

    # -- blocks ----------------------------------------------------------------------------

    def commit(
        self,
        records: Sequence[bytes] = (),
        *,
        signers: Sequence[str] | None = None,
        step_ms: int = 1000,
    ) -> consensus_pb2.CommittedBlock:
        """Build the next block with ``records`` and certify it (by a quorum by default)."""
        height = self.tip.height + 1
        proposer = self.validators.proposer(height, 0)
        self.time_ms += step_ms
        block = build_block(self.tip, self.validators, proposer, records, self.time_ms)
        identifier = block_id(block.header)
        voters = signers if signers is not None else self.validators.ids[: self.validators.quorum]
        votes = []
        for voter in voters:
            body = precommit_body(self.chain_id, height, 0, identifier, voter)
            signature = self.signers[voter].sign(Purpose.PRECOMMIT, body)
            votes.append(consensus_pb2.Vote(body=body, signature=signature))
        committed = consensus_pb2.CommittedBlock(block=block, certificate=make_certificate(votes))
        self.tip = tip_after(self.tip, block, identifier)
        self.blocks.append(committed)
        return committed
