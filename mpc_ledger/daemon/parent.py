"""What a program starts dies with it, and a program that is stopped stops what it started.

Two halves, used by every starter of a consortium (`dev up`, the demo, the
benchmarks, the test helpers) and by what they start (the daemons, `dev up`):

- A child follows its starter's death. The starter puts its pid in the child's
  environment (`child_env`); the child calls `follow_parent`, which asks Linux
  for SIGTERM when its parent goes (PR_SET_PDEATHSIG), and stops cleanly on
  it. This holds even when the starter is SIGKILLed. It is done in the child
  after exec, not in a `preexec_fn` in the starter: running Python between fork
  and exec in a process whose gRPC threads are live made children abort in
  gRPC's fork handlers ("epoll_wait error: Bad file descriptor"). Linux sends
  the signal when the *thread* that started the child ends, so start children
  from the main thread.
- A starter turns the signals it can catch into an orderly stop
  (`stop_on_signals`): SIGTERM (`kill`, a CI timeout, `timeout`), SIGHUP (a
  closed terminal) and SIGINT raise `Stopped` in the main thread, so the
  `finally:` blocks that stop its children run, instead of the process dying
  on the spot and leaving them to init.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Iterator, Mapping
from types import FrameType

__all__ = [
    "PARENT_ENV",
    "STOP_SIGNALS",
    "Stopped",
    "child_env",
    "follow_parent",
    "raise_if_stopped",
    "stop_on_signals",
]

PARENT_ENV = "MPC_LEDGER_PARENT_PID"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_PR_SET_PDEATHSIG = 1


class Stopped(SystemExit):
    """A stop signal arrived; the exit status is the shell's 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: our environment) plus our pid: the child follows this process."""
    return {**(os.environ if base is None else base), PARENT_ENV: str(os.getpid())}


def follow_parent(sig: int = signal.SIGTERM) -> None:
    """If started with `MPC_LEDGER_PARENT_PID`, receive ``sig`` when that process dies."""
    # Consumed here: a grandchild started with our environment would otherwise
    # take its grandparent's pid for its parent's and stop itself at once.
    parent = os.environ.pop(PARENT_ENV, None)
    if not parent:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig))
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != parent:  # the parent died before the call above
        os.kill(os.getpid(), sig)


@contextlib.contextmanager
def stop_on_signals(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Inside the block, the first of ``signals`` raises `Stopped` in the main thread.

    Later ones are ignored until the block ends: raising again inside the
    `finally:` that is stopping the children would cut that stop short and leave
    them running (each stop there is bounded, and SIGKILL still works).
    """
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            _requested.append(signum)
            raise Stopped(signum)

    previous = {signum: signal.signal(signum, on_signal) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _requested.clear()


# The stop signal that arrived inside `stop_on_signals`, for `raise_if_stopped`.
_requested: list[int] = []


def raise_if_stopped() -> None:
    """Raise `Stopped` again if a stop signal arrived and its exception did not get out.

    The handler raises wherever the main thread happens to be, and code there
    may swallow it (a library's bare ``except:`` while it imports or cleans up);
    a program that steps through long work calls this between steps, so the stop
    still happens at the next one. Not for a `finally:` that is stopping children.
    """
    if _requested:
        raise Stopped(_requested[0])
