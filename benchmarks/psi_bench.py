"""PSI benchmark: the n-party Diffie-Hellman PSI (`mpc_ledger.mpc.psi`), one process per party.

    python benchmarks/psi_bench.py                    # 2 parties, 100,000 ids each, 50 % shared
    python benchmarks/psi_bench.py --ids 2000         # seconds; what the smoke test runs
    python benchmarks/psi_bench.py --transport pipe   # parties joined by local pipes, no daemons

Every party holds ``--ids`` string ids (e-mail-like); a fraction ``--overlap`` of them
is held by every party, the rest by that party alone, each party's rows in its own
random order. Each party is its own process. By default it attaches to its own party
daemon's MPC relay, as a job's worker does (real daemons, mTLS, every message a frame
in the job's transcript); with ``--transport pipe`` it talks to its peers over local
pipes. Printed: the PSI's wall time (the slowest party's `intersect` call, against the
target), each party's split of it (hashing and blinding its own ids; the rest of its
computing; waiting for peers), the payload bytes and frames each party sent; then the
result checked against plaintext: every party's rows hold exactly the intersection,
row ``rows[k]`` the same id everywhere.

Baselines in the same run, in this process, before the parties start: a plaintext
``set.intersection`` of the same ids (building the sets included), and the raw
ristretto255 cost of one party's share of the work (hash every id to the group, then
one scalar multiplication per id per party), timed on a sample of ids and scaled.
The parties share this machine's cores with each other and with their daemons.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import queue
import random
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from mpc_ledger.daemon.parent import stop_on_signals
from mpc_ledger.mpc import psi

TARGET_S = 30.0
MEMBERS = "abcdefgh"
JOB_ID = "psi-bench-1"
PEER_TIMEOUT_S = 600.0
CRYPTO_SAMPLE = 5000


def party_ids(rank: int, count: int, overlap: float, seed: int) -> list[str]:
    """Party ``rank``'s ids: the shared ones, then its own, in the party's own order."""
    shared = round(count * overlap)
    ids = [f"customer-{n:09d}@shared.example" for n in range(shared)]
    ids += [f"customer-{n:09d}@party{rank}.example" for n in range(count - shared)]
    random.Random(seed * 1009 + rank).shuffle(ids)
    return ids


@dataclasses.dataclass(frozen=True)
class PartyJob:
    rank: int
    parties: int
    ids: int
    overlap: float
    seed: int
    socket: Path | None  # the party's relay; None: pipes


class TimedTransport:
    """Wraps a `PsiTransport`; notes when the first message left and the time spent in calls."""

    def __init__(self, inner: psi.PsiTransport) -> None:
        self.inner = inner
        self.first_send_at: float | None = None
        self.wait_s = 0.0
        self.send_s = 0.0

    def send_bytes(self, dst: int, payload: bytes) -> None:
        started = time.perf_counter()
        if self.first_send_at is None:
            self.first_send_at = started
        self.inner.send_bytes(dst, payload)
        self.send_s += time.perf_counter() - started

    def recv_bytes(self, src: int) -> bytes:
        started = time.perf_counter()
        payload = self.inner.recv_bytes(src)
        self.wait_s += time.perf_counter() - started
        return payload


class PipeTransport:
    """`PsiTransport` over one duplex pipe per peer. A reader thread per peer drains its
    pipe, so two parties that both send before they receive do not block each other."""

    def __init__(self, connections: dict[int, Connection]) -> None:
        self._connections = connections
        self._inbox: dict[int, queue.Queue[bytes]] = {peer: queue.Queue() for peer in connections}
        for peer, connection in connections.items():
            threading.Thread(target=self._drain, args=(peer, connection), daemon=True).start()

    def _drain(self, peer: int, connection: Connection) -> None:
        try:
            while True:
                self._inbox[peer].put(connection.recv_bytes())
        except (EOFError, OSError):
            return

    def send_bytes(self, dst: int, payload: bytes) -> None:
        self._connections[dst].send_bytes(payload)

    def recv_bytes(self, src: int) -> bytes:
        try:
            return self._inbox[src].get(timeout=PEER_TIMEOUT_S)
        except queue.Empty:
            raise TimeoutError(f"nothing from rank {src} for {PEER_TIMEOUT_S:g}s") from None


def _relay_communicator(job: PartyJob) -> Any:
    from mpc_ledger.mpc.communicator import CommunicatorSetup, MpcCommunicator
    from mpc_ledger.mpc.worker_link import RelayLink
    from mpc_ledger.proto.v1 import mpc_pb2

    assert job.socket is not None
    members = tuple(MEMBERS[: job.parties])
    # No CrypTen program runs; the provider only has to be one the genesis allows.
    hello = mpc_pb2.WorkerHello(
        job_id=JOB_ID,
        rank=job.rank,
        ranks=[mpc_pb2.RankMember(rank=r, member_id=m) for r, m in enumerate(members)],
        tuple_provider="trusted-first-party",
    )
    socket = job.socket
    setup = CommunicatorSetup(
        job_id=JOB_ID,
        rank=job.rank,
        world_size=job.parties,
        members=members,
        link_factory=lambda: RelayLink(socket, hello),
        tuple_provider="trusted-first-party",
        allow_trusted_first_party=True,
        peer_timeout_s=PEER_TIMEOUT_S,
    )
    return MpcCommunicator(setup, init_ttp=False)


def run_party(job: PartyJob, pipes: dict[int, Connection], report: Connection) -> None:
    """One party's process: its ids, its transport, the PSI; sends back rows and timings."""
    communicator = None
    try:
        items = psi.encode_ids(party_ids(job.rank, job.ids, job.overlap, job.seed), "customer")
        if job.socket is None:
            inner: psi.PsiTransport = PipeTransport(pipes)
        else:
            communicator = _relay_communicator(job)
            inner = psi.CommunicatorTransport(communicator)
        transport = TimedTransport(inner)
        started = time.perf_counter()
        result = psi.intersect(
            items,
            rank=job.rank,
            parties=job.parties,
            job_id=JOB_ID.encode(),
            transport=transport,
            set_sizes=[job.ids] * job.parties,
        )
        wall_s = time.perf_counter() - started
        document: dict[str, Any] = {
            "rank": job.rank,
            "rows": list(result.rows),
            "sent_bytes": result.sent_bytes,
            "wall_s": wall_s,
            "own_s": (transport.first_send_at or started) - started,
            "wait_s": transport.wait_s,
            "send_s": transport.send_s,
        }
        if communicator is not None:
            document["transcript"] = communicator.snapshot("psi").to_json()
            communicator.close()
        report.send(document)
    except BaseException as exc:
        if communicator is not None:
            communicator.close(abort_reason=f"{type(exc).__name__}: {exc}")
        report.send({"rank": job.rank, "error": traceback.format_exc()})


def run_parties(jobs: Sequence[PartyJob], timeout_s: float) -> tuple[list[dict[str, Any]], float]:
    context = multiprocessing.get_context("spawn")
    parties = len(jobs)
    pipes: list[dict[int, Connection]] = [{} for _ in jobs]
    if jobs[0].socket is None:
        for low in range(parties):
            for high in range(low + 1, parties):
                pipes[low][high], pipes[high][low] = context.Pipe(duplex=True)
    reports, processes = [], []
    started = time.monotonic()
    for job in jobs:
        mine, theirs = context.Pipe(duplex=False)
        process = context.Process(target=run_party, args=(job, pipes[job.rank], theirs))
        process.start()
        reports.append(mine)
        processes.append(process)
    for connections in pipes:  # the children hold their own ends now
        for connection in connections.values():
            connection.close()
    results = []
    deadline = started + timeout_s
    for rank, mine in enumerate(reports):
        if not mine.poll(max(0.1, deadline - time.monotonic())):
            for process in processes:
                process.kill()
            raise SystemExit(f"party {rank} did not finish within {timeout_s:g}s")
        results.append(mine.recv())
    for process in processes:
        process.join(timeout_s)
    return results, time.monotonic() - started


def plaintext_baseline(id_lists: Sequence[Sequence[str]]) -> tuple[set[str], float]:
    started = time.perf_counter()
    common = set(id_lists[0]).intersection(*id_lists[1:])
    return common, time.perf_counter() - started


def crypto_baseline(ids: Sequence[str], parties: int) -> tuple[float, float, int]:
    """Seconds to hash ``ids`` to ristretto255 and for ``parties`` scalar multiplications
    per id, timed on a sample and scaled to all of ``ids``; and the sample's size."""
    import rbcl

    sample = list(ids[:CRYPTO_SAMPLE])
    if not sample:
        return 0.0, 0.0, 0
    scale = len(ids) / len(sample)
    items = psi.encode_ids(sample, "customer")
    started = time.perf_counter()
    points = psi._hash_points(items, JOB_ID.encode())
    hashed = time.perf_counter()
    for _ in range(parties):
        key = rbcl.crypto_core_ristretto255_scalar_random()
        points = [rbcl.crypto_scalarmult_ristretto255(key, point) for point in points]
    multiplied = time.perf_counter()
    return (hashed - started) * scale, (multiplied - hashed) * scale, len(sample)


def check(
    id_lists: Sequence[Sequence[str]], results: Sequence[dict[str, Any]], expected: set[str]
) -> tuple[int, bool]:
    """The size every party found, and whether rows are aligned and exactly ``expected``."""
    aligned = [
        [ids[row] for row in result["rows"]] for ids, result in zip(id_lists, results, strict=True)
    ]
    sizes = {len(rows) for rows in aligned}
    same = all(rows == aligned[0] for rows in aligned)
    exact = set(aligned[0]) == expected and len(aligned[0]) == len(expected)
    return (sizes.pop() if len(sizes) == 1 else -1), same and exact


def transcripts_note(results: Sequence[dict[str, Any]]) -> tuple[str, dict[int, tuple[int, int]]]:
    """Whether the parties' transcripts agree, and (frames, bytes) each party sent."""
    from mpc_ledger.mpc.transcript import TranscriptSnapshot, compare_transcripts

    snapshots = {r["rank"]: TranscriptSnapshot.from_json(r["transcript"]) for r in results}
    sent = {
        rank: (
            sum(c.messages for c in snapshot.channels if c.sender == rank),
            sum(c.size_bytes for c in snapshot.channels if c.sender == rank),
        )
        for rank, snapshot in snapshots.items()
    }
    mismatches = compare_transcripts(snapshots)
    return ("transcripts agree" if not mismatches else f"TRANSCRIPT MISMATCH: {mismatches}"), sent


def print_parties(results: Sequence[dict[str, Any]], frames: dict[int, tuple[int, int]]) -> None:
    print(
        f"  {'party':<7}{'wall s':>8}{'hash+blind own s':>18}{'other compute s':>17}"
        f"{'waiting s':>11}{'payload MB':>12}{'frames':>8}"
    )
    for r in results:
        other_s = r["wall_s"] - r["own_s"] - r["wait_s"]
        count = str(frames[r["rank"]][0]) if r["rank"] in frames else "-"
        print(
            f"  {r['rank']:<7}{r['wall_s']:>8.2f}{r['own_s']:>18.2f}{other_s:>17.2f}"
            f"{r['wait_s']:>11.2f}{r['sent_bytes'] / 1e6:>12.2f}{count:>8}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=100_000, help="ids per party")
    parser.add_argument("--overlap", type=float, default=0.5, help="fraction held by all")
    parser.add_argument("--parties", type=int, default=2)
    parser.add_argument("--transport", choices=("relay", "pipe"), default="relay")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout-s", type=float, default=600)
    args = parser.parse_args(argv)
    if not 2 <= args.parties <= len(MEMBERS) or args.ids < 0 or not 0 <= args.overlap <= 1:
        parser.error(f"--parties 2..{len(MEMBERS)}, --ids >= 0, --overlap in [0, 1]")
    id_lists = [party_ids(r, args.ids, args.overlap, args.seed) for r in range(args.parties)]
    transport = "real daemons with the MPC relay, mTLS" if args.transport == "relay" else "pipes"
    print(
        f"PSI benchmark: {args.parties} parties, {args.ids} ids each, {args.overlap:.0%} held by "
        f"all ({round(args.ids * args.overlap)} ids), one process per party, {transport}",
        flush=True,
    )
    expected, plain_s = plaintext_baseline(id_lists)
    print(f"  baseline, plaintext set.intersection:       {plain_s:8.3f} s", flush=True)
    hash_s, multiply_s, sample = crypto_baseline(id_lists[0], args.parties)
    print(
        f"  baseline, ristretto255, one party's share:  {hash_s + multiply_s:8.2f} s"
        f"   (hash {hash_s:.2f} s + {args.parties} scalar mults per id {multiply_s:.2f} s;"
        f" timed on {sample} ids, scaled)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="psib") as raw:
        sockets: list[Path | None] = [None] * args.parties
        cluster = None
        if args.transport == "relay":
            from mpc_ledger.testing.mpc_cluster import RelayCluster

            started = time.monotonic()
            members = ",".join(MEMBERS[: args.parties])
            cluster = RelayCluster(Path(raw), members, dealer=False)
            cluster.start()
            sockets = [cluster.socket(m) for m in MEMBERS[: args.parties]]
            print(
                f"  {args.parties} party daemons with the relay started in "
                f"{time.monotonic() - started:.1f} s (not counted)",
                flush=True,
            )
        try:
            jobs = [
                PartyJob(r, args.parties, args.ids, args.overlap, args.seed, sockets[r])
                for r in range(args.parties)
            ]
            results, processes_s = run_parties(jobs, args.timeout_s)
        finally:
            if cluster is not None:
                cluster.stop()
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        print("\n".join(errors), file=sys.stderr)
        print(json.dumps({"ok": False}))
        return 1
    psi_s = max(r["wall_s"] for r in results)
    met = psi_s < TARGET_S
    print(
        f"  PSI, slowest party's intersect():           {psi_s:8.2f} s"
        f"   (target < {TARGET_S:g} s: {'met' if met else 'NOT met'};"
        f" {psi_s / max(hash_s + multiply_s, 1e-9):.2f}x the ristretto255 baseline)"
    )
    print(f"  processes, start to exit:                  {processes_s:8.2f} s")
    note, frames = ("", {}) if args.transport == "pipe" else transcripts_note(results)
    print_parties(results, frames)
    size, ok = check(id_lists, results, expected)
    print(
        f"  intersection: {size} ids (expected {len(expected)}); rows aligned across "
        f"parties: {'yes' if ok else 'NO'}" + (f"; {note}" if note else "")
    )
    ok = ok and note in ("", "transcripts agree")
    summary = {
        "psi_s": round(psi_s, 3),
        "target_s": TARGET_S,
        "target_met": met,
        "intersection": size,
        "expected": len(expected),
        "sent_bytes": [r["sent_bytes"] for r in results],
        "ok": ok,
    }
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    with stop_on_signals():  # a SIGTERM or Ctrl-C stops the daemons it started
        sys.exit(main())
