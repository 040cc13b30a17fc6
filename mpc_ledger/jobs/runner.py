"""The job runner inside a party daemon: the ledger is the coordinator (DESIGN.md "Jobs").

Theory of operation
-------------------
Every daemon sees the same committed ledger state and acts on it alone; no
party tells another what to do. The ledger node calls `JobRunner.on_commit`
on its loop thread after each durable block; it only queues the ids of the
jobs the block touched. One dispatcher thread takes them and *reconciles*:
it reads the job's committed state (`LedgerNode.query`), asks
`mpc_ledger.jobs.reconcile` what this member owes the job in that state,
and does it, once:

* `Decide`: this member owns one of the pending job's datasets and has not
  decided: its policy's decision (`mpc_ledger.jobs.approval`) as a
  ``job_decision``. The committed state says whether it already decided, so
  a restarted daemon never decides twice; this process marks the job
  decided before it evaluates, so whatever goes wrong, it decides once.
* `StartRun`: this member is a participant of an approved or running job
  and runs nothing for it: a `mpc_ledger.jobs.job_run.JobRun` thread, whose
  docstring has the steps. If the ledger says this member already started
  the job but no worker of it runs here (the daemon restarted mid-job), the
  run only writes ``job_aborted``: the job cannot go on.
* `StopRun`: the job was aborted or rejected: kill this member's worker for
  it (its process group).

Where things are: the records and how they are written,
`mpc_ledger.jobs.ledger_writes`; the worker's process and its events,
`mpc_ledger.jobs.worker_process` and `mpc_ledger.mpc.worker_events`; what
the daemon knows of its own workers' progress, `mpc_ledger.jobs.progress`.

What is written where. The ledger gets only records: hashes, digests,
counts, metrics, reasons. The job folder (`mpc_ledger.jobs.job_folder`)
holds the worker's manifest (a local path, 0600), its result and log and,
on a recipient's machine only, the model (0600). Plaintext shares, other
parties' data and, on any machine that is not a recipient, the model are
never written anywhere: the worker never has them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

from mpc_ledger.identity.party import Party
from mpc_ledger.identity.signing import Signer
from mpc_ledger.jobs import approval
from mpc_ledger.jobs.job_folder import make_job_folder
from mpc_ledger.jobs.job_run import JobRun, RunnerOptions
from mpc_ledger.jobs.ledger_writes import JobLedger, LedgerAccess
from mpc_ledger.jobs.progress import ProgressRegistry
from mpc_ledger.jobs.reconcile import Decide, StartRun, StopRun, reconcile
from mpc_ledger.jobs.rules import JOB_STATUS_KINDS
from mpc_ledger.jobs.state import JOBS_TABLE, JobState, job_state, registered_datasets
from mpc_ledger.ledger.records import ParsedRecord
from mpc_ledger.ledger.state import LedgerState
from mpc_ledger.metrics import DaemonMetrics

__all__ = ["JobRunner", "LedgerAccess", "ProgressRegistry", "RunnerOptions"]

log = logging.getLogger(__name__)


class JobRunner:
    """See the module docstring. `on_commit` is the ledger node's commit listener."""

    def __init__(
        self,
        party: Party,
        ledger: LedgerAccess,
        socket_path: Path,
        options: RunnerOptions | None = None,
    ) -> None:
        self.party = party
        self.ledger = ledger
        self.socket_path = socket_path
        self.options = options or RunnerOptions()
        self.member_id = party.identity.member.id
        self.progress = ProgressRegistry()
        self.records = JobLedger(
            ledger,
            Signer(party.identity.signing_key, party.genesis.chain_id),
            self.member_id,
            commit_timeout_s=self.options.commit_timeout_s,
        )
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._lock = threading.Lock()
        self._runs: dict[bytes, JobRun] = {}  # every job this daemon ran (or is running)
        self._decided: set[bytes] = set()  # decisions submitted by this process
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # Set by the daemon's JobsService; None in tests that need no metrics.
        self.metrics: DaemonMetrics | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._dispatch, name="job-runner", daemon=True)
        self._thread.start()
        self._queue.put(b"")  # b"": scan every job on the ledger (restart, missed blocks)

    def stop(self) -> None:
        """Kill every worker, tell the ledger (best effort), end the threads (bounded)."""
        self._stopping.set()
        self._queue.put(None)
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.kill("the party daemon of " + self.member_id + " stopped")
        deadline = time.monotonic() + self.options.stop_wait_s
        for run in runs:
            run.join(max(0.0, deadline - time.monotonic()))
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))

    def on_commit(self, height: int, records: list[ParsedRecord]) -> None:
        """The ledger's commit listener (its loop thread): queue the jobs touched, no more."""
        for record in records:
            kind = record.kind
            if kind == "job_submission":
                self._queue.put(record.id)
            elif kind in JOB_STATUS_KINDS:
                self._queue.put(bytes(getattr(record.body, kind).job_id))

    def running_jobs(self) -> list[str]:
        with self._lock:
            return [job.hex() for job, run in self._runs.items() if run.is_alive()]

    # -- the dispatcher -------------------------------------------------------------------

    def _dispatch(self) -> None:
        while not self._stopping.is_set():
            job_id = self._queue.get()
            if job_id is None or self._stopping.is_set():
                return
            try:
                if job_id == b"":
                    for job in self._all_jobs():
                        self._reconcile(job)
                else:
                    found = self.records.job(job_id)
                    if found is not None:
                        self._reconcile(found)
            except Exception:
                log.exception("job runner: reconciling job %s failed", job_id.hex()[:16])

    def _all_jobs(self) -> list[JobState]:
        def read(state: LedgerState) -> list[JobState]:
            found = (job_state(state, bytes.fromhex(key)) for key in state.keys(JOBS_TABLE))
            return [job for job in found if job is not None]

        return self.ledger.query(read)

    def _reconcile(self, job: JobState) -> None:
        with self._lock:
            run = self._runs.get(job.job_id)
        action = reconcile(
            job,
            self.member_id,
            decided_here=job.job_id in self._decided,
            has_run=run is not None,
            run_alive=run is not None and run.is_alive(),
        )
        if isinstance(action, Decide):
            self._decided.add(job.job_id)
            self._decide(job)
        elif isinstance(action, StartRun):
            new = JobRun(self, job, data_dir=self.party.config.data_dir, resume=action.resume)
            with self._lock:
                self._runs[job.job_id] = new
            new.start()
        elif isinstance(action, StopRun) and run is not None:
            run.kill(action.reason)

    def _decide(self, job: JobState) -> None:
        # The job is marked decided before this: whatever goes wrong, a decision is written,
        # or the job would wait for this member forever.
        decision = approval.decide(
            self.party.config.policy_path,
            self.member_id,
            job,
            lambda: self.ledger.query(lambda s: registered_datasets(s, job.spec.dataset_ids)),
        )
        self.records.submit(
            "job_decision", decision.to_proto(job.job_id), wait=False, job_id=job.job_id
        )
        log.info(
            "job %s: %s (%s)",
            job.job_id.hex()[:16],
            "approved" if decision.approve else "rejected",
            "; ".join(decision.reasons),
        )

    # -- what a run asks of the daemon (`mpc_ledger.jobs.job_run.RunHost`) ----------------

    def too_few_rows(self, train_rows: int, test_rows: int) -> str | None:
        """`mpc_ledger.jobs.approval.too_few_rows` for this member."""
        return approval.too_few_rows(
            self.party.config.policy_path,
            self.member_id,
            self.party.genesis.mpc.min_test_rows,
            train_rows,
            test_rows,
        )

    def job_folder(self, job_id: bytes) -> Path:
        return make_job_folder(self.party.config.data_dir, job_id)
