"""`stop_on_signals`: a stop signal runs the program's `finally:`, and a second one does not
cut it short. A real child process, real signals."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from mpc_ledger.daemon.parent import STOP_SIGNALS, Stopped, raise_if_stopped, stop_on_signals

# Waits in its block; on a stop signal, its `finally:` is the stop of what it started. A
# second signal arrives in the middle of that stop (sent to itself: Linux delivers it
# before `kill` returns, so the handler runs at once).
_CHILD = """
import os, signal, sys
from mpc_ledger.daemon.parent import stop_on_signals

with stop_on_signals():
    try:
        print("ready", flush=True)
        sys.stdin.readline()
        print("not stopped", flush=True)
    finally:
        print("stopping", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        print("stopped", flush=True)
"""


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name
)
def test_a_stop_signal_runs_the_stop_to_its_end(sig):
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        child.send_signal(sig)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert out.splitlines() == ["stopping", "stopped"], (out, err)
    assert child.returncode == 128 + sig, err


def test_the_handlers_are_restored_after_the_block():
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    with stop_on_signals():
        assert all(signal.getsignal(sig) is not before[sig] for sig in STOP_SIGNALS)
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == before


# A stop signal whose `Stopped` the code it lands in swallows (a bare ``except:``) is raised
# again at the program's next step.
_SWALLOWING_CHILD = """
import os, signal, sys
from mpc_ledger.daemon.parent import raise_if_stopped, stop_on_signals

with stop_on_signals():
    try:
        try:
            os.kill(os.getpid(), signal.SIGHUP)  # delivered before kill returns
        except:  # noqa: E722  what a library might do
            print("swallowed", flush=True)
        raise_if_stopped()
        print("not stopped", flush=True)
    finally:
        print("stopped", flush=True)
"""


def test_a_swallowed_stop_is_raised_again_at_the_next_step():
    done = subprocess.run(
        [sys.executable, "-c", _SWALLOWING_CHILD], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.splitlines() == ["swallowed", "stopped"], (done.stdout, done.stderr)
    assert done.returncode == 128 + signal.SIGHUP, done.stderr


def test_raise_if_stopped_is_quiet_without_a_signal_and_after_the_block():
    with stop_on_signals():
        raise_if_stopped()
    with pytest.raises(Stopped), stop_on_signals():
        signal.raise_signal(signal.SIGTERM)
    raise_if_stopped()  # the block that saw the signal has ended
