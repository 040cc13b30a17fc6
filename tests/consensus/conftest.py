"""A small harness for driving one ConsensusCore by hand with real Ed25519 signatures.

Peers are played by the test: the harness signs their proposals and votes with
their own keys, so every message the core sees passes the same checks a real
peer's would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import nacl.signing
import pytest

from mpc_ledger.consensus import (
    ConsensusConfig,
    ConsensusCore,
    Ready,
    TimeoutConfig,
    ValidatorSet,
    block_id,
    build_block,
    genesis_tip,
    make_certificate,
)
from mpc_ledger.identity.signing import Purpose, Signer
from mpc_ledger.proto.v1 import consensus_pb2 as pb

CHAIN_ID = b"consensus-test-chain"
TIMEOUTS = TimeoutConfig(
    propose_ms=100,
    propose_delta_ms=10,
    prevote_ms=50,
    prevote_delta_ms=5,
    precommit_ms=60,
    precommit_delta_ms=6,
)


def accept_all(height: int, records: Sequence[bytes]) -> str | None:
    return None


def no_poison(height: int, records: Sequence[bytes]) -> str | None:
    return "poisoned record" if b"poison" in records else None


class Harness:
    def __init__(self, n: int, chain_id: bytes = CHAIN_ID) -> None:
        self.chain_id = chain_id
        self.ids = [f"v{i}" for i in range(n)]
        self.keys = {
            vid: nacl.signing.SigningKey(bytes([i + 1]) * 32) for i, vid in enumerate(self.ids)
        }
        self.signers = {vid: Signer(key, chain_id) for vid, key in self.keys.items()}
        self.validators = ValidatorSet((vid, s.public_key) for vid, s in self.signers.items())
        self.config = ConsensusConfig(chain_id, self.validators, timeouts=TIMEOUTS)

    def core(
        self,
        vid: str,
        state: pb.ConsensusState | None = None,
        records_validator: Callable[[int, Sequence[bytes]], str | None] = no_poison,
        start: bool = True,
    ) -> tuple[ConsensusCore, Ready]:
        core = ConsensusCore(self.config, vid, self.signers[vid], records_validator, state)
        return core, (core.start() if start else Ready())

    def block(
        self,
        records: Sequence[bytes] = (),
        proposer: str = "v1",
        time_ms: int = 1000,
        tip: pb.ChainTip | None = None,
    ) -> pb.Block:
        return build_block(tip or genesis_tip(), self.validators, proposer, records, time_ms)

    def proposal(
        self,
        proposer: str,
        block: pb.Block,
        height: int = 1,
        round_: int = 0,
        pol_round: int = -1,
        signer: Signer | None = None,
    ) -> pb.ConsensusMessage:
        body = pb.ProposalBody(
            chain_id=self.chain_id,
            height=height,
            round=round_,
            pol_round=pol_round,
            block_id=block_id(block.header),
            proposer_id=proposer,
        )
        signature = (signer or self.signers[proposer]).sign(Purpose.PROPOSAL, body)
        return pb.ConsensusMessage(
            proposal=pb.Proposal(body=body, signature=signature, block=block)
        )

    def vote(
        self,
        voter: str,
        step: pb.Step,
        block: pb.Block | bytes | None,
        height: int = 1,
        round_: int = 0,
        signer: Signer | None = None,
        chain_id: bytes | None = None,
    ) -> pb.ConsensusMessage:
        voted = block_id(block.header) if isinstance(block, pb.Block) else (block or b"")
        body = pb.VoteBody(
            chain_id=self.chain_id if chain_id is None else chain_id,
            step=step,
            height=height,
            round=round_,
            block_id=voted,
            validator_id=voter,
        )
        purpose = Purpose.PREVOTE if step == pb.STEP_PREVOTE else Purpose.PRECOMMIT
        signature = (signer or self.signers[voter]).sign(purpose, body)
        return pb.ConsensusMessage(vote=pb.Vote(body=body, signature=signature))

    def certificate(
        self, block: pb.Block, voters: Sequence[str], round_: int = 0
    ) -> pb.Certificate:
        votes = [
            self.vote(v, pb.STEP_PRECOMMIT, block, block.header.height, round_).vote for v in voters
        ]
        return make_certificate(votes)

    @staticmethod
    def own_votes(ready: Ready, step: pb.Step) -> list[pb.Vote]:
        return [
            m.vote
            for m in ready.messages
            if m.WhichOneof("kind") == "vote" and m.vote.body.step == step
        ]

    @staticmethod
    def reasons(ready: Ready) -> list[str]:
        return [str(r.reason) for r in ready.rejections]

    accept_all = staticmethod(accept_all)


@pytest.fixture
def h4() -> Harness:
    return Harness(4)


@pytest.fixture
def h5() -> Harness:
    return Harness(5)


@pytest.fixture
def make_harness() -> Callable[..., Harness]:
    return Harness
