"""The PSI (`mpc_ledger.mpc.psi`) against plaintext set intersection, one thread per party.

* An in-memory queue network (a fake link, no sockets) that records every payload:
  correctness for 2, 3 and 4 parties, the aligned property (``rows[k]`` of every party
  is the same id), id encodings, and what the payloads never contain (no id, raw or
  hashed to the group).
* Scripted peers that send garbage: the error names the peer.
* The real `MpcCommunicator` over `MemoryHub`: the `MpcFrame` bytes that would go to
  the relay, and the parties' transcripts agree.
* Once over real party daemons with the relay (mTLS), a process per rank: this file
  run as a script is that process (``python test_psi.py --socket ...``).
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from pathlib import Path

import numpy as np
import pytest

from mpc_ledger.mpc import psi
from mpc_ledger.mpc.psi import CommunicatorTransport, PsiError, PsiResult, encode_ids, intersect

JOB = b"job-psi-1"
TIMEOUT_S = 30.0
Id = int | str


# --- transports -------------------------------------------------------------------------


class QueueNetwork:
    """One unbounded queue per ordered pair of ranks; keeps every payload sent."""

    def __init__(self, parties: int) -> None:
        self.queues = {
            (src, dst): queue.Queue[bytes]()
            for src in range(parties)
            for dst in range(parties)
            if src != dst
        }
        self.sent: list[tuple[int, int, bytes]] = []  # (src, dst, payload)
        self._lock = threading.Lock()

    def transport(self, rank: int) -> QueueTransport:
        return QueueTransport(self, rank)

    def payloads_from(self, rank: int) -> list[bytes]:
        return [payload for src, _dst, payload in self.sent if src == rank]


class QueueTransport:
    def __init__(self, network: QueueNetwork, rank: int) -> None:
        self.network = network
        self.rank = rank

    def send_bytes(self, dst: int, payload: bytes) -> None:
        with self.network._lock:
            self.network.sent.append((self.rank, dst, bytes(payload)))
        self.network.queues[(self.rank, dst)].put(bytes(payload))

    def recv_bytes(self, src: int) -> bytes:
        try:
            return self.network.queues[(src, self.rank)].get(timeout=TIMEOUT_S)
        except queue.Empty:
            raise TimeoutError(f"rank {self.rank}: nothing from rank {src}") from None


class ScriptedTransport:
    """The other parties, played from a script: ``replies[src]`` is what src sends, in order."""

    def __init__(self, replies: dict[int, list[bytes]]) -> None:
        self.replies = {src: list(messages) for src, messages in replies.items()}
        self.sent: list[tuple[int, bytes]] = []

    def send_bytes(self, dst: int, payload: bytes) -> None:
        self.sent.append((dst, payload))

    def recv_bytes(self, src: int) -> bytes:
        messages = self.replies.get(src)
        if not messages:
            raise AssertionError(f"the protocol asked rank {src} for more than the script has")
        return messages.pop(0)


def run_psi(
    id_sets: Sequence[Sequence[Id]],
    transports: Callable[[int], psi.PsiTransport],
    *,
    job_id: bytes = JOB,
) -> list[PsiResult]:
    parties = len(id_sets)
    sizes = [len(ids) for ids in id_sets]

    def party(rank: int) -> PsiResult:
        return intersect(
            encode_ids(id_sets[rank], "customer_id"),
            rank=rank,
            parties=parties,
            job_id=job_id,
            transport=transports(rank),
            set_sizes=sizes,
        )

    with futures.ThreadPoolExecutor(parties) as pool:
        running = [pool.submit(party, rank) for rank in range(parties)]
        return [future.result(timeout=TIMEOUT_S * 2) for future in running]


def run_queue(
    id_sets: Sequence[Sequence[Id]], job_id: bytes = JOB
) -> tuple[list[PsiResult], QueueNetwork]:
    network = QueueNetwork(len(id_sets))
    return run_psi(id_sets, network.transport, job_id=job_id), network


def check_aligned(id_sets: Sequence[Sequence[Id]], results: Sequence[PsiResult]) -> list[Id]:
    """Row ``rows[k]`` of every party holds the same id; the ids are exactly the intersection."""
    expected = set(id_sets[0]).intersection(*map(set, id_sets[1:]))
    aligned = [
        [ids[row] for row in result.rows] for ids, result in zip(id_sets, results, strict=True)
    ]
    for rank, ids in enumerate(aligned):
        assert ids == aligned[0], f"rank {rank}'s rows are not aligned with rank 0's"
        assert len(set(results[rank].rows)) == len(results[rank].rows)
    assert set(aligned[0]) == expected and len(aligned[0]) == len(expected)
    assert all(result.size == len(expected) for result in results)
    return aligned[0]


def random_sets(seed: int, parties: int, size: int = 150) -> list[list[Id]]:
    rng = random.Random(seed)
    universe = [f"user-{n:06d}@example.org" for n in rng.sample(range(10**6), size * 2)]
    return [rng.sample(universe, size - 10 * rank) for rank in range(parties)]


# --- correctness ------------------------------------------------------------------------


@pytest.mark.parametrize("parties", [2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_sets_match_the_plaintext_intersection(parties, seed):
    id_sets = random_sets(seed, parties)
    results, network = run_queue(id_sets)
    common = check_aligned(id_sets, results)
    assert common, f"seed {seed}: the sets should share ids"
    for rank, result in enumerate(results):
        assert result.sent_bytes == sum(map(len, network.payloads_from(rank)))


@pytest.mark.parametrize("parties", [2, 3, 4])
def test_empty_full_and_one_element_intersections(parties):
    disjoint = [[f"p{rank}-{n}" for n in range(20)] for rank in range(parties)]
    results, _ = run_queue(disjoint)
    assert check_aligned(disjoint, results) == []

    rng = random.Random(parties)
    base = [f"shared-{n}" for n in range(40)]
    identical = [rng.sample(base, len(base)) for _ in range(parties)]  # different orders
    results, _ = run_queue(identical)
    assert sorted(check_aligned(identical, results)) == sorted(base)
    assert len({result.rows for result in results}) > 1  # each party's own row numbers

    one = [[f"p{rank}-{n}" for n in range(15)] + ["the-one"] for rank in range(parties)]
    one = [rng.sample(ids, len(ids)) for ids in one]
    results, _ = run_queue(one)
    assert check_aligned(one, results) == ["the-one"]


def test_a_party_without_ids():
    id_sets: list[list[Id]] = [["a", "b", "c"], [], ["b", "c"]]
    results, _ = run_queue(id_sets)
    assert check_aligned(id_sets, results) == []


def test_integer_ids_and_the_canonical_order_is_shared():
    rng = random.Random(7)
    shared = [-(2**63), 2**63 - 1, 0, -1] + [rng.randrange(-(2**63), 2**63) for _ in range(26)]
    id_sets = [
        rng.sample(shared + rng.sample(range(10**12), 50), 80),
        rng.sample(shared + rng.sample(range(10**12, 2 * 10**12), 20), 50),
    ]
    results, _ = run_queue(id_sets)
    assert sorted(check_aligned(id_sets, results)) == sorted(shared)


def test_ids_of_different_types_never_match():
    results, _ = run_queue([[7, 8, 9], ["7", "8", "9"]])
    assert [result.rows for result in results] == [(), ()]
    id_sets: list[list[Id]] = [[7, 8, 12], [8, 9, 7]]
    results, _ = run_queue(id_sets)
    assert sorted(check_aligned(id_sets, results)) == [7, 8]


def test_encode_ids_is_type_tagged_and_refuses_mixed_types():
    assert encode_ids([7], "id") != encode_ids(["7"], "id")
    with pytest.raises(PsiError, match=r"row 3 holds a str, earlier rows a int"):
        encode_ids([1, 2, "3"], "id")
    with pytest.raises(PsiError, match=r"row 1 holds a bool"):
        encode_ids([True], "id")
    with pytest.raises(PsiError, match=r"row 2 holds a float"):
        encode_ids([1, 2.0], "id")


@pytest.mark.parametrize(
    "ids, secret",
    [
        (["alice@example.org", "bob@example.org", "alice@example.org"], "alice"),
        ([4242424242, 5, 4242424242], "4242424242"),
    ],
)
def test_duplicate_ids_name_both_rows_never_the_id(ids, secret):
    with pytest.raises(PsiError, match=r"'customer_id': rows 1 and 3 hold the same id") as info:
        encode_ids(ids, "customer_id")
    assert secret not in str(info.value)


def test_null_and_oversized_ids_are_refused_without_the_value():
    with pytest.raises(PsiError, match=r"row 2 has no id \(null\)"):
        encode_ids(["a", None, "c"], "customer_id")
    with pytest.raises(PsiError, match=r"row 1's id does not fit in 64 bits") as info:
        encode_ids([2**64 + 12345], "customer_id")
    assert "12345" not in str(info.value)


def test_set_sizes_mismatch_is_refused_before_anything_is_sent():
    transport = ScriptedTransport({})
    with pytest.raises(PsiError, match="this party has 2 ids; the job says 3"):
        intersect(
            encode_ids(["a", "b"], "id"),
            rank=0,
            parties=2,
            job_id=JOB,
            transport=transport,
            set_sizes=[3, 2],
        )
    assert transport.sent == []
    with pytest.raises(ValueError, match="a PSI needs 2 or more"):
        intersect([], rank=0, parties=1, job_id=JOB, transport=transport)


# --- peers that send garbage ------------------------------------------------------------


def describe(rank: int) -> str:
    return f"member-{'abcd'[rank]} (rank {rank})"


def points(count: int, tag: str = "x") -> bytes:
    """``count`` valid group elements (hash points of some other job), concatenated."""
    return b"".join(psi._hash_points(encode_ids([f"{tag}{n}" for n in range(count)], "id"), b"j"))


def positions(*values: int) -> bytes:
    return np.asarray(values, dtype="<u4").tobytes()


def run_against_script(rank: int, parties: int, replies: dict[int, list[bytes]], **kwargs):
    ids = encode_ids(["a", "b", "c"], "id")
    return intersect(
        ids,
        rank=rank,
        parties=parties,
        job_id=JOB,
        transport=ScriptedTransport(replies),
        describe=describe,
        **kwargs,
    )


@pytest.mark.parametrize(
    "ring_message, error",
    [
        (b"\x01" * 33, r"member-a \(rank 0\) sent 33 bytes, not a list of group elements"),
        (b"\xff" * 32, r"member-a \(rank 0\) sent a value that is not a ristretto255 element"),
        (b"\x00" * 32, r"member-a \(rank 0\) sent a value that is not a ristretto255 element"),
        (points(2) + b"\xff" * 32, r"member-a \(rank 0\) sent a value that is not a ristretto"),
    ],
    ids=["33 bytes", "not canonical", "identity", "third not canonical"],
)
def test_garbage_in_the_ring_names_the_peer(ring_message, error):
    with pytest.raises(PsiError, match=error):
        run_against_script(1, 2, {0: [ring_message]})


def test_a_ring_message_of_the_wrong_size_names_the_peer():
    with pytest.raises(
        PsiError,
        match=r"member-a \(rank 0\) sent 2 of member-a \(rank 0\)'s ids; "
        r"member-a \(rank 0\)'s dataset has 3 rows",
    ):
        run_against_script(1, 2, {0: [points(2)]}, set_sizes=[3, 3])


@pytest.mark.parametrize(
    "reply, error",
    [
        (positions(5), r"member-a \(rank 0\) sent positions outside its list of 3 or repeated"),
        (positions(1, 1), r"member-a \(rank 0\) sent positions outside its list of 3 or repeated"),
        (positions(1, 2, 0, 1), r"member-a \(rank 0\) sent positions outside its list of 3 or"),
        (b"\x01\x00\x00\x00\x02", r"member-a \(rank 0\) sent a malformed position list"),
    ],
    ids=["out of range", "repeated", "too many", "5 bytes"],
)
def test_garbage_positions_from_the_coordinator_name_it(reply, error):
    with pytest.raises(PsiError, match=error):
        run_against_script(1, 2, {0: [points(3), reply]})


@pytest.mark.parametrize(
    "returned, error",
    [
        (positions(0), r"member-b \(rank 1\) sent 1 positions; the intersection has 0 entities"),
        (b"\x00" * 3, r"member-b \(rank 1\) sent a malformed position list"),
    ],
)
def test_garbage_returned_to_the_coordinator_names_the_peer(returned, error):
    # the peer's lists share nothing with ours, so the intersection is empty
    with pytest.raises(PsiError, match=error):
        run_against_script(0, 2, {1: [points(3), points(3, "y"), returned]})


def test_garbage_collected_from_the_third_party_names_it():
    replies = {2: [points(3), points(3, "z"), b"\x00" * 31], 1: [points(3, "y")]}
    with pytest.raises(PsiError, match=r"member-c \(rank 2\) sent 31 bytes, not a list"):
        run_against_script(0, 3, replies)


# --- privacy: what goes over the wire ---------------------------------------------------


def forbidden_bytes(value: Id, job_id: bytes) -> tuple[list[bytes], bytes]:
    """The raw encodings of an id, and its hash point (before any party's key)."""
    (encoded,) = encode_ids([value], "id")
    raw = [str(value).encode("utf-8"), encoded]
    if isinstance(value, int):
        raw += [struct.pack(">q", value), struct.pack("<q", value)]
    return raw, psi._hash_points([encoded], job_id)[0]


def check_payloads_hide_ids(
    payloads: Sequence[bytes], id_sets: Sequence[Sequence[Id]], job_id: bytes
) -> None:
    """No id (in the intersection or not) appears raw or as its unblinded hash point."""
    elements = {
        payload[i : i + psi.ELEMENT_BYTES]
        for payload in payloads
        for i in range(0, len(payload) - psi.ELEMENT_BYTES + 1, psi.ELEMENT_BYTES)
    }
    everything = b"\x00".join(payloads)
    for value in {value for ids in id_sets for value in ids}:
        raw, point = forbidden_bytes(value, job_id)
        for encoding in raw:
            assert encoding not in everything, f"id {value!r} is in a payload"
        assert point not in elements, f"the hash point of {value!r} is in a payload"
        assert point not in everything, f"the hash point of {value!r} is in a payload"


def test_the_privacy_check_catches_leaks():
    id_sets: list[list[Id]] = [["alice@example.org", "bob@example.org"], [123456789012]]
    _, point = forbidden_bytes("bob@example.org", JOB)
    for leak in [b"..alice@example.org..", b"\x05" + point, b"\x00" * 32 + point]:
        with pytest.raises(AssertionError):
            check_payloads_hide_ids([b"\x01" * 64, leak], id_sets, JOB)
    with pytest.raises(AssertionError, match="123456789012"):
        check_payloads_hide_ids([struct.pack("<q", 123456789012)], id_sets, JOB)
    check_payloads_hide_ids([b"\x01" * 64], id_sets, JOB)


def mixed_sets(seed: int) -> list[list[Id]]:
    rng = random.Random(seed)
    universe = [f"customer-{n:08d}@example.org" for n in rng.sample(range(10**8), 120)]
    return [rng.sample(universe, 70) for _ in range(3)]


def test_payloads_carry_no_id_raw_or_hashed():
    id_sets = mixed_sets(3)
    results, network = run_queue(id_sets)
    assert check_aligned(id_sets, results)
    check_payloads_hide_ids([payload for _, _, payload in network.sent], id_sets, JOB)

    rng = random.Random(4)
    shared = [rng.randrange(10**11, 10**12) for _ in range(20)]
    int_sets: list[list[Id]] = [
        shared + [rng.randrange(10**11, 10**12) for _ in range(30)] for _ in range(2)
    ]
    results, network = run_queue(int_sets)
    assert check_aligned(int_sets, results)
    check_payloads_hide_ids([payload for _, _, payload in network.sent], int_sets, JOB)


def test_fresh_keys_and_job_bound_hashes():
    id_sets = mixed_sets(5)
    _, first = run_queue(id_sets)
    _, second = run_queue(id_sets)

    def elements(network: QueueNetwork) -> set[bytes]:
        return {
            payload[i : i + psi.ELEMENT_BYTES]
            for _, _, payload in network.sent
            for i in range(0, len(payload) - psi.ELEMENT_BYTES + 1, psi.ELEMENT_BYTES)
        }

    assert not elements(first) & elements(second)  # a run's blinded values are its own
    items = encode_ids(id_sets[0][:5], "id")
    assert not set(psi._hash_points(items, b"job-a")) & set(psi._hash_points(items, b"job-b"))


# --- over the MPC communicator ----------------------------------------------------------


def communicators(members: Sequence[str], frames: list):
    from mpc_ledger.mpc.communicator import CommunicatorSetup, MpcCommunicator
    from mpc_ledger.testing.mpc_links import MemoryHub

    def record(frame):
        frames.append(frame)
        return [frame]

    hub = MemoryHub(members, record)
    return [
        MpcCommunicator(
            CommunicatorSetup(
                job_id="job-psi",
                rank=rank,
                world_size=len(members),
                members=tuple(members),
                link_factory=lambda rank=rank: hub.link(rank),
                tuple_provider="trusted-first-party",
                allow_trusted_first_party=True,
                peer_timeout_s=TIMEOUT_S,
            ),
            init_ttp=False,
        )
        for rank in range(len(members))
    ]


def uint8_frame_bytes(frames: Sequence, sender: int) -> int:
    return sum(
        len(frame.data)
        for frame in frames
        if frame.sender_rank == sender and [spec.dtype for spec in frame.tensors] == ["uint8"]
    )


@pytest.mark.parametrize("members", [("a", "b"), ("a", "b", "c")])
def test_over_the_communicator_the_frames_hide_ids(members):
    from mpc_ledger.mpc.transcript import compare_transcripts

    frames: list = []
    comms = communicators(members, frames)
    id_sets = mixed_sets(6)[: len(members)]
    results = run_psi(id_sets, lambda rank: CommunicatorTransport(comms[rank]), job_id=JOB)
    assert check_aligned(id_sets, results)
    assert frames and all(frame.job_id == "job-psi" for frame in frames)
    check_payloads_hide_ids([frame.data for frame in frames], id_sets, JOB)
    for rank, result in enumerate(results):
        assert uint8_frame_bytes(frames, rank) == result.sent_bytes
    snapshots = {comm.rank: comm.snapshot("psi") for comm in comms}
    assert compare_transcripts(snapshots) == []


# --- over real party daemons with the relay ---------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_over_the_relay_between_daemons(tmp_path):
    from mpc_ledger.mpc.transcript import TranscriptSnapshot, compare_transcripts
    from mpc_ledger.testing.mpc_cluster import RelayCluster

    id_sets = mixed_sets(8)[:2]
    with RelayCluster(tmp_path / "cluster", "a,b", dealer=False) as cluster:
        processes = []
        for rank, member in enumerate(("a", "b")):
            ids_path = tmp_path / f"ids{rank}.json"
            ids_path.write_text(json.dumps(id_sets[rank]))
            command = [
                sys.executable,
                __file__,
                "--socket",
                str(cluster.socket(member)),
                "--rank",
                str(rank),
                "--members",
                "a,b",
                "--ids",
                str(ids_path),
                "--output",
                str(tmp_path / f"rank{rank}.json"),
            ]
            processes.append(
                subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            )
        try:
            logs = [
                process.communicate(timeout=60)[0].decode(errors="replace") for process in processes
            ]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    assert [process.returncode for process in processes] == [0, 0], "\n".join(logs)
    outputs = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    results = [PsiResult(tuple(out["rows"]), out["sent_bytes"]) for out in outputs]
    assert check_aligned(id_sets, results)
    sent = [bytes.fromhex(data) for out in outputs for data in out["frames"]]
    check_payloads_hide_ids(sent, id_sets, JOB)
    snapshots = {out["rank"]: TranscriptSnapshot.from_json(out["transcript"]) for out in outputs}
    assert compare_transcripts(snapshots) == []


def party_main(argv: list[str]) -> int:
    """One rank of the relay test: attach to the daemon's relay, run the PSI, write JSON."""
    from mpc_ledger.mpc.communicator import CommunicatorSetup, MpcCommunicator
    from mpc_ledger.mpc.worker_link import RelayLink
    from mpc_ledger.proto.v1 import mpc_pb2

    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--members", required=True)
    parser.add_argument("--ids", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    members = tuple(args.members.split(","))
    job_id = JOB.decode()
    hello = mpc_pb2.WorkerHello(
        job_id=job_id,
        rank=args.rank,
        ranks=[mpc_pb2.RankMember(rank=r, member_id=m) for r, m in enumerate(members)],
        tuple_provider="trusted-first-party",
    )
    sent: list[bytes] = []

    class Recording(MpcCommunicator):
        def _transmit(self, frames):
            sent.extend(frame.data for frame in frames)
            super()._transmit(frames)

    communicator = Recording(
        CommunicatorSetup(
            job_id=job_id,
            rank=args.rank,
            world_size=len(members),
            members=members,
            link_factory=lambda: RelayLink(args.socket, hello),
            tuple_provider="trusted-first-party",
            allow_trusted_first_party=True,
            peer_timeout_s=TIMEOUT_S,
        ),
        init_ttp=False,
    )
    try:
        result = intersect(
            encode_ids(json.loads(args.ids.read_text()), "customer_id"),
            rank=args.rank,
            parties=len(members),
            job_id=JOB,
            transport=CommunicatorTransport(communicator),
        )
    except Exception as exc:
        communicator.close(abort_reason=str(exc))
        raise
    snapshot = communicator.snapshot("psi")
    communicator.close()
    document = {
        "rank": args.rank,
        "rows": list(result.rows),
        "sent_bytes": result.sent_bytes,
        "frames": [data.hex() for data in sent],
        "transcript": snapshot.to_json(),
    }
    args.output.write_text(json.dumps(document))
    return 0


if __name__ == "__main__":
    sys.exit(party_main(sys.argv[1:]))
