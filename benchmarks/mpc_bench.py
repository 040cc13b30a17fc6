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
with the dealer (3 processes: 2 parties + dealer), on both transports.

``--smoke``: 1 epoch on 64 rows (a test runs it).
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
from mpc_ledger.mpc.train_spec import TrainSpec
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="1 epoch on 64 rows")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--no-dealer", action="store_true", help="skip the runs with the dealer")
    parser.add_argument("--timeout-s", type=float, default=600)
    args = parser.parse_args(argv)
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
            print_table("2 parties + dealer (3 processes):", [plaintext, gloo_d, ours_d])
            print(f"ours/gloo wall-time ratio with the dealer: {ours_d.wall_s / gloo_d.wall_s:.2f}")
    print(json.dumps({"ratio": ratio, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    with stop_on_signals():  # a SIGTERM or Ctrl-C stops the daemons it started
        sys.exit(main())
