"""A real job's per-step round trips: 3 data parties + the dealer, over real daemons whose links
go through the test proxy's delay line; the figures are in every data party's result, plausible,
and the same when the job runs again at another delay."""

from __future__ import annotations

import pytest

from mpc_ledger.mpc.sample_data import breast_cancer_split
from mpc_ledger.mpc.train_spec import TrainSpec
from mpc_ledger.mpc.transcript import TranscriptSnapshot, compare_transcripts
from mpc_ledger.mpc.worker import JobManifest
from mpc_ledger.testing.mpc_cluster import RelayCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MEMBERS = ("a", "b", "c", "dealer")
ROWS = 64  # 48 training rows: 2 steps of 32 and 16


def three_party_job(job_id: str) -> JobManifest:
    full = breast_cancer_split(seed=0, rows=ROWS)
    spec = TrainSpec(
        layout="vertical",
        model="logistic",
        n_features=30,
        columns_per_rank=(10, 10, 10),
        label_rank=2,
        train_rows_per_rank=(len(full["x_train"]),),
        test_rows_per_rank=(len(full["x_test"]),),
        epochs=1,
        batch_size=32,
        recipients=(0,),
    )
    program = {
        "name": "train",
        "spec": spec.to_json(),
        "data": {"source": "breast_cancer", "rows": ROWS},
    }
    return JobManifest(job_id, MEMBERS, 3, "dealer", False, 120.0, program)


def test_per_step_round_trips_are_reported_plausible_and_repeatable(tmp_path):
    with RelayCluster(tmp_path, "a,b,c", dealer=True, delay_ms=0) as cluster:
        first = cluster.run(three_party_job("rt-1"), timeout_s=300)
        assert first.exit_codes == [0, 0, 0, 0], first.logs()
        cluster.set_delay(5)
        again = cluster.run(three_party_job("rt-2"), timeout_s=300)
        assert again.exit_codes == [0, 0, 0, 0], again.logs()
    for run in (first, again):
        snapshots = {r["rank"]: TranscriptSnapshot.from_json(r["transcript"]) for r in run.results}
        assert compare_transcripts(snapshots) == []
    trainings = [[r["traffic"]["training"] for r in run.results[:3]] for run in (first, again)]
    for rank, training in enumerate(trainings[0]):
        per_step = training["per_step"]
        assert training["steps"] == 2
        assert (
            per_step["round_trips"]
            == per_step["peer_round_trips"] + (per_step["dealer_round_trips"])
        )
        assert per_step["round_trips"] > 0 and per_step["frames"] > 0 and per_step["bytes"] > 0
        assert per_step["seconds"] > 0
        assert set(per_step["per_peer"]) <= set(MEMBERS) - {MEMBERS[rank]}
    party0 = trainings[0][0]["per_step"]
    # party 0 asks the dealer for every triple: some of its round trips are the dealer's
    assert 0 < party0["dealer_round_trips"] < party0["round_trips"]
    assert party0["per_peer"]["dealer"]["frames_sent"] > 0
    # deterministic: the same job makes the same round trips, whatever the delay
    assert [t["totals"] for t in trainings[0]] == [t["totals"] for t in trainings[1]]
    # the whole job's figures, at every rank (the dealer's too), include the training window
    for result, training in zip(first.results, trainings[0] + [None], strict=True):
        job = result["traffic"]["job"]
        assert job["round_trips"] > 0
        if training is not None:
            assert job["round_trips"] >= training["totals"]["round_trips"]
