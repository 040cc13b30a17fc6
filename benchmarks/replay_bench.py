"""Replay benchmark: what recording a job for replay costs, and what replaying a party costs.

    python benchmarks/replay_bench.py            # the demo's job: 3 data parties + dealer, 1 epoch
    python benchmarks/replay_bench.py --smoke    # 2 data parties + dealer, 48 rows (a test runs it)
    python benchmarks/replay_bench.py --json     # and a JSON summary as the last line

The job is the demo's shape: logistic regression on scikit-learn's breast-cancer data
(standardised, 75/25 split, seed 0), vertical 10+10+10 columns across 3 data parties
(labels and the model at party 0), the dealer as tuple provider, batch 32, learning rate
0.5, 1 epoch (``--epochs``) on every row (``--rows``). It runs on real party daemons
(`RelayCluster`: mTLS relays), every rank with a committed seed (`mpc_ledger.mpc.job_seed`)
and an inbound log (`mpc_ledger.mpc.inbound_log`, one log key), as a party daemon runs it.

Measured, in one run, each next to its target:

* the job's wall time (the first worker started to the last one exited);
* per rank, the bytes it received (the sum of ``frame.ByteSize()`` over every chunk the
  relay delivered to it, read back from its log; the payload inside them, from its
  transcript, beside it), its inbound log's size on disk and their ratio (target <= 1.1);
* the log's throughput per rank: `InboundLogWriter` appending that rank's logged chunks
  again into a scratch file (serialise, AES-256-GCM, write, fsync at close; as many passes
  over them as reach 8 MiB, so that the file's creation and fsync are not all it times),
  and `read_inbound_log` opening it again (read, decrypt, parse), in MiB/s of frame bytes;
* per rank, its replay (``--transport replay``, a process of its own, nothing on the
  network): the worker-reported ``wall_s`` next to the rank's own compute time in the job
  (its ``wall_s`` less ``communication.wait_s``, the time it was blocked waiting for
  frames; target: replay <= 1.5 x compute), and the replay process's wall time (interpreter
  start, reading and decrypting the log included) and CPU time beside them. The job's
  ranks share the machine's cores with each other and the daemons, so their compute time
  includes time spent runnable but descheduled; each replay runs alone, one after the
  other. The machine's load average before and after is printed: other work inflates
  every time.

Every replay must reproduce, at the count each other rank recorded as received from the
replayed rank, that rank's channel digest (the replay's prefix digests against the
receivers' transcripts); the bench exits 1 if one does not, or if the job fails. Missing a
timing target is printed, not an exit status: the figures depend on the machine's load.
Bounded: each job and replay is given ``--timeout-s``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mpc_ledger.daemon.parent import stop_on_signals
from mpc_ledger.mpc.inbound_log import InboundLogWriter, load_log_key, read_inbound_log
from mpc_ledger.mpc.job_seed import new_job_seed, write_job_seed
from mpc_ledger.mpc.replay import channel_key
from mpc_ledger.mpc.sample_data import breast_cancer_split
from mpc_ledger.mpc.train_spec import TrainSpec
from mpc_ledger.mpc.worker import JobManifest
from mpc_ledger.mpc.worker_command import WORKER_PROGRAM, worker_command
from mpc_ledger.proto.v1 import mpc_pb2
from mpc_ledger.testing.mpc_cluster import RelayCluster, wait_all

DATA_MEMBERS = ("a", "b", "c")
JOB_ID = "replay-bench"
LOG_RATIO_TARGET = 1.1
REPLAY_RATIO_TARGET = 1.5
KIB = 1024.0
MIB = float(1 << 20)
THROUGHPUT_MIB = 8  # frame bytes through the scratch log, at least
THROUGHPUT_PASSES_MAX = 1000


@dataclasses.dataclass
class RankFigures:
    rank: int
    member: str
    received_bytes: int  # sum of ByteSize() of every chunk delivered (what the log holds)
    payload_bytes: int  # frame payloads received, from the rank's transcript
    log_bytes: int  # the inbound log file's size
    write_mib_s: float
    read_mib_s: float
    job_wall_s: float
    job_wait_s: float
    replay_wall_s: float  # the replay worker's own wall_s
    replay_process_s: float  # the replay process, start to exit
    replay_cpu_s: float  # the replay process's CPU seconds (user + system)
    channels_checked: int
    digests_match: bool
    problem: str = ""

    @property
    def log_ratio(self) -> float:
        return self.log_bytes / max(self.received_bytes, 1)

    @property
    def compute_s(self) -> float:
        return self.job_wall_s - self.job_wait_s

    @property
    def replay_ratio(self) -> float:
        return self.replay_wall_s / max(self.compute_s, 1e-9)


def make_spec(full: dict[str, Any], parties: int, epochs: int) -> TrainSpec:
    columns = {2: (15, 15), 3: (10, 10, 10)}[parties]
    return TrainSpec(
        layout="vertical",
        model="logistic",
        n_features=30,
        columns_per_rank=columns,
        label_rank=0,  # the demo's labels are at hospital-a
        train_rows_per_rank=(len(full["x_train"]),),
        test_rows_per_rank=(len(full["x_test"]),),
        epochs=epochs,
        batch_size=32,
        learning_rate=0.5,
        seed=0,
        recipients=(0,),
    )


def make_manifest(spec: TrainSpec, rows: int | None, parties: int, timeout_s: float) -> JobManifest:
    program = {
        "name": "train",
        "spec": spec.to_json(),
        "data": {"source": "breast_cancer", "seed": 0, "rows": rows},
    }
    members = (*DATA_MEMBERS[:parties], "dealer")
    return JobManifest(JOB_ID, members, parties, "dealer", False, timeout_s, program)


@dataclasses.dataclass
class RecordedJob:
    folder: Path
    manifest_path: Path
    key_path: Path
    results: list[dict[str, Any]]
    wall_s: float

    def seed(self, rank: int) -> Path:
        return self.folder / f"seed{rank}"

    def log(self, rank: int) -> Path:
        return self.folder / f"inbound{rank}.log"


def run_job(root: Path, manifest: JobManifest, timeout_s: float) -> RecordedJob:
    """The job over real relays, each rank with its seed and inbound log."""
    folder = root / "files"
    folder.mkdir()
    recorded = RecordedJob(folder, root / "manifest.json", folder / "inbound-log.key", [], 0.0)
    manifest.write(recorded.manifest_path)
    programs = {}
    for rank in range(len(manifest.members)):
        write_job_seed(recorded.seed(rank), new_job_seed())
        programs[rank] = [
            *WORKER_PROGRAM,
            *("--job-seed", str(recorded.seed(rank))),
            *("--inbound-log", str(recorded.log(rank))),
            *("--log-key", str(recorded.key_path)),
        ]
    members = ",".join(manifest.members[: manifest.world_size])
    with RelayCluster(root / "cluster", members, dealer=True) as cluster:
        started = time.monotonic()
        workers = cluster.launch(manifest, programs=programs)
        wait_all(workers, timeout_s)
        recorded.wall_s = time.monotonic() - started
    recorded.results = [w.result() for w in workers]
    errors = [f"rank {r['rank']}: {r['error']}" for r in recorded.results if "error" in r]
    if errors:
        for worker in workers:
            print(f"--- rank {worker.rank} ({worker.member}) ---\n{worker.log()}", file=sys.stderr)
        raise SystemExit(f"the job failed: {errors}")
    return recorded


def received_from(
    results: list[dict[str, Any]], rank: int
) -> dict[tuple[int, int], tuple[int, str]]:
    """(rank, other) -> (messages, digest): what each other rank recorded at the job's end as
    received from ``rank``, the digests its replay must reproduce."""
    out = {}
    for other, result in enumerate(results):
        for channel in result["transcript"]["channels"]:
            if other != rank and channel["sender"] == rank and channel["receiver"] == other:
                out[(rank, other)] = (int(channel["messages"]), str(channel["digest"]))
    return out


def log_throughput(
    frames: list[mpc_pb2.MpcFrame], key: bytes, scratch: Path, member: str, rank: int
) -> tuple[float, float]:
    """MiB/s of frame bytes through `InboundLogWriter` (to its fsync) and `read_inbound_log`.

    The rank's frames go through as many times as it takes to reach ``THROUGHPUT_MIB``
    (a smoke job receives a few hundred KiB, where the file's creation and fsync would be
    all that is measured), each chunk as the worker appends it.
    """
    size_bytes = sum(frame.ByteSize() for frame in frames)
    passes = min(
        THROUGHPUT_PASSES_MAX, max(1, math.ceil(THROUGHPUT_MIB * MIB / max(size_bytes, 1)))
    )
    started = time.perf_counter()
    writer = InboundLogWriter(scratch, key, job_id=JOB_ID, rank=rank, member=member)
    for _ in range(passes):
        for frame in frames:
            writer.append(frame)
    writer.close()
    write_s = time.perf_counter() - started
    started = time.perf_counter()
    again = read_inbound_log(scratch, key, job_id=JOB_ID, rank=rank, member=member)
    read_s = time.perf_counter() - started
    if again != frames * passes:
        raise SystemExit(f"rank {rank}: the scratch log does not give back what it was given")
    size_mib = writer.appended_bytes / MIB
    return size_mib / max(write_s, 1e-9), size_mib / max(read_s, 1e-9)


@dataclasses.dataclass
class ReplayRun:
    result: dict[str, Any]  # the replay worker's result (or {"error": ...})
    process_s: float  # its process, start to exit
    cpu_s: float  # its process's user + system CPU seconds
    targets: dict[tuple[int, int], tuple[int, str]]  # what the others received from it


def replay_rank(job: RecordedJob, root: Path, rank: int, timeout_s: float) -> ReplayRun:
    """Rank ``rank`` re-run from its seed and log, in a process of its own."""
    targets = received_from(job.results, rank)
    watch = root / f"watch{rank}.json"
    watch.write_text(json.dumps({channel_key(*k): [m] for k, (m, _d) in targets.items()}))
    output = root / f"replay{rank}.json"
    command = worker_command(
        job.manifest_path,
        rank,
        output,
        replay_log=job.log(rank),
        replay_watch=watch,
        job_seed=job.seed(rank),
        log_key=job.key_path,
    )
    # The only child reaped in between (the cluster's daemons are gone): the replay's CPU.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:  # run() has killed it
        return ReplayRun({"error": f"did not finish within {timeout_s:g}s"}, timeout_s, 0, targets)
    process_s = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if not output.exists():
        reason = f"no result (exit {done.returncode}): {done.stderr[-2000:]}"
        return ReplayRun({"error": reason}, process_s, cpu_s, targets)
    return ReplayRun(json.loads(output.read_text()), process_s, cpu_s, targets)


def mismatched_channels(
    targets: dict[tuple[int, int], tuple[int, str]], prefix_digests: dict[str, Any]
) -> list[str]:
    """The channels ("s->r") whose replayed digest after the receiver's count is not the
    digest the receiver recorded (or that the replay never reached)."""
    return [
        channel_key(*key)
        for key, (messages, digest) in sorted(targets.items())
        if prefix_digests.get(channel_key(*key)) != {str(messages): digest}
    ]


def measure_rank(job: RecordedJob, root: Path, rank: int, timeout_s: float) -> RankFigures:
    result = job.results[rank]
    member = str(result["member"])
    key = load_log_key(job.key_path)
    frames = read_inbound_log(job.log(rank), key, job_id=JOB_ID, rank=rank, member=member)
    write_mib_s, read_mib_s = log_throughput(frames, key, root / f"scratch{rank}.log", member, rank)
    payload = sum(
        int(c["size_bytes"]) for c in result["transcript"]["channels"] if c["receiver"] == rank
    )
    replay = replay_rank(job, root, rank, timeout_s)
    replayed, targets = replay.result, replay.targets
    problem = ""
    if "error" in replayed:
        problem = f"replay failed: {replayed['error']}"
    mismatched = mismatched_channels(targets, replayed.get("replay", {}).get("prefix_digests", {}))
    if mismatched and not problem:
        problem = f"digests differ from the receivers' on {', '.join(mismatched)}"
    return RankFigures(
        rank=rank,
        member=member,
        received_bytes=sum(frame.ByteSize() for frame in frames),
        payload_bytes=payload,
        log_bytes=job.log(rank).stat().st_size,
        write_mib_s=write_mib_s,
        read_mib_s=read_mib_s,
        job_wall_s=float(result["wall_s"]),
        job_wait_s=float(result["communication"]["wait_s"]),
        replay_wall_s=float(replayed.get("wall_s", float("nan"))),
        replay_process_s=replay.process_s,
        replay_cpu_s=replay.cpu_s,
        channels_checked=len(targets),
        digests_match=bool(targets) and not mismatched and "error" not in replayed,
        problem=problem,
    )


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def print_figures(job: RecordedJob, ranks: list[RankFigures]) -> None:
    print(f"\njob wall time: {job.wall_s:.2f} s (first worker started to last exited)")
    print(
        f"\n{'rank':<12}{'received KiB':>13}{'payload KiB':>12}{'log KiB':>10}{'log/recv':>10}"
        f"{'write MiB/s':>13}{'read MiB/s':>12}"
    )
    for r in ranks:
        print(
            f"{r.rank} {r.member:<10}{r.received_bytes / KIB:>13.1f}{r.payload_bytes / KIB:>12.1f}"
            f"{r.log_bytes / KIB:>10.1f}{r.log_ratio:>10.4f}{r.write_mib_s:>13.1f}"
            f"{r.read_mib_s:>12.1f}"
        )
    worst_log = max(r.log_ratio for r in ranks)
    print(
        f"log size / bytes received, worst rank: {worst_log:.4f} "
        f"(target <= {LOG_RATIO_TARGET}: {verdict(worst_log <= LOG_RATIO_TARGET)})"
    )
    print(
        f"log throughput (each rank's frames, at least {THROUGHPUT_MIB} MiB through a scratch "
        f"log): write+encrypt+fsync {min(r.write_mib_s for r in ranks):.1f}.."
        f"{max(r.write_mib_s for r in ranks):.1f} MiB/s, read+decrypt+parse "
        f"{min(r.read_mib_s for r in ranks):.1f}..{max(r.read_mib_s for r in ranks):.1f} MiB/s"
    )
    print(
        f"\n{'rank':<12}{'job wall s':>11}{'waiting s':>11}{'compute s':>11}{'replay s':>10}"
        f"{'replay/compute':>16}{'process s':>11}{'CPU s':>8}  digests"
    )
    for r in ranks:
        check = (
            f"{r.channels_checked} channels match the receivers'" if r.digests_match else r.problem
        )
        print(
            f"{r.rank} {r.member:<10}{r.job_wall_s:>11.2f}{r.job_wait_s:>11.2f}"
            f"{r.compute_s:>11.2f}{r.replay_wall_s:>10.2f}{r.replay_ratio:>16.2f}"
            f"{r.replay_process_s:>11.2f}{r.replay_cpu_s:>8.2f}  {check}"
        )
    worst = max(r.replay_ratio for r in ranks)
    print(
        f"replay / compute, worst rank: {worst:.2f} "
        f"(target <= {REPLAY_RATIO_TARGET}: {verdict(worst <= REPLAY_RATIO_TARGET)}); "
        "replay s is the replay worker's own wall_s, process s its process start to exit, "
        "CPU s that process's user + system time"
    )


def summary(job: RecordedJob, ranks: list[RankFigures], ok: bool) -> dict[str, Any]:
    return {
        "ok": ok,
        "job_wall_s": job.wall_s,
        "ranks": [
            {
                "rank": r.rank,
                "member": r.member,
                "received_bytes": r.received_bytes,
                "payload_bytes": r.payload_bytes,
                "log_bytes": r.log_bytes,
                "log_ratio": r.log_ratio,
                "write_mib_s": r.write_mib_s,
                "read_mib_s": r.read_mib_s,
                "job_wall_s": r.job_wall_s,
                "job_wait_s": r.job_wait_s,
                "compute_s": r.compute_s,
                "replay_wall_s": r.replay_wall_s,
                "replay_process_s": r.replay_process_s,
                "replay_cpu_s": r.replay_cpu_s,
                "replay_ratio": r.replay_ratio,
                "channels_checked": r.channels_checked,
                "digests_match": r.digests_match,
            }
            for r in ranks
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2 data parties + dealer, 48 rows")
    parser.add_argument("--rows", type=int, default=None, help="rows used (default: all 569)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--timeout-s", type=float, default=300, help="bound on the job, each replay"
    )
    parser.add_argument("--json", action="store_true", help="a JSON summary as the last line")
    args = parser.parse_args(argv)
    parties = 2 if args.smoke else 3
    rows = 48 if args.smoke else args.rows
    if args.epochs < 1 or (rows is not None and rows < 8):
        parser.error("--epochs must be at least 1 and --rows at least 8")
    full = breast_cancer_split(seed=0, rows=rows)
    spec = make_spec(full, parties, args.epochs)
    columns = "+".join(str(c) for c in spec.columns_per_rank)
    print(
        f"replay: logistic regression, breast cancer ({len(full['x_train'])} train / "
        f"{len(full['x_test'])} test rows), vertical {columns} columns across {parties} data "
        f"parties + dealer, labels at party 0, {args.epochs} epoch(s), batch 32, lr 0.5; every "
        "rank with a committed seed and an encrypted inbound log, over real relays (mTLS)"
    )
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="replayb") as raw:
        root = Path(raw)
        manifest = make_manifest(spec, rows, parties, args.timeout_s)
        job = run_job(root, manifest, args.timeout_s)
        ranks = [
            measure_rank(job, root, rank, args.timeout_s) for rank in range(len(manifest.members))
        ]
    print_figures(job, ranks)
    print(
        f"machine: {os.cpu_count()} cores, 1-minute load average {load_before:.1f} before the "
        f"job, {os.getloadavg()[0]:.1f} after the replays (other work on it inflates every time)"
    )
    ok = all(r.digests_match for r in ranks)
    print(
        "every rank's replay reproduced what the others received from it"
        if ok
        else "REPLAY MISMATCH: "
        + "; ".join(f"rank {r.rank}: {r.problem}" for r in ranks if r.problem)
    )
    if args.json:
        print(json.dumps(summary(job, ranks, ok)))
    return 0 if ok else 1


if __name__ == "__main__":
    with stop_on_signals():  # a SIGTERM or Ctrl-C stops the daemons it started
        sys.exit(main())
