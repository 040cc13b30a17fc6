"""A stopped demo leaves no consortium behind: the real `scripts/demo.py`, its real
`mpc-ledger dev up` and five real daemons, stopped as a CI timeout or `kill` stops them.

The demo is stopped as soon as its consortium serves, the moment of the issue: its
`dev up` and daemons must all be gone within a bounded time, whether the demo could
catch the signal (SIGTERM, SIGHUP: it stops them in order) or not (SIGKILL: `dev up`
follows it and stops them).
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mpc_ledger.testing.processes import kill_running, live_pids, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"
MEMBERS = ("hospital-a", "hospital-b", "hospital-c", "dealer", "auditor")
READY_S = 180  # consortium init and five daemons on a loaded 2-core machine (pytest: 300 s)
GONE_S = 90  # the demo's own stop waits up to 30 s for `dev up`, which waits 15 s per daemon


class Demo:
    """`scripts/demo.py --smoke --keep WORK` in the background, its output kept."""

    def __init__(self, work: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(DEMO), "--smoke", "--keep", str(work)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._ready: queue.Queue[bool] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.strip() == "[dev up] consortium ready":
                self._ready.put(True)
        self._ready.put(False)

    def wait_ready(self, timeout_s: float) -> None:
        try:
            ready = self._ready.get(timeout=timeout_s)
        except queue.Empty:
            ready = False
        assert ready, "the demo's consortium did not come up:\n" + self.output()

    def output(self) -> str:
        return "".join(self.lines)[-4000:]


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name
)
def test_a_demo_stopped_by_a_signal_leaves_no_daemon(tmp_path, sig):
    work = tmp_path / "demo"
    demo = Demo(work)
    started: list[int] = []
    try:
        demo.wait_ready(READY_S)
        [dev_up] = live_pids("mpc_ledger.cli.main", "dev", "up", parent=demo.process.pid)
        daemons = live_pids("party", "start", str(work / "consortium"), parent=dev_up)
        started = [dev_up, *daemons]
        assert len(daemons) == len(MEMBERS), (daemons, demo.output())

        demo.process.send_signal(sig)

        assert wait_gone(started, GONE_S) == [], demo.output()
        code = demo.process.wait(GONE_S)
    finally:
        demo.process.kill()
        kill_running(started)
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
        # each daemon stopped cleanly on a SIGTERM, none was killed
        for member in MEMBERS:
            assert "stopped" in (work / "consortium" / f"{member}.log").read_text(), member
    else:
        assert code == 128 + sig, demo.output()
        assert "stopping the consortium" in demo.output()
        assert "stopped (hospital-a 0, hospital-b 0, hospital-c 0, dealer 0, auditor 0)" in (
            demo.output()
        )
