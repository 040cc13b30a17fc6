"""`mpc-ledger job ...` end to end: real daemons, real mTLS, users made with `user keygen` and
bound with `user add`, a job submitted, watched and fetched through the CLI.

Data parties a and b (vertical, b holds the label), the dealer and an auditor. The job's
recipient is a/alice, so the model is on a's daemon; a/bob is another scientist of a.
"""

from __future__ import annotations

import json
import time

import pytest

from .conftest import CLI_SHARED, cli, cli_job, cli_job_world, cli_policy, make_user

pytestmark = [pytest.mark.integration, pytest.mark.slow]

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
    assert "epoch 1/1" in watched.stdout

    model = root / "model.pt"
    fetched = cli("job", "result", job_id, "-o", model, "--profile", alice)
    assert "sha256" in fetched.stdout
    assert model.stat().st_size > 0 and model.stat().st_mode & 0o777 == 0o600
    import torch

    weights = torch.load(model, weights_only=True)
    parameters = {n: t for n, t in weights.items() if not n.startswith("preprocessing.")}
    assert sum(t.numel() for t in parameters.values()) == 5 + 1  # 5 features and a bias
    # each owner's own columns' mean and deviation, which the model expects its inputs in
    assert weights["preprocessing.mean"].shape == weights["preprocessing.scale"].shape == (5,)
    assert bool((weights["preprocessing.scale"] > 0).all())

    refused = cli("job", "result", job_id, "-o", root / "bob.pt", "--profile", bob, ok=False)
    assert refused.returncode == 1
    assert "a/bob is not a recipient" in refused.stderr, refused.stderr
    assert not (root / "bob.pt").exists() and not (root / "bob.pt.partial").exists()

    listing = json.loads(cli("job", "list", "--format", "json", "--profile", bob).stdout)
    [job] = [j for j in listing if j["job_id"] == job_id]
    assert job["state"] == "completed" and job["submitter"] == "a/alice"
    assert "test_accuracy" in job["metrics"]

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
    assert "job_completed" in text and "test_accuracy" in text
    assert time.monotonic() - started < 120


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
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for expected in ("job completed: test_accuracy", "plaintext PyTorch", "VERIFIED", "stopped ("):
        assert expected in result.stdout, result.stdout[-4000:]


def test_job_result_checks_the_model_against_the_ledger_and_the_certificate(world):
    """A daemon serving model bytes that the ledger's model hash does not cover is refused,
    nothing written; a recipient's certificate from before a rebinding fetches nothing."""
    root, alice, consortium = world["root"], world["alice"], world["consortium"]
    job_id = cli("job", "submit", root / "job.toml", "--profile", alice).stdout.strip()
    cli("job", "watch", job_id, "--profile", alice, timeout_s=300)
    served = consortium.party("a").config.data_dir / "jobs" / job_id / "model.bin"
    original = served.read_bytes()
    served.write_bytes(original[:-1] + bytes([original[-1] ^ 0x01]))  # one weight, one bit
    out = root / "tampered.pt"
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
