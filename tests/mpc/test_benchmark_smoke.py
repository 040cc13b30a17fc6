"""The benchmark runs end to end (tiny data) and prints its figures side by side."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.integration
def test_benchmark_smoke_run():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "mpc_bench.py"), "--smoke", "--no-dealer"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for label in (
        "plaintext PyTorch",
        "CrypTen gloo",
        "ours mTLS relay",
        "ours/gloo wall-time ratio",
    ):
        assert label in result.stdout
    assert "digests agree" in result.stdout


@pytest.mark.slow
@pytest.mark.integration
def test_benchmark_round_trip_table_smoke_run():
    """``--round-trips --smoke``: one configuration (logistic, 2 parties + dealer) at 0 and 5 ms,
    the dealer answering each request (today), with its offline phase, and the lean program
    (`TrainSpec.sigmoid` chebyshev, no gradient threshold), side by side."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "mpc_bench.py"), "--round-trips", "--smoke"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for label in ("rounds/step", "s/step 0ms", "s/step 5ms", "logistic-2 today", "2+dealer"):
        assert label in result.stdout
    assert "round trip counts equal at every delay" in result.stdout
    summary = json.loads(result.stdout.strip().splitlines()[-1])["round_trips"]
    today, offline = summary["logistic-2 today"], summary["logistic-2 offline"]
    # After the planning step no dealer round trip is left on the critical path, and the
    # peers' own rounds are today's.
    assert today["dealer_round_trips_per_step"] > 0
    assert offline["dealer_round_trips_per_step"] == 0
    assert (
        offline["round_trips_per_step"]
        == today["round_trips_per_step"] - today["dealer_round_trips_per_step"]
    )
    # A new job's program (piecewise sigmoid, no gradient threshold) in the same run, with fewer.
    lean = summary["logistic-2 offline piecewise thr=0"]
    assert lean["dealer_round_trips_per_step"] == 0
    assert lean["round_trips_per_step"] < offline["round_trips_per_step"]


@pytest.mark.slow
@pytest.mark.integration
def test_step_breakdown_smoke_run():
    """``step_breakdown.py --smoke``: the parts of a logistic step (2 parties + dealer) add up
    to the worker's own per-step count, and the sigmoid's part is not free."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "step_breakdown.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout.strip().splitlines()[-1])
    assert document["parts_add_up"] is True
    row = document["breakdown"]["2+dealer exact thr=100"]
    assert sum(row["parts"].values()) == row["round_trips_per_step"] > 0
    assert row["parts"]["loss"] > 0
