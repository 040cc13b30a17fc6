"""Real party daemons as child processes, started through the real CLI.

For everything that starts a consortium of separate processes: `dev up`, the
test helpers and the benchmarks (`mpc_ledger.testing.processes` adds what only
tests need). Each daemon follows its starter's death (`mpc_ledger.daemon.parent`).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from mpc_ledger.daemon.parent import child_env

__all__ = ["CLI", "DaemonProcess", "stop_all"]

# `mpc-ledger` as a child process (`python -m`: no console script needed on PATH).
CLI = [sys.executable, "-m", "mpc_ledger.cli.main"]


class DaemonProcess:
    """`mpc-ledger party start --config CONFIG` in the background, stderr kept in a file.

    ``prefix`` goes before the command, e.g. `ip netns exec NS` (it must exec the daemon,
    not fork it: the daemon follows its parent's pid, this process).
    """

    def __init__(
        self,
        config: Path,
        log_path: Path,
        *,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [*prefix, *CLI, "party", "start", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**child_env(), "PYTHONUNBUFFERED": "1", **(env or {})},
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
