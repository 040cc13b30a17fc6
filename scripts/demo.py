"""`make demo`: the main job on a local consortium, from nothing, through the real CLI.

In a temporary folder: `mpc-ledger dev up` (hospital-a, -b, -c, a dealer and an
auditor; real keys, real mTLS) in the background; scikit-learn's breast-cancer
data split vertically across the three hospitals (10 feature columns each, the
label at hospital-a); each hospital holds only some of the patients, in its own
order, so the job aligns them by a private set intersection of the patient ids
(alignment "psi", the default); each hospital registers its dataset;
hospital-a binds the scientist hospital-a/alice; alice submits a logistic
regression job, watches it, reads its test metrics (accuracy, precision,
recall, F1, log-loss, computed under MPC), fetches the model file (she is its
recipient) and applies it with `mpc-ledger model predict` to patients no
hospital holds; that accuracy is printed next to plaintext PyTorch training on
the patients the hospitals share; then the job's record trail, and an export
of the ledger verified offline against the genesis.
Stopped by SIGTERM, SIGHUP or Ctrl-C, it stops its consortium first (exit
128 + the signal); killed, its `dev up` stops the consortium on its own.

Every step is a `mpc-ledger` command in a child process, printed before it runs.

    python scripts/demo.py            # 569 rows, 3 epochs
    python scripts/demo.py --smoke    # 160 rows, 1 epoch (a test runs it)
    python scripts/demo.py --keep DIR # work in DIR and leave it there
"""

from __future__ import annotations

import argparse
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from mpc_ledger.daemon.parent import child_env, raise_if_stopped, stop_on_signals

CLI = [sys.executable, "-m", "mpc_ledger.cli.main"]
HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
TEST_FRACTION = 0.2
EVALUATION_FRACTION = 0.15  # patients no hospital holds: the demo's own held-out set
KEEP_FRACTION = 0.88  # each hospital holds this share of the others, at random
BATCH_SIZE = 32
LEARNING_RATE = 0.5
SEED = 2026
READY_LINE = "consortium ready"


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run(*args: Any, cwd: Path, capture: bool = False, check: bool = True, echo: bool = True) -> str:
    """`mpc-ledger ARGS`, printed first; its output goes to ours (and is returned if captured;
    ``echo=False``: only returned)."""
    raise_if_stopped()  # a stop signal whose exception something swallowed stops here
    words = [str(a) for a in args]
    print(f"$ mpc-ledger {shlex.join(words)}", flush=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if capture:
        result = subprocess.run(
            [*CLI, *words], cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
        if echo:
            sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        output = result.stdout
    else:
        result = subprocess.run([*CLI, *words], cwd=cwd, env=env, text=True, check=False)
        output = ""
    sys.stdout.flush()
    if check and result.returncode != 0:
        raise SystemExit(f"demo: `mpc-ledger {words[0]} {words[1]}` exited {result.returncode}")
    return output


class Consortium:
    """`mpc-ledger dev up` in the background; its output prefixed, until `stop`."""

    def __init__(self, work: Path) -> None:
        command = ["dev", "up", "--dir", "consortium", "--base-port", "0"]
        print(f"$ mpc-ledger {shlex.join(command)} &", flush=True)
        self.process = subprocess.Popen(
            [*CLI, *command],
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**child_env(), "PYTHONUNBUFFERED": "1"},  # `dev up` ends with the demo
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._quiet = False
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if not self._quiet or "stop" in line:
                print(f"  [dev up] {line.rstrip()}", flush=True)
            self._lines.put(line)
        self._lines.put(None)

    def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                raise SystemExit(f"demo: `dev up` exited with {self.process.wait()}")
            if line.strip() == READY_LINE:
                self._quiet = True
                return
        raise SystemExit("demo: the consortium did not come up")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        time.sleep(0.2)  # the pump prints the last lines


def column_names() -> list[str]:
    from sklearn.datasets import load_breast_cancer

    names = load_breast_cancer().feature_names
    return [str(n).replace(" ", "_") for n in names]


def split_data(work: Path, rows: int) -> dict[str, Any]:
    """Shuffle once (a fixed seed) and standardise; keep the last 15 % of the patients for
    the demo's own evaluation; give each hospital a random 88 % of the others, in its own
    order, as one CSV. Also the patients all three share (the plaintext reference)."""
    from sklearn.datasets import load_breast_cancer

    features, labels = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(labels))[:rows]
    features, labels = features[order], labels[order].astype(np.int64)
    n_eval = int(rows * EVALUATION_FRACTION)
    n_pool = rows - n_eval
    mean, std = features[:n_pool].mean(0), features[:n_pool].std(0) + 1e-9
    features = ((features - mean) / std).round(5)
    names = column_names()
    ids = np.array([f"patient-{int(i):04d}" for i in order])
    data = work / "data"
    data.mkdir()
    parts, held = {}, []
    for index, hospital in enumerate(HOSPITALS):
        rows_here = rng.permutation(rng.permutation(n_pool)[: int(n_pool * KEEP_FRACTION)])
        held.append(set(rows_here.tolist()))
        columns = names[10 * index : 10 * (index + 1)]
        header = ["patient_id", *columns] + (["diagnosis"] if index == 0 else [])
        values = [ids[rows_here], *features[rows_here, 10 * index : 10 * (index + 1)].T]
        if index == 0:
            values.append(labels[rows_here])
        lines = [",".join(header)]
        lines += [",".join(str(v) for v in row) for row in zip(*values, strict=True)]
        path = data / f"{hospital}.csv"
        path.write_text("\n".join(lines) + "\n")
        parts[hospital] = (path, columns, len(rows_here))
    shared = sorted(set.intersection(*held))
    # The job trains on the shared patients minus its own test rows, in an order no one
    # chose, each hospital standardising its columns over its training rows; the reference
    # trains on the same number of them, in the demo's order. Both models see the
    # evaluation patients standardised like the shared patients (close to what the
    # workers did).
    n_train = len(shared) - int(len(shared) * TEST_FRACTION)
    mean, std = features[shared].mean(0), features[shared].std(0) + 1e-9
    return {
        "parts": parts,
        "shared": len(shared),
        "x_train": (features[shared[:n_train]] - mean) / std,
        "y_train": labels[shared[:n_train]],
        "x_test": (features[n_pool:] - mean) / std,
        "y_test": labels[n_pool:],
        "x_test_as_held": features[n_pool:],  # as the hospitals' files hold such patients
        "ids_test": ids[n_pool:],
    }


def job_toml(parts: dict[str, Any], epochs: int) -> str:
    datasets = "".join(
        f'\n[[datasets]]\nid = "{hospital}/breast-cancer"\n'
        f"features = [{', '.join(repr(c).replace(chr(39), chr(34)) for c in columns)}]\n"
        for hospital, (_, columns, _) in parts.items()
    )
    return f"""# The demo job: logistic regression on the three hospitals' columns.
name = "breast-cancer-demo"
description = "scikit-learn's breast-cancer data, split vertically across three hospitals"
layout = "vertical"
alignment = "psi"  # the default: align the hospitals' patients by a private set intersection
label = "diagnosis"
loss = "bce"
epochs = {epochs}
batch_size = {BATCH_SIZE}
seed = {SEED}
test_fraction = {TEST_FRACTION}
recipients = ["hospital-a/alice"]
# Revealing the training loss would take its log under MPC every step (dozens of
# round trips); the test metrics at the end are revealed either way.
reveal_training_loss = false
tuple_provider = "dealer"
# The defaults, shown: the training steps' sigmoid is its piecewise-linear
# interpolation (one comparison's round trips; "exact" is CrypTen's own, about
# 30), and SGD has no gradient threshold (CrypTen's default guard is 100).
# sigmoid = "piecewise"
# gradient_threshold = 0
{datasets}
[model]
kind = "logistic_regression"

[optimiser]
kind = "sgd"
learning_rate = {LEARNING_RATE}
"""


def accuracy_of(weights: dict[str, Any], x: np.ndarray, y: np.ndarray) -> float:
    import torch

    # the model's parameters, not the statistics it was released with (preprocessing.*)
    parameters = [t for n, t in weights.items() if not n.startswith("preprocessing.")]
    weight = next(t for t in parameters if t.dim() == 2).double()
    bias = next(t for t in parameters if t.dim() == 1).double()
    logits = torch.from_numpy(x) @ weight.T + bias
    predicted = (logits.squeeze(1) > 0).numpy().astype(np.int64)
    return float((predicted == y).mean())


def write_evaluation_rows(work: Path, split: dict[str, Any], standardised: bool) -> Path:
    """The evaluation patients as a CSV, by column name (with their ids, which `model
    predict` skips): as the hospitals hold them when the model file standardises them
    itself, else standardised like the shared patients (close to what the workers did)."""
    x = split["x_test_as_held"] if standardised else split["x_test"]
    header = ["patient_id", *column_names()]
    lines = [",".join(header)]
    for patient, row in zip(split["ids_test"], x, strict=True):
        lines.append(",".join([str(patient), *map(str, row)]))
    path = work / "evaluation.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def predicted_accuracy(predictions: Path, y: np.ndarray) -> float:
    """The accuracy of `model predict`'s CSV (probability,label) against the labels."""
    import csv

    with predictions.open() as handle:
        labels = [int(row["label"]) for row in csv.DictReader(handle)]
    return float((np.array(labels) == y).mean())


def print_metrics(listing: str, job_id: str) -> None:
    """The job's test metrics from `job list --format json` (the ledger's job_completed)."""
    import json

    [job] = [j for j in json.loads(listing) if j["job_id"] == job_id]
    names = {
        "test_accuracy": "accuracy",
        "test_precision": "precision",
        "test_recall": "recall",
        "test_f1": "F1",
        "test_log_loss": "log-loss",
    }
    print("  the job's test metrics, computed under MPC on its own test rows (on the ledger):")
    ordered = [n for n in names if n in job["metrics"]]
    for name in ordered + sorted(set(job["metrics"]) - set(ordered)):
        print(f"    {names.get(name, name):<10} {job['metrics'][name]:.4f}")


def print_round_trips(work: Path, job_id: str) -> None:
    """Each hospital's round trips per training step, from its worker's own result file
    (`traffic.training`, in its daemon's job folder: local to it, never on the ledger)."""
    import json

    rows = []
    for hospital in HOSPITALS:
        folder = work / "consortium" / hospital / "data" / "jobs" / job_id
        for path in sorted(folder.glob("result-rank*.json")):
            training = json.loads(path.read_text()).get("traffic", {}).get("training")
            if training:  # the steady state: after the dealer's planning step
                steady = training.get("after_first_step", training)
                rows.append((hospital, steady["per_step"]))
    if not rows:
        return
    print(
        "  per training step after the first, each hospital's sequential round trips (to the "
        "dealer apart), frames and bytes, as its worker counted them:"
    )
    for hospital, step in rows:
        print(
            f"    {hospital:<11} rounds per step {step['round_trips']:>6.1f} "
            f"(dealer {step['dealer_round_trips']:>5.1f})  frames {step['frames']:>7.1f}  "
            f"{step['bytes'] / 1e3:>7.1f} KB  {step['seconds']:.2f} s"
        )


def plaintext(split: dict[str, Any], epochs: int) -> tuple[float, float]:
    """The same model, loss, optimiser, epochs and batches in plain PyTorch: (accuracy, s)."""
    import torch

    started = time.perf_counter()
    torch.manual_seed(SEED)
    model = torch.nn.Linear(split["x_train"].shape[1], 1).double()
    optimiser = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x = torch.from_numpy(split["x_train"])
    y = torch.from_numpy(split["y_train"]).double().unsqueeze(1)
    for _ in range(epochs):
        for start in range(0, len(x), BATCH_SIZE):
            optimiser.zero_grad()
            loss_fn(model(x[start : start + BATCH_SIZE]), y[start : start + BATCH_SIZE]).backward()
            optimiser.step()
    weights = {"weight": model.weight.detach(), "bias": model.bias.detach()}
    return accuracy_of(weights, split["x_test"], split["y_test"]), time.perf_counter() - started


def demo(work: Path, rows: int, epochs: int) -> None:
    started = time.monotonic()
    say(f"a local consortium in {work}: three hospitals, a dealer, an auditor (n = 4 validators)")
    consortium = Consortium(work)
    try:
        consortium.wait_ready()
        configs = {h: Path("consortium") / h / "party.toml" for h in HOSPITALS}

        say(
            f"breast-cancer data ({rows} patients), split vertically: 10 columns per hospital; "
            "each hospital holds some of the patients, in its own order"
        )
        split = split_data(work, rows)
        for hospital, (path, columns, count) in split["parts"].items():
            print(f"  {hospital}: {count} patients", flush=True)
            spec = ",".join(
                ["patient_id:string", *(f"{c}:float64" for c in columns)]
                + (["diagnosis:int64"] if hospital == "hospital-a" else [])
            )
            label = ["--label-column", "diagnosis"] if hospital == "hospital-a" else []
            run(
                "dataset", "register", path.relative_to(work), "--id", f"{hospital}/breast-cancer",
                "--columns", spec, "--id-column", "patient_id", *label,
                "--config", configs[hospital], cwd=work,
            )  # fmt: skip
        run("dataset", "list", "--config", configs["hospital-b"], cwd=work)

        say("a scientist: hospital-a/alice makes her keys; hospital-a binds her on the ledger")
        run("user", "keygen", "--id", "hospital-a/alice", "--out", "alice", cwd=work)
        run(
            "user", "add", "alice/user.json", "--roles", "scientist",
            "--config", configs["hospital-a"], "--out", "alice/keys/tls.crt", cwd=work,
        )  # fmt: skip
        print("$ cp consortium/genesis.json alice/genesis.json", flush=True)
        shutil.copy(work / "consortium" / "genesis.json", work / "alice" / "genesis.json")

        say(f"alice submits a logistic regression job ({epochs} epochs), signed with her key")
        (work / "job.toml").write_text(job_toml(split["parts"], epochs))
        print("$ cat job.toml\n" + (work / "job.toml").read_text(), flush=True)
        job_id = run("job", "submit", "job.toml", "--profile", "alice", cwd=work, capture=True)
        job_id = job_id.strip()

        say(
            "each hospital's daemon decides by its policy; the hospitals find the patients "
            "they share by a private set intersection, then train on secret shares"
        )
        run("job", "watch", job_id, "--profile", "alice", cwd=work)
        run("job", "list", "--profile", "alice", cwd=work)

        listing = run("job", "list", "--format", "json", "--profile", "alice", cwd=work,
                      capture=True, echo=False)  # fmt: skip
        print_metrics(listing, job_id)
        print_round_trips(work, job_id)

        say("alice, the job's recipient, fetches the model from hospital-a's daemon")
        run("job", "result", job_id, "-o", "model.safetensors", "--profile", "alice", cwd=work)
        shown = run("model", "show", "model.safetensors", cwd=work, capture=True)

        say("alice applies the model to patients no hospital holds, on her own machine")
        standardised = "preprocessing  standardise" in shown
        rows = write_evaluation_rows(work, split, standardised)
        run("model", "predict", "model.safetensors", "--input", rows.relative_to(work),
            "--output", "predictions.csv", cwd=work)  # fmt: skip
        head = (work / "predictions.csv").read_text().splitlines()[:4]
        print("$ head -4 predictions.csv\n" + "\n".join(head), flush=True)

        say("the MPC-trained model against plaintext training on the shared patients")
        mpc_accuracy = predicted_accuracy(work / "predictions.csv", split["y_test"])
        plain_accuracy, plain_s = plaintext(split, epochs)
        n_test = len(split["y_test"])
        print(
            f"  patients all three hospitals hold: {split['shared']} (the ledger's "
            "job_alignment records say the same)"
        )
        print(f"  evaluated on {n_test} patients no hospital holds")
        print(
            "  (the two train on as many shared patients, in different orders: SGD's result "
            "depends on the order, so they may differ by a patient or two)"
        )
        print(f"  {'MPC (CrypTen, 3 hospitals + dealer)':<38} accuracy {mpc_accuracy:.4f}")
        print(f"  {'plaintext PyTorch, shared patients':<38} accuracy {plain_accuracy:.4f}")
        print(f"  (plaintext training took {plain_s:.2f} s)", flush=True)

        say("the job's record trail on the ledger")
        run("job", "show", job_id, "--profile", "alice", cwd=work)

        say(
            "each party's operator replays its side of the job from its committed seed, its "
            "registered data and its encrypted inbound log, and signs the verdict"
        )
        for member in (*HOSPITALS, "dealer"):
            run("audit", "replay", job_id, "--config", Path("consortium") / member / "party.toml",
                cwd=work)  # fmt: skip

        say("compliance: export hospital-a's copy of the ledger and verify it offline")
        run("ledger", "export", "-o", "ledger.export", "--config", configs["hospital-a"], cwd=work)
        run("verify", "ledger.export", "--genesis", "consortium/genesis.json", cwd=work)
    finally:
        say("stopping the consortium (Ctrl-C to `dev up`)")
        consortium.stop()
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="160 rows, 1 epoch")
    parser.add_argument("--keep", type=Path, help="work in this (new) folder and keep it")
    parser.add_argument("--epochs", type=int, help="training epochs (default 3; smoke 1)")
    args = parser.parse_args()
    rows = 160 if args.smoke else 569
    epochs = args.epochs or (1 if args.smoke else 3)
    if args.keep is not None:
        args.keep.mkdir(parents=True)
        demo(args.keep.resolve(), rows, epochs)
        return 0
    with tempfile.TemporaryDirectory(prefix="mpc-ledger-demo-") as work:
        demo(Path(work), rows, epochs)
    return 0


if __name__ == "__main__":
    # SIGTERM, SIGHUP and Ctrl-C stop the consortium (the `finally:` in `demo`) and remove
    # the temporary folder; a SIGKILL cannot be caught, and `dev up` follows the demo then.
    with stop_on_signals():
        sys.exit(main())
