"""A daemon started by a test, a benchmark or `dev up` dies with the process that started it.

The starter sets `MPC_LEDGER_PARENT_PID` in the daemon's environment; the daemon
asks Linux for SIGTERM when its parent goes (PR_SET_PDEATHSIG), which stops it
cleanly. It is done here, in the daemon after exec, and not in a `preexec_fn`
in the starter: running Python between fork and exec in a process whose gRPC
threads are live made children abort in gRPC's fork handlers
("epoll_wait error: Bad file descriptor").
"""

from __future__ import annotations

import ctypes
import os
import signal

__all__ = ["PARENT_ENV", "follow_parent"]

PARENT_ENV = "MPC_LEDGER_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def follow_parent(sig: int = signal.SIGTERM) -> None:
    """If started with `MPC_LEDGER_PARENT_PID`, receive ``sig`` when that process dies."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig))
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != parent:  # the parent died before the call above
        os.kill(os.getpid(), sig)
