"""One job's worker as a child process of the party daemon: start, follow, kill, reap.

The worker (`python -m mpc_ledger.jobs.worker_main --events`, or a test double
taking its flags) runs in its own process group, so a kill takes whatever
it started with it, and dies with the daemon (``MPC_LEDGER_WORKER_PARENT``).
Its stderr goes to the job's log file; its stdout carries its events
(`mpc_ledger.mpc.worker_events`), read by one pump thread and handed, decoded,
to the caller's thread in `follow`, which is bounded by the job's time
limit. A line that is no event (a library printing) is skipped.

`kill` may come from any thread at any time, also before `start`: a worker
killed before it started never starts. Every wait here is bounded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from mpc_ledger.mpc.worker_events import NotAnEvent, WorkerEvent, WorkerEventError, decode

__all__ = ["WorkerProcess"]

log = logging.getLogger(__name__)
_POLL_S = 1.0  # how often `follow` looks at its deadline while the worker is silent


class WorkerProcess:
    """The worker of one job on this party (``name``: for its threads and the log)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._killed: str | None = None

    @property
    def killed(self) -> str | None:
        """Why it was killed (the first reason given); None while it was not."""
        return self._killed

    def kill(self, reason: str) -> None:
        with self._lock:
            if self._killed is None:
                self._killed = reason
            process = self._process
        if process is not None and process.poll() is None:
            log.info("%s: killing the worker: %s", self.name, reason)
            _kill_group(process)

    def start(self, command: Sequence[str], *, log_path: Path, env: Mapping[str, str]) -> bool:
        """Start it (stderr appended to ``log_path``); False if it was killed already."""
        with log_path.open("ab") as log_file, self._lock:
            if self._killed is not None:
                return False
            self._process = subprocess.Popen(
                list(command),
                stdout=subprocess.PIPE,
                stderr=log_file,
                stdin=subprocess.DEVNULL,
                env=dict(env),
                start_new_session=True,  # its own process group: killed as one
            )
        return True

    def follow(
        self,
        on_event: Callable[[WorkerEvent], None],
        on_bad_event: Callable[[WorkerEventError], None],
        *,
        timeout_s: float,
    ) -> bool:
        """Hand its events to ``on_event`` (and a malformed one to ``on_bad_event``) until it
        closes its output; True if ``timeout_s`` passed first (it is killed then)."""
        process = self._process
        assert process is not None and process.stdout is not None, "start() first"
        stdout = process.stdout
        lines: queue.Queue[bytes | None] = queue.Queue()

        def pump() -> None:
            for line in stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, name=f"{self.name}-out", daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill_group(process)
                return True
            try:
                line = lines.get(timeout=min(remaining, _POLL_S))
            except queue.Empty:
                continue
            if line is None:
                return False
            try:
                event = decode(line)
            except NotAnEvent:
                continue  # not one of ours (a library printing)
            except WorkerEventError as exc:
                on_bad_event(exc)
                continue
            on_event(event)

    def wait(self, timeout_s: float) -> int:
        """Its exit status, killing it if it has not exited within ``timeout_s``."""
        process = self._process
        assert process is not None, "start() first"
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.wait()
        return process.returncode

    def reap(self) -> None:
        """Kill it if it still runs, and wait for it (the job's run is over either way)."""
        process = self._process
        if process is not None and process.poll() is None:
            _kill_group(process)
            process.wait()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
