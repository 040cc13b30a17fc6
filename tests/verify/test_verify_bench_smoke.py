"""The verify benchmark runs end to end on a small export; the figures are for the closing note."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_verify_bench_smoke():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "verify_bench.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"export: 2000 records in \d+ blocks", out), out
    assert re.search(r"baseline, PyNaCl Ed25519 verify alone:\s+\d+ signatures/s", out), out
    assert re.search(r"verify, every check:\s+\d+ records/s", out), out
