"""A Byzantine validator on the wire: the test holds the auditor's real keys and sends
conflicting signed votes to three honest daemons over mTLS. They must keep committing,
keep the evidence, and refuse what is forged or replayed."""

from __future__ import annotations

import os
import sqlite3
import time

import grpc
import pytest

from mpc_ledger.consensus.messages import sign_vote_body
from mpc_ledger.daemon.processes import DaemonProcess, stop_all
from mpc_ledger.identity.signing import Signer
from mpc_ledger.ledger.client import LedgerClient
from mpc_ledger.net import mtls
from mpc_ledger.proto.v1 import consensus_pb2, ledger_service_pb2, ledger_service_pb2_grpc
from mpc_ledger.testing.consortium import make_consortium

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HONEST = ["a", "b", "c"]


@pytest.fixture
def honest(tmp_path):
    consortium = make_consortium(tmp_path / "c", "a,b,c", auditor=True, dealer=True)
    daemons = [DaemonProcess(consortium.config(m), tmp_path / f"{m}.log") for m in HONEST]
    for member_id, daemon in zip(HONEST, daemons, strict=True):
        daemon.wait_serving(consortium.genesis.member(member_id).endpoint)
    yield consortium
    stop_all(daemons)


def vote(signer, chain_id, height, block_id, step=consensus_pb2.STEP_PREVOTE):
    body = consensus_pb2.VoteBody(
        chain_id=chain_id,
        step=step,
        height=height,
        round=0,
        block_id=block_id,
        validator_id="auditor",
    )
    return consensus_pb2.Vote(body=body, signature=sign_vote_body(signer, body))


def gossip(identity, target, votes):
    channel = mtls.member_channel(identity, target)
    batch = ledger_service_pb2.GossipBatch(
        messages=[
            ledger_service_pb2.GossipMessage(consensus=consensus_pb2.ConsensusMessage(vote=v))
            for v in votes
        ]
    )
    try:
        ledger_service_pb2_grpc.ConsensusStub(channel).Gossip(iter([batch]), timeout=5)
    finally:
        channel.close()


def evidence_count(consortium, member_id):
    db = sqlite3.connect(consortium.root / member_id / "data" / "ledger.sqlite")
    try:
        return db.execute("SELECT COUNT(*) FROM evidence").fetchone()[0]
    finally:
        db.close()


def test_equivocating_validator_is_recorded_and_the_ledger_goes_on(honest):
    genesis = honest.genesis
    auditor = honest.party("auditor").identity
    signer = Signer(auditor.signing_key, genesis.chain_id)
    client = LedgerClient(honest.party("a"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(evidence_count(honest, m) for m in HONEST):
        height = int(client.tip().height) + 1  # the height being decided now
        conflicting = [
            vote(signer, genesis.chain_id, height, os.urandom(32)),
            vote(signer, genesis.chain_id, height, os.urandom(32)),
        ]
        for member_id in HONEST:
            gossip(auditor, genesis.member(member_id), conflicting)
        time.sleep(0.3)
    assert all(evidence_count(honest, m) >= 1 for m in HONEST)
    # the three honest validators are a quorum of four: they keep committing
    reply = client.submit(client.note("still alive"))
    assert client.wait_committed(reply.record_id, 20).committed
    client.close()


def test_forged_and_replayed_votes_change_nothing(honest):
    genesis = honest.genesis
    auditor = honest.party("auditor").identity
    client = LedgerClient(honest.party("b"))
    height = int(client.tip().height) + 1
    wrong_key = Signer(honest.party("c").identity.signing_key, genesis.chain_id)
    other_chain = Signer(auditor.signing_key, bytes(32))
    bad = [
        vote(wrong_key, genesis.chain_id, height, os.urandom(32)),  # signed by c, claims auditor
        vote(other_chain, bytes(32), height, os.urandom(32)),  # replayed from another chain
        vote(Signer(auditor.signing_key, genesis.chain_id), genesis.chain_id, 1, os.urandom(32)),
    ]
    for _ in range(3):
        for member_id in HONEST:
            gossip(auditor, genesis.member(member_id), bad)
    time.sleep(1)
    assert all(evidence_count(honest, m) == 0 for m in HONEST)
    reply = client.submit(client.note("unaffected"))
    assert client.wait_committed(reply.record_id, 20).committed
    client.close()


def test_a_member_that_is_not_a_validator_may_not_gossip_votes(honest):
    genesis = honest.genesis
    dealer = honest.party("dealer").identity
    signer = Signer(dealer.signing_key, genesis.chain_id)
    with pytest.raises(grpc.RpcError) as error:
        gossip(dealer, genesis.member("a"), [vote(signer, genesis.chain_id, 1, os.urandom(32))])
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'dealer' is not a validator" in error.value.details()
