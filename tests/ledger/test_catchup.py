"""Catch-up: the verdicts of a real ledger node (real SQLite store, real consensus core for
a validator), the penalty box, and the fetcher against real gRPC servers holding members'
certificates that serve what each test scripts."""

from __future__ import annotations

import threading
import time

import nacl.signing
import pytest

from mpc_ledger.ledger import node as node_module
from mpc_ledger.ledger.catchup import BlockFetcher, PenaltyBox
from mpc_ledger.ledger.driver import ReadyDriver
from mpc_ledger.ledger.node import CatchUpOutcome, LedgerNode
from mpc_ledger.ledger.store import MemoryBlockStore, SqliteBlockStore
from mpc_ledger.net.peers import PeerSet
from mpc_ledger.rulebook import RULEBOOK
from mpc_ledger.testing.chains import ChainBuilder
from mpc_ledger.testing.consortium import make_consortium

VERDICT_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    return make_consortium(
        tmp_path_factory.mktemp("catchup") / "c", "a,b,c", auditor=True, dealer=True
    )


@pytest.fixture(params=["auditor", "dealer"], ids=["validator", "follower"])
def node(request, consortium, tmp_path):
    identity = consortium.party(request.param).identity
    store = SqliteBlockStore(tmp_path / "ledger.sqlite", identity.genesis.chain_id)
    node = LedgerNode(identity, store, RULEBOOK)
    node.start()
    yield node
    node.stop()
    store.close()


def honest_chain(consortium, length):
    keys = {m: consortium.party(m).identity.signing_key for m in consortium.ids}
    builder = ChainBuilder(consortium.genesis, keys)
    for index in range(length):
        builder.commit([builder.note("a", f"note {index}")])
    return builder.blocks


def junk_chain(consortium, length):
    """The real validator ids, certified with keys nobody trusts."""
    genesis = consortium.genesis
    keys = {m.id: nacl.signing.SigningKey.generate() for m in genesis.validators}
    builder = ChainBuilder(genesis, keys)
    for _ in range(length):
        builder.commit([])
    return builder.blocks


def verdict(node, item):
    return node.on_certified(item).result(VERDICT_TIMEOUT_S)


def test_a_block_that_fails_its_checks_is_refused_and_moves_nothing(node, consortium):
    junk = junk_chain(consortium, 1)[0]
    refused = verdict(node, junk)
    assert refused.outcome == CatchUpOutcome.REFUSED
    assert "bad-certificate" in refused.detail
    assert node.height == 0
    assert node.blocks(1, 10) == []


def test_the_next_certified_block_is_accepted_once(node, consortium):
    chain = honest_chain(consortium, 2)
    assert verdict(node, chain[0]).outcome == CatchUpOutcome.ACCEPTED
    assert verdict(node, chain[0]).outcome == CatchUpOutcome.ALREADY_HAD
    assert verdict(node, chain[1]).outcome == CatchUpOutcome.ACCEPTED
    assert node.height == 2
    assert node.wait_height(2, VERDICT_TIMEOUT_S)
    stored = node.blocks(1, 10)
    assert [item.block.header for item in stored] == [item.block.header for item in chain]


def test_a_block_past_the_next_height_is_refused(node, consortium):
    chain = honest_chain(consortium, 3)
    gap = verdict(node, chain[2])
    assert gap.outcome == CatchUpOutcome.REFUSED
    assert gap.detail == "block 3 when 1 is next"
    assert node.height == 0


def test_a_junk_block_at_the_next_height_after_real_ones_is_refused(node, consortium):
    chain = honest_chain(consortium, 1)
    assert verdict(node, chain[0]).outcome == CatchUpOutcome.ACCEPTED
    # a block 2 built on a different block 1, with a valid-looking certificate shape
    junk = junk_chain(consortium, 2)[1]
    assert verdict(node, junk).outcome == CatchUpOutcome.REFUSED
    assert node.height == 1


@pytest.mark.parametrize("member", ["auditor", "dealer"], ids=["validator", "follower"])
def test_the_node_commits_through_the_ready_driver_on_any_store(member, consortium, monkeypatch):
    """The daemon's node runs the driver the simulator runs (here on the in-memory store)."""
    steps = []

    class Recording(ReadyDriver):
        def _persist(self, ready):
            super()._persist(ready)
            steps.append(("persist", [c.block.header.height for c in ready.committed]))

        def _apply(self, ready):
            super()._apply(ready)
            steps.append(("apply", [c.block.header.height for c in ready.committed]))

    monkeypatch.setattr(node_module, "ReadyDriver", Recording)
    store = MemoryBlockStore()
    node = LedgerNode(consortium.party(member).identity, store, RULEBOOK)
    node.start()
    try:
        chain = honest_chain(consortium, 2)
        assert [verdict(node, item).outcome for item in chain] == [CatchUpOutcome.ACCEPTED] * 2
        assert node.wait_height(2, VERDICT_TIMEOUT_S)
    finally:
        node.stop()
    assert [step for step in steps if step[1]] == [
        ("persist", [1]),
        ("apply", [1]),
        ("persist", [2]),
        ("apply", [2]),
    ]
    assert [item.block.header for item in store.blocks(1, 10)] == [
        item.block.header for item in chain
    ]


def test_the_penalty_box_holds_a_peer_for_a_while_and_longer_each_time():
    box = PenaltyBox(first_s=60, max_s=200)
    assert not box.holds("liar", 0.0)
    assert box.punish("liar", 100.0) == 60
    assert box.holds("liar", 159.9)
    assert not box.holds("honest", 120.0)
    assert not box.holds("liar", 160.0)
    assert box.punish("liar", 200.0) == 120
    assert box.holds("liar", 319.0)
    assert box.punish("liar", 400.0) == 200  # capped
    for _ in range(100):  # a peer punished without end does not overflow the doubling
        box.punish("liar", 1000.0)
    assert box.holds("liar", 1199.0)
    assert not box.holds("liar", 1200.0)


# -- the fetcher against real gRPC servers with members' certificates ------------------


class Clock:
    def __init__(self):
        self.now_s = 1000.0

    def __call__(self):
        return self.now_s


@pytest.fixture
def behind(consortium, tmp_path):
    """Validator c at height 0 with a fetcher whose penalty box runs on a clock we move."""
    identity = consortium.party("c").identity
    store = SqliteBlockStore(tmp_path / "c.sqlite", identity.genesis.chain_id)
    node = LedgerNode(identity, store, RULEBOOK)
    node.start()
    peers = PeerSet(identity)
    clock, box = Clock(), PenaltyBox(first_s=60)
    fetcher = BlockFetcher(peers, identity.genesis, node, clock_s=clock, penalties=box)
    yield node, fetcher, clock, box
    node.stop()
    peers.close()
    store.close()


def from_chain(chain):
    return lambda first, count: chain[first - 1 : first - 1 + count]


def wait_until(predicate, what):
    deadline = time.monotonic() + VERDICT_TIMEOUT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def lane_running(peer_id):
    return any(t.name == f"block-fetch-{peer_id}" for t in threading.enumerate())


def test_a_peer_that_serves_junk_after_real_blocks_is_boxed_and_not_heard(
    behind, serve, consortium
):
    node, fetcher, clock, box = behind
    chain = honest_chain(consortium, 5)
    liar = serve("dealer", from_chain([*chain[:2], junk_chain(consortium, 3)[2]]))
    honest = serve("a", from_chain(chain))
    fetcher.peer_ahead("dealer", 0, 5)
    wait_until(lambda: box.holds("dealer", clock()), "the liar to be boxed")
    assert node.height == 2  # the real blocks it served count; the junk does not
    wait_until(lambda: not lane_running("dealer"), "the liar's lane to end")
    fetcher.peer_ahead("dealer", 2, 5)  # boxed: not heard
    assert not lane_running("dealer")
    fetcher.peer_ahead("a", 2, 5)
    assert node.wait_height(5, VERDICT_TIMEOUT_S)
    assert liar.asked == 1 and honest.asked == 1
    assert [item.block.header for item in node.blocks(1, 10)] == [i.block.header for i in chain]
    clock.now_s += 61  # the stay is over: its claims are heard again
    fetcher.peer_ahead("dealer", 5, 6)
    wait_until(lambda: liar.asked == 2, "the liar to be asked again")


@pytest.mark.parametrize(
    "served",
    [
        pytest.param(lambda chain, junk: [chain[1]], id="out-of-order"),
        pytest.param(lambda chain, junk: [junk[0], None], id="junk-then-broken-stream"),
    ],
)
def test_a_peer_that_breaks_the_rules_is_boxed(behind, serve, consortium, served):
    node, fetcher, clock, box = behind
    items = served(honest_chain(consortium, 2), junk_chain(consortium, 1))
    serve("dealer", lambda first, count: items)
    fetcher.peer_ahead("dealer", 0, 2)
    wait_until(lambda: box.holds("dealer", clock()), "the peer to be boxed")
    assert node.height == 0


def test_a_peer_that_sends_nothing_is_not_blamed(behind, serve):
    node, fetcher, clock, box = behind
    silent = serve("dealer", lambda first, count: [])
    fetcher.peer_ahead("dealer", 0, 3)
    wait_until(lambda: silent.asked == 1 and not lane_running("dealer"), "the lane to end")
    assert not box.holds("dealer", clock())
    assert node.height == 0
    fetcher.peer_ahead("dealer", 0, 3)  # its next claim opens a lane again
    wait_until(lambda: silent.asked == 2, "the peer to be asked again")
