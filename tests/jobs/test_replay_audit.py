"""`mpc-ledger audit replay`: real daemons started by the CLI, real jobs, each party's side
re-executed from its committed seed, its registered data and its encrypted inbound log.

Data parties a and b (vertical, aligned by PSI), the dealer and an auditor
(`cli_job_world`). Party a's daemon runs `deviating_worker.py` for its jobs, which is the
honest worker unless the test writes a mode into a's data folder: ``deviate`` (flips one
bit of its first frame of epoch 2 to b, recording what it really sent) or ``unseeded``
(CrypTen's own ``os.urandom`` seeds).

* An honest job: every party's and the dealer's replay is correct, each verdict is on the
  ledger, and `verify` shows "replayed: correct" for all three.
* The evidence is checked: a changed byte of the inbound log, a truncated log, another seed,
  a data file changed after the job: each refused with its reason, exit 1, nothing written.
* A deviating party: the job completes and `verify` passes, but a's replay names a, the
  channel a→b and epoch 2; b's and the dealer's replays are correct; once a's verdict is on
  the ledger, `verify` fails naming a.
* A worker whose randomness the seed does not fix: its replay deviates.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from mpc_ledger.jobs.job_folder import job_folder, replay_files

from .conftest import cli, cli_job, cli_job_world, cli_policy, make_user

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOUBLE = Path(__file__).parent.parent / "mpc" / "deviating_worker.py"
MODE_FILE = "test-worker-mode"
JOB = cli_job("replay-test").replace("epochs = 1", "epochs = 2")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    program = f"{sys.executable} {DOUBLE}"
    env = {"a": {"MPC_LEDGER_WORKER_PROGRAM": program}}
    with cli_job_world(root, cli_policy("a"), env_of=env) as consortium:
        alice = make_user(root, consortium, "a/alice")
        (root / "job.toml").write_text(JOB)
        yield {"root": root, "alice": alice, "consortium": consortium}


def _run_job(world, mode):
    data_dir = world["consortium"].party("a").config.data_dir
    (data_dir / MODE_FILE).write_text(mode)
    try:
        job_id = cli("job", "submit", world["root"] / "job.toml", "--profile", world["alice"])
        job_id = job_id.stdout.strip()
        watched = cli("job", "watch", job_id, "--profile", world["alice"], timeout_s=240)
        assert "job completed" in watched.stdout, watched.stdout
    finally:
        (data_dir / MODE_FILE).unlink()
    return job_id


def _replay(world, member, job_id, *extra, ok=None):
    result = cli(
        "audit",
        "replay",
        job_id,
        "--config",
        world["consortium"].config(member),
        "--format",
        "json",
        *extra,
        ok=False,
        timeout_s=240,
    )
    if ok is not None:
        assert (result.returncode == 0) is ok, f"{result.stdout}\n{result.stderr}"
    return result


def _verify(world, job_id):
    root, consortium = world["root"], world["consortium"]
    export = root / f"{job_id[:8]}.export"
    export.unlink(missing_ok=True)
    cli("ledger", "export", "-o", export, "--config", consortium.config("b"))
    result = cli(
        "verify",
        export,
        "--genesis",
        consortium.genesis_path,
        "--job",
        job_id,
        "--format",
        "json",
        ok=False,
    )
    report = json.loads(result.stdout)
    [section] = [s for s in report["jobs"] if job_id[:16] in s["title"]]
    [table] = [t for t in section["tables"] if t["title"] == "Replays"]
    by_party = {row[1]: row[2] for row in table["rows"]}
    return result.returncode, report, by_party


@pytest.fixture(scope="module")
def honest_job(world):
    return _run_job(world, "honest")


def test_every_party_of_an_honest_job_replays_correct_and_verify_shows_it(world, honest_job):
    code, _report, before = _verify(world, honest_job)
    assert code == 0 and set(before.values()) == {"not replayed"}, before
    for member in ("a", "b", "dealer"):
        replayed = _replay(world, member, honest_job, ok=True)
        verdict = json.loads(replayed.stdout)
        assert verdict["verdict"] == "correct", verdict
        assert verdict["member"] == member and verdict["frames_checked"] > 0
        assert verdict["record_id"], verdict
        assert "ran the agreed program" in verdict["summary"], verdict
        assert "with the committed seed: every one of" in verdict["summary"]
    code, _report, after = _verify(world, honest_job)
    assert code == 0, after
    assert after == {m: "replayed: correct" for m in ("a", "b", "dealer")}, after


def _a_files(world, job_id):
    data_dir = world["consortium"].party("a").config.data_dir
    return replay_files(job_folder(data_dir, bytes.fromhex(job_id)), 0)


def _refused(world, job_id, reason):
    result = _replay(world, "a", job_id, "--no-record", ok=False)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["verdict"] == "refused"
    assert reason in result.stderr, result.stderr


@pytest.mark.parametrize("damage", ["byte", "truncated", "seed", "data"])
def test_changed_evidence_is_refused_with_its_reason(world, honest_job, damage):
    files = _a_files(world, honest_job)
    data_file = world["root"] / "a.csv"
    target = {"byte": files.inbound_log, "truncated": files.inbound_log, "seed": files.seed}.get(
        damage, data_file
    )
    kept = target.read_bytes()
    try:
        if damage == "byte":
            changed = bytearray(kept)
            changed[len(changed) // 2] ^= 0x40
            target.write_bytes(bytes(changed))
            _refused(world, honest_job, "fails authentication")
        elif damage == "truncated":
            target.write_bytes(kept[: len(kept) - 100])
            _refused(world, honest_job, "truncated")
        elif damage == "seed":
            target.write_bytes(bytes(32))
            _refused(world, honest_job, "is not the one a committed")
        else:
            lines = kept.decode().splitlines()
            first = lines[1].split(",")
            first[1] = str(float(first[1]) + 1)
            target.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
            _refused(world, honest_job, "changed since it was registered")
    finally:
        target.write_bytes(kept)


def test_the_same_evidence_restored_replays_correct_again_from_an_export(world, honest_job):
    """The refusals above were the damage's: with every file as it was, the replay holds,
    here with the ledger read from an export (no daemon asked, nothing recorded)."""
    export = world["root"] / "offline.export"
    cli("ledger", "export", "-o", export, "--config", world["consortium"].config("b"))
    replayed = _replay(world, "a", honest_job, "--export", export, ok=True)
    verdict = json.loads(replayed.stdout)
    assert verdict["verdict"] == "correct" and verdict["record_id"] is None, verdict


def test_a_deviating_party_passes_verify_until_its_replay_names_it(world):
    job_id = _run_job(world, "deviate")
    log = (world["root"] / "a.log").read_text(errors="replace")
    folder = job_folder(world["consortium"].party("a").config.data_dir, bytes.fromhex(job_id))
    worker_log = (folder / "worker-rank0.log").read_text(errors="replace")
    assert "altered its first frame of epoch 2 to rank 1" in worker_log, log[-2000:]
    code, _report, _rows = _verify(world, job_id)
    assert code == 0  # the pairwise digests agree: a recorded what it really sent

    for member in ("b", "dealer"):
        assert json.loads(_replay(world, member, job_id, ok=True).stdout)["verdict"] == "correct"
    deviated = _replay(world, "a", job_id, ok=False)
    assert deviated.returncode == 1, deviated.stderr
    verdict = json.loads(deviated.stdout)
    assert verdict["verdict"] == "deviated", verdict
    assert verdict["deviated_label"] == "epoch 2", verdict
    assert verdict["deviated_channels"] == ["0->1"], verdict
    assert verdict["summary"].startswith("a (rank 0) deviated: channel a→b, epoch 2"), verdict

    code, report, rows = _verify(world, job_id)
    assert code == 1
    assert rows["a"].startswith("replayed: deviated (channel a→b, epoch 2"), rows
    assert rows["b"] == rows["dealer"] == "replayed: correct", rows
    messages = [f["message"] for f in report["failures"]]
    assert any("a deviated from the agreed program" in m for m in messages), messages


def test_randomness_the_seed_does_not_fix_makes_the_replay_deviate(world):
    job_id = _run_job(world, "unseeded")
    deviated = _replay(world, "a", job_id, "--no-record", ok=False)
    verdict = json.loads(deviated.stdout)
    assert verdict["verdict"] == "deviated", verdict
    # the first thing CrypTen sends is its seed for the next party: the first checkpoint
    assert verdict["deviated_label"] in ("alignment", "epoch 1"), verdict


def test_a_job_folder_without_replay_files_is_bad_input(world, honest_job):
    files = _a_files(world, honest_job)
    moved = files.seed.with_suffix(".moved")
    shutil.move(files.seed, moved)
    try:
        result = _replay(world, "a", honest_job, "--no-record", ok=False)
        assert result.returncode == 2, result.stderr
        assert files.seed.name in result.stderr
    finally:
        shutil.move(moved, files.seed)
