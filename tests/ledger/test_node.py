"""The ledger node's own input path: its bounded event queue and its commit waiters, on a
real node (a member's real identity, a real SQLite store) driven in-process."""

from __future__ import annotations

import os
import time

import pytest

from mpc_ledger.identity.signing import Signer
from mpc_ledger.ledger.node import LedgerNode, NodeOptions
from mpc_ledger.ledger.records import make_record
from mpc_ledger.ledger.refusals import RefusalCode
from mpc_ledger.ledger.store import SqliteBlockStore
from mpc_ledger.metrics import DaemonMetrics
from mpc_ledger.proto.v1 import ledger_pb2, ledger_service_pb2
from mpc_ledger.rulebook import RULEBOOK
from mpc_ledger.testing.consortium import make_consortium

QUEUE_MAX_EVENTS = 50


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    return make_consortium(tmp_path_factory.mktemp("node") / "c", "a,b,c", dealer=True)


@pytest.fixture
def node(consortium, tmp_path):
    """The dealer's node (a follower: no consensus traffic of its own), not started."""
    identity = consortium.party("dealer").identity
    store = SqliteBlockStore(tmp_path / "ledger.sqlite", identity.genesis.chain_id)
    node = LedgerNode(
        identity, store, RULEBOOK, options=NodeOptions(queue_max_events=QUEUE_MAX_EVENTS)
    )
    node.metrics = DaemonMetrics()
    yield node
    node.stop()
    store.close()


def note(consortium, text):
    party = consortium.party("dealer")
    body = ledger_pb2.RecordBody(author="dealer", note=ledger_pb2.Note(text=text))
    record = make_record(Signer(party.identity.signing_key, party.genesis.chain_id), body)
    return record.SerializeToString(deterministic=True)


def dropped(node, kind):
    value = node.metrics.registry.get_sample_value(
        "mpc_ledger_gossip_dropped_total", {"kind": kind}
    )
    return value or 0


def test_a_flood_of_gossip_fills_the_queue_to_its_bound_and_is_counted(node, consortium):
    flood = 4 * QUEUE_MAX_EVENTS
    started = time.monotonic()
    for height in range(flood):  # the loop is not running: nothing drains the queue
        node.on_gossip("a", ledger_service_pb2.GossipMessage(tip_height=height))
    assert time.monotonic() - started < 5  # a peer's stream is never held up
    assert node.queued_events == QUEUE_MAX_EVENTS
    assert node.stats.gossip_dropped == flood - QUEUE_MAX_EVENTS
    assert dropped(node, "tip_height") == flood - QUEUE_MAX_EVENTS
    # callers that want an answer wait for room up to their timeout, then hear why not
    busy = node.submit(note(consortium, "while the queue is full"), timeout_s=0.2)
    assert (busy.accepted, busy.code) == (False, RefusalCode.BUSY)
    assert busy.reason == "busy: the ledger node's queue stayed full for 0.2 s"
    assert node.wait_committed(os.urandom(32), 0.2) is None
    with pytest.raises(TimeoutError, match=r"queue stayed full for 0\.2 s"):
        node.query(lambda state: state.size, timeout_s=0.2)
    # once the loop runs it drains the flood and answers again
    node.start()
    accepted = node.submit(note(consortium, "after the flood"), timeout_s=10)
    assert accepted.accepted, accepted.reason
    assert node.query(lambda state: state.size) == 0


def test_the_node_stops_with_a_full_queue(node):
    for height in range(QUEUE_MAX_EVENTS + 1):
        node.on_gossip("a", ledger_service_pb2.GossipMessage(tip_height=height))
    node.start()
    started = time.monotonic()
    node.stop(timeout_s=10)
    assert time.monotonic() - started < 10
    assert not node._thread.is_alive()


def test_timed_out_waits_leave_no_waiter_behind(node, consortium):
    node.start()
    for _ in range(200):  # records that will never commit, waited for as the runner does
        assert node.wait_committed(os.urandom(32), 0.001) is None
    # the loop answers this after every wait above gave up: it has forgotten them all
    assert node.query(lambda state: node.waiters) == 0
