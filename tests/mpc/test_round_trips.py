"""Sequential round trips from hand-made frame events, then from real communicators in memory."""

from concurrent import futures

import torch

from mpc_ledger.mpc.communicator import CommunicatorSetup, MpcCommunicator
from mpc_ledger.mpc.round_trips import PeerTraffic, RoundTripCounter, training_report
from mpc_ledger.testing.mpc_links import MemoryHub

DEALER = 2


def test_a_send_then_the_wait_for_its_reply_is_one_round_trip():
    counter = RoundTripCounter(dealer_ranks={DEALER})
    counter.sent(1, 100)
    counter.received(1, 40)
    counts = counter.snapshot()
    assert (counts.peer_round_trips, counts.dealer_round_trips) == (1, 0)
    assert counts.peers[1] == PeerTraffic(1, 100, 1, 40)


def test_a_batch_of_sends_then_their_replies_counts_once():
    counter = RoundTripCounter()
    for peer in (1, 2, 3):
        counter.sent(peer, 10)
    for peer in (1, 2, 3):
        counter.received(peer, 10)
    assert counter.snapshot().round_trips == 1


def test_a_streamed_frame_is_no_round_trip_and_the_sends_before_it_still_wait():
    counter = RoundTripCounter(dealer_ranks={DEALER})
    counter.sent(1, 10)  # this party's share of an opening
    counter.received(DEALER, 64, streamed=True)  # the dealer's answer, sent ahead unasked
    counts = counter.snapshot()
    assert (counts.peer_round_trips, counts.dealer_round_trips) == (0, 0)
    assert counts.peers[DEALER] == PeerTraffic(0, 0, 1, 64)
    counter.received(1, 10)  # the peer's share: the opening's one round trip
    counts = counter.snapshot()
    assert (counts.peer_round_trips, counts.dealer_round_trips) == (1, 0)
    counter.sent(DEALER, 8)  # an ordinary request, then its answer: a dealer round trip
    counter.received(DEALER, 64)
    assert counter.snapshot().dealer_round_trips == 1


def test_a_receive_with_no_send_before_it_adds_nothing():
    counter = RoundTripCounter()
    counter.received(1, 10)  # a broadcast this party only listens to
    counter.received(1, 10)
    assert counter.snapshot().round_trips == 0
    counter.sent(1, 10)
    counter.sent(1, 10)  # two sends in a row, then one wait: still one round trip
    counter.received(1, 10)
    assert counter.snapshot().round_trips == 1


def test_sequential_exchanges_count_one_each_and_the_dealer_apart():
    counter = RoundTripCounter(dealer_ranks={DEALER})
    for _ in range(3):  # three requests to the dealer, each answered before the next
        counter.sent(DEALER, 50)
        counter.received(DEALER, 500)
    for _ in range(2):  # two multiplications with the peer
        counter.sent(1, 80)
        counter.received(1, 80)
    counts = counter.snapshot()
    assert (counts.peer_round_trips, counts.dealer_round_trips, counts.round_trips) == (2, 3, 5)
    assert counts.peers[DEALER] == PeerTraffic(3, 150, 3, 1500)


def test_a_round_trip_belongs_to_the_peer_received_from():
    counter = RoundTripCounter(dealer_ranks={DEALER})
    counter.sent(DEALER, 1)
    counter.received(1, 1)
    assert (counter.snapshot().peer_round_trips, counter.snapshot().dealer_round_trips) == (1, 0)


def test_the_training_window_gives_per_step_figures():
    counter = RoundTripCounter(dealer_ranks={DEALER})
    counter.sent(1, 999)  # set-up before training: excluded
    counter.received(1, 999)
    start = counter.snapshot()
    for _ in range(4):  # four steps, each: one dealer and two peer round trips
        counter.sent(DEALER, 10)
        counter.received(DEALER, 30)
        for _ in range(2):
            counter.sent(1, 20)
            counter.received(1, 20)
    end = counter.snapshot()
    report = training_report(start, end, steps=4, seconds=2.0, name_of="abd".__getitem__)
    assert report["steps"] == 4
    assert report["totals"] == {
        "round_trips": 12,
        "peer_round_trips": 8,
        "dealer_round_trips": 4,
        "frames": 24,
        "bytes": 4 * (10 + 30 + 4 * 20),
    }
    per_step = report["per_step"]
    assert (per_step["round_trips"], per_step["dealer_round_trips"]) == (3.0, 1.0)
    assert per_step["seconds"] == 0.5
    assert per_step["per_peer"]["b"] == {
        "frames_sent": 2.0,
        "bytes_sent": 40.0,
        "frames_received": 2.0,
        "bytes_received": 40.0,
    }
    assert per_step["per_peer"]["d"]["bytes_received"] == 30.0


def _communicators(members):
    hub = MemoryHub(members)
    comms = []
    for rank in range(len(members)):
        setup = CommunicatorSetup(
            job_id="job",
            rank=rank,
            world_size=len(members),
            members=members,
            link_factory=lambda r=rank: hub.link(r),
            tuple_provider="trusted-first-party",
            allow_trusted_first_party=True,
            peer_timeout_s=5.0,
        )
        comms.append(MpcCommunicator(setup, init_ttp=False))
    return comms


def test_the_communicator_counts_an_all_reduce_once_and_a_broadcast_at_its_receivers_not_at_all():
    comms = _communicators(("a", "b", "c"))

    def program(comm):
        before = comm.traffic.snapshot()
        comm.all_reduce(torch.ones(4, dtype=torch.long))
        comm.all_reduce(torch.ones(4, dtype=torch.long))
        comm.broadcast(torch.zeros(2, dtype=torch.long), src=0)
        return comm.traffic.snapshot().minus(before)

    with futures.ThreadPoolExecutor(3) as pool:
        windows = [f.result(timeout=30) for f in [pool.submit(program, c) for c in comms]]
    # two all-reduces in sequence: two round trips each party; the broadcast's source only
    # sends (its next receive would count it), its receivers only listen
    assert [w.round_trips for w in windows] == [2, 2, 2]
    assert windows[0].peers[1].frames_sent == 3 and windows[1].peers[0].frames_received == 3
    assert all(w.dealer_round_trips == 0 for w in windows)
