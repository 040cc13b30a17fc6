"""More than one job on one consortium, through the CLI: real daemons, real mTLS, users made
with `user keygen` and bound with `user add`, jobs submitted with `job submit` and followed
with `job watch` / `job show`.

Data parties a and b (vertical, b holds the label), the dealer and an auditor. a/alice is a
scientist of a, b/carol a scientist of b; both members' policies let either submit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from mpc_ledger.testing.consortium import make_consortium
from mpc_ledger.testing.processes import CLI, DaemonProcess, run_cli, stop_all

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS = 80
POLICY = """version = 1
submitters = ["a/*", "b/*"]
datasets = ["*"]
models = ["logistic_regression"]
max_epochs = 5
recipients = ["a/*", "b/*"]
allow_loss_reveal = true
min_rows = 0
"""
JOB = """name = "{name}"
layout = "vertical"
label = "y"
epochs = 1
batch_size = 32
seed = 1
test_fraction = 0.25
recipients = ["{recipient}"]
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
PARTIES = ("a", "b", "dealer")


def _cli(*args, ok=True, timeout_s=120):
    result = run_cli(*args, timeout_s=timeout_s)
    if ok:
        assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


def _write_csv(path, header, columns):
    lines = [",".join(header)] + [",".join(map(str, row)) for row in zip(*columns, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def _user(root, consortium, user_id):
    member_id, name = user_id.split("/")
    profile = root / name
    _cli("user", "keygen", "--id", user_id, "--out", profile)
    _cli(
        "user",
        "add",
        profile / "user.json",
        "--roles",
        "scientist",
        "--config",
        consortium.config(member_id),
        "--out",
        profile / "keys" / "tls.crt",
    )
    shutil.copy(consortium.genesis_path, profile / "genesis.json")
    return profile


def _job_file(root, name, recipient):
    path = root / f"{name}.toml"
    path.write_text(JOB.format(name=name, recipient=recipient))
    return path


def _trail(job_id, profile):
    shown = _cli("job", "show", job_id, "--format", "json", "--profile", profile)
    return json.loads(shown.stdout)


def _workers(root: Path) -> list[int]:
    """Pids of live worker processes whose command line mentions ``root``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"mpc_ledger.mpc.worker" in command and str(root).encode() in command:
            pids.append(int(entry.name))
    return pids


def _assert_no_workers(root, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while _workers(root) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _workers(root) == []


def _assert_completed(trail, submitter):
    kinds = [entry["kind"] for entry in trail]
    assert kinds[0] == "job_submission" and trail[0]["author"] == submitter, trail
    assert "job_aborted" not in kinds, trail
    assert kinds.count("job_completed") == 1, trail
    proofs = sorted(e["author"] for e in trail if e["kind"] == "participation_proof")
    assert proofs == sorted(PARTIES), trail


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from sklearn.datasets import load_breast_cancer

    root = tmp_path_factory.mktemp("jobconc")
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
        for member_id, name, columns in (
            ("a", "feat", "id:string,f0:float64,f1:float64,f2:float64"),
            ("b", "lab", "id:string,g0:float64,g1:float64,y:int64"),
        ):
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
        alice = _user(root, consortium, "a/alice")
        carol = _user(root, consortium, "b/carol")
        yield {"root": root, "alice": alice, "carol": carol}
    finally:
        stop_all(daemons)
        for daemon in daemons:
            log = daemon.log_path.read_text(errors="replace")
            assert "ERROR   mpc_ledger.jobs" not in log, f"{daemon.config}:\n{log}"


def test_two_jobs_in_a_row_both_complete_and_leave_no_worker(world):
    root, alice = world["root"], world["alice"]
    job = _job_file(root, "one-after-another", "a/alice")
    job_ids = []
    for _ in range(2):
        job_id = _cli("job", "submit", job, "--profile", alice).stdout.strip()
        watched = _cli("job", "watch", job_id, "--profile", alice, timeout_s=180)
        assert "job completed: test_accuracy" in watched.stdout, watched.stdout
        job_ids.append(job_id)
        _assert_no_workers(root)
    assert len(set(job_ids)) == 2
    records = set()
    for job_id in job_ids:
        trail = _trail(job_id, alice)
        _assert_completed(trail, "a/alice")
        records |= {e["record_id"] for e in trail if e["kind"] != "job_submission"}
    # each job's completion and proofs are its own records, not shared with the other job
    assert len(records) == sum(
        len([e for e in _trail(j, alice) if e["kind"] != "job_submission"]) for j in job_ids
    )
    _assert_no_workers(root)


def test_two_scientists_of_two_members_submit_at_once(world):
    root, alice, carol = world["root"], world["alice"], world["carol"]
    jobs = {
        "a/alice": (alice, _job_file(root, "alice-at-once", "a/alice")),
        "b/carol": (carol, _job_file(root, "carol-at-once", "b/carol")),
    }
    processes = {
        user: subprocess.Popen(
            [*CLI, "job", "submit", str(job), "--profile", str(profile)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for user, (profile, job) in jobs.items()
    }
    job_ids = {}
    for user, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, f"{user}:\n{stdout}\n{stderr}"
        job_ids[user] = stdout.strip()
        assert len(bytes.fromhex(job_ids[user])) == 32
    assert job_ids["a/alice"] != job_ids["b/carol"]

    for user, job_id in job_ids.items():
        profile = jobs[user][0]
        watched = _cli("job", "watch", job_id, "--profile", profile, timeout_s=240)
        assert "job completed: test_accuracy" in watched.stdout, watched.stdout
    for user, job_id in job_ids.items():
        _assert_completed(_trail(job_id, alice), user)
    listing = json.loads(_cli("job", "list", "--format", "json", "--profile", carol).stdout)
    states = {j["job_id"]: (j["state"], j["submitter"]) for j in listing}
    for user, job_id in job_ids.items():
        assert states[job_id] == ("completed", user)
    _assert_no_workers(root)
