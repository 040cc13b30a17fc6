"""The communicator's collectives, labels and checks over in-memory links (no sockets).

CrypTen is imported only for its verbose setting, which decides what its statistics count.

Each party runs in its own thread with its own `MpcCommunicator` instance;
`MemoryHub` stands in for the relay.
"""

import sys
import time
from concurrent import futures

import pytest
import torch
from torch.distributed import ReduceOp

from mpc_ledger.mpc.communicator import (
    CommunicatorSetup,
    Group,
    MpcCommunicator,
    TorchDistributedShim,
)
from mpc_ledger.mpc.crypten_compat import import_crypten
from mpc_ledger.mpc.errors import (
    PeerFailedError,
    PeerTimeoutError,
    ProtocolViolation,
    TupleProviderRefused,
)
from mpc_ledger.mpc.transcript import compare_transcripts
from mpc_ledger.testing.mpc_links import MemoryHub

MEMBERS = ("a", "b", "c")


def parties(n=3, *, dealer=False, tamper=None, timeout_s=5.0):
    members = MEMBERS[:n] + (("dealer",) if dealer else ())
    hub = MemoryHub(members, tamper)
    world = n
    comms = []
    for rank in range(len(members)):
        setup = CommunicatorSetup(
            job_id="job",
            rank=rank,
            world_size=world,
            members=members,
            link_factory=lambda r=rank: hub.link(r),
            tuple_provider="dealer" if dealer else "trusted-first-party",
            allow_trusted_first_party=not dealer,
            peer_timeout_s=timeout_s,
        )
        comms.append(MpcCommunicator(setup, init_ttp=dealer))
    return hub, comms


def spmd(comms, program):
    with futures.ThreadPoolExecutor(len(comms)) as pool:
        return [f.result(timeout=30) for f in [pool.submit(program, c) for c in comms]]


def test_all_reduce_sum_and_bxor_batched():
    _, comms = parties()

    def program(comm):
        mine = torch.full((2, 3), 10**18, dtype=torch.long) * (comm.rank + 1)
        total = comm.all_reduce(mine)  # wraps around like int64 shares do
        xor = comm.all_reduce(
            [torch.tensor([1 << comm.rank]), torch.tensor([comm.rank])],
            op=ReduceOp.BXOR,
            batched=True,
        )
        return total, xor

    for total, xor in spmd(comms, program):
        expected = torch.full((2, 3), 10**18, dtype=torch.long) * 6
        assert torch.equal(total, expected)
        assert xor[0].item() == 0b111 and xor[1].item() == 0 ^ 1 ^ 2


def test_point_to_point_broadcast_reduce_gather_scatter_barrier_objects():
    _, comms = parties()

    def program(comm):
        out = {}
        rank = comm.rank
        if rank == 0:
            comm.send(torch.arange(3), 1)
            handle = comm.irecv(seed := torch.zeros(1, dtype=torch.long), src=2)
            handle.wait()
            out["seed"] = seed.item()
        elif rank == 1:
            out["recv"] = comm.recv(torch.zeros(3, dtype=torch.long), 0).tolist()
        else:
            comm.isend(torch.tensor(42), 0).wait()  # 0-d into a 1-element buffer
        value = torch.tensor([7]) if rank == 2 else torch.zeros(1, dtype=torch.long)
        out["broadcast"] = comm.broadcast(value, 2).item()
        reduced = comm.reduce(torch.tensor([rank + 1]), 1)
        out["reduce"] = None if reduced is None else reduced.item()
        out["gather"] = [
            None if t is None else t.item() for t in comm.gather(torch.tensor([rank]), 0)
        ]
        out["all_gather"] = [t.item() for t in comm.all_gather(torch.tensor([rank * 10]))]
        pieces = [torch.tensor([i * 100]) for i in range(3)] if rank == 0 else None
        out["scatter"] = comm.scatter(pieces, 0, size=torch.Size([1])).item()
        comm.barrier()
        size = comm.broadcast_obj(torch.Size([2, 3]) if rank == 1 else None, 1)
        out["size"] = tuple(size)
        if rank == 0:
            comm.send_obj({"function": "square", "args": (torch.Size([2]),)}, 2)
        if rank == 2:
            out["obj"] = comm.recv_obj(0)
        return out

    results = spmd(comms, program)
    assert results[0]["seed"] == 42 and results[1]["recv"] == [0, 1, 2]
    assert [r["broadcast"] for r in results] == [7, 7, 7]
    assert [r["reduce"] for r in results] == [None, 6, None]
    assert results[0]["gather"] == [0, 1, 2] and results[1]["gather"] == [None]
    assert all(r["all_gather"] == [0, 10, 20] for r in results)
    assert [r["scatter"] for r in results] == [0, 100, 200]
    assert all(r["size"] == (2, 3) for r in results)
    assert results[2]["obj"] == {"function": "square", "args": (torch.Size([2]),)}
    transcripts = {c.rank: c.snapshot("end") for c in comms}
    assert compare_transcripts(transcripts) == []


def test_our_statistics_count_always_and_cryptens_only_in_verbose_mode():
    crypten = import_crypten()
    _, comms = parties(2)

    def exchange(comm):
        comm.all_reduce(torch.zeros(4, dtype=torch.long))
        comm.broadcast_obj({"seed": 2**63} if comm.rank == 0 else None, 0)

    spmd(comms, exchange)
    assert [c.get_communication_stats() for c in comms] == [
        {"rounds": 0, "bytes": 0, "time": 0}
    ] * 2
    with crypten.cfg.temp_override({"communicator.verbose": True}):
        spmd(comms, exchange)
    sender, receiver = (c.get_communication_stats() for c in comms)
    assert sender["rounds"] == receiver["rounds"] == 2 and sender["time"] > 0
    # CrypTen counts the object given to broadcast_obj: the dict at the source, None elsewhere
    assert sender["bytes"] == 2 * 4 * 8 + sys.getsizeof({"seed": 2**63})
    assert receiver["bytes"] == 2 * 4 * 8 + sys.getsizeof(None)
    ours = comms[0].transport_stats()
    assert ours["rounds"] == 4 and ours["bytes"] == 2 * (2 * 4 * 8 + sys.getsizeof({"seed": 0}))
    comms[0].reset_communication_stats()
    assert comms[0].get_communication_stats() == {"rounds": 0, "bytes": 0, "time": 0}
    assert comms[0].transport_stats() == ours


def test_time_blocked_waiting_for_a_frame_is_counted_as_wait():
    _, comms = parties(2)

    def program(comm):
        if comm.rank == 0:
            time.sleep(0.3)  # the receiver is blocked all this while
            comm.send(torch.arange(3), 1)
        else:
            comm.recv(torch.zeros(3, dtype=torch.long), 0)
        return comm.transport_stats()["wait_s"]

    sender_wait_s, receiver_wait_s = spmd(comms, program)
    assert sender_wait_s == 0.0 and receiver_wait_s >= 0.25


def test_dealer_groups_and_ranks():
    _, comms = parties(2, dealer=True)
    dealer = comms[2]
    assert dealer.get_ttp_rank() == 2 and dealer.ttp_group == Group((0, 1, 2))
    assert dealer.ttp_comm_group == Group((0, 2)) and dealer.main_group == Group((0, 1))

    def program(comm):
        result = torch.zeros(2, dtype=torch.long)
        if comm.rank in (0, 2):
            if comm.rank == 2:
                result = torch.tensor([5, 6])
            comm.broadcast(result, 2, comm.ttp_comm_group)
        comm.barrier(comm.ttp_group)
        return result.tolist()

    assert spmd(comms, program) == [[5, 6], [0, 0], [5, 6]]


def test_trusted_first_party_is_refused_unless_allowed():
    hub = MemoryHub(("a", "b"))
    setup = CommunicatorSetup("job", 0, 2, ("a", "b"), lambda: hub.link(0), "trusted-first-party")
    with pytest.raises(TupleProviderRefused, match="party 0 see every Beaver triple"):
        MpcCommunicator(setup, init_ttp=False)
    dealer_job = CommunicatorSetup("job", 0, 2, ("a", "b", "d"), lambda: hub.link(0), "dealer")
    with pytest.raises(TupleProviderRefused, match=r"set crypten's mpc\.provider to TTP"):
        MpcCommunicator(dealer_job, init_ttp=False)


def test_a_silent_peer_times_out_with_its_name():
    _, comms = parties(2, timeout_s=0.3)
    with pytest.raises(
        PeerTimeoutError, match=r"party b \(rank 1\) sent nothing expected for 0.3s"
    ):
        comms[0].recv(torch.zeros(1, dtype=torch.long), 1)


def test_a_failure_notice_ends_the_wait_at_once():
    hub, comms = parties(2, timeout_s=30)
    hub.fail("b", "its worker stopped without finishing the job", rank=1)
    with pytest.raises(PeerFailedError, match=r"party b \(rank 1\) failed: its worker stopped"):
        comms[0].recv(torch.zeros(1, dtype=torch.long), 1)


def test_duplicated_frames_are_refused_naming_the_peer():
    _, comms = parties(2, tamper=lambda f: [f, f])

    def program(comm):
        if comm.rank == 0:
            comm.send(torch.tensor([1]), 1)
            return None
        comm.recv(torch.zeros(1, dtype=torch.long), 0)
        return comm.recv(torch.zeros(1, dtype=torch.long), 0)  # finds only the copy

    with pytest.raises(
        ProtocolViolation, match=r"refused a frame from a \(rank 0\): replayed frame from a"
    ):
        spmd(comms, program)


def test_a_frame_stamped_with_another_member_is_refused():
    def impersonate(frame):
        frame.sender_member = "c"
        return [frame]

    _, comms = parties(2, tamper=impersonate)
    comms[0].send(torch.tensor([1]), 1)
    with pytest.raises(ProtocolViolation, match=r"frame for rank 0 \(a\) arrived from member 'c'"):
        comms[1].recv(torch.zeros(1, dtype=torch.long), 0)


def test_wrong_shape_or_kind_is_refused():
    _, comms = parties(2)
    comms[0].send(torch.zeros(3, dtype=torch.long), 1)
    with pytest.raises(ProtocolViolation, match=r"sent \(dtype, elements\) \[\('int64', 3\)\]"):
        comms[1].recv(torch.zeros(2, dtype=torch.long), 0)
    comms[0].send_obj("x", 1)
    with pytest.raises(ProtocolViolation, match="expected a FRAME_KIND_TENSORS frame"):
        comms[1].recv(torch.zeros(2, dtype=torch.long), 0)


def test_large_tensors_are_chunked_and_hashed_once():
    _, comms = parties(2)
    big = torch.arange(1_000_000, dtype=torch.long)  # 8 MB: two chunks
    comms[0].send(big, 1)
    assert torch.equal(comms[1].recv(torch.zeros_like(big), 0), big)
    assert compare_transcripts({0: comms[0].snapshot("e"), 1: comms[1].snapshot("e")}) == []
    assert comms[1].snapshot("e").channel(0, 1).messages == 1


def test_cryptens_statistics_omit_the_dealer_seed_exchange_it_makes_on_torch_distributed():
    crypten = import_crypten()
    _, comms = parties(2)
    shim = TorchDistributedShim()
    try:
        with crypten.cfg.temp_override({"communicator.verbose": True}):
            MpcCommunicator.instance = comms[0]
            shim.isend(torch.tensor([5]), 1)
            MpcCommunicator.instance = comms[1]
            received = torch.zeros(1, dtype=torch.long)
            shim.irecv(received, 0).wait()
            comms[1].send(torch.tensor([6]), 0)  # through the communicator: counted
    finally:
        MpcCommunicator.instance = None
    assert received.item() == 5
    assert comms[0].get_communication_stats()["rounds"] == 0
    assert comms[1].get_communication_stats()["rounds"] == 1
    assert comms[0].transport_stats()["rounds"] == 1 and comms[1].transport_stats()["rounds"] == 2
