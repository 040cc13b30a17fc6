"""The replay benchmark runs end to end (2 data parties + dealer, 48 rows), every rank's replay
reproduces what the others received from it, and its figures are sane; a replayed digest
that differs from the receiver's is caught."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench_module() -> ModuleType:
    """The script as a module (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location(
        "replay_bench", ROOT / "benchmarks" / "replay_bench.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_bench(*args: str) -> tuple[str, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "replay_bench.py"), *args],
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    return out, json.loads(out.strip().splitlines()[-1])


@pytest.mark.integration
@pytest.mark.slow
def test_replay_bench_smoke() -> None:
    out, summary = run_bench("--smoke", "--json")
    assert re.search(r"job wall time: [\d.]+ s", out), out
    assert re.search(r"log size / bytes received, worst rank: [\d.]+ \(target <= 1\.1: ", out)
    assert re.search(r"replay / compute, worst rank: [\d.]+ \(target <= 1\.5: ", out), out
    assert "every rank's replay reproduced what the others received from it" in out
    assert summary["ok"] and summary["job_wall_s"] > 0
    ranks = summary["ranks"]
    assert [r["member"] for r in ranks] == ["a", "b", "dealer"]
    for rank in ranks:
        assert rank["digests_match"] and rank["channels_checked"] == 2, rank
        # the log holds every byte received, and encrypting it adds some
        assert rank["log_bytes"] > rank["received_bytes"] > 0, rank
        assert rank["log_ratio"] > 1 and rank["replay_ratio"] > 0, rank
        assert 0 <= rank["job_wait_s"] < rank["job_wall_s"], rank
        assert rank["compute_s"] > 0 and rank["replay_wall_s"] > 0, rank
        assert rank["replay_process_s"] > rank["replay_wall_s"] and rank["replay_cpu_s"] > 0
        assert rank["write_mib_s"] > 0 and rank["read_mib_s"] > 0, rank
    # the data parties exchange shares; the dealer's answers carry no payload it receives
    assert all(r["payload_bytes"] > 0 for r in ranks[:2]), ranks


@pytest.mark.slow  # imports torch through the benchmark
def test_a_replayed_digest_unlike_the_receivers_is_a_mismatch() -> None:
    mismatched_channels = bench_module().mismatched_channels
    targets = {(0, 1): (5, "aa" * 32), (0, 2): (3, "bb" * 32)}
    replayed = {"0->1": {"5": "aa" * 32}, "0->2": {"3": "bb" * 32}}
    assert mismatched_channels(targets, replayed) == []
    changed = {**replayed, "0->2": {"3": "bb" * 31 + "bc"}}
    assert mismatched_channels(targets, changed) == ["0->2"]
    stopped_early = {"0->1": {"5": "aa" * 32}}  # never reached the receiver's count
    assert mismatched_channels(targets, stopped_early) == ["0->2"]
