"""The real CLI as a child process (`run_cli`), and finding and killing what a test left.

Daemons as child processes are `mpc_ledger.daemon.processes` (`dev up` starts them too)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from mpc_ledger.daemon.processes import CLI

__all__ = ["kill_running", "live_pids", "run_cli", "wait_gone"]


def run_cli(*args: str | Path, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `mpc-ledger ARGS...` in a child process and capture its output."""
    return subprocess.run(
        [*CLI, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def live_pids(*mentions: str, parent: int | None = None) -> list[int]:
    """Pids of running processes whose command line contains every one of ``mentions``
    (and whose parent is ``parent``, if given).

    A zombie is not running: an orphan that exited stays one until init reaps it, and
    in a container init may never do so.
    """
    wanted = [m.encode() for m in mentions]
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            state, ppid = (entry / "stat").read_text().rpartition(")")[2].split()[:2]
        except (OSError, ValueError):
            continue
        if state == "Z" or not all(w in command for w in wanted):
            continue
        if parent is None or int(ppid) == parent:
            pids.append(int(entry.name))
    return pids


def wait_gone(pids: Sequence[int], timeout_s: float) -> list[int]:
    """The pids among ``pids`` still running after ``timeout_s``, or [] as soon as none is."""
    deadline = time.monotonic() + timeout_s
    left = list(pids)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        running = set(live_pids())
        left = [pid for pid in left if pid in running]
    return left


def kill_running(pids: Sequence[int]) -> None:
    """SIGKILL those of ``pids`` that still run (what a failed test must not leave)."""
    for pid in set(pids) & set(live_pids()):
        os.kill(pid, signal.SIGKILL)
