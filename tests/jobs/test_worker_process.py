"""The worker's process: events handed over in order, bounded waits, kills (a fake worker)."""

from __future__ import annotations

import os
import sys
import textwrap

from mpc_ledger.jobs.worker_process import WorkerProcess
from mpc_ledger.mpc.worker_events import StepProgress, WorkerEventError, encode

FAKE_WORKER = textwrap.dedent(
    """
    import sys, time
    print("a library printing")
    print({progress!r}, flush=True)
    print('{{"event": "progress", "epoch": "one"}}', flush=True)
    print("to the log", file=sys.stderr)
    time.sleep(float(sys.argv[1]))
    sys.exit(int(sys.argv[2]))
    """
).format(progress=encode(StepProgress(1, 2, 0.5)))


def run(tmp_path, sleep_s, exit_code, timeout_s=30.0):
    worker = WorkerProcess("job-test")
    events, bad = [], []
    command = [sys.executable, "-c", FAKE_WORKER, str(sleep_s), str(exit_code)]
    assert worker.start(command, log_path=tmp_path / "worker.log", env=dict(os.environ))
    timed_out = worker.follow(events.append, bad.append, timeout_s=timeout_s)
    return worker, events, bad, timed_out


def test_events_arrive_decoded_and_bad_ones_apart(tmp_path):
    worker, events, bad, timed_out = run(tmp_path, 0, 3)
    assert not timed_out and worker.wait(10.0) == 3
    assert events == [StepProgress(1, 2, 0.5)]  # the library's line is skipped
    [error] = bad
    assert isinstance(error, WorkerEventError) and "progress.epoch" in str(error)
    assert "to the log" in (tmp_path / "worker.log").read_text()
    assert worker.killed is None


def test_a_worker_past_its_time_is_killed(tmp_path):
    worker, events, _, timed_out = run(tmp_path, 60, 0, timeout_s=1.0)
    assert timed_out and events == [StepProgress(1, 2, 0.5)]
    assert worker.wait(10.0) != 0


def test_a_kill_before_the_start_means_no_worker(tmp_path):
    worker = WorkerProcess("job-test")
    worker.kill("the job was aborted")
    worker.kill("a second reason")
    assert worker.killed == "the job was aborted"
    assert not worker.start(["false"], log_path=tmp_path / "worker.log", env={})
    worker.reap()  # nothing to reap


def test_a_kill_ends_a_running_worker_and_reap_waits_for_it(tmp_path):
    worker = WorkerProcess("job-test")
    command = [sys.executable, "-c", "import time; time.sleep(60)"]
    assert worker.start(command, log_path=tmp_path / "worker.log", env=dict(os.environ))
    worker.kill("stopped")
    assert worker.wait(10.0) != 0 and worker.killed == "stopped"
    worker.reap()
