"""More than one job on one consortium, through the CLI: real daemons, real mTLS, users made
with `user keygen` and bound with `user add`, jobs submitted with `job submit` and followed
with `job watch` / `job show`.

Data parties a and b (vertical, b holds the label), the dealer and an auditor. a/alice is a
scientist of a, b/carol a scientist of b; both members' policies let either submit.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from mpc_ledger.daemon.processes import CLI

from .conftest import cli, cli_job, cli_job_world, cli_policy, make_user, worker_pids

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POLICY = cli_policy("a", "b")
PARTIES = ("a", "b", "dealer")


def _job_file(root, name, recipient):
    path = root / f"{name}.toml"
    path.write_text(cli_job(name, recipient))
    return path


def _trail(job_id, profile):
    shown = cli("job", "show", job_id, "--format", "json", "--profile", profile)
    return json.loads(shown.stdout)


def _assert_no_workers(root, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while worker_pids(str(root)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker_pids(str(root)) == []


def _assert_completed(trail, submitter):
    kinds = [entry["kind"] for entry in trail]
    assert kinds[0] == "job_submission" and trail[0]["author"] == submitter, trail
    assert "job_aborted" not in kinds, trail
    assert kinds.count("job_completed") == 1, trail
    proofs = sorted(e["author"] for e in trail if e["kind"] == "participation_proof")
    assert proofs == sorted(PARTIES), trail


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("jobconc")
    with cli_job_world(root, POLICY, check_logs=True) as consortium:
        alice = make_user(root, consortium, "a/alice")
        carol = make_user(root, consortium, "b/carol")
        yield {"root": root, "alice": alice, "carol": carol}


def test_two_jobs_in_a_row_both_complete_and_leave_no_worker(world):
    root, alice = world["root"], world["alice"]
    job = _job_file(root, "one-after-another", "a/alice")
    job_ids = []
    for _ in range(2):
        job_id = cli("job", "submit", job, "--profile", alice).stdout.strip()
        watched = cli("job", "watch", job_id, "--profile", alice, timeout_s=180)
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
        watched = cli("job", "watch", job_id, "--profile", profile, timeout_s=240)
        assert "job completed: test_accuracy" in watched.stdout, watched.stdout
    for user, job_id in job_ids.items():
        _assert_completed(_trail(job_id, alice), user)
    listing = json.loads(cli("job", "list", "--format", "json", "--profile", carol).stdout)
    states = {j["job_id"]: (j["state"], j["submitter"]) for j in listing}
    for user, job_id in job_ids.items():
        assert states[job_id] == ("completed", user)
    _assert_no_workers(root)
