"""Where a training step's sequential round trips go, part by part (issue #13, item 3).

Theory of operation. The same logistic regression as ``mpc_bench.py
--round-trips`` (breast cancer, vertical: 15+15 columns with 2 data parties,
10+10+10 with 3, labels at the last party; batch 32, lr 0.5, the dealer's
offline phase on) runs on real party daemons over a `RelayCluster`, one job
per configuration. The data ranks run this file with ``--worker``: the real
worker (`mpc_ledger.mpc.worker.main`), which hands `run_training` a callback
that snapshots the communicator's counters (`MpcCommunicator.instance.traffic`,
`mpc_ledger.mpc.round_trips`) as each part of a step ends
(`training.STEP_PARTS`: the forward matmul with its truncation; the loss's
forward, which with BCE and the loss unrevealed is the sigmoid alone; the
backward: the gradient's scaling and the transposed matmul; the optimiser's
step, i.e. the gradient threshold and the update). Each worker writes the
per-part means over steps 2..N (step 1 is the offline phase's planning step)
beside its result. The threshold's own cost is the update part with it less
the same part without it (``grad_threshold`` 0).

Configurations: each sigmoid (`TrainSpec.sigmoid`) with and without the
threshold, at 2 and 3 data parties. For each: party 0's round trips per part
and per step (dealer round trips apart), test accuracy next to plaintext's
(the exact sigmoid, plain PyTorch), and the largest difference between the
MPC model's parameters and plaintext's.

    python benchmarks/step_breakdown.py [--rows 128] [--epochs 1] [--parties 2,3]
        [--sigmoids exact,chebyshev,poly3,linear] [--thresholds 100,0] [--smoke]

``--rows 0`` takes every row (426 train / 143 test). ``--smoke``: 2 parties,
the exact sigmoid, 128 rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from mpc_ledger.daemon.parent import stop_on_signals
from mpc_ledger.mpc.plaintext import run_plaintext
from mpc_ledger.mpc.sample_data import breast_cancer_split
from mpc_ledger.mpc.train_spec import SIGMOIDS, TrainSpec
from mpc_ledger.testing.mpc_cluster import RelayCluster, wait_all

DATA_MEMBERS = ("a", "b", "c")
PARTS = ("forward", "loss", "backward", "update")  # training.STEP_PARTS, without torch
COUNTERS = ("round_trips", "peer_round_trips", "dealer_round_trips", "frames", "bytes")


# --- the worker side: the real worker, with a callback at each part's end ------------------


class PartRecorder:
    """Snapshots this party's counters as each part ends; the deltas per part and step."""

    def __init__(self) -> None:
        self._last: Any = None
        self.steps: list[dict[str, dict[str, int]]] = []

    def part_ends(self, part: str) -> None:
        from mpc_ledger.mpc.communicator import MpcCommunicator

        communicator = MpcCommunicator.instance
        if communicator is None:
            return
        now = communicator.traffic.snapshot()
        if part == PARTS[0]:
            self.steps.append({})
        if self._last is not None:  # the first step's forward has no start: not measured
            self.steps[-1][part] = now.minus(self._last).totals()
        self._last = now

    def means(self) -> dict[str, dict[str, float]]:
        """Per part, each counter's mean over the steps after the first."""
        steady = self.steps[1:]
        if not steady:
            return {}
        return {
            part: {c: sum(s[part][c] for s in steady) / len(steady) for c in COUNTERS}
            for part in PARTS
        }


def worker_main(argv: list[str]) -> int:
    from mpc_ledger.mpc import worker

    recorder = PartRecorder()
    code = worker.main(argv, step_parts=recorder.part_ends)
    output = Path(argv[argv.index("--output") + 1])
    parts = {"steps": len(recorder.steps), "parts": recorder.means()}
    output.with_suffix(".parts.json").write_text(json.dumps(parts))
    return code


# --- the driver ------------------------------------------------------------------------------


@dataclasses.dataclass
class Measured:
    name: str
    parties: int
    parts: dict[str, dict[str, float]]  # party 0's
    step_round_trips: float  # party 0's, from the worker's own training window
    accuracy: float
    plain_accuracy: float
    parameter_gap: float


def make_spec(
    full: dict[str, Any], parties: int, epochs: int, sigmoid: str, threshold: float
) -> TrainSpec:
    return TrainSpec(
        layout="vertical",
        model="logistic",
        n_features=30,
        columns_per_rank=(15, 15) if parties == 2 else (10, 10, 10),
        label_rank=parties - 1,
        train_rows_per_rank=(len(full["x_train"]),),
        test_rows_per_rank=(len(full["x_test"]),),
        epochs=epochs,
        batch_size=32,
        learning_rate=0.5,
        seed=0,
        recipients=(0,),
        sigmoid=sigmoid,
        grad_threshold=threshold,
    )


def _gap(model: dict[str, Any], plain: dict[str, Any]) -> float:
    def flat(values: Any) -> list[float]:
        return [v for row in values for v in flat(row)] if isinstance(values, list) else [values]

    pairs = (zip(flat(model[name]), flat(plain[name]), strict=True) for name in plain)
    return max(abs(a - b) for pair in pairs for a, b in pair)


def measure(
    cluster: RelayCluster,
    spec: TrainSpec,
    rows: int | None,
    parties: int,
    name: str,
    plain: dict[str, Any],
    timeout_s: float,
) -> Measured:
    from mpc_ledger.mpc.worker import JobManifest

    program = {
        "name": "train",
        "spec": spec.to_json(),
        "data": {"source": "breast_cancer", "seed": 0, "rows": rows},
    }
    members = (*DATA_MEMBERS[:parties], "dealer")
    job_id = name.replace(" ", "-").replace("=", "").replace("+", "-")
    manifest = JobManifest(job_id, members, parties, "dealer", False, 300.0, program, True)
    ours = (sys.executable, str(Path(__file__).resolve()), "--worker")
    workers = cluster.launch(manifest, programs={rank: ours for rank in range(parties)})
    wait_all(workers, timeout_s)
    results = [w.result() for w in workers]
    if any("error" in r for r in results):
        print("\n".join(w.log() for w in workers), file=sys.stderr)
        raise SystemExit(f"{name} failed: {[r.get('error') for r in results]}")
    parts = json.loads(workers[0].output.with_suffix(".parts.json").read_text())["parts"]
    training = results[0]["traffic"]["training"]
    steady = training.get("after_first_step", training)["per_step"]
    output = results[0]["output"]
    return Measured(
        name,
        parties,
        parts,
        steady["round_trips"],
        output["test_accuracy"],
        plain["test_accuracy"],
        _gap(output["model"], plain["model"]),
    )


def print_table(rows: list[Measured]) -> None:
    head = "".join(f"{p:>10}" for p in PARTS)
    print(
        f"\n{'configuration':<34}{head}{'sum':>8}{'step':>8}{'dealer':>8}"
        f"{'acc':>8}{'plain':>8}{'|dw|max':>9}"
    )
    for row in rows:
        cells = "".join(f"{row.parts[p]['round_trips']:>10.1f}" for p in PARTS)
        total = sum(row.parts[p]["round_trips"] for p in PARTS)
        dealer = sum(row.parts[p]["dealer_round_trips"] for p in PARTS)
        print(
            f"{row.name:<34}{cells}{total:>8.1f}{row.step_round_trips:>8.1f}{dealer:>8.1f}"
            f"{row.accuracy * 100:>7.1f}%{row.plain_accuracy * 100:>7.1f}%{row.parameter_gap:>9.4f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=128, help="rows used (0: all)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--parties", default="2,3")
    parser.add_argument("--sigmoids", default=",".join(SIGMOIDS))
    parser.add_argument("--thresholds", default="100,0", help="grad_threshold values")
    parser.add_argument("--timeout-s", type=float, default=900)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    rows = 128 if args.smoke else (args.rows or None)  # 96 train rows: 3 full batches
    party_counts = [2] if args.smoke else [int(p) for p in args.parties.split(",")]
    sigmoids = ["exact"] if args.smoke else args.sigmoids.split(",")
    thresholds = [100.0] if args.smoke else [float(t) for t in args.thresholds.split(",")]
    full = breast_cancer_split(seed=0, rows=rows)
    print(
        f"round trips per step by part: logistic regression, breast cancer "
        f"({len(full['x_train'])} train / {len(full['x_test'])} test rows), vertical, "
        f"{args.epochs} epoch(s), batch 32, lr 0.5, dealer offline phase on; party 0's "
        "sequential round trips, mean over steps 2..N; 'step': the worker's own per-step "
        "count (the sum's check); plain: exact sigmoid in PyTorch; |dw|max: largest "
        "parameter difference to plaintext"
    )
    table: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="mpcparts") as raw:
        for parties in party_counts:
            root = Path(raw) / f"parties{parties}"
            with RelayCluster(root, ",".join(DATA_MEMBERS[:parties]), dealer=True) as cluster:
                for sigmoid in sigmoids:
                    for threshold in thresholds:
                        spec = make_spec(full, parties, args.epochs, sigmoid, threshold)
                        plain = run_plaintext(spec, full)
                        name = f"{parties}+dealer {sigmoid} thr={threshold:g}"
                        row = measure(cluster, spec, rows, parties, name, plain, args.timeout_s)
                        table.append(row)
                        print_table([row])
                        sys.stdout.flush()
    print_table(table)
    ok = all(
        abs(sum(r.parts[p]["round_trips"] for p in PARTS) - r.step_round_trips) < 0.51
        for r in table
    )
    summary = {
        r.name: {
            "parts": {p: r.parts[p]["round_trips"] for p in PARTS},
            "round_trips_per_step": r.step_round_trips,
            "accuracy": r.accuracy,
            "plain_accuracy": r.plain_accuracy,
            "parameter_gap": r.parameter_gap,
        }
        for r in table
    }
    print(json.dumps({"breakdown": summary, "parts_add_up": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(worker_main(sys.argv[2:]))
    with stop_on_signals():  # a SIGTERM or Ctrl-C stops the daemons it started
        sys.exit(main())
