"""`stop_all`: every daemon gets one SIGTERM, not two."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from mpc_ledger.daemon.processes import DaemonProcess, stop_all

# Stops cleanly on the first SIGTERM after a short shutdown; a second one during
# that shutdown stands for what a daemon's finalising interpreter does with it
# (the default action: death by signal).
_CHILD = """
import signal, sys, time
terms = []
def on_term(signum, frame):
    terms.append(signum)
    if len(terms) > 1:
        sys.exit(3)
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while not terms:
    time.sleep(0.01)
time.sleep(0.5)
sys.exit(0)
"""


class _Child(DaemonProcess):
    def __init__(self, log_path: Path) -> None:
        self.config = log_path
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CHILD], stdout=self._log, stderr=subprocess.STDOUT
        )


def test_stop_all_signals_each_daemon_once(tmp_path) -> None:
    children = [_Child(tmp_path / f"{i}.log") for i in range(3)]
    deadline = time.monotonic() + 20
    while not all("ready" in child.log() for child in children):
        assert time.monotonic() < deadline, [child.log() for child in children]
        time.sleep(0.02)
    assert stop_all(children) == [0, 0, 0]
