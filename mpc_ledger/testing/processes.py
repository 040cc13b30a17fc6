"""Real party daemons as child processes, started through the real CLI, for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mpc_ledger.daemon.parent import child_env

__all__ = ["CLI", "DaemonProcess", "kill_running", "live_pids", "run_cli", "stop_all", "wait_gone"]

CLI = [sys.executable, "-m", "mpc_ledger.cli.main"]


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


class DaemonProcess:
    """`mpc-ledger party start --config CONFIG` in the background, stderr kept in a file.

    ``prefix`` goes before the command, e.g. `ip netns exec NS` (it must exec the daemon,
    not fork it: the daemon follows its parent's pid, this process).
    """

    def __init__(self, config: Path, log_path: Path, *, prefix: Sequence[str] = ()) -> None:
        self.config = config
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [*prefix, *CLI, "party", "start", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**child_env(), "PYTHONUNBUFFERED": "1"},
        )

    def wait_serving(self, address: str, timeout_s: float = 20) -> None:
        """Block until the daemon accepts TCP connections on ``address`` (or fail with its log)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.process.returncode}:\n{self.log()}")
            host, _, port = address.rpartition(":")
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"daemon not serving on {address} after {timeout_s}s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(
        self, sig: int = signal.SIGTERM, timeout_s: float = 15, *, signalled: bool = False
    ) -> int:
        """Send ``sig`` (unless ``signalled``: already sent), wait, kill after ``timeout_s``."""
        if self.process.poll() is None:
            if not signalled:
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self._log.closed:
            self._log.close()
        return self.process.returncode


def stop_all(daemons: list[DaemonProcess], sig: int = signal.SIGTERM) -> list[int]:
    """Signal every daemon first, then wait for each: stopping n takes as long as one."""
    for daemon in daemons:
        if daemon.process.poll() is None:
            daemon.process.send_signal(sig)
    # Not twice: a second SIGTERM that arrives while a daemon's interpreter is
    # finalising meets the default handler and kills it (exit -15, not 0).
    return [daemon.stop(sig, signalled=True) for daemon in daemons]


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
