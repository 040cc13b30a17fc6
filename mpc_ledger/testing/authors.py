"""Signed records by any author of a consortium, for tests of the ledger's and jobs' rules.

`Authors` signs as every member (the member keys a `LocalConsortium` made) and as
users it makes up on demand (a fresh Ed25519 key per user id, kept, so a user
bound once signs with the key it was bound with).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import nacl.signing

from mpc_ledger.identity.signing import Signer
from mpc_ledger.ledger.records import make_record
from mpc_ledger.proto.v1 import ledger_pb2
from mpc_ledger.testing.consortium import LocalConsortium

__all__ = ["Authors"]


class Authors:
    """Signers for every member of ``consortium``, and for users made up on demand."""

    def __init__(self, consortium: LocalConsortium) -> None:
        self.genesis = consortium.genesis
        self.chain_id = self.genesis.chain_id
        self.signers = {
            member_id: Signer(consortium.party(member_id).identity.signing_key, self.chain_id)
            for member_id in consortium.ids
        }
        self.user_keys: dict[str, nacl.signing.SigningKey] = {}

    def user_signer(self, user_id: str) -> Signer:
        key = self.user_keys.setdefault(user_id, nacl.signing.SigningKey.generate())
        return Signer(key, self.chain_id)

    def record(
        self, author: str, signer: Signer | None = None, **payload: Any
    ) -> ledger_pb2.Record:
        body = ledger_pb2.RecordBody(author=author, nonce=secrets.randbits(63), **payload)
        if signer is None:
            signer = self.signers.get(author) or self.user_signer(author)
        return make_record(signer, body)

    def note(
        self, author: str, text: str = "hello", signer: Signer | None = None
    ) -> ledger_pb2.Record:
        return self.record(author, signer, note=ledger_pb2.Note(text=text))

    def bind(
        self, member: str, user_id: str, roles: Sequence[str] = ("scientist",)
    ) -> ledger_pb2.Record:
        key = bytes(self.user_signer(user_id).public_key)
        binding = ledger_pb2.UserKeyBinding(user_id=user_id, public_key=key, roles=list(roles))
        return self.record(member, bind_user=binding)

    def revoke(self, member: str, user_id: str) -> ledger_pb2.Record:
        revocation = ledger_pb2.UserKeyRevocation(user_id=user_id, reason="left")
        return self.record(member, revoke_user=revocation)
