"""The benchmark runs end to end (tiny data) and prints its figures side by side."""

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
    """``--round-trips --smoke``: one configuration (logistic, 2 parties + dealer) at 0 and 5 ms."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "mpc_bench.py"), "--round-trips", "--smoke"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for label in ("rounds/step", "s/step 0ms", "s/step 5ms", "logistic-2", "2+dealer"):
        assert label in result.stdout
    assert "round trip counts equal at every delay" in result.stdout
