"""The PSI benchmark runs end to end (small numbers) and its figures are sane."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str) -> tuple[str, dict]:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "psi_bench.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    return out, json.loads(out.strip().splitlines()[-1])


def check_figures(out: str, summary: dict, parties: int, shared: int) -> None:
    assert re.search(r"baseline, plaintext set\.intersection:\s+[\d.]+ s", out), out
    assert re.search(r"baseline, ristretto255, one party's share:\s+[\d.]+ s", out), out
    psi = re.search(r"PSI, slowest party's intersect\(\):\s+([\d.]+) s\s+\(target < 30 s", out)
    assert psi and 0 < float(psi.group(1)) < 60, out
    assert (
        f"intersection: {shared} ids (expected {shared}); rows aligned across parties: yes" in out
    )
    rows = re.findall(
        r"^  (\d+)\s+([\d.]+)\s+([\d.]+)\s+(-?[\d.]+)\s+([\d.]+)\s+([\d.]+)", out, re.M
    )
    assert [int(row[0]) for row in rows] == list(range(parties)), out
    assert summary["ok"] and summary["intersection"] == summary["expected"] == shared
    # every party sends at least its own blinded list: 32 bytes per id
    assert all(sent >= 32 * 2000 for sent in summary["sent_bytes"]), summary


@pytest.mark.integration
@pytest.mark.slow
def test_psi_bench_smoke_over_the_relay():
    out, summary = run_bench("--ids", "2000")
    check_figures(out, summary, parties=2, shared=1000)
    assert "transcripts agree" in out


@pytest.mark.integration
@pytest.mark.slow
def test_psi_bench_smoke_three_parties_over_pipes():
    out, summary = run_bench(
        "--ids", "2000", "--overlap", "0.25", "--parties", "3", "--transport", "pipe"
    )
    check_figures(out, summary, parties=3, shared=500)
