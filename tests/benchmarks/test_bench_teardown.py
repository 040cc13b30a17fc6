"""A benchmark stopped in the middle leaves no daemon: the real benchmark scripts as child
processes, stopped while their real daemons serve.

The daemons of the test helpers' `RelayCluster` (the PSI and MPC benchmarks') must follow
their starter even when it is SIGKILLed; the ledger benchmark stopped by SIGTERM stops its
daemons in order and removes its temporary folder (its `finally:` blocks run).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from mpc_ledger.testing.processes import kill_running, live_pids, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
START_S = 180  # consortium init and the daemons on a loaded 2-core machine (pytest: 300 s)
GONE_S = 90  # each daemon's own stop is bounded at 15 s


# What the PSI and MPC benchmarks do first: start a `RelayCluster` (here with time to spare
# on a loaded machine), then work while its daemons serve.
_RELAY_STARTER = """
import signal, sys
from pathlib import Path
from mpc_ledger.testing.mpc_cluster import RelayCluster

cluster = RelayCluster(Path(sys.argv[1]), "a,b", dealer=False)
cluster.start(timeout_s=150)
print("started", flush=True)
signal.pause()
"""


class Starter:
    """``python ARGS`` in the background, its output kept, its temporary folders in ``tmp``."""

    def __init__(self, tmp: Path, *args: str | Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "TMPDIR": str(tmp)},
        )
        self.lines: list[str] = []
        self._ended = False
        self._seen = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()
        with self._seen:
            self._ended = True
            self._seen.notify_all()

    def wait_for(self, text: str, timeout_s: float) -> None:
        with self._seen:
            self._seen.wait_for(lambda: self._ended or text in self.output(), timeout_s)
        assert text in self.output(), f"no {text!r}:\n{self.output()}"

    def output(self) -> str:
        return "".join(self.lines)[-4000:]


def test_a_killed_starter_of_a_relay_cluster_leaves_no_relay_daemon(tmp_path):
    starter = Starter(tmp_path, "-c", _RELAY_STARTER, tmp_path / "cluster")
    daemons: list[int] = []
    try:
        starter.wait_for("started", START_S)
        daemons = live_pids("mpc_ledger.testing.mpc_cluster", parent=starter.process.pid)
        assert len(daemons) == 2, (daemons, starter.output())

        starter.process.kill()

        assert wait_gone(daemons, GONE_S) == [], starter.output()
    finally:
        starter.process.kill()
        kill_running(daemons)


def test_a_ledger_benchmark_stopped_by_sigterm_stops_its_daemons_and_cleans_up():
    # Its own short folder, not pytest's: a daemon's relay socket lives in its data folder,
    # and below pytest's (/tmp/pytest-of-root/pytest-NNN/test_...) the path passes the
    # 107 bytes a Unix socket path may have once NNN has three digits.
    tmp = Path(tempfile.mkdtemp(prefix="lb-"))
    bench = Starter(tmp, ROOT / "benchmarks" / "ledger_bench.py", "--smoke")
    daemons: list[int] = []
    try:
        bench.wait_for("baseline, 1 validator alone", START_S)
        [folder] = tmp.glob("ledger-bench-*")
        deadline = time.monotonic() + GONE_S
        while len(daemons) < 4:  # the four validators it starts next
            assert bench.process.poll() is None and time.monotonic() < deadline, bench.output()
            time.sleep(0.1)
            daemons = live_pids("party", "start", str(folder / "four"), parent=bench.process.pid)

        bench.process.send_signal(signal.SIGTERM)

        assert wait_gone(daemons, GONE_S) == [], bench.output()
        assert bench.process.wait(GONE_S) == 128 + signal.SIGTERM, bench.output()
    finally:
        bench.process.kill()
        kill_running(daemons)
        left = any(tmp.glob("ledger-bench-*"))
        shutil.rmtree(tmp, ignore_errors=True)
    assert not left, "the benchmark left its temporary folder"
