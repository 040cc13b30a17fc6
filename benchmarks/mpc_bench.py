"""MPC training benchmark: our mTLS relay (with transcript digests) against CrypTen's gloo.

Logistic regression on scikit-learn's breast-cancer data (shipped, no
download), standardised, 75/25 split with a fixed seed, vertical split
between 2 parties (first 15 columns at party 0; last 15 and the labels at
party 1), 10 epochs, batch 32, learning rate 0.5. In one run it prints wall
time, rounds, bytes and test accuracy for: plaintext PyTorch; the same
CrypTen program on CrypTen's own torch.distributed/gloo transport; and on
ours (real party daemons, mTLS, digests); then the ratio ours/gloo. Both
2-party runs use CrypTen's default tuple provider (trusted first party,
allowed here as a local demo, as the baseline has no dealer). Then the same
with the dealer (3 processes: 2 parties + dealer), on both transports, and a new
job's default program (`TrainSpec.sigmoid` "piecewise", no gradient threshold) on
ours beside them: the ratio of that to CrypTen's own program on gloo.

``--smoke``: 1 epoch on 64 rows (a test runs it).

``--round-trips``: what a training step costs on a network, per party and per
step (`mpc_ledger.mpc.round_trips`: sequential round trips, those to the
dealer apart, frames, bytes), for logistic regression and an MLP (one hidden
layer of 16), with 2 data parties + dealer (vertical 15+15 columns, labels at
party 1) and 3 data parties + dealer (10+10+10, labels at party 2), on real
daemons whose links go through the test proxy's delay line, timed at 0, 5
and 25 ms one-way delay (``--delays-ms``), with test accuracy next to
plaintext's. Bounded: 128 rows (``--rows``), 1 epoch (``--epochs``), batch 32.
Beside CrypTen's program (its exact sigmoid, the gradient threshold: what a
job from before the spec's ``sigmoid`` and ``gradient_threshold`` fields runs), in
the same run and with the offline phase, the lean one (`TrainSpec.sigmoid`
``--lean-sigmoid``, ``grad_threshold`` ``--lean-grad-threshold``: the piecewise
sigmoid and no threshold unless told, a new job's default; ``--lean-sigmoid none``
leaves it out). Not the cubic: it is cheaper but diverges over 3 epochs on every
row (``step_breakdown.py``).
With ``--smoke``: logistic regression, 2 data parties, 128 rows, 0 and 5 ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mpc_ledger.daemon.parent import stop_on_signals
from mpc_ledger.mpc.plaintext import run_plaintext
from mpc_ledger.mpc.sample_data import breast_cancer_split
from mpc_ledger.mpc.train_spec import GRAD_THRESHOLD, SIGMOIDS, TrainSpec
from mpc_ledger.mpc.transcript import TranscriptSnapshot, compare_transcripts
from mpc_ledger.mpc.worker import JobManifest
from mpc_ledger.mpc.worker_command import worker_command
from mpc_ledger.testing.mpc_cluster import RelayCluster, WorkerProcess, wait_all


@dataclasses.dataclass
class Row:
    name: str
    wall_s: float
    rounds: int | None
    size_bytes: int | None
    accuracy: float
    note: str = ""


def make_spec(full: dict[str, Any], epochs: int) -> TrainSpec:
    return TrainSpec(
        layout="vertical",
        model="logistic",
        n_features=30,
        columns_per_rank=(15, 15),
        label_rank=1,
        train_rows_per_rank=(len(full["x_train"]),),
        test_rows_per_rank=(len(full["x_test"]),),
        epochs=epochs,
        batch_size=32,
        learning_rate=0.5,
        seed=0,
        recipients=(0, 1),
    )


def manifest_for(job_id: str, spec: TrainSpec, rows: int | None, *, dealer: bool) -> JobManifest:
    program = {
        "name": "train",
        "spec": spec.to_json(),
        "data": {"source": "breast_cancer", "seed": 0, "rows": rows},
    }
    if dealer:
        return JobManifest(job_id, ("a", "b", "dealer"), 2, "dealer", False, 120.0, program)
    return JobManifest(job_id, ("a", "b"), 2, "trusted-first-party", True, 120.0, program)


def summarise(name: str, results: list[dict[str, Any]], wall_s: float) -> Row:
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise SystemExit(f"{name} failed: {errors}")
    party0 = results[0]
    # Rounds: what party 0's communicator counted; bytes: CrypTen's own count
    # (8 per element, each party's own view), summed over the data parties.
    data_results = [r for r in results if r["output"] is not None]
    size_bytes = sum(r["communication"]["bytes"] for r in data_results)
    return Row(
        name,
        wall_s,
        party0["communication"]["rounds"],
        size_bytes,
        party0["output"]["test_accuracy"],
    )


def run_gloo(root: Path, manifest: JobManifest, timeout_s: float) -> Row:
    folder = root / f"gloo-{manifest.job_id}"
    folder.mkdir(parents=True)
    manifest_path = folder / "manifest.json"
    manifest.write(manifest_path)
    rendezvous = f"file://{folder / 'rendezvous'}"
    workers = []
    started = time.monotonic()
    for rank, member in enumerate(manifest.members):
        output = folder / f"rank{rank}.json"
        log_path = folder / f"rank{rank}.log"
        command = worker_command(manifest_path, rank, output, rendezvous=rendezvous)
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        workers.append(WorkerProcess(rank, member, process, output, log_path))
    wait_all(workers, timeout_s)
    wall_s = time.monotonic() - started
    results = [w.result() for w in workers]
    if any("error" in r for r in results):
        print("\n".join(w.log() for w in workers), file=sys.stderr)
    name = "CrypTen gloo" + (" + dealer" if manifest.tuple_provider == "dealer" else "")
    return summarise(name, results, wall_s)


def run_ours(cluster: RelayCluster, manifest: JobManifest, timeout_s: float) -> tuple[Row, str]:
    run = cluster.run(manifest, timeout_s=timeout_s)
    results = run.results
    if any("error" in r for r in results):
        print(run.logs(), file=sys.stderr)
    name = "ours mTLS relay" + (" + dealer" if manifest.tuple_provider == "dealer" else "")
    row = summarise(name, results, run.wall_s)
    snapshots = {r["rank"]: TranscriptSnapshot.from_json(r["transcript"]) for r in results}
    mismatches = compare_transcripts(snapshots)
    frames = sum(c.messages for s in snapshots.values() for c in s.channels if c.sender == s.rank)
    wire = sum(c.size_bytes for s in snapshots.values() for c in s.channels if c.sender == s.rank)
    digest_note = "digests agree" if not mismatches else f"DIGEST MISMATCH: {mismatches}"
    row.note = f"{digest_note}; {frames} frames, {wire / 1e6:.1f} MB payload sent"
    return row, digest_note


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n{title}")
    print(f"{'run':<26}{'wall s':>9}{'rounds':>9}{'MB':>9}{'accuracy':>10}  note")
    for row in rows:
        rounds = "-" if row.rounds is None else str(row.rounds)
        size = "-" if row.size_bytes is None else f"{row.size_bytes / 1e6:.2f}"
        print(
            f"{row.name:<26}{row.wall_s:>9.2f}{rounds:>9}{size:>9}"
            f"{row.accuracy * 100:>9.2f}%  {row.note}"
        )


# --- round trips per step, under injected delay (--round-trips) -----------------------------

CONFIGURATIONS = ("logistic-2", "mlp-2", "logistic-3", "mlp-3")
DATA_MEMBERS = ("a", "b", "c")


@dataclasses.dataclass
class StepRow:
    """One configuration: party 0's round trips per step, the wire's frames and bytes per
    step, seconds per step at each delay, accuracy (MPC and plaintext)."""

    configuration: str
    parties: int
    round_trips: float
    dealer_round_trips: float
    frames: float
    size_bytes: float
    seconds: dict[float, float]
    accuracy: float
    plain_accuracy: float
    per_party: list[dict[str, Any]]
    counts_stable: bool


@dataclasses.dataclass(frozen=True)
class Program:
    """The training program's round-trip options (`TrainSpec.sigmoid`, ``grad_threshold``)."""

    sigmoid: str = "exact"
    grad_threshold: float = GRAD_THRESHOLD

    @property
    def label(self) -> str:
        """ "" for today's program; else what differs, e.g. "poly3 thr=0"."""
        if self == Program():
            return ""
        return f"{self.sigmoid} thr={self.grad_threshold:g}"


def round_trip_spec(
    full: dict[str, Any], model: str, parties: int, epochs: int, program: Program = Program()
) -> TrainSpec:
    return TrainSpec(
        layout="vertical",
        model=model,
        n_features=30,
        columns_per_rank=(15, 15) if parties == 2 else (10, 10, 10),
        label_rank=parties - 1,
        train_rows_per_rank=(len(full["x_train"]),),
        test_rows_per_rank=(len(full["x_test"]),),
        epochs=epochs,
        batch_size=32,
        learning_rate=0.5,
        hidden=(16,),
        seed=0,
        recipients=(0,),
        sigmoid=program.sigmoid,
        grad_threshold=program.grad_threshold,
    )


def dealer_manifest(
    job_id: str, spec: TrainSpec, rows: int, parties: int, *, offline: bool = True
) -> JobManifest:
    program = {
        "name": "train",
        "spec": spec.to_json(),
        "data": {"source": "breast_cancer", "seed": 0, "rows": rows},
    }
    members = (*DATA_MEMBERS[:parties], "dealer")
    return JobManifest(job_id, members, parties, "dealer", False, 300.0, program, offline)


def _training_traffic(results: list[dict[str, Any]], parties: int) -> list[dict[str, Any]]:
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise SystemExit(f"job failed: {errors}")
    # The steady state: from the second step on (the offline phase plans in the first).
    trainings = [results[rank]["traffic"]["training"] for rank in range(parties)]
    return [t.get("after_first_step", t) for t in trainings]


def _wire_per_step(training: list[dict[str, Any]]) -> tuple[float, float]:
    """Every frame on the wire in a step once: what the data parties sent, and what the
    dealer sent them (the dealer measures no steps of its own)."""
    frames = size_bytes = 0.0
    for party in training:
        for member, peer in party["per_step"]["per_peer"].items():
            frames += peer["frames_sent"]
            size_bytes += peer["bytes_sent"]
            if member == "dealer":
                frames += peer["frames_received"]
                size_bytes += peer["bytes_received"]
    return frames, size_bytes


def measure_configuration(
    cluster: RelayCluster,
    configuration: str,
    full: dict[str, Any],
    rows: int,
    epochs: int,
    delays_ms: list[float],
    timeout_s: float,
    *,
    offline: bool,
    program: Program = Program(),
) -> StepRow:
    model, _, count = configuration.partition("-")
    parties = int(count)
    spec = round_trip_spec(full, model, parties, epochs, program)
    plain = run_plaintext(spec, full)
    seconds: dict[float, float] = {}
    counts: list[list[tuple[float, float]]] = []
    first: list[dict[str, Any]] = []
    accuracy = 0.0
    for delay_ms in delays_ms:
        cluster.set_delay(delay_ms)
        variant = f"-{program.sigmoid}-thr{program.grad_threshold:g}" if program.label else ""
        job_id = f"{configuration}-{'offline' if offline else 'requests'}{variant}-{delay_ms:g}ms"
        manifest = dealer_manifest(job_id, spec, rows, parties, offline=offline)
        run = cluster.run(manifest, timeout_s=timeout_s)
        if any("error" in r for r in run.results):
            print(run.logs(), file=sys.stderr)
        training = _training_traffic(run.results, parties)
        counts.append(
            [(t["totals"]["round_trips"], t["totals"]["dealer_round_trips"]) for t in training]
        )
        seconds[delay_ms] = training[0]["per_step"]["seconds"]
        if not first:
            first, accuracy = training, run.results[0]["output"]["test_accuracy"]
    frames, size_bytes = _wire_per_step(first)
    per_party = [
        {"rank": rank, "member": DATA_MEMBERS[rank], **t["per_step"]}
        for rank, t in enumerate(first)
    ]
    name = f"{configuration} {'offline' if offline else 'today'}"
    return StepRow(
        f"{name} {program.label}" if program.label else name,
        parties,
        first[0]["per_step"]["round_trips"],
        first[0]["per_step"]["dealer_round_trips"],
        frames,
        size_bytes,
        seconds,
        accuracy,
        plain["test_accuracy"],
        per_party,
        counts_stable=all(c == counts[0] for c in counts),
    )


def print_step_table(rows: list[StepRow], delays_ms: list[float]) -> None:
    timed = "".join(f"{f's/step {d:g}ms':>14}" for d in delays_ms)
    slope = len(delays_ms) > 1 and delays_ms[0] == 0
    cost = f"{f'ms/rt@{delays_ms[-1]:g}':>10}" if slope else ""
    print(
        f"\n{'configuration':<36}{'parties':>9}{'rounds/step':>13}{'dealer':>8}"
        f"{'frames/step':>13}{'KB/step':>10}{timed}{cost}{'rt x 50ms':>11}{'acc':>8}{'plain':>8}"
    )
    for row in rows:
        times = "".join(f"{row.seconds[d]:>14.2f}" for d in delays_ms)
        if slope:  # what the delay added per counted round trip
            added_s = row.seconds[delays_ms[-1]] - row.seconds[0]
            times += f"{added_s / max(row.round_trips, 1) * 1000:>10.1f}"
        print(
            f"{row.configuration:<36}{f'{row.parties}+dealer':>9}{row.round_trips:>13.1f}"
            f"{row.dealer_round_trips:>8.1f}{row.frames:>13.1f}{row.size_bytes / 1e3:>10.1f}"
            f"{times}{row.round_trips * 0.05:>11.2f}"
            f"{row.accuracy * 100:>7.1f}%{row.plain_accuracy * 100:>7.1f}%"
        )
    print(f"\n{'per party (per step)':<44}{'rounds':>8}{'dealer':>8}{'frames':>9}{'KB':>9}")
    for row in rows:
        for party in row.per_party:
            name = f"{row.configuration} {party['member']}"
            print(
                f"{name:<44}{party['round_trips']:>8.1f}{party['dealer_round_trips']:>8.1f}"
                f"{party['frames']:>9.1f}{party['bytes'] / 1e3:>9.1f}"
            )


def round_trips_main(args: argparse.Namespace) -> int:
    rows = 128 if args.smoke else args.rows  # 96 training rows: three full batches of 32
    configurations = ["logistic-2"] if args.smoke else args.configurations.split(",")
    delays_ms = [0.0, 5.0] if args.smoke else [float(d) for d in args.delays_ms.split(",")]
    unknown = sorted(set(configurations) - set(CONFIGURATIONS))
    if unknown:
        raise SystemExit(f"unknown configurations {unknown}; known: {', '.join(CONFIGURATIONS)}")
    dealer_modes = {"both": (False, True), "today": (False,), "offline": (True,)}[args.dealer]
    # (offline phase, program) per configuration: today's program in each dealer mode, then
    # the lean one with the offline phase
    runs = [(offline, Program()) for offline in dealer_modes]
    if args.lean_sigmoid != "none":
        runs.append((True, Program(args.lean_sigmoid, args.lean_grad_threshold)))
    full = breast_cancer_split(seed=0, rows=rows)
    print(
        f"round trips per training step: breast cancer ({len(full['x_train'])} train / "
        f"{len(full['x_test'])} test rows), vertical, {args.epochs} epoch(s), batch 32, lr 0.5, "
        "CrypTen's default functions unless the row names a sigmoid (TrainSpec.sigmoid) and "
        "a grad_threshold (thr=0: none); 'today': the dealer answers each request while the "
        "step waits; 'offline': party 0 plans the dealer's answers after a step and the "
        "dealer streams them ahead (mpc_ledger.mpc.dealer_offline)"
    )
    print(
        "every per-step figure is from the second training step to the last (the first is the "
        "offline phase's planning step); "
        "rounds: party 0's sequential round trips per step (a batch of sends, then the waits "
        "for their replies, counts once), dealer: those to the dealer; frames/KB: every frame "
        "on the wire once; s/step: party 0's seconds per step, every link delayed one way "
        "through the test proxy (also at 0 ms); ms/rt: seconds the delay added per step over "
        "rounds/step (a round trip costs one one-way delay where both ends send at once, two "
        "where one waits for the other's reply); rt x 50ms: the issue's time budget basis"
    )
    table: list[StepRow] = []
    with tempfile.TemporaryDirectory(prefix="mpcrt") as raw:
        for parties in (2, 3):
            wanted = [c for c in configurations if c.endswith(f"-{parties}")]
            if not wanted:
                continue
            members = ",".join(DATA_MEMBERS[:parties])
            root = Path(raw) / f"parties{parties}"
            with RelayCluster(root, members, dealer=True, delay_ms=0) as cluster:
                for configuration in wanted:
                    for offline, program in runs:
                        table.append(
                            measure_configuration(
                                cluster,
                                configuration,
                                full,
                                rows,
                                args.epochs,
                                delays_ms,
                                args.timeout_s,
                                offline=offline,
                                program=program,
                            )
                        )
    print_step_table(table, delays_ms)
    stable = all(row.counts_stable for row in table)
    print(
        "round trip counts equal at every delay"
        if stable
        else "ROUND TRIP COUNTS DIFFER BETWEEN DELAYS"
    )
    summary = {
        row.configuration: {
            "round_trips_per_step": row.round_trips,
            "dealer_round_trips_per_step": row.dealer_round_trips,
            "seconds_per_step": {f"{d:g}": s for d, s in row.seconds.items()},
        }
        for row in table
    }
    print(json.dumps({"round_trips": summary, "ok": stable}))
    return 0 if stable else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="1 epoch on 64 rows")
    parser.add_argument("--epochs", type=int, default=None, help="10 (--round-trips: 1)")
    parser.add_argument("--no-dealer", action="store_true", help="skip the runs with the dealer")
    parser.add_argument("--timeout-s", type=float, default=600)
    parser.add_argument(
        "--round-trips", action="store_true", help="round trips per step, under delay"
    )
    parser.add_argument("--rows", type=int, default=128, help="--round-trips: rows used")
    parser.add_argument("--delays-ms", default="0,5,25", help="--round-trips: one-way delays")
    parser.add_argument(
        "--configurations",
        default=",".join(CONFIGURATIONS),
        help="--round-trips: MODEL-DATAPARTIES, comma-separated",
    )
    parser.add_argument(
        "--dealer",
        choices=("both", "today", "offline"),
        default="both",
        help="--round-trips: the dealer answering each request (today), its offline phase, "
        "or both side by side (default)",
    )
    parser.add_argument(
        "--lean-sigmoid",
        choices=(*SIGMOIDS, "none"),
        default="piecewise",
        help="--round-trips: the lean program's sigmoid, run beside today's (none: not run)",
    )
    parser.add_argument(
        "--lean-grad-threshold",
        type=float,
        default=0.0,
        help="--round-trips: the lean program's grad_threshold (0: none)",
    )
    args = parser.parse_args(argv)
    if args.round_trips:
        args.epochs = 1 if args.smoke or args.epochs is None else args.epochs
        return round_trips_main(args)
    if args.epochs is None:
        args.epochs = 10
    rows_limit = 64 if args.smoke else None
    epochs = 1 if args.smoke else args.epochs
    full = breast_cancer_split(seed=0, rows=rows_limit)
    spec = make_spec(full, epochs)
    print(
        f"logistic regression, breast cancer ({len(full['x_train'])} train / "
        f"{len(full['x_test'])} test rows), "
        f"vertical 15+15 columns, labels at party 1, {epochs} epochs, batch 32, lr 0.5"
    )
    plain = run_plaintext(spec, full)
    plaintext = Row("plaintext PyTorch", plain["train_seconds"], None, None, plain["test_accuracy"])
    ok = True
    with tempfile.TemporaryDirectory(prefix="mpcb") as raw:
        root = Path(raw)
        gloo = run_gloo(root, manifest_for("gloo2", spec, rows_limit, dealer=False), args.timeout_s)
        with RelayCluster(root / "tfp", "a,b", dealer=False) as cluster:
            ours, digest_note = run_ours(
                cluster, manifest_for("ours2", spec, rows_limit, dealer=False), args.timeout_s
            )
        ok &= digest_note == "digests agree"
        print_table("2 parties (trusted first party, local demo):", [plaintext, gloo, ours])
        ratio = ours.wall_s / gloo.wall_s
        print(
            f"ours/gloo wall-time ratio: {ratio:.2f} (target <= 1.0, stretch <= 0.7); "
            f"accuracy gap to plaintext: {abs(ours.accuracy - plaintext.accuracy) * 100:.2f} points"
        )
        if not args.no_dealer:
            gloo_d = run_gloo(
                root, manifest_for("gloo3", spec, rows_limit, dealer=True), args.timeout_s
            )
            with RelayCluster(root / "ttp", "a,b", dealer=True) as cluster:
                ours_d, digest_note = run_ours(
                    cluster, manifest_for("ours3", spec, rows_limit, dealer=True), args.timeout_s
                )
            ok &= digest_note == "digests agree"
            # a new job's default program (piecewise sigmoid, no threshold) on ours, against
            # CrypTen's own program on its own transport
            lean_spec = dataclasses.replace(spec, sigmoid="piecewise", grad_threshold=0.0)
            with RelayCluster(root / "lean", "a,b", dealer=True) as cluster:
                lean, digest_note = run_ours(
                    cluster,
                    manifest_for("lean3", lean_spec, rows_limit, dealer=True),
                    args.timeout_s,
                )
            ok &= digest_note == "digests agree"
            lean.name = "ours + dealer, new jobs"
            print_table("2 parties + dealer (3 processes):", [plaintext, gloo_d, ours_d, lean])
            print(f"ours/gloo wall-time ratio with the dealer: {ours_d.wall_s / gloo_d.wall_s:.2f}")
            print(
                "new jobs' program on ours / CrypTen's on gloo, with the dealer: "
                f"{lean.wall_s / gloo_d.wall_s:.2f} (target <= 0.2); accuracy gap to "
                f"plaintext: {abs(lean.accuracy - plaintext.accuracy) * 100:.2f} points"
            )
    print(json.dumps({"ratio": ratio, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    with stop_on_signals():  # a SIGTERM or Ctrl-C stops the daemons it started
        sys.exit(main())
