"""Party 0 attacks the real dealer through the real relay (real daemons, mTLS, workers).

CrypTen's own dealer loop answered any method party 0 named: with
``_get_additive_PRSS`` party 0 got the plaintext masks of a triple and recovered
party b's features exactly from the first multiplication (`dealer_attacker.py`).
The dealer now serves only its schema, bounded by the job: each attack ends the
job at its first request, on every party, with a reason naming the request, and
party 0 receives no answer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mpc_ledger.mpc.sample_data import breast_cancer_split
from mpc_ledger.mpc.train_spec import TrainSpec
from mpc_ledger.mpc.worker import JobManifest
from mpc_ledger.testing.mpc_cluster import RelayCluster, wait_all

# generous: three daemons and three CrypTen workers start on a loaded 2-core machine
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

HERE = Path(__file__).parent
ROWS, BATCH = 64, 16


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = RelayCluster(tmp_path_factory.mktemp("dealer-attack"), "a,b", dealer=True)
    try:
        running.start(timeout_s=120)  # three daemons on a loaded 2-core machine
        yield running
    finally:
        running.stop()


def vertical_training(job_id):
    """Party a holds the first 15 columns; party b the last 15 and the labels."""
    full = breast_cancer_split(seed=0, rows=ROWS)
    spec = TrainSpec(
        layout="vertical",
        model="logistic",
        n_features=30,
        columns_per_rank=(15, 15),
        label_rank=1,
        train_rows_per_rank=(len(full["x_train"]),),
        test_rows_per_rank=(len(full["x_test"]),),
        batch_size=BATCH,
        recipients=(1,),
    )
    program = {
        "name": "train",
        "spec": spec.to_json(),
        "data": {"source": "breast_cancer", "rows": ROWS},
    }
    manifest = JobManifest(
        job_id=job_id,
        members=("a", "b", "dealer"),
        world_size=2,
        tuple_provider="dealer",
        peer_timeout_s=60.0,
        program=program,
    )
    return manifest, full


def attack(cluster, mode):
    manifest, full = vertical_training(f"dealer-attack-{mode}")
    attacker = [sys.executable, str(HERE / "dealer_attacker.py"), mode]
    workers = cluster.launch(manifest, programs={0: attacker})
    wait_all(workers, 300)
    report_path = Path(str(workers[0].output) + ".attack.json")
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return workers, report, full


def assert_refused_everywhere(workers, *reasons):
    logs = "\n".join(w.log() for w in workers)
    dealer, party_a, party_b = workers[2], workers[0], workers[1]
    assert dealer.process.returncode == 1, logs
    refusal = dealer.result().get("error", "")
    assert "the dealer refused request 1 from a (rank 0)" in refusal, logs
    for reason in reasons:
        assert reason in refusal, refusal
    for party in (party_a, party_b):
        assert party.process.returncode == 1, logs
        error = party.result().get("error", "")
        assert "dealer" in error and "refused request 1" in error, error


def test_party_0_cannot_get_a_triples_masks_from_the_dealer(cluster):
    workers, report, full = attack(cluster, "prss")
    victims_columns = full["x_train"][:BATCH, 15:30]
    stolen = report.get("stolen")
    if stolen is not None:
        recovered = np.asarray(stolen)[:, 15:30]
        assert not np.allclose(recovered, victims_columns, atol=1e-3), (
            "party 0 recovered party b's features from the dealer's masks"
        )
    assert report.get("answers", []) == [], "the dealer answered party 0's PRSS request"
    assert_refused_everywhere(workers, "'_get_additive_PRSS'", "by name")


def test_a_triple_larger_than_the_job_is_refused(cluster):
    workers, report, _ = attack(cluster, "oversized")
    assert report.get("answers", []) == []
    assert_refused_everywhere(workers, "mul_triple [1000, 1000] x [1000, 1000]", "at most")


def test_a_request_kind_outside_the_schema_is_refused(cluster):
    workers, report, _ = attack(cluster, "unknown")
    assert report.get("answers", []) == []
    assert_refused_everywhere(workers, "request kind '_get_additive_PRSS' is not one of")


def test_a_request_the_others_did_not_make_is_answered_from_unrelated_randomness(cluster):
    """Party 0 asks for a square where the others draw a triple (inside the schema).

    With one stream of randomness per party, the dealer's answer is
    (r0 + a1[0:4])^2 - a1[4:8]: a function of party b's share of the triple's
    mask, which party 0 must never see. Bound to the request it asked for, the
    answer comes from randomness unrelated to what party b drew.
    """
    manifest, _ = vertical_training("dealer-attack-desync")
    script = [sys.executable, str(HERE / "dealer_attacker.py")]
    workers = cluster.launch(manifest, programs={0: [*script, "desync"], 1: [*script, "record"]})
    wait_all(workers, 300)
    logs = "\n".join(w.log() for w in workers)
    reports = [json.loads(Path(str(w.output) + ".attack.json").read_text()) for w in workers[:2]]
    desync, recorded = reports[0]["desync"], reports[1]["recorded"]
    assert desync is not None and recorded is not None and len(recorded) == 8, logs
    r0, answer = torch.tensor(desync["r0"]), torch.tensor(desync["answer"])
    a1 = torch.tensor(recorded)
    leaked = (r0 + a1[:4]) * (r0 + a1[:4]) - a1[4:]  # int64 arithmetic wraps like the ring
    assert answer.shape == leaked.shape
    assert not torch.equal(answer, leaked), "the dealer's answer is made of party b's shares"
    assert (answer != leaked).all()
