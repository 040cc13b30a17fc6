"""Replaying an export's records through the ledger's own rules.

The verifier does not restate who may write what: it runs every record, in
log order, through :class:`mpc_ledger.ledger.state.LedgerState` built from the
genesis and the rulebook it is given (the verifier passes
:data:`mpc_ledger.rulebook.RULEBOOK`, the one every party daemon's node is
built with), the same state machine every party ran before its validators
certified the block. ``check`` then ``apply`` per record is exactly what
``LedgerState.check_block`` does with its overlay, one record at a time, so
each failing record gets its own finding and the valid ones keep the state
moving. A record that fails is not applied (an honest node would have refused
it), so records that depended on it fail too and are reported as well.

Cost: an Ed25519 verification per record dominates. The state's signature
check is replaced here by one that (1) builds the signed bytes from a prefix
computed once per chain instead of per record, (2) calls libsodium directly
without constructing a key object per record, and (3) keeps no cache: every
record is verified exactly once, nothing is verified twice. Whether the
signature or the rule failed is remembered, so a finding is filed under
``record-signature`` or ``record-permission``.

Partial exports (``--from``) lack the records before the range: a record by a
user whose key was bound before the range cannot be checked here; it is
counted as resting on its block's certificate, not reported as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions

from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.identity.signing import (
    PUBLIC_KEY_SIZE_BYTES,
    SIGNATURE_SIZE_BYTES,
    Purpose,
    canonical_bytes,
    signing_bytes,
)
from mpc_ledger.ledger.records import ParsedRecord, member_of_user, parse_record
from mpc_ledger.ledger.state import LedgerState, Rulebook

__all__ = ["RecordOutcome", "RecordReplay"]


class _VerifyingState(LedgerState):
    """LedgerState with a one-shot, cache-free signature check (see the module docstring)."""

    def __init__(self, genesis: Genesis, rules: Rulebook) -> None:
        super().__init__(genesis, rules)
        self._signed_prefix = signing_bytes(Purpose.RECORD, genesis.chain_id, b"")
        self.signature_failed = False

    def signature_valid(self, record: ParsedRecord, public_key: bytes) -> bool:
        signature = record.record.signature
        ok = len(public_key) == PUBLIC_KEY_SIZE_BYTES and len(signature) == SIGNATURE_SIZE_BYTES
        if ok:
            signed = signature + self._signed_prefix + canonical_bytes(record.body)
            try:
                nacl.bindings.crypto_sign_open(signed, public_key)
            except (nacl.exceptions.CryptoError, ValueError, TypeError):
                ok = False
        self.signature_failed = not ok
        return ok


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """One record's fate: parsed (None when it does not parse) and the finding, if any."""

    parsed: ParsedRecord | None
    check: str | None = None
    message: str | None = None
    # True when the record could not be checked in a partial export.
    unverifiable: bool = False


class RecordReplay:
    """The genesis state, advanced record by record (see the module docstring)."""

    def __init__(self, genesis: Genesis, rules: Rulebook, *, partial: bool = False) -> None:
        self.state = _VerifyingState(genesis, rules)
        self.partial = partial
        self._members = frozenset(member.id for member in genesis.members)
        self.unverifiable = 0

    def begin_block(self, height: int) -> None:
        """The records replayed next belong to block ``height`` (quota windows count heights)."""
        self.state.next_height = height

    def replay(self, raw: bytes) -> RecordOutcome:
        parsed = parse_record(raw)
        if isinstance(parsed, str):
            return RecordOutcome(None, "record-encoding", parsed)
        state = self.state
        author = parsed.body.author
        if (
            self.partial
            and author not in self._members
            and member_of_user(author) is not None
            and state.user(author) is None
        ):
            self.unverifiable += 1
            state.mark_seen(parsed.id)
            return RecordOutcome(parsed, unverifiable=True)
        state.signature_failed = False
        reason = state.check(parsed)
        if reason is None:
            state.apply(parsed)
            return RecordOutcome(parsed)
        check = "record-signature" if state.signature_failed else "record-permission"
        return RecordOutcome(parsed, check, reason)
