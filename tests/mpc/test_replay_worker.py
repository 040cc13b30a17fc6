"""Replaying one party's worker: real workers over real relays (mTLS), then each rank re-run
from its committed seed and inbound log with nothing on the network.

The job (2 data parties + the dealer, horizontal logistic regression: the layout the CLI
tests and the demo, both vertical, do not cover) runs with a seed and an inbound log per
rank. Each rank's replay must reproduce, at the count the others recorded, the digest of
what they received from it: the honest program is a function of seed, data and what it
received. Two replays of the same rank are byte-identical, and a replay without the seed
(CrypTen's own ``os.urandom`` seeds) is not. (`tests/jobs/test_replay_audit.py` replays
through the CLI and real party daemons, the demo three hospitals aligned by PSI.)
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mpc_ledger.mpc.inbound_log import load_log_key, read_inbound_log
from mpc_ledger.mpc.job_seed import new_job_seed, write_job_seed
from mpc_ledger.mpc.replay import channel_key
from mpc_ledger.mpc.worker import JobManifest
from mpc_ledger.mpc.worker_command import WORKER_PROGRAM, worker_command
from mpc_ledger.testing.mpc_cluster import RelayCluster, wait_all

from .test_relay_jobs import training

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MEMBERS = ("a", "b", "dealer")


@pytest.fixture(scope="module")
def recorded_job(tmp_path_factory):
    """A finished job: per rank its folder, seed, log and result."""
    root = tmp_path_factory.mktemp("replay")
    _spec, _full, program = training(epochs=1, rows=64, layout="horizontal")
    manifest = JobManifest(
        job_id="replay-job",
        members=MEMBERS,
        world_size=2,
        tuple_provider="dealer",
        peer_timeout_s=60.0,
        program=program,
    )
    folder = root / "files"
    folder.mkdir()
    key = folder / "inbound-log.key"
    programs = {}
    for rank in range(len(MEMBERS)):
        write_job_seed(folder / f"seed{rank}", new_job_seed())
        programs[rank] = [
            *WORKER_PROGRAM,
            *("--job-seed", str(folder / f"seed{rank}")),
            *("--inbound-log", str(folder / f"inbound{rank}.log")),
            *("--log-key", str(key)),
        ]
    with RelayCluster(root / "cluster", "a,b", dealer=True) as cluster:
        workers = cluster.launch(manifest, programs=programs)
        wait_all(workers, 180)
    results = [w.result() for w in workers]
    assert all("error" not in r for r in results), [w.log() for w in workers]
    manifest_path = root / "manifest.json"
    manifest.write(manifest_path)
    return {
        "root": root,
        "folder": folder,
        "key": key,
        "manifest": manifest_path,
        "results": results,
    }


def _received_by_others(results, rank):
    """What every other rank recorded at the job's end as received from ``rank``."""
    out = {}
    for other, result in enumerate(results):
        if other == rank:
            continue
        for channel in result["transcript"]["channels"]:
            if channel["sender"] == rank and channel["receiver"] == other:
                out[(rank, other)] = (channel["messages"], channel["digest"])
    return out


def _replay(job, rank, name, *, seed=True):
    folder = job["folder"]
    targets = _received_by_others(job["results"], rank)
    watch = job["root"] / f"watch-{name}.json"
    watch.write_text(json.dumps({channel_key(*k): [m] for k, (m, _d) in targets.items()}))
    output = job["root"] / f"replay-{name}.json"
    command = worker_command(
        job["manifest"],
        rank,
        output,
        replay_log=folder / f"inbound{rank}.log",
        replay_watch=watch,
        job_seed=folder / f"seed{rank}" if seed else None,
        log_key=job["key"],
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    return json.loads(output.read_text()), targets, done


@pytest.mark.parametrize("rank", [0, 1, 2], ids=["a", "b", "dealer"])
def test_each_ranks_replay_sends_exactly_what_the_others_received(recorded_job, rank):
    result, targets, done = _replay(recorded_job, rank, f"r{rank}")
    assert "error" not in result, done.stderr[-2000:]
    digests = result["replay"]["prefix_digests"]
    assert targets, "every rank sends to another"
    for (sender, receiver), (messages, digest) in targets.items():
        assert digests[channel_key(sender, receiver)] == {str(messages): digest}


def test_two_replays_are_byte_identical_and_one_without_the_seed_is_not(recorded_job):
    first, targets, _ = _replay(recorded_job, 0, "first")
    second, _, _ = _replay(recorded_job, 0, "second")
    assert first["transcript"] == second["transcript"]
    unseeded, _, _ = _replay(recorded_job, 0, "unseeded", seed=False)
    (sender, receiver), (messages, digest) = next(iter(sorted(targets.items())))
    got = unseeded.get("replay", {}).get("prefix_digests", {}).get(channel_key(sender, receiver))
    assert got != {str(messages): digest}


def test_the_log_holds_every_frame_received(recorded_job):
    folder = recorded_job["folder"]
    key = load_log_key(recorded_job["key"])
    for rank, member in enumerate(MEMBERS):
        frames = read_inbound_log(
            folder / f"inbound{rank}.log", key, job_id="replay-job", rank=rank, member=member
        )
        received = sum(
            c["messages"]
            for c in recorded_job["results"][rank]["transcript"]["channels"]
            if c["receiver"] == rank
        )
        assert len(frames) >= received > 0  # chunks: at least one per logical frame


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
