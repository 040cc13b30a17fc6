"""The Tendermint consensus core: inputs in, a ``Ready`` out, no I/O.

Theory of operation
-------------------
This is Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT
consensus" (2018), for one validator, as a state machine. The caller feeds it

- ``receive(message)``: a proposal or vote from a peer (bytes or protobuf),
- ``on_timeout(timeout)``: a timeout it was asked to schedule has fired,
- ``propose(request, records, time_ms)``: the records (and the wall time) for a
  block it was asked to propose,
- ``commit_certified(block, certificate)``: a block a peer says is final, for
  a node that fell behind (catch-up),
- ``gossip()``: "send again what you hold for this round" (lost messages),

and each call answers a :class:`Ready`, in the spirit of etcd raft's. The core
never reads a clock, a socket, a file or a random source; time enters only as
``time_ms`` for block headers and as the caller firing timeouts.

Rule numbers in comments are the paper's line numbers. Heights start at 1,
rounds at 0; the proposer of (h, r) is validator (h + r) mod n by sorted id;
timeouts are ``base_ms + round * delta_ms`` per step; a quorum is n - f
distinct validators with f = (n - 1) // 3; "f + 1 messages from a higher
round" means f + 1 distinct validators that sent anything for that round.

Persistence contract
--------------------
Handle every ``Ready`` in this order:

1. if ``persist`` is set, write it durably, together with ``committed`` (one
   transaction, fsynced), **before anything else**; it holds the round, step,
   locked and valid values and the signing high-water mark, i.e. whatever this
   validator just signed;
2. send ``messages`` to every other validator;
3. schedule ``timeouts`` (each fires ``on_timeout`` after ``duration_ms``);
4. apply ``committed`` blocks, store ``evidence``, log ``rejections``;
5. answer ``proposal_request`` with ``propose``.

The records validator is called for height h + 1 only in a later call than
the one that committed h, so step 4 has brought the caller's state along by
then (messages for h + 1 that arrived early are held until that next call).

To restart, build a new core from the last persisted ``ConsensusState`` and
call ``start()``. It will never sign a different message at or below the
persisted high-water mark (see :mod:`mpc_ledger.consensus.guard`), and it
remembers its lock, which Tendermint's safety needs as much as the mark.

Peer input is never trusted: every check answers a :class:`Rejection` in
``Ready.rejections``; no exception from peer data reaches the caller.

Additions to the paper (none weakens its safety argument)
---------------------------------------------------------
- The paper assumes gossip eventually delivers every message; ``gossip()``
  and ``commit_certified`` are how a caller provides that over a lossy network.
- A validator's second, different vote for one (round, step) is kept as
  evidence and may also be counted (see :mod:`.tally` for why that is safe
  and needed), within a bound.
- The polka that justifies ``validValue`` is persisted with it, so a
  restarted node can still prevote a re-proposal of its locked block.
- Line 49 finds the decided block by id among every proposal of the height:
  the id binds the header, and the header the records.
- Messages for the next height are held (bounded) and replayed at the first
  input after the commit.
- A quorum of nil precommits starts the next round at once instead of after
  ``timeoutPrecommit`` (no value can be decided in that round; starting a
  round is never a safety question). After a proposer dies, the next commit
  comes one propose timeout later, not one propose plus one precommit timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mpc_ledger.consensus.blocks import (
    BlockLimits,
    RecordsValidator,
    build_block,
    check_block,
    genesis_tip,
    tip_after,
)
from mpc_ledger.consensus.certificate import make_certificate, verify_certificate
from mpc_ledger.consensus.guard import SigningGuard, signed_position
from mpc_ledger.consensus.messages import (
    Reason,
    Rejection,
    block_id,
    check_proposal_shape,
    check_vote_shape,
    parse_message,
    proposal_signature_ok,
    vote_signature_ok,
)
from mpc_ledger.consensus.tally import NIL, HeightTally, RoundTally
from mpc_ledger.consensus.validators import ValidatorSet
from mpc_ledger.identity.signing import Signer
from mpc_ledger.proto.v1 import consensus_pb2 as pb

__all__ = [
    "ConsensusConfig",
    "ConsensusCore",
    "ProposalRequest",
    "Ready",
    "Timeout",
    "TimeoutConfig",
]

PROPOSE = pb.STEP_PROPOSE
PREVOTE = pb.STEP_PREVOTE
PRECOMMIT = pb.STEP_PRECOMMIT
# Each rule firing moves the state forward; far fewer than this fire per input.
_RULE_FIRINGS_MAX = 10_000


@dataclass(frozen=True, slots=True)
class TimeoutConfig:
    """Timeouts per step, growing linearly with the round: ``base_ms + round * delta_ms``."""

    propose_ms: int = 3000
    propose_delta_ms: int = 500
    prevote_ms: int = 1000
    prevote_delta_ms: int = 500
    precommit_ms: int = 1000
    precommit_delta_ms: int = 500

    def duration_ms(self, step: pb.Step, round_: int) -> int:
        if step == PROPOSE:
            return self.propose_ms + round_ * self.propose_delta_ms
        if step == PREVOTE:
            return self.prevote_ms + round_ * self.prevote_delta_ms
        return self.precommit_ms + round_ * self.precommit_delta_ms


@dataclass(frozen=True, slots=True)
class ConsensusConfig:
    chain_id: bytes
    validators: ValidatorSet
    timeouts: TimeoutConfig = field(default_factory=TimeoutConfig)
    limits: BlockLimits = field(default_factory=BlockLimits)
    # Messages for rounds further ahead of ours are refused (bounds memory).
    rounds_ahead_max: int = 64
    # Proposals kept per round; a second one is already equivocation.
    proposals_per_round_max: int = 2
    # Different votes counted per (validator, round, step), beyond those for nil
    # or a known block; more are evidence only.
    conflicting_votes_max: int = 2
    # Messages for the next height held until we get there (0: 4 per validator).
    next_height_buffer_max: int = 0


@dataclass(frozen=True, slots=True)
class Timeout:
    """Fire ``on_timeout(self)`` after ``duration_ms``."""

    height: int
    round: int
    step: pb.Step
    duration_ms: int


@dataclass(frozen=True, slots=True)
class ProposalRequest:
    """This validator proposes at (height, round): call ``propose`` with records."""

    height: int
    round: int


@dataclass(slots=True)
class Ready:
    """What one input asks of the caller; see the module docstring for the order."""

    persist: pb.ConsensusState | None = None
    committed: list[pb.CommittedBlock] = field(default_factory=list)
    messages: list[pb.ConsensusMessage] = field(default_factory=list)
    timeouts: list[Timeout] = field(default_factory=list)
    evidence: list[pb.Evidence] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    proposal_request: ProposalRequest | None = None

    def merge(self, later: Ready) -> None:
        """Fold a later Ready into this one (for callers that batch inputs).

        The later persisted state wins (each is a full snapshot); lists are
        concatenated in order; the later proposal request wins.
        """
        if later.persist is not None:
            self.persist = later.persist
        self.committed += later.committed
        self.messages += later.messages
        self.timeouts += later.timeouts
        self.evidence += later.evidence
        self.rejections += later.rejections
        if later.proposal_request is not None:
            self.proposal_request = later.proposal_request


class ConsensusCore:
    """One validator's Tendermint state machine (see the module docstring)."""

    def __init__(
        self,
        config: ConsensusConfig,
        validator_id: str,
        signer: Signer,
        records_validator: RecordsValidator,
        state: pb.ConsensusState | None = None,
    ) -> None:
        validators = config.validators
        if validator_id not in validators:
            raise ValueError(f"{validator_id!r} is not in the validator set")
        if validators.public_key(validator_id) != signer.public_key:
            raise ValueError(f"the signer's key is not {validator_id!r}'s")
        if signer.chain_id != config.chain_id:
            raise ValueError("the signer is bound to another chain id")
        self._config = config
        self._signer = signer
        self._validators = validators
        self._me = validator_id
        self._records_validator = records_validator
        self._buffer_max = config.next_height_buffer_max or 4 * len(validators)
        self._started = False
        self._out = Ready()
        self._replay_next: list[pb.ConsensusMessage] = []
        self._restore(state if state is not None else pb.ConsensusState())

    # -- state -------------------------------------------------------------------------

    def _restore(self, state: pb.ConsensusState) -> None:
        self._fresh = state.step == pb.STEP_UNSPECIFIED
        self._tip = pb.ChainTip()
        self._tip.CopyFrom(state.tip if state.HasField("tip") else genesis_tip())
        self._round = state.round
        self._step: pb.Step = PROPOSE if self._fresh else state.step
        last_signed = state.last_signed if state.HasField("last_signed") else None
        self._guard = SigningGuard(self._signer, last_signed)
        self._reset_height_state()
        self._locked_round = state.locked_round if state.HasField("locked_block") else -1
        self._locked_block = self._remember(state.locked_block, state.HasField("locked_block"))
        self._valid_round = state.valid_round if state.HasField("valid_block") else -1
        self._valid_block = self._remember(state.valid_block, state.HasField("valid_block"))
        if self._valid_block is not None:
            self._valid_prevotes = list(state.valid_round_prevotes)
            tally = self._tally.at(self._valid_round)
            for vote in self._valid_prevotes:  # our own disk: trusted as written
                if not tally.has_vote(vote.body):
                    tally.add_vote(vote)
        self._persisted_key = self._state_key()

    def _remember(self, block: pb.Block, present: bool) -> pb.Block | None:
        if not present:
            return None
        copy = pb.Block()
        copy.CopyFrom(block)
        self._blocks[block_id(copy.header)] = copy
        return copy

    def _reset_height_state(self) -> None:
        self._tally = HeightTally()
        self._blocks: dict[bytes, pb.Block] = {}
        self._validity: dict[bytes, Rejection | None] = {}
        self._next_height: dict[tuple[str, str, int, int], pb.ConsensusMessage] = {}
        self._locked_round = -1
        self._locked_block = None
        self._valid_round = -1
        self._valid_block = None
        self._valid_prevotes = []

    def state(self) -> pb.ConsensusState:
        """What must be persisted (a fresh copy)."""
        state = pb.ConsensusState(
            round=self._round,
            step=self._step,
            locked_round=self._locked_round,
            valid_round=self._valid_round,
        )
        state.tip.CopyFrom(self._tip)
        if self._locked_block is not None:
            state.locked_block.CopyFrom(self._locked_block)
        if self._valid_block is not None:
            state.valid_block.CopyFrom(self._valid_block)
            state.valid_round_prevotes.extend(self._valid_prevotes)
        last = self._guard.last_signed
        if last is not None:
            state.last_signed.CopyFrom(last)
        return state

    def _state_key(self) -> tuple[object, ...]:
        return (
            self._tip.height,
            self._round,
            self._step,
            self._locked_round,
            self._id_of(self._locked_block),
            self._valid_round,
            self._id_of(self._valid_block),
            self._guard.signed_count,
        )

    @staticmethod
    def _id_of(block: pb.Block | None) -> bytes:
        return NIL if block is None else block_id(block.header)

    # -- read-only views ---------------------------------------------------------------

    @property
    def validator_id(self) -> str:
        return self._me

    @property
    def height(self) -> int:
        """The height being decided (the tip's + 1)."""
        return self._tip.height + 1

    @property
    def round(self) -> int:
        return self._round

    @property
    def step(self) -> pb.Step:
        return self._step

    @property
    def locked_round(self) -> int:
        return self._locked_round

    @property
    def locked_block_id(self) -> bytes | None:
        return None if self._locked_block is None else block_id(self._locked_block.header)

    @property
    def valid_round(self) -> int:
        return self._valid_round

    @property
    def tip(self) -> pb.ChainTip:
        copy = pb.ChainTip()
        copy.CopyFrom(self._tip)
        return copy

    def proposer(self, height: int, round_: int) -> str:
        return self._validators.proposer(height, round_)

    # -- inputs --------------------------------------------------------------------------

    def start(self) -> Ready:
        """Begin (fresh) or resume (restarted) at the current height."""
        if self._started:
            return Ready()
        self._started = True
        return self._run(self._resume)

    def receive(self, data: bytes | pb.ConsensusMessage) -> Ready:
        """A proposal or vote from a peer."""
        return self._run(lambda: self._handle_message(data))

    def on_timeout(self, timeout: Timeout) -> Ready:
        return self._run(lambda: self._handle_timeout(timeout))

    def propose(self, request: ProposalRequest, records: Sequence[bytes], time_ms: int) -> Ready:
        """Answer a ``proposal_request``; records must pass the records validator."""
        return self._run(lambda: self._handle_propose(request, records, time_ms))

    def commit_certified(self, block: pb.Block, certificate: pb.Certificate) -> Ready:
        """Catch-up: commit a peer's certified block for our current height."""
        return self._run(lambda: self._handle_certified(block, certificate))

    def gossip(self) -> Ready:
        """Messages worth sending again: this round's (and the lock's) proposals and votes."""
        return self._run(self._collect_gossip)

    # -- plumbing ------------------------------------------------------------------------

    def _run(self, action: Callable[[], None]) -> Ready:
        if not self._started:
            raise RuntimeError("call start() before feeding the core")
        self._out = Ready()
        replay, self._replay_next = self._replay_next, []
        for message in replay:
            self._handle_message(message)
        action()
        self._apply_rules()
        ready, self._out = self._out, Ready()
        key = self._state_key()
        if key != self._persisted_key:
            ready.persist = self.state()
            self._persisted_key = key
        return ready

    def _reject(self, reason: Reason, detail: str = "") -> None:
        self._out.rejections.append(Rejection(reason, detail))

    def _schedule(self, step: pb.Step) -> None:
        duration_ms = self._config.timeouts.duration_ms(step, self._round)
        self._out.timeouts.append(Timeout(self.height, self._round, step, duration_ms))

    # -- starting rounds and resuming ----------------------------------------------------

    def _resume(self) -> None:
        if self._fresh:
            self._start_round(0)
            return
        if self._step == PROPOSE:
            self._start_round(self._round)
            return
        last = self._guard.last_signed
        if last is not None and signed_position(last)[:2] == (self.height, self._round):
            self._send_own(last)  # counts our own vote again; peers may have missed it
        self._schedule(self._step)

    def _start_round(self, round_: int) -> None:
        """StartRound (lines 11-21)."""
        self._round = round_
        self._step = PROPOSE
        # The paper schedules this timeout for non-proposers only; scheduling it
        # for the proposer too is harmless (it only fires a nil prevote if we are
        # still in the propose step) and keeps a caller that never answers the
        # proposal request from stalling the round.
        self._schedule(PROPOSE)
        if self.proposer(self.height, round_) != self._me:
            return
        last = self._guard.last_signed
        if last is not None and signed_position(last) == (self.height, round_, PROPOSE):
            self._send_own(last)  # restarted after proposing: the same proposal again
        elif self._valid_block is not None:
            self._sign_proposal(self._valid_block, self._valid_round)
        else:
            self._out.proposal_request = ProposalRequest(self.height, round_)

    def _handle_propose(self, request: ProposalRequest, records: Sequence[bytes], now: int) -> None:
        current = ProposalRequest(self.height, self._round)
        tally = self._tally.peek(self._round)
        already = tally is not None and any(
            p.body.proposer_id == self._me for p in tally.proposals.values()
        )
        if request != current or self._step != PROPOSE or already:
            self._reject(Reason.STALE_REQUEST, f"proposal request {request} is not current")
            return
        block = build_block(self._tip, self._validators, self._me, records, now)
        problem = self._check_valid(block_id(block.header), block)
        if problem is not None:
            self._reject(problem.reason, f"own proposal: {problem.detail}")
            return
        self._sign_proposal(block, -1)

    # -- signing and sending our own messages ---------------------------------------------

    def _sign_proposal(self, block: pb.Block, pol_round: int) -> None:
        body = pb.ProposalBody(
            chain_id=self._config.chain_id,
            height=self.height,
            round=self._round,
            pol_round=pol_round,
            block_id=block_id(block.header),
            proposer_id=self._me,
        )
        signed = self._guard.sign_proposal(body, block)
        if isinstance(signed, Rejection):
            self._out.rejections.append(signed)
            return
        self._send_own(pb.ConsensusMessage(proposal=signed))

    def _sign_vote(self, step: pb.Step, voted_id: bytes) -> None:
        body = pb.VoteBody(
            chain_id=self._config.chain_id,
            step=step,
            height=self.height,
            round=self._round,
            block_id=voted_id,
            validator_id=self._me,
        )
        signed = self._guard.sign_vote(body)
        if isinstance(signed, Rejection):
            self._out.rejections.append(signed)
            return
        self._send_own(pb.ConsensusMessage(vote=signed))

    def _send_own(self, message: pb.ConsensusMessage) -> None:
        """Broadcast, and deliver to ourselves (the paper's broadcast includes the sender)."""
        self._out.messages.append(message)
        if message.WhichOneof("kind") == "proposal":
            proposal = message.proposal
            tally = self._tally.at(proposal.body.round)
            if proposal.body.block_id not in tally.proposals:
                self._store_proposal(tally, proposal)
        else:
            vote = message.vote
            tally = self._tally.at(vote.body.round)
            if not tally.has_vote(vote.body):
                tally.add_vote(vote)

    # -- peer messages ---------------------------------------------------------------------

    def _handle_message(self, data: bytes | pb.ConsensusMessage) -> None:
        message = parse_message(data)
        if isinstance(message, Rejection):
            self._out.rejections.append(message)
        elif message.WhichOneof("kind") == "vote":
            self._handle_vote(message)
        else:
            self._handle_proposal(message)

    def _check_position(
        self, message: pb.ConsensusMessage, sender: str, height: int, round_: int, step: int
    ) -> Rejection | None:
        """Membership, height and round window; buffers next-height messages."""
        if sender not in self._validators:
            return Rejection(Reason.NOT_A_VALIDATOR, f"{sender!r} is not a validator")
        if height < self.height:
            return Rejection(Reason.PAST_HEIGHT, f"height {height} < {self.height}")
        if height > self.height:
            if height == self.height + 1 and self._buffer_next_height(
                message, sender, round_, step
            ):
                return None
            return Rejection(Reason.FUTURE_HEIGHT, f"height {height} > {self.height}")
        if round_ > self._round + self._config.rounds_ahead_max:
            return Rejection(Reason.ROUND_TOO_FAR, f"round {round_}, ours {self._round}")
        return None

    def _buffer_next_height(
        self, message: pb.ConsensusMessage, sender: str, round_: int, step: int
    ) -> bool:
        kind = message.WhichOneof("kind") or ""
        key = (kind, sender, round_, step)
        if key not in self._next_height and len(self._next_height) >= self._buffer_max:
            return False
        self._next_height[key] = message
        return True

    def _handle_vote(self, message: pb.ConsensusMessage) -> None:
        vote = message.vote
        body = vote.body
        problem = check_vote_shape(vote, self._config.chain_id) or self._check_position(
            message, body.validator_id, body.height, body.round, body.step
        )
        if problem is not None:
            self._out.rejections.append(problem)
            return
        if body.height != self.height:
            return  # buffered for the next height
        tally = self._tally.at(body.round)
        if tally.has_vote(body):
            self._reject(Reason.DUPLICATE, f"vote from {body.validator_id!r}")
            return
        public_key = self._validators.public_key(body.validator_id)
        assert public_key is not None  # membership checked above
        if not vote_signature_ok(public_key, self._config.chain_id, vote):
            self._reject(Reason.BAD_SIGNATURE, f"vote claiming {body.validator_id!r}")
            return
        held = tally.votes(body.step).get(body.validator_id, {})
        if held and not self._admit_conflicting(held, vote):
            return
        tally.add_vote(vote)

    def _admit_conflicting(self, held: dict[bytes, pb.Vote], vote: pb.Vote) -> bool:
        """A second, different vote from one validator: keep evidence; count it if useful.

        It is counted (see :mod:`.tally`) when it is for nil or a block we hold,
        or while the validator has fewer than ``conflicting_votes_max`` votes
        here; the bound keeps an equivocator from filling memory.
        """
        body = vote.body
        if len(held) == 1:
            first = next(iter(held.values()))
            evidence = pb.DuplicateVoteEvidence(first=first, second=vote)
            self._out.evidence.append(pb.Evidence(duplicate_vote=evidence))
        useful = body.block_id == NIL or body.block_id in self._blocks
        if useful or len(held) < self._config.conflicting_votes_max:
            return True
        self._reject(Reason.CONFLICTING_VOTE, f"{body.validator_id!r}: {len(held)} votes held")
        return False

    def _handle_proposal(self, message: pb.ConsensusMessage) -> None:
        proposal = message.proposal
        body = proposal.body
        problem = check_proposal_shape(proposal, self._config.chain_id) or self._check_position(
            message, body.proposer_id, body.height, body.round, PROPOSE
        )
        if problem is not None:
            self._out.rejections.append(problem)
            return
        if body.height != self.height:
            return  # buffered for the next height
        expected = self.proposer(body.height, body.round)
        if body.proposer_id != expected:
            self._reject(
                Reason.NOT_PROPOSER, f"{body.proposer_id!r}; round {body.round}: {expected!r}"
            )
            return
        tally = self._tally.at(body.round)
        if body.block_id in tally.proposals:
            self._reject(Reason.DUPLICATE, f"proposal for round {body.round}")
            return
        public_key = self._validators.public_key(body.proposer_id)
        assert public_key is not None  # membership checked above
        if not proposal_signature_ok(public_key, self._config.chain_id, body, proposal.signature):
            self._reject(Reason.BAD_SIGNATURE, f"proposal claiming {body.proposer_id!r}")
            return
        if tally.proposals:
            self._record_equivocation(next(iter(tally.proposals.values())), proposal)
            if len(tally.proposals) >= self._config.proposals_per_round_max:
                self._reject(Reason.TOO_MANY_PROPOSALS, f"round {body.round}")
                return
        self._store_proposal(tally, proposal)

    def _record_equivocation(self, first: pb.Proposal, second: pb.Proposal) -> None:
        evidence = pb.DuplicateProposalEvidence(
            first_body=first.body,
            first_signature=first.signature,
            second_body=second.body,
            second_signature=second.signature,
        )
        self._out.evidence.append(pb.Evidence(duplicate_proposal=evidence))
        self._reject(Reason.CONFLICTING_PROPOSAL, f"{second.body.proposer_id!r} proposed twice")

    def _store_proposal(self, tally: RoundTally, proposal: pb.Proposal) -> None:
        tally.add_proposal(proposal)
        proposed_id = proposal.body.block_id
        self._blocks.setdefault(proposed_id, proposal.block)
        problem = self._check_valid(proposed_id, proposal.block)
        if problem is not None and proposal.body.proposer_id != self._me:
            self._reject(problem.reason, f"proposal round {proposal.body.round}: {problem.detail}")

    def _check_valid(self, proposed_id: bytes, block: pb.Block) -> Rejection | None:
        """``valid(v)``, computed once per block id and height."""
        if proposed_id not in self._validity:
            self._validity[proposed_id] = check_block(
                block, self._tip, self._validators, self._config.limits, self._records_validator
            )
        return self._validity[proposed_id]

    def _is_valid(self, proposed_id: bytes) -> bool:
        block = self._blocks.get(proposed_id)
        return block is not None and self._check_valid(proposed_id, block) is None

    # -- timeouts (lines 57-65) ----------------------------------------------------------

    def _handle_timeout(self, timeout: Timeout) -> None:
        if timeout.height != self.height or timeout.round != self._round:
            return
        if timeout.step == PROPOSE and self._step == PROPOSE:
            self._sign_vote(PREVOTE, NIL)
            self._step = PREVOTE
        elif timeout.step == PREVOTE and self._step == PREVOTE:
            self._sign_vote(PRECOMMIT, NIL)
            self._step = PRECOMMIT
        elif timeout.step == PRECOMMIT:
            self._start_round(self._round + 1)

    # -- catch-up ------------------------------------------------------------------------

    def _handle_certified(self, block: pb.Block, certificate: pb.Certificate) -> None:
        height = block.header.height
        if height != self.height:
            reason = Reason.PAST_HEIGHT if height < self.height else Reason.FUTURE_HEIGHT
            self._reject(reason, f"certified block {height}, deciding {self.height}")
            return
        problem = verify_certificate(
            self._validators, self._config.chain_id, block, certificate
        ) or check_block(
            block, self._tip, self._validators, self._config.limits, self._records_validator
        )
        if problem is not None:
            self._out.rejections.append(problem)
            return
        self._commit(block, certificate)

    # -- the upon rules -------------------------------------------------------------------

    def _apply_rules(self) -> None:
        rules = (
            self._rule_commit,
            self._rule_round_skip,
            self._rule_prevote_on_proposal,
            self._rule_prevote_timeout,
            self._rule_polka,
            self._rule_nil_polka,
            self._rule_nil_precommits,
            self._rule_precommit_timeout,
        )
        for _ in range(_RULE_FIRINGS_MAX):
            if not any(rule() for rule in rules):
                return
        raise AssertionError("consensus rules did not settle")

    def _rule_commit(self) -> bool:
        """Lines 49-54: a proposal and a quorum of precommits for it in any round."""
        quorum = self._validators.quorum
        for tally in self._tally.rounds.values():
            for voted_id, count in tally.precommit_count.items():
                if voted_id != NIL and count >= quorum and self._is_valid(voted_id):
                    certificate = make_certificate(tally.precommits_for(voted_id))
                    self._commit(self._blocks[voted_id], certificate)
                    return True
        return False

    def _commit(self, block: pb.Block, certificate: pb.Certificate) -> None:
        committed = pb.CommittedBlock(block=block, certificate=certificate)
        self._out.committed.append(committed)
        self._tip = tip_after(self._tip, block, certificate.block_id)
        # Held next-height messages wait for the next input: the caller applies
        # this commit to its records validator before it feeds us again.
        self._replay_next = list(self._next_height.values())
        self._reset_height_state()
        self._start_round(0)

    def _rule_round_skip(self) -> bool:
        """Lines 55-56: f + 1 validators are in a higher round: go there."""
        threshold = self._validators.f + 1
        higher = [
            round_
            for round_, tally in self._tally.rounds.items()
            if round_ > self._round and len(tally.senders) >= threshold
        ]
        if not higher:
            return False
        self._start_round(max(higher))
        return True

    def _rule_prevote_on_proposal(self) -> bool:
        """Lines 22-33: prevote the round's proposal (respecting the lock) or nil."""
        tally = self._tally.peek(self._round)
        if self._step != PROPOSE or tally is None:
            return False
        for proposal in tally.proposals.values():
            choice = self._prevote_choice(proposal)
            if choice is not None:
                self._sign_vote(PREVOTE, choice)
                self._step = PREVOTE
                return True
        return False

    def _prevote_choice(self, proposal: pb.Proposal) -> bytes | None:
        """What to prevote for ``proposal``; None when its rule does not apply yet."""
        proposed_id, pol_round = proposal.body.block_id, proposal.body.pol_round
        unlocked_or_same = self._locked_block is None or self.locked_block_id == proposed_id
        if pol_round == -1:  # line 22
            return proposed_id if self._is_valid(proposed_id) and unlocked_or_same else NIL
        pol = self._tally.peek(pol_round)
        if pol is None or pol.prevote_count[proposed_id] < self._validators.quorum:
            return None  # line 28 waits for the polka of pol_round
        may_unlock = self._locked_round <= pol_round or unlocked_or_same
        return proposed_id if self._is_valid(proposed_id) and may_unlock else NIL

    def _rule_prevote_timeout(self) -> bool:
        """Lines 34-35: a quorum of any prevotes: schedule the prevote timeout, once."""
        tally = self._tally.peek(self._round)
        if self._step != PREVOTE or tally is None or tally.prevote_timeout_scheduled:
            return False
        if len(tally.prevotes) < self._validators.quorum:
            return False
        tally.prevote_timeout_scheduled = True
        self._schedule(PREVOTE)
        return True

    def _rule_polka(self) -> bool:
        """Lines 36-43: a quorum prevoted the round's valid proposal: lock and precommit."""
        tally = self._tally.peek(self._round)
        if self._step == PROPOSE or tally is None or tally.polka_handled:
            return False
        for proposed_id, proposal in tally.proposals.items():
            if tally.prevote_count[proposed_id] < self._validators.quorum:
                continue
            if not self._is_valid(proposed_id):
                continue
            tally.polka_handled = True
            if self._step == PREVOTE:
                self._locked_round, self._locked_block = self._round, proposal.block
                self._sign_vote(PRECOMMIT, proposed_id)
                self._step = PRECOMMIT
            self._valid_round, self._valid_block = self._round, proposal.block
            self._valid_prevotes = sorted(
                (by_id[proposed_id] for by_id in tally.prevotes.values() if proposed_id in by_id),
                key=lambda vote: vote.body.validator_id,
            )
            return True
        return False

    def _rule_nil_polka(self) -> bool:
        """Lines 44-46: a quorum prevoted nil: precommit nil."""
        tally = self._tally.peek(self._round)
        if self._step != PREVOTE or tally is None:
            return False
        if tally.prevote_count[NIL] < self._validators.quorum:
            return False
        self._sign_vote(PRECOMMIT, NIL)
        self._step = PRECOMMIT
        return True

    def _rule_nil_precommits(self) -> bool:
        """A quorum precommitted nil in this round: start the next round at once.

        Not in Algorithm 1, which waits ``timeoutPrecommit`` after any quorum
        of precommits (lines 47-48). That wait gives precommits for a value
        time to arrive; with a quorum for nil from distinct validators, no
        value can gather a quorum in this round (it would take f + 1
        validators signing both). Starting a round early never endangers
        safety in Tendermint (the locks do not depend on time), so this only
        saves the wait after a dead proposer's round.
        """
        tally = self._tally.peek(self._round)
        if tally is None or tally.precommit_count[NIL] < self._validators.quorum:
            return False
        self._start_round(self._round + 1)
        return True

    def _rule_precommit_timeout(self) -> bool:
        """Lines 47-48: a quorum of any precommits: schedule the precommit timeout, once."""
        tally = self._tally.peek(self._round)
        if tally is None or tally.precommit_timeout_scheduled:
            return False
        if len(tally.precommits) < self._validators.quorum:
            return False
        tally.precommit_timeout_scheduled = True
        self._schedule(PRECOMMIT)
        return True

    # -- gossip ----------------------------------------------------------------------------

    def _collect_gossip(self) -> None:
        rounds = sorted({self._round, self._locked_round, self._valid_round} - {-1})
        for round_ in rounds:
            tally = self._tally.peek(round_)
            if tally is None:
                continue
            for proposal in tally.proposals.values():
                self._out.messages.append(pb.ConsensusMessage(proposal=proposal))
            for vote in tally.all_votes(PREVOTE):
                self._out.messages.append(pb.ConsensusMessage(vote=vote))
            if round_ == self._round:
                for vote in tally.all_votes(PRECOMMIT):
                    self._out.messages.append(pb.ConsensusMessage(vote=vote))
