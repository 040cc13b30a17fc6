"""`mpc-ledger job ...` end to end: real daemons, real mTLS, users made with `user keygen` and
bound with `user add`, a job submitted, watched and fetched through the CLI.

Data parties a and b (vertical, b holds the label), the dealer and an auditor. The job's
recipient is a/alice, so the model is on a's daemon; a/bob is another scientist of a.
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from mpc_ledger.testing.consortium import make_consortium
from mpc_ledger.testing.processes import DaemonProcess, run_cli, stop_all

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS = 80
POLICY = """version = 1
submitters = ["a/*"]
datasets = ["*"]
models = ["logistic_regression"]
max_epochs = 5
recipients = ["a/*"]
allow_loss_reveal = true
min_rows = 0
"""
JOB = """name = "cli-test"
layout = "vertical"
label = "y"
epochs = 1
batch_size = 32
seed = 1
test_fraction = 0.25
recipients = ["a/alice"]
reveal_training_loss = true

[[datasets]]
id = "a/feat"
features = ["f0", "f1", "f2"]

[[datasets]]
id = "b/lab"
features = ["g0", "g1"]

[model]
kind = "logistic_regression"

[optimiser]
learning_rate = 0.5
"""
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


def _cli(*args, ok=True, timeout_s=120):
    result = run_cli(*args, timeout_s=timeout_s)
    if ok:
        assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


def _write_csv(path, header, columns):
    lines = [",".join(header)] + [",".join(map(str, row)) for row in zip(*columns, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def _user(root, consortium, name):
    profile = root / name
    _cli("user", "keygen", "--id", f"a/{name}", "--out", profile)
    _cli(
        "user",
        "add",
        profile / "user.json",
        "--roles",
        "scientist",
        "--config",
        consortium.config("a"),
        "--out",
        profile / "keys" / "tls.crt",
    )
    shutil.copy(consortium.genesis_path, profile / "genesis.json")
    return profile


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from sklearn.datasets import load_breast_cancer

    root = tmp_path_factory.mktemp("jobcli")
    consortium = make_consortium(root / "c", "a,b", "--dealer", "--auditor")
    for member_id in ("a", "b"):
        folder = root / "c" / member_id
        (folder / "policy.toml").write_text(POLICY)
        config = folder / "party.toml"
        config.write_text(
            config.read_text().replace("[party]\n", '[party]\npolicy = "policy.toml"\n')
        )
    features, labels = load_breast_cancer(return_X_y=True)
    features = (features[:ROWS] - features.mean(0)) / features.std(0)
    ids = [f"p{i}" for i in range(ROWS)]
    _write_csv(root / "a.csv", ["id", "f0", "f1", "f2"], [ids, *features[:, :3].T.round(4)])
    _write_csv(
        root / "b.csv",
        ["id", "g0", "g1", "y"],
        [ids, *features[:, 3:5].T.round(4), labels[:ROWS].astype(np.int64)],
    )
    daemons = [DaemonProcess(consortium.config(m), root / f"{m}.log") for m in consortium.ids]
    try:
        for member_id, daemon in zip(consortium.ids, daemons, strict=True):
            daemon.wait_serving(consortium.genesis.member(member_id).endpoint, 60)
        for member_id, columns in (
            ("a", "id:string,f0:float64,f1:float64,f2:float64"),
            ("b", "id:string,g0:float64,g1:float64,y:int64"),
        ):
            name = "feat" if member_id == "a" else "lab"
            extra = ["--label-column", "y"] if member_id == "b" else []
            _cli(
                "dataset",
                "register",
                root / f"{member_id}.csv",
                "--id",
                f"{member_id}/{name}",
                "--columns",
                columns,
                *extra,
                "--config",
                consortium.config(member_id),
            )
        alice, bob = _user(root, consortium, "alice"), _user(root, consortium, "bob")
        (root / "job.toml").write_text(JOB)
        (root / "bad.toml").write_text(BAD_JOB)
        yield {"root": root, "alice": alice, "bob": bob}
    finally:
        stop_all(daemons)


def test_a_scientist_submits_watches_and_fetches_a_job_through_the_cli(world):
    root, alice, bob = world["root"], world["alice"], world["bob"]
    started = time.monotonic()
    submitted = _cli("job", "submit", root / "job.toml", "--profile", alice)
    job_id = submitted.stdout.strip()
    assert len(bytes.fromhex(job_id)) == 32

    watched = _cli("job", "watch", job_id, "--profile", alice, timeout_s=180)
    assert "job completed: test_accuracy" in watched.stdout, watched.stdout
    assert "epoch 1/1" in watched.stdout

    model = root / "model.pt"
    fetched = _cli("job", "result", job_id, "-o", model, "--profile", alice)
    assert "sha256" in fetched.stdout
    assert model.stat().st_size > 0 and model.stat().st_mode & 0o777 == 0o600
    import torch

    weights = torch.load(model, weights_only=True)
    assert sum(t.numel() for t in weights.values()) == 5 + 1  # 5 features and a bias

    refused = _cli("job", "result", job_id, "-o", root / "bob.pt", "--profile", bob, ok=False)
    assert refused.returncode == 1
    assert "a/bob is not a recipient" in refused.stderr, refused.stderr
    assert not (root / "bob.pt").exists() and not (root / "bob.pt.partial").exists()

    listing = json.loads(_cli("job", "list", "--format", "json", "--profile", bob).stdout)
    [job] = [j for j in listing if j["job_id"] == job_id]
    assert job["state"] == "completed" and job["submitter"] == "a/alice"
    assert "test_accuracy" in job["metrics"]

    shown = json.loads(_cli("job", "show", job_id, "--format", "json", "--profile", bob).stdout)
    kinds = [entry["kind"] for entry in shown]
    assert kinds[0] == "job_submission" and "job_completed" in kinds
    assert kinds.count("job_decision") == 2 and kinds.count("job_started") == 3
    text = _cli("job", "show", job_id, "--profile", alice).stdout
    assert "job_completed" in text and "test_accuracy" in text
    assert time.monotonic() - started < 120


def test_an_invalid_spec_is_rejected_with_every_error(world):
    result = _cli(
        "job", "submit", world["root"] / "bad.toml", "--profile", world["alice"], ok=False
    )
    assert result.returncode == 2
    for field in ("name", "layout", "epochs", "model.kind", "label"):
        assert f"{field}:" in result.stderr, result.stderr


def test_job_commands_need_a_profile(world, monkeypatch):
    monkeypatch.delenv("MPC_LEDGER_PROFILE", raising=False)
    result = _cli("job", "list", ok=False)
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
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for expected in ("job completed: test_accuracy", "plaintext PyTorch", "VERIFIED", "stopped ("):
        assert expected in result.stdout, result.stdout[-4000:]
