"""Fixtures for the ledger's pure core: a genesis with real keys, signers for its members."""

from __future__ import annotations

import secrets

import nacl.signing
import pytest

from mpc_ledger.identity.signing import Signer
from mpc_ledger.ledger.records import make_record
from mpc_ledger.proto.v1 import ledger_pb2
from mpc_ledger.testing.consortium import make_consortium


class Authors:
    def __init__(self, consortium):
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

    def record(self, author: str, signer: Signer | None = None, **payload) -> ledger_pb2.Record:
        body = ledger_pb2.RecordBody(author=author, nonce=secrets.randbits(63), **payload)
        if signer is None:
            signer = self.signers.get(author) or self.user_signer(author)
        return make_record(signer, body)

    def note(self, author: str, text: str = "hello", signer: Signer | None = None):
        return self.record(author, signer, note=ledger_pb2.Note(text=text))

    def bind(self, member: str, user_id: str, roles=("scientist",)):
        key = bytes(self.user_signer(user_id).public_key)
        binding = ledger_pb2.UserKeyBinding(user_id=user_id, public_key=key, roles=list(roles))
        return self.record(member, bind_user=binding)

    def revoke(self, member: str, user_id: str):
        revocation = ledger_pb2.UserKeyRevocation(user_id=user_id, reason="left")
        return self.record(member, revoke_user=revocation)


@pytest.fixture(scope="module")
def authors(tmp_path_factory):
    return Authors(make_consortium(tmp_path_factory.mktemp("ledger") / "c", "a,b,c", "--auditor"))


def raw(record: ledger_pb2.Record) -> bytes:
    return record.SerializeToString(deterministic=True)
