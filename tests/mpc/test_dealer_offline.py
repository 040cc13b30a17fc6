"""The dealer's offline phase across real processes: real daemons, relays, CrypTen workers.

Three data parties and the dealer train logistic regression with a last partial batch
per epoch: with the offline phase party 0 asks the dealer only in the first step, the
first partial batch and the evaluation; every other answer is streamed ahead; and the
model is bit for bit the one trained without it (the same answers, by the same numbers).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mpc_ledger.mpc.sample_data import breast_cancer_split
from mpc_ledger.mpc.train_spec import TrainSpec
from mpc_ledger.mpc.transcript import TranscriptSnapshot, compare_transcripts
from mpc_ledger.mpc.worker import JobManifest
from mpc_ledger.testing.mpc_cluster import RelayCluster, wait_all

# four daemons and four CrypTen workers per job on a loaded 2-core machine
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

HERE = Path(__file__).parent
ROWS, BATCH, EPOCHS = 64, 20, 2  # 48 training rows: batches of 20, 20 and 8 per epoch
MEMBERS = ("a", "b", "c", "dealer")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = RelayCluster(tmp_path_factory.mktemp("dealer-offline"), "a,b,c", dealer=True)
    try:
        running.start(timeout_s=180)
        yield running
    finally:
        running.stop()


def training_job(job_id, epochs=EPOCHS):
    full = breast_cancer_split(seed=0, rows=ROWS)
    spec = TrainSpec(
        layout="vertical",
        model="logistic",
        n_features=30,
        columns_per_rank=(10, 10, 10),
        label_rank=2,
        train_rows_per_rank=(len(full["x_train"]),),
        test_rows_per_rank=(len(full["x_test"]),),
        batch_size=BATCH,
        epochs=epochs,
        recipients=(1,),
    )
    program = {
        "name": "train",
        "spec": spec.to_json(),
        "data": {"source": "breast_cancer", "rows": ROWS},
    }
    return JobManifest(
        job_id=job_id,
        members=MEMBERS,
        world_size=3,
        tuple_provider="dealer",
        peer_timeout_s=90.0,
        program=program,
    )


def run_job(cluster, manifest, programs=None, timeout_s=900):
    workers = cluster.launch(manifest, programs=programs)
    wait_all(workers, timeout_s)
    return workers


def logs(workers):
    return "\n".join(f"--- rank {w.rank} ---\n{w.log()}" for w in workers)


def seeded(*flags):
    """Every rank with CrypTen's seeds fixed (`seeded_worker.py`), so two jobs draw alike."""
    command = [sys.executable, str(HERE / "seeded_worker.py")]
    return {rank: [*command, *(flags if rank == 0 else ())] for rank in range(len(MEMBERS))}


@pytest.fixture(scope="module")
def both_runs(cluster):
    offline = run_job(cluster, training_job("offline-on"), programs=seeded())
    without = run_job(cluster, training_job("offline-off"), programs=seeded("--no-offline-phase"))
    return offline, without


def test_a_plan_that_foresees_wrongly_falls_back_and_trains_the_same_model(cluster, both_runs):
    """Each plan foresees a wrong third request: party 0 cancels there, discards what the
    dealer streamed past it, asks; the dealer numbers the next answer after what party 0
    took, so every answer is still the one the others drew for."""
    _, without = both_runs
    workers = run_job(cluster, training_job("offline-mispredict"), programs=seeded("--mispredict"))
    assert [w.process.returncode for w in workers] == [0, 0, 0, 0], logs(workers)
    counts = workers[0].result()["dealer"]
    assert counts["fallbacks"] == counts["plans"] >= 1 and counts["discarded"] >= 1, counts
    assert counts["streamed"] == 2 * counts["plans"]  # the two answers before each miss
    assert workers[1].result()["output"]["model"] == without[1].result()["output"]["model"]
    snapshots = {w.rank: TranscriptSnapshot.from_json(w.result()["transcript"]) for w in workers}
    assert compare_transcripts(snapshots) == []


def test_the_offline_phase_trains_the_same_model(both_runs):
    offline, without = both_runs
    for workers in (offline, without):
        assert [w.process.returncode for w in workers] == [0, 0, 0, 0], logs(workers)
    on, off = offline[1].result()["output"], without[1].result()["output"]
    assert on["model"] == off["model"]  # bit for bit: the same answers by the same numbers
    assert on["model_hash"] == off["model_hash"]
    assert on["test_accuracy"] == off["test_accuracy"]
    snapshots = {w.rank: TranscriptSnapshot.from_json(w.result()["transcript"]) for w in offline}
    assert compare_transcripts(snapshots) == []


def test_party_0_asks_only_in_the_first_step_and_the_evaluation(both_runs):
    offline, without = both_runs
    counts = offline[0].result()["dealer"]
    baseline = without[0].result()["dealer"]
    dealer_on, dealer_off = offline[3].result()["dealer"], without[3].result()["dealer"]
    print("offline phase:", counts, dealer_on, "without:", baseline, dealer_off)
    assert baseline["streamed"] == baseline["plans"] == 0
    total = baseline["requested"]
    assert counts["streamed"] + counts["requested"] == total
    assert counts["fallbacks"] == 0 and counts["discarded"] == 0
    # steps 2 (a plan of 1), 3 (the partial batch, planned from step 1 resized), 4-5 (a plan
    # of 2) and 6 (the second partial batch) are streamed
    assert counts["plans"] == 4
    assert counts["streamed"] > total / 2
    assert dealer_on["streamed"] == counts["streamed"]
    assert dealer_on["requests"] == dealer_off["requests"] == total  # no answer more


def attacked(cluster, job_id, mode, rank):
    """A job whose worker at ``rank`` is `offline_attacker.py` in ``mode``."""
    command = [sys.executable, str(HERE / "offline_attacker.py"), mode]
    return run_job(cluster, training_job(job_id, epochs=1), programs={rank: command}, timeout_s=600)


def errors(workers, ranks):
    assert [workers[r].process.returncode for r in ranks] == [1] * len(ranks), logs(workers)
    return [workers[r].result().get("error", "") for r in ranks]


def test_a_streamed_answer_of_the_wrong_size_ends_the_job_everywhere(cluster):
    workers = attacked(cluster, "offline-wrong-size", "wrong-size", rank=3)
    for error in errors(workers, range(4)):
        assert "the dealer (rank 3) streamed answer" in error, error
        assert "party 0 expected answer" in error, error


def test_a_dealer_that_dies_mid_stream_ends_the_job_everywhere(cluster):
    workers = attacked(cluster, "offline-dies", "dies", rank=3)
    for error in errors(workers, range(3)):
        assert "dealer" in error and "failed" in error, error


def test_a_plan_over_the_budget_is_refused_everywhere_with_the_reason(cluster):
    workers = attacked(cluster, "offline-greedy", "greedy-plan", rank=0)
    for error in errors(workers, range(4)):
        assert "the dealer refused plan at request" in error, error
        assert "from a (rank 0)" in error and "would bring this job to" in error, error
