"""Invariant checkers the simulator runs after every step.

Each checker sees everything honest nodes emit or commit and raises
:class:`InvariantViolation` the moment an invariant breaks:

- agreement: no two honest nodes commit different blocks at one height;
- validity: every committed record was submitted, passes the simulation's
  record rule, and commits at one height only (nothing invented, nothing
  twice);
- certificates: every block an honest node commits carries a certificate that
  ``verify_certificate`` accepts against the genesis validators;
- no double signing: no honest validator ever emits two different signed
  bodies for one (height, round, step), across crashes included;
- persist before send: nothing an honest node sends was signed above the
  high-water mark it had persisted;
- evidence: every piece of evidence an honest node reports verifies and
  accuses a Byzantine validator, never an honest one.
"""

from __future__ import annotations

from collections.abc import Callable

from mpc_ledger.consensus import (
    ValidatorSet,
    block_id,
    signed_position,
    verify_certificate,
    verify_evidence,
)
from mpc_ledger.proto.v1 import consensus_pb2 as pb

__all__ = ["InvariantViolation", "Invariants"]


class InvariantViolation(AssertionError):
    """An invariant of the protocol broke (the simulator adds seed and replay line)."""


class Invariants:
    def __init__(
        self,
        validators: ValidatorSet,
        chain_id: bytes,
        byzantine_ids: frozenset[str],
        record_ok: Callable[[bytes], bool],
    ) -> None:
        self._validators = validators
        self._chain_id = chain_id
        self._byzantine_ids = byzantine_ids
        self._record_ok = record_ok
        self.submitted: set[bytes] = set()
        self.decided: dict[int, bytes] = {}
        self._record_heights: dict[bytes, int] = {}
        self._signed: dict[tuple[str, int, int, int], bytes] = {}
        self.signed_messages_checked = 0
        self.certificates_checked = 0
        self.evidence_seen = 0

    # -- commits ---------------------------------------------------------------------

    def on_commit(self, node_name: str, committed: pb.CommittedBlock) -> None:
        block = committed.block
        height = block.header.height
        committed_id = block_id(block.header)
        first = self.decided.setdefault(height, committed_id)
        if first != committed_id:
            raise InvariantViolation(
                f"agreement: {node_name} committed {committed_id.hex()[:16]} at height {height}, "
                f"another honest node committed {first.hex()[:16]}"
            )
        problem = verify_certificate(self._validators, self._chain_id, block, committed.certificate)
        self.certificates_checked += 1
        if problem is not None:
            raise InvariantViolation(f"certificate: {node_name} height {height}: {problem}")
        for record in block.records:
            self._check_record(node_name, height, record)

    def _check_record(self, node_name: str, height: int, record: bytes) -> None:
        if record not in self.submitted:
            raise InvariantViolation(f"validity: {node_name} committed an invented record")
        if not self._record_ok(record):
            raise InvariantViolation(f"validity: {node_name} committed an invalid record")
        first = self._record_heights.setdefault(record, height)
        if first != height:
            raise InvariantViolation(
                f"validity: record committed at heights {first} and {height} ({node_name})"
            )

    # -- signatures --------------------------------------------------------------------

    def on_send(
        self,
        node_name: str,
        validator_id: str,
        message: pb.ConsensusMessage,
        persisted: pb.ConsensusState | None,
    ) -> None:
        """An honest node is about to send ``message`` (its own or relayed)."""
        signer = (
            message.proposal.body.proposer_id
            if message.WhichOneof("kind") == "proposal"
            else message.vote.body.validator_id
        )
        if signer != validator_id:
            return  # relayed gossip: its signer answers for it
        position = signed_position(message)
        self._check_persisted(node_name, position, persisted)
        body = (
            message.proposal.body if message.WhichOneof("kind") == "proposal" else message.vote.body
        )
        encoded = body.SerializeToString(deterministic=True)
        key = (validator_id, *position)
        first = self._signed.setdefault(key, encoded)
        self.signed_messages_checked += 1
        if first != encoded:
            raise InvariantViolation(
                f"double signing: honest {validator_id} ({node_name}) signed two different "
                f"messages at (height, round, step) {position}"
            )

    @staticmethod
    def _check_persisted(
        node_name: str, position: tuple[int, int, int], persisted: pb.ConsensusState | None
    ) -> None:
        if persisted is None or not persisted.HasField("last_signed"):
            raise InvariantViolation(
                f"persist before send: {node_name} sent unpersisted {position}"
            )
        mark = signed_position(persisted.last_signed)
        if position > mark:
            raise InvariantViolation(
                f"persist before send: {node_name} sent {position} above its persisted mark {mark}"
            )

    # -- evidence ------------------------------------------------------------------------

    def on_evidence(self, node_name: str, evidence: pb.Evidence) -> None:
        problem = verify_evidence(self._validators, self._chain_id, evidence)
        if problem is not None:
            raise InvariantViolation(f"evidence from {node_name} does not verify: {problem}")
        if evidence.WhichOneof("kind") == "duplicate_vote":
            accused = evidence.duplicate_vote.first.body.validator_id
        else:
            accused = evidence.duplicate_proposal.first_body.proposer_id
        if accused not in self._byzantine_ids:
            raise InvariantViolation(f"evidence from {node_name} accuses honest {accused}")
        self.evidence_seen += 1
