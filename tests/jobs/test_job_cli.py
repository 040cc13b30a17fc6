"""`mpc-ledger job ...` end to end: real daemons, real mTLS, users made with `user keygen` and
bound with `user add`, a job submitted, watched and fetched through the CLI.

Data parties a and b (vertical, b holds the label), the dealer and an auditor. The job's
recipient is a/alice, so the model is on a's daemon; a/bob is another scientist of a. The one
job of the first test is checked every way a scientist meets it: its metrics in `job watch`,
`job list`, `job show` and the verify report, its model file applied by `model predict`.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time

import pytest

from mpc_ledger.jobs.progress import PHASE_ALIGNING
from mpc_ledger.jobs.spec import split_rows
from mpc_ledger.testing.consortium import metric_value

from .conftest import (
    CLI_SHARED,
    cli,
    cli_job,
    cli_job_world,
    cli_policy,
    make_user,
    write_csv,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BINARY_METRICS = ("test_accuracy", "test_precision", "test_recall", "test_f1", "test_log_loss")
POLICY = cli_policy("a")
JOB = cli_job("cli-test")
BAD_JOB = """name = ""
layout = "diagonal"
epochs = 0
recipients = ["a/alice"]

[[datasets]]
id = "a/feat"

[model]
kind = "forest"

[optimiser]
learning_rate = 0.5
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("jobcli")
    with cli_job_world(root, POLICY) as consortium:
        alice = make_user(root, consortium, "a/alice")
        bob = make_user(root, consortium, "a/bob")
        (root / "job.toml").write_text(JOB)
        (root / "bad.toml").write_text(BAD_JOB)
        yield {"root": root, "alice": alice, "bob": bob, "consortium": consortium}


def test_a_scientist_submits_watches_and_fetches_a_job_through_thecli(world):
    root, alice, bob = world["root"], world["alice"], world["bob"]
    started = time.monotonic()
    submitted = cli("job", "submit", root / "job.toml", "--profile", alice)
    job_id = submitted.stdout.strip()
    assert len(bytes.fromhex(job_id)) == 32

    watched = cli("job", "watch", job_id, "--profile", alice, timeout_s=180)
    assert "job completed: test_accuracy" in watched.stdout, watched.stdout
    assert all(name in watched.stdout for name in BINARY_METRICS), watched.stdout
    assert "epoch 1/1" in watched.stdout
    total = _psi_job_steps()
    _check_watched_progress(watched.stdout, total)
    for member_id in ("a", "b"):  # each data party's gauges, from its own worker
        metrics = world["consortium"].scrape_metrics(member_id)
        assert metric_value(metrics, f'mpc_ledger_job_steps{{job="{job_id}"}}') == total
        assert metric_value(metrics, f'mpc_ledger_job_step{{job="{job_id}"}}') == total
        assert metric_value(metrics, f'mpc_ledger_job_progress_ratio{{job="{job_id}"}}') == 1

    model = root / "model.safetensors"
    fetched = cli("job", "result", job_id, "-o", model, "--profile", alice)
    assert "sha256" in fetched.stdout
    assert model.stat().st_size > 0 and model.stat().st_mode & 0o777 == 0o600
    check_the_model_file_predicts_as_plain_pytorch(root, model, job_id)

    refused = cli("job", "result", job_id, "-o", root / "bob.pt", "--profile", bob, ok=False)
    assert refused.returncode == 1
    assert "a/bob is not a recipient" in refused.stderr, refused.stderr
    assert not (root / "bob.pt").exists() and not (root / "bob.pt.partial").exists()

    listing = json.loads(cli("job", "list", "--format", "json", "--profile", bob).stdout)
    [job] = [j for j in listing if j["job_id"] == job_id]
    assert job["state"] == "completed" and job["submitter"] == "a/alice"
    job_metrics = job["metrics"]
    assert sorted(job_metrics) == sorted(BINARY_METRICS), job_metrics
    assert all(0 <= job_metrics[n] <= 1 for n in BINARY_METRICS if n != "test_log_loss")
    assert 0 < job_metrics["test_log_loss"] < 5
    assert (job["epoch"], job["epochs"], job["step"], job["steps"]) == (1, 1, total, total)

    shown = json.loads(cli("job", "show", job_id, "--format", "json", "--profile", bob).stdout)
    kinds = [entry["kind"] for entry in shown]
    assert kinds[0] == "job_submission" and "job_completed" in kinds
    assert kinds.count("job_decision") == 2 and kinds.count("job_started") == 3
    # aligned by PSI (the default): both data parties found the 60 patients they share
    assert "logistic_regression, vertical (psi), 1 epochs" in shown[0]["detail"], shown[0]
    alignments = [e for e in shown if e["kind"] == "job_alignment"]
    assert len(alignments) == 2, shown
    assert all(f"psi: {CLI_SHARED} entities in common" in e["detail"] for e in alignments)
    assert kinds.index("job_alignment") < kinds.index("job_epoch_digests")
    text = cli("job", "show", job_id, "--profile", alice).stdout
    assert "job_completed" in text and all(name in text for name in BINARY_METRICS)
    check_the_verify_report_shows_the_metrics(root, world["consortium"], job_id, job_metrics)
    assert time.monotonic() - started < 150


def check_the_model_file_predicts_as_plain_pytorch(root, model, job_id):
    """The fetched file loads without pickle, says what the model takes, and `model predict`
    (a child process) gives the plaintext model's predictions on rows read by column name."""
    import numpy as np
    import torch
    from safetensors.torch import load_file

    tensors = load_file(model)
    parameters = {k: v for k, v in tensors.items() if not k.startswith("preprocessing.")}
    assert sum(t.numel() for t in parameters.values()) == 5 + 1  # 5 features and a bias
    shown = json.loads(cli("model", "show", model, "--format", "json").stdout)
    assert shown["job_id"] == job_id and shown["label"] == "y"
    assert shown["features"] == ["f0", "f1", "f2", "g0", "g1"]  # a's, then b's (rank order)
    assert shown["model"] == {"kind": "logistic", "hidden": [], "loss": "bce", "classes": 0}

    # the patients both hold, their columns joined by id, in another order than the model's
    a_rows = {r["id"]: r for r in csv.DictReader((root / "a.csv").open())}
    b_rows = {r["id"]: r for r in csv.DictReader((root / "b.csv").open())}
    shared = sorted(set(a_rows) & set(b_rows))
    header = ["id", "g1", "f2", "y", "f0", "g0", "f1"]
    rows = [{**a_rows[i], **b_rows[i]} for i in shared]
    write_csv(root / "rows.csv", header, [[row[c] for row in rows] for c in header])
    x = np.array([[float(row[c]) for c in shown["features"]] for row in rows])
    # each owner's own columns' mean and deviation, released with the model: it takes raw columns
    assert tensors["preprocessing.mean"].shape == tensors["preprocessing.scale"].shape == (5,)
    assert shown["preprocessing"]["kind"] == "standardise", shown
    x = (x - tensors["preprocessing.mean"].numpy()) / tensors["preprocessing.scale"].numpy()
    linear = torch.nn.Linear(5, 1)
    linear.load_state_dict(parameters)
    with torch.no_grad():
        expected = torch.sigmoid(linear(torch.tensor(x, dtype=torch.float32))).squeeze(1)
    predicted = cli("model", "predict", model, "--input", root / "rows.csv").stdout.splitlines()
    assert predicted[0] == "probability,label" and len(predicted) == len(shared) + 1
    got = np.array([[float(v) for v in line.split(",")] for line in predicted[1:]])
    assert np.allclose(got[:, 0], expected.numpy(), atol=1e-6)
    assert (got[:, 1] == (expected.numpy() > 0.5)).all()


def check_the_verify_report_shows_the_metrics(root, consortium, job_id, metrics):
    export = root / "ledger.export"
    cli("ledger", "export", "-o", export, "--config", consortium.config("a"))
    genesis = consortium.genesis_path
    report = json.loads(
        cli("verify", export, "--genesis", genesis, "--job", job_id, "--format", "json").stdout
    )
    [section] = [s for s in report["jobs"] if job_id[:16] in s["title"]]
    [table] = [t for t in section["tables"] if t["title"] == "Test metrics"]
    assert {name: float(value) for name, value in table["rows"]} == pytest.approx(metrics, rel=1e-5)


def _psi_job_steps() -> int:
    """JOB's training steps: 1 epoch over the intersection's training rows, batches of 32."""
    train_rows, _ = split_rows(CLI_SHARED, 0.25)
    return math.ceil(train_rows / 32)


def _check_watched_progress(stdout: str, total: int) -> None:
    """`job watch` of a PSI job: its phase while the total is unknown (no bar stuck at 0%),
    then `step N/total` and a percentage that never falls and ends at 100.0%."""
    rows = re.findall(r"^(.*)  step \d+/(\S+)  elapsed", stdout, re.MULTILINE)  # (head, total)
    totals = [shown_total for _, shown_total in rows]
    assert totals and totals[-1] == str(total), stdout
    first_known = totals.index(str(total))
    assert set(totals[first_known:]) == {str(total)}, stdout
    unknown = [head for head, _ in rows[:first_known]]
    assert all("%" not in head for head in unknown), stdout
    # the PSI takes seconds (the workers' start, the blinding, a commit): the watch sees it
    assert any(PHASE_ALIGNING in head for head in unknown), stdout
    percents = [float(p) for head, _ in rows[first_known:] for p in re.findall(r"([\d.]+)%", head)]
    assert len(percents) == len(rows) - first_known, stdout
    assert percents == sorted(percents) and percents[-1] == 100.0, stdout


def test_an_invalid_spec_is_rejected_with_every_error(world):
    result = cli("job", "submit", world["root"] / "bad.toml", "--profile", world["alice"], ok=False)
    assert result.returncode == 2
    for field in ("name", "layout", "epochs", "model.kind", "label"):
        assert f"{field}:" in result.stderr, result.stderr


def test_job_commands_need_a_profile(world, monkeypatch):
    monkeypatch.delenv("MPC_LEDGER_PROFILE", raising=False)
    result = cli("job", "list", ok=False)
    assert result.returncode == 2 and "--profile" in result.stderr


def test_the_demo_runs_end_to_end_in_smoke_mode():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"
    result = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for expected in (
        "job completed: test_accuracy",
        "rounds per step",
        "plaintext PyTorch",
        "VERIFIED",
        "stopped (",
    ):
        assert expected in result.stdout, result.stdout[-4000:]
    for member in ("hospital-a", "hospital-b", "hospital-c"):  # each party's replay
        assert f"{member} (rank" in result.stdout and "ran the agreed program" in result.stdout
    assert "as the dealer with the committed seed" in result.stdout, result.stdout[-4000:]
    assert result.stdout.count("replayed: correct") >= 4, result.stdout[-4000:]
    # the new jobs' default program (piecewise sigmoid, no threshold): about 24 round trips a
    # step at 3 data parties, where CrypTen's sigmoid and guard take about 73
    rounds = [float(m) for m in re.findall(r"rounds per step\s+([0-9.]+)", result.stdout)]
    assert len(rounds) == 3 and max(rounds) < 40, rounds


def test_job_result_checks_the_model_against_the_ledger_and_the_certificate(world):
    """A daemon serving model bytes that the ledger's model hash does not cover is refused,
    nothing written; a recipient's certificate from before a rebinding fetches nothing."""
    root, alice, consortium = world["root"], world["alice"], world["consortium"]
    job_id = cli("job", "submit", root / "job.toml", "--profile", alice).stdout.strip()
    cli("job", "watch", job_id, "--profile", alice, timeout_s=300)
    served = consortium.party("a").config.data_dir / "jobs" / job_id / "model.bin"
    original = served.read_bytes()
    served.write_bytes(original[:-1] + bytes([original[-1] ^ 0x01]))  # one weight, one bit
    out = root / "tampered.safetensors"
    refused = cli("job", "result", job_id, "-o", out, "--profile", alice, ok=False)
    assert refused.returncode == 1
    assert "does not match the ledger's model hash" in refused.stderr, refused.stderr
    assert "nothing was written" in refused.stderr
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()

    served.write_bytes(original)
    fetched = cli("job", "result", job_id, "-o", out, "--profile", alice)
    shown = json.loads(cli("job", "show", job_id, "--format", "json", "--profile", alice).stdout)
    [completed] = [e for e in shown if e["kind"] == "job_completed"]
    ledger_hash = completed["detail"].split()[1].rstrip(";")  # "model <16 hex>; metrics"
    assert f"model sha256 {ledger_hash}" in fetched.stdout, (fetched.stdout, completed)

    # a/alice bound again with new keys: the old certificate no longer fetches the model
    revoked = cli("user", "revoke", "a/alice", "--config", consortium.config("a"))
    assert "revoked 'a/alice'" in revoked.stdout
    renewed = make_user(root / "renewed", consortium, "a/alice")
    old = cli("job", "result", job_id, "-o", root / "old.pt", "--profile", alice, ok=False)
    assert old.returncode == 1
    assert "not for the TLS key bound on the ledger" in old.stderr, old.stderr
    assert not (root / "old.pt").exists()
    cli("job", "result", job_id, "-o", root / "renewed.pt", "--profile", renewed)
    assert (root / "renewed.pt").stat().st_size > 0
