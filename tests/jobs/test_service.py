"""`mpc_ledger.jobs.service`: a follower's runner records forwarded to the validators.

The follower is a real ledger node (the dealer's identity, a real SQLite store); the
validators are real gRPC servers with the validators' certificates that answer `Submit`
as each test scripts, so the refusal a follower gets back is exactly the one chosen.
"""

from __future__ import annotations

import pytest

from mpc_ledger.identity.signing import Signer
from mpc_ledger.jobs.service import _LedgerAccess
from mpc_ledger.ledger.node import LedgerNode
from mpc_ledger.ledger.records import make_record
from mpc_ledger.ledger.refusals import RefusalCode
from mpc_ledger.ledger.store import SqliteBlockStore
from mpc_ledger.net.peers import PeerSet
from mpc_ledger.proto.v1 import ledger_pb2, ledger_service_pb2
from mpc_ledger.rulebook import RULEBOOK
from mpc_ledger.testing.consortium import make_consortium


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    return make_consortium(tmp_path_factory.mktemp("service") / "c", "a,b,c", dealer=True)


@pytest.fixture
def access(consortium, tmp_path):
    """The dealer's `_LedgerAccess` over its own follower node."""
    party = consortium.party("dealer")
    store = SqliteBlockStore(tmp_path / "ledger.sqlite", party.genesis.chain_id)
    node = LedgerNode(party.identity, store, RULEBOOK)
    assert node.core is None, "the dealer must be a follower here"
    node.start()
    access = _LedgerAccess(party, node)
    access.peers = PeerSet(party.identity)
    yield access
    access.peers.close()
    node.stop()
    store.close()


def dealer_note(consortium, text):
    party = consortium.party("dealer")
    body = ledger_pb2.RecordBody(author="dealer", note=ledger_pb2.Note(text=text))
    record = make_record(Signer(party.identity.signing_key, party.genesis.chain_id), body)
    return record.SerializeToString(deterministic=True)


def refusal(reason, code):
    return ledger_service_pb2.SubmitResponse(accepted=False, reason=reason, code=code)


def test_a_refusal_worded_like_a_duplicate_is_not_an_acceptance(consortium, access, serve):
    # A reason is for people: this one starts with "duplicate" but its code says otherwise.
    reason = "duplicated dataset columns are not allowed"
    validators = [m.id for m in consortium.genesis.validators]
    servers = [serve(v, submit_reply=refusal(reason, RefusalCode.INVALID)) for v in validators]
    result = access.submit(dealer_note(consortium, "worded like a duplicate"))
    assert not result.accepted
    assert result.reason == "; ".join(f"{v}: {reason}" for v in validators)
    assert [s.submitted for s in servers] == [1] * len(validators)  # every validator asked


def test_a_validator_that_already_holds_the_record_is_an_acceptance(consortium, access, serve):
    validators = [m.id for m in consortium.genesis.validators]
    first = serve(validators[0], submit_reply=refusal("arrived by gossip", RefusalCode.DUPLICATE))
    others = [
        serve(v, submit_reply=refusal("not asked", RefusalCode.INVALID)) for v in validators[1:]
    ]
    result = access.submit(dealer_note(consortium, "already gossiped"))
    assert result.accepted, result.reason
    assert first.submitted == 1 and [s.submitted for s in others] == [0] * len(others)
