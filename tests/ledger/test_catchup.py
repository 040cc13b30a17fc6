"""Catch-up verdicts of a real ledger node (real SQLite store, real consensus core for a
validator), and the fetcher's penalty box."""

from __future__ import annotations

import nacl.signing
import pytest

from mpc_ledger.ledger.catchup import PenaltyBox
from mpc_ledger.ledger.node import CatchUpOutcome, LedgerNode
from mpc_ledger.ledger.store import SqliteBlockStore
from mpc_ledger.testing.chains import ChainBuilder
from mpc_ledger.testing.consortium import make_consortium

VERDICT_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    return make_consortium(
        tmp_path_factory.mktemp("catchup") / "c", "a,b,c", "--auditor", "--dealer"
    )


@pytest.fixture(params=["auditor", "dealer"], ids=["validator", "follower"])
def node(request, consortium, tmp_path):
    identity = consortium.party(request.param).identity
    store = SqliteBlockStore(tmp_path / "ledger.sqlite", identity.genesis.chain_id)
    node = LedgerNode(identity, store)
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
