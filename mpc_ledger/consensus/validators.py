"""The validator set: who votes, how many make a quorum, who proposes when.

Every validator has equal voting weight. With n validators the protocol
tolerates f = (n - 1) // 3 Byzantine ones; a quorum is n - f distinct
validators (any two quorums share at least f + 1 validators, so at least one
honest one), and f + 1 distinct validators include at least one honest one.
The proposer of (height, round) is the validator at index
(height + round) mod n in the list sorted by id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from mpc_ledger.identity.signing import PUBLIC_KEY_SIZE_BYTES
from mpc_ledger.proto.v1 import consensus_pb2 as pb

__all__ = ["Validator", "ValidatorSet", "max_faulty", "quorum_size"]

_VALIDATOR_SET_TAG = b"mpc-ledger/validator-set/v1\x00"


def max_faulty(validator_count: int) -> int:
    """f: how many Byzantine validators ``validator_count`` validators tolerate."""
    if validator_count < 1:
        raise ValueError("a validator set has at least one validator")
    return (validator_count - 1) // 3


def quorum_size(validator_count: int) -> int:
    """n - f: how many distinct validators make a quorum."""
    return validator_count - max_faulty(validator_count)


@dataclass(frozen=True, slots=True)
class Validator:
    id: str
    public_key: bytes


class ValidatorSet:
    """An immutable, id-sorted validator set with the protocol's arithmetic."""

    __slots__ = ("_by_id", "_hash", "f", "quorum", "validators")

    def __init__(self, validators: Iterable[Validator | tuple[str, bytes]]) -> None:
        members = [v if isinstance(v, Validator) else Validator(*v) for v in validators]
        members.sort(key=lambda v: v.id)
        if not members:
            raise ValueError("a validator set has at least one validator")
        ids = [v.id for v in members]
        if len(set(ids)) != len(ids):
            raise ValueError("validator ids must be unique")
        for member in members:
            if not member.id:
                raise ValueError("validator ids must be non-empty")
            if len(member.public_key) != PUBLIC_KEY_SIZE_BYTES:
                raise ValueError(f"validator {member.id!r}: public key must be 32 bytes")
        self.validators: tuple[Validator, ...] = tuple(members)
        self._by_id = {v.id: v for v in members}
        self.f = max_faulty(len(members))
        self.quorum = quorum_size(len(members))
        self._hash = _hash_validators(members)

    def __len__(self) -> int:
        return len(self.validators)

    def __contains__(self, validator_id: object) -> bool:
        return validator_id in self._by_id

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(v.id for v in self.validators)

    @property
    def hash(self) -> bytes:
        """SHA-256 over a purpose tag and the deterministic ValidatorSet encoding."""
        return self._hash

    def public_key(self, validator_id: str) -> bytes | None:
        member = self._by_id.get(validator_id)
        return None if member is None else member.public_key

    def proposer(self, height: int, round_: int) -> str:
        return self.validators[(height + round_) % len(self.validators)].id

    def to_proto(self) -> pb.ValidatorSet:
        return pb.ValidatorSet(
            validators=[pb.Validator(id=v.id, public_key=v.public_key) for v in self.validators]
        )


def _hash_validators(members: list[Validator]) -> bytes:
    message = pb.ValidatorSet(
        validators=[pb.Validator(id=v.id, public_key=v.public_key) for v in members]
    )
    return hashlib.sha256(
        _VALIDATOR_SET_TAG + message.SerializeToString(deterministic=True)
    ).digest()
