"""Admission against real daemons: what a member or a bound user may make a daemon hold.

Each test performs an attack from the issue against three daemons started by
the CLI (real mTLS, real SQLite, real consensus) and checks that it is
refused with a reason and that nothing of it reaches the ledger or the
daemon's memory.
"""

from __future__ import annotations

import os
import re
import secrets

import nacl.signing
import pytest

from mpc_ledger.consensus.messages import sign_vote_body
from mpc_ledger.daemon.processes import DaemonProcess, stop_all
from mpc_ledger.identity.genesis import QuotaParams
from mpc_ledger.identity.signing import Signer
from mpc_ledger.ledger.client import LedgerClient
from mpc_ledger.ledger.records import make_record, parse_record, record_id
from mpc_ledger.ledger.refusals import RefusalCode
from mpc_ledger.net import mtls
from mpc_ledger.proto.v1 import (
    consensus_pb2,
    ledger_pb2,
    ledger_service_pb2,
    ledger_service_pb2_grpc,
)
from mpc_ledger.testing.consortium import make_consortium, metric_value

pytestmark = [pytest.mark.integration, pytest.mark.slow]
IDS = ["a", "b", "c"]
# An unknown length-delimited field (number 15) of 1 KiB: the padding of finding 12.
PADDING = b"\x7a\x80\x08" + os.urandom(1024)


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    root = tmp_path_factory.mktemp("admission")
    consortium = make_consortium(root / "c", ",".join(IDS))
    daemons = [DaemonProcess(consortium.config(m), root / f"{m}.log") for m in IDS]
    for member_id, daemon in zip(IDS, daemons, strict=True):
        daemon.wait_serving(consortium.genesis.member(member_id).endpoint)
    yield consortium
    stop_all(daemons)


@pytest.fixture(scope="module")
def clients(consortium):
    clients = {m: LedgerClient(consortium.party(m)) for m in IDS}
    yield clients
    for client in clients.values():
        client.close()


def padded(record: ledger_pb2.Record) -> ledger_pb2.Record:
    """``record`` with unsigned bytes appended (protobuf keeps them as an unknown field)."""
    return ledger_pb2.Record.FromString(record.SerializeToString(deterministic=True) + PADDING)


def gossip(consortium, sender: str, target: str, messages) -> None:
    identity = consortium.party(sender).identity
    channel = mtls.member_channel(identity, consortium.genesis.member(target))
    try:
        stub = ledger_service_pb2_grpc.ConsensusStub(channel)
        stub.Gossip(iter([ledger_service_pb2.GossipBatch(messages=messages)]), timeout=10)
    finally:
        channel.close()


def committed(client: LedgerClient, record_id: bytes, timeout_s: float = 60) -> bool:
    return bool(client.wait_committed(record_id, timeout_s).committed)


# -- finding 12: unsigned padding in signed records ----------------------------------------


def test_a_signed_note_with_unsigned_padding_is_refused_at_submit(clients):
    client = clients["a"]
    note = client.note("padded")
    reply = client.submit(padded(note))
    assert not reply.accepted
    assert "unknown field at Record: field number 15" in reply.reason
    # the same note without the padding is still the author's to submit
    clean = client.submit(note)
    assert clean.accepted, clean.reason
    assert committed(client, clean.record_id)
    stored = next(client.blocks(committed_height(client, clean.record_id), 1))
    assert note.SerializeToString(deterministic=True) in stored.block.records


def committed_height(client: LedgerClient, record_id: bytes) -> int:
    return int(client.wait_committed(record_id, 5).height)


def test_a_padded_record_gossiped_by_a_member_never_reaches_a_block(consortium, clients):
    name = 'mpc_ledger_records_rejected_total{reason="malformed"}'
    before = metric_value(consortium.scrape_metrics("a"), name, absent=0)
    note = clients["b"].note("padded, relayed")
    gossip(consortium, "b", "a", [ledger_service_pb2.GossipMessage(record=padded(note))])
    # refused on arrival, and counted as a refusal (not dropped without a trace)
    assert metric_value(consortium.scrape_metrics("a"), name, absent=0) == before + 1
    # a's loop takes events in order: once a later record is committed on a, the
    # padded one is either waiting in a's mempool or committed, had a let it in
    later = clients["a"].submit(clients["a"].note("after the padded one"))
    assert later.accepted, later.reason
    assert committed(clients["a"], later.record_id)
    assert clients["a"].tip().mempool_size == 0
    assert not clients["a"].wait_committed(record_id(note.body), 0.001).committed


def test_a_padded_consensus_vote_is_refused_as_malformed(consortium, clients):
    name = 'mpc_ledger_consensus_rejections_total{reason="malformed"}'
    before = metric_value(consortium.scrape_metrics("a"), name, absent=0)
    genesis = consortium.genesis
    signer = Signer(consortium.party("b").identity.signing_key, genesis.chain_id)
    body = consensus_pb2.VoteBody(
        chain_id=genesis.chain_id,
        step=consensus_pb2.STEP_PREVOTE,
        height=int(clients["a"].tip().height) + 1,
        round=0,
        block_id=os.urandom(32),
        validator_id="b",
    )
    vote = consensus_pb2.Vote(body=body, signature=sign_vote_body(signer, body))
    padded_vote = consensus_pb2.Vote.FromString(vote.SerializeToString() + PADDING)
    message = consensus_pb2.ConsensusMessage(vote=padded_vote)
    gossip(consortium, "b", "a", [ledger_service_pb2.GossipMessage(consensus=message)])
    # a round trip through a's loop: the gossip was handled before this commits
    reply = clients["a"].submit(clients["a"].note("after the padded vote"))
    assert committed(clients["a"], reply.record_id)
    assert metric_value(consortium.scrape_metrics("a"), name, absent=0) >= before + 1


# -- finding 6: memory a user can make a daemon hold ---------------------------------------


def test_timed_out_waits_for_commits_leave_no_waiters_behind(consortium, clients):
    client = clients["a"]
    for _ in range(300):  # records that will never be committed
        assert not client.wait_committed(os.urandom(32), 0.001).committed
    note = client.submit(client.note("a barrier through a's loop"))
    assert note.accepted, note.reason  # answered by the loop: every wait before it was seen
    assert committed(client, note.record_id)
    assert metric_value(consortium.scrape_metrics("a"), "mpc_ledger_commit_waiters") == 0


def rejected_series(text: str) -> dict[str, float]:
    found = re.findall(r'^mpc_ledger_records_rejected_total\{reason="([^"]*)"\} (\S+)$', text, re.M)
    return {label: float(count) for label, count in found}


def test_unsigned_records_with_invented_authors_add_no_metric_series(consortium, clients):
    before = rejected_series(consortium.scrape_metrics("a"))
    junk = [
        ledger_pb2.Record(
            body=ledger_pb2.RecordBody(
                author=f"{index} invented author" if index % 2 else f"x{index}/invented",
                note=ledger_pb2.Note(text="unsigned"),
            ),
            signature=os.urandom(64),
        )
        for index in range(3000)
    ]
    replies = clients["a"].stub.SubmitBatch(
        ledger_service_pb2.SubmitBatchRequest(records=junk), timeout=120
    )
    after = rejected_series(consortium.scrape_metrics("a"))
    assert len(after) <= len(before) + 1
    assert set(after) <= {code.value for code in RefusalCode}
    assert {r.code for r in replies.results} == {RefusalCode.UNKNOWN_AUTHOR}
    assert after[RefusalCode.UNKNOWN_AUTHOR] >= before.get(RefusalCode.UNKNOWN_AUTHOR, 0) + 3000


# -- finding 7: no quota on records ---------------------------------------------------------


def bind_user(consortium, clients, user_id: str, roles: list[str]) -> Signer:
    key = nacl.signing.SigningKey.generate()
    member = user_id.split("/")[0]
    binding = ledger_pb2.UserKeyBinding(
        user_id=user_id, public_key=bytes(key.verify_key), roles=roles
    )
    body = ledger_pb2.RecordBody(author=member, nonce=secrets.randbits(63), bind_user=binding)
    reply = clients[member].submit(make_record(clients[member].signer, body))
    assert reply.accepted, reply.reason
    assert committed(clients[member], reply.record_id)
    return Signer(key, consortium.genesis.chain_id)


def user_note(signer: Signer, author: str, data: bytes) -> ledger_pb2.Record:
    body = ledger_pb2.RecordBody(
        author=author, nonce=secrets.randbits(63), note=ledger_pb2.Note(text="bulk", data=data)
    )
    return make_record(signer, body)


def bytes_by(client: LedgerClient, author: str, up_to: int) -> int:
    total = 0
    for item in client.blocks(1, up_to):
        for raw in item.block.records:
            parsed = parse_record(raw)
            assert not isinstance(parsed, str)
            total += len(raw) if parsed.body.author == author else 0
    return total


def test_a_bound_users_notes_stop_at_the_quota_on_every_member(consortium, clients):
    quota = QuotaParams()  # the defaults: the consortium's genesis sets none
    author = "a/mallory"
    signer = bind_user(consortium, clients, author, ["compliance"])
    data = os.urandom(64 * 1024)
    replies = [clients["a"].submit(user_note(signer, author, data)) for _ in range(300)]
    accepted = [r for r in replies if r.accepted]
    refused = [r for r in replies if not r.accepted]
    note_bytes = len(user_note(signer, author, data).SerializeToString(deterministic=True))
    assert 0 < len(accepted) <= quota.user_bytes_per_window // note_bytes
    assert refused and {r.code for r in refused} <= {"quota-exceeded", "rate-limited"}
    first_quota = next(r for r in refused if r.code == RefusalCode.QUOTA_EXCEEDED)
    assert f"quota: user {author!r} may write" in first_quota.reason
    height = max(committed_height(clients["a"], r.record_id) for r in accepted)
    for member_id in IDS:  # every member's ledger holds only what the quota allows
        assert committed(clients[member_id], accepted[-1].record_id)
        assert bytes_by(clients[member_id], author, height + 10) <= quota.user_bytes_per_window
    # the members' own records are not starved
    member_note = clients["a"].submit(clients["a"].note("still writing", data))
    assert member_note.accepted, member_note.reason
    assert committed(clients["a"], member_note.record_id)
