"""The ledger benchmark runs end to end (small numbers); the figures are for the closing note."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
@pytest.mark.slow
def test_ledger_bench_smoke():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ledger_bench.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"baseline, 1 validator alone:\s+\d+ records/s", out), out
    assert re.search(r"4 validators, saturation:\s+\d+ records/s", out), out
    assert re.search(r"submit-to-commit p99\s+[\d.]+ ms", out), out
