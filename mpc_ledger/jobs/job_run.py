"""This member's part of one job, as one thread: from the data check to the proof.

A `JobRun` does, in this order, each step bounded by `RunnerOptions`:

1. Data owners re-check their dataset (`mpc_ledger.jobs.data_check`); a
   mismatch, a missing file or a job the training program cannot run writes
   ``job_aborted`` naming the reason, before any worker exists. The dealer
   holds no data.
2. ``job_started`` (manifest hash, the fingerprint just recomputed), waited
   for until committed; then it waits until *every* participant's
   ``job_started`` is committed, so no worker starts anywhere unless every
   party's data checked out.
3. The worker (`mpc_ledger.jobs.worker_process`), attached to the daemon's
   MPC relay. It re-reads and re-fingerprints the file itself before
   CrypTen starts. Its events feed the progress registry, the step gauges
   (the total from the ledger: `mpc_ledger.jobs.progress`), a PSI job's
   ``job_alignment`` (each data owner writes the one its worker reports,
   before anything else; a data owner whose policy's ``min_rows`` exceeds the
   intersection's training rows aborts the job instead: its approval counted
   the registered rows) and, at each epoch end, a ``job_epoch_digests``
   record with its transcript snapshot (data ranks; the dealer serves tuples
   and has no epochs).
4. On success: rank 0 waits (bounded) until every data party's last epoch
   digests are committed, then writes ``job_completed``; every participant
   writes its ``participation_proof`` (final channel digests).
5. On failure (non-zero exit, the job's time limit, a peer's failure seen
   by the worker, a malformed event, a runner error): ``job_aborted`` with
   the reason, unless the ledger already ended the job or it was killed
   because it did.

The records are built by `mpc_ledger.jobs.ledger_writes`; the run reaches the
rest of the daemon only through its `RunHost` (the `JobRunner`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from mpc_ledger.documents import parse_json
from mpc_ledger.jobs import ledger_writes
from mpc_ledger.jobs.data_check import DataCheckFailed, recheck_dataset
from mpc_ledger.jobs.job_folder import log_key_path, replay_files
from mpc_ledger.jobs.ledger_writes import JobLedger, channel_digests
from mpc_ledger.jobs.lifecycle import APPROVED, RUNNING
from mpc_ledger.jobs.manifest import ManifestParty
from mpc_ledger.jobs.progress import ProgressRegistry, job_total_steps
from mpc_ledger.jobs.state import JobState, epoch_digests, job_state
from mpc_ledger.jobs.worker_bridge import UnsupportedJobError, worker_manifest
from mpc_ledger.jobs.worker_process import WorkerProcess
from mpc_ledger.ledger.state import LedgerState
from mpc_ledger.metrics import DaemonMetrics
from mpc_ledger.mpc.job_seed import new_job_seed, seed_commitment, write_job_seed
from mpc_ledger.mpc.snapshots import TranscriptSnapshot
from mpc_ledger.mpc.worker_command import worker_command
from mpc_ledger.mpc.worker_events import (
    Aligned,
    EpochEnded,
    Finished,
    StepProgress,
    WorkerEvent,
    WorkerEventError,
)

__all__ = ["JOB_WORKER_PROGRAM", "JobRun", "RunHost", "RunnerOptions"]

log = logging.getLogger(__name__)
_POLL_S = 0.1  # how often a bounded wait reads the ledger again
# The worker a job runs: the MPC worker with this layer's reader of the party's file.
JOB_WORKER_PROGRAM: tuple[str, ...] = (sys.executable, "-m", "mpc_ledger.jobs.worker_main")


@dataclasses.dataclass(frozen=True)
class RunnerOptions:
    """Every wait of the runner is bounded by one of these."""

    peer_timeout_s: float = 60.0  # the worker gives up on a silent peer after this
    job_timeout_s: float = 3600.0  # a worker running longer is killed and the job aborted
    commit_timeout_s: float = 30.0  # for each record the runner waits on
    start_wait_s: float = 60.0  # for every participant's job_started before the worker starts
    completion_wait_s: float = 30.0  # rank 0 waits this long for the others' last digests
    exit_wait_s: float = 10.0  # after the worker closed its output, for it to exit
    stop_wait_s: float = 5.0  # daemon stop: for the job threads to end
    worker_command: tuple[str, ...] = JOB_WORKER_PROGRAM  # or a test double taking its flags


class RunHost(Protocol):
    """What a run needs of the daemon around it (`mpc_ledger.jobs.runner.JobRunner`)."""

    member_id: str
    options: RunnerOptions
    progress: ProgressRegistry
    records: JobLedger
    socket_path: Path
    metrics: DaemonMetrics | None  # None in tests that need no metrics

    def too_few_rows(self, train_rows: int, test_rows: int) -> str | None: ...

    def job_folder(self, job_id: bytes) -> Path: ...


class JobRun(threading.Thread):
    """This member's part of one job (see the module docstring)."""

    def __init__(
        self, host: RunHost, job: JobState, *, data_dir: Path, resume: bool = False
    ) -> None:
        super().__init__(name=f"job-{job.job_id.hex()[:8]}", daemon=True)
        self.host = host
        self.job = job
        self.job_hex = job.job_id.hex()
        self.options = host.options
        self._records = host.records
        self._data_dir = data_dir
        self._resume = resume
        party = job.manifest.party(host.member_id)
        assert party is not None  # a participant
        self.party: ManifestParty = party
        self._worker = WorkerProcess(self.name)
        self._steps_total = job_total_steps(job)  # 0: a PSI job's, until its alignment commits
        host.progress.begin(self.job_hex, job.spec.epochs)

    # -- control from other threads -------------------------------------------------------

    def kill(self, reason: str) -> None:
        self._worker.kill(reason)

    # -- the run --------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:
            log.exception("job %s: the runner failed", self.job_hex[:16])
            # The type only: an error's text may name a local path (the log has it).
            self._fail(f"runner error: {type(exc).__name__}")
        finally:
            self._worker.reap()

    def _progress(self, **changes: Any) -> None:
        self.host.progress.update(self.job_hex, **changes)

    def _fail(self, reason: str) -> None:
        self._progress(status="aborted", detail=reason)
        if self._worker.killed is None:
            self._records.abort(self.job.job_id, reason)

    def _submit(self, kind: str, message: Any) -> bool:
        return self._records.submit(kind, message, wait=True, job_id=self.job.job_id)

    def _run(self) -> None:
        if self._resume:
            self._fail("its party daemon restarted during the job; its worker is gone")
            return
        checked = self._check_data()
        if checked is None:
            return
        fingerprint, catalogue = checked
        try:
            manifest = worker_manifest(
                self.job.manifest,
                self.party,
                catalogue,
                peer_timeout_s=self.options.peer_timeout_s,
            )
        except UnsupportedJobError as exc:
            self._fail(str(exc))
            return
        # The worker's randomness, fixed and committed before any party sees a message of
        # the job, so its side can be replayed (`mpc_ledger.mpc.job_seed`).
        folder = self.host.job_folder(self.job.job_id)
        seed = new_job_seed()
        write_job_seed(replay_files(folder, self.party.rank).seed, seed)
        commitment = seed_commitment(
            self.job.manifest.chain_id, self.job.job_id, self.party.member_id, seed
        )
        started = ledger_writes.job_started(self.job, fingerprint, seed_commitment=commitment)
        if not self._submit("job_started", started):
            self._fail("its job_started record was not committed")
            return
        if not self._wait_all_started():
            return
        manifest_path = replay_files(folder, self.party.rank).manifest
        _write_private(manifest_path, json.dumps(manifest, indent=2) + "\n")
        result = self._run_worker(folder, manifest_path)
        if result is not None:
            self._finish(result)

    def _check_data(self) -> tuple[bytes, Path | None] | None:
        """(the recomputed fingerprint, the catalogue entry's path); None = aborted."""
        if self.party.role != "data":
            return b"", None
        try:
            return recheck_dataset(
                self._data_dir, self.party.dataset_id, self.party.dataset_fingerprint
            )
        except DataCheckFailed as exc:
            self._fail(exc.reason)
            return None

    def _wait_all_started(self) -> bool:
        """No worker starts until every participant re-fingerprinted and wrote job_started,
        so a changed file anywhere stops the job before any party's worker exists."""
        deadline = time.monotonic() + self.options.start_wait_s
        while self._worker.killed is None:
            job = self._records.job(self.job.job_id)
            if job is None or job.status not in (APPROVED, RUNNING):
                return False
            missing = [p for p in job.participants if p not in job.started]
            if not missing:
                return True
            if time.monotonic() > deadline:
                self._fail(
                    f"{', '.join(missing)} did not start within {self.options.start_wait_s:g}s"
                )
                return False
            time.sleep(_POLL_S)
        return False

    def _command(self, folder: Path, manifest_path: Path) -> list[str]:
        rank = self.party.rank
        recipient = rank in self.job.manifest.recipient_ranks
        files = replay_files(folder, rank)
        files.inbound_log.unlink(missing_ok=True)  # a log is of one run of the worker
        return worker_command(
            manifest_path,
            rank,
            folder / f"result-rank{rank}.json",
            socket_path=self.host.socket_path,
            events=True,
            model_path=folder / "model.pt" if recipient else None,
            program=self.options.worker_command,
            job_seed=files.seed,
            inbound_log=files.inbound_log,
            log_key=log_key_path(self._data_dir),
        )

    def _run_worker(self, folder: Path, manifest_path: Path) -> dict[str, Any] | None:
        """Run the worker to its end; its result, or None when the job failed (and why was said)."""
        output = folder / f"result-rank{self.party.rank}.json"
        output.unlink(missing_ok=True)
        env = {**os.environ, "MPC_LEDGER_WORKER_PARENT": str(os.getpid())}
        log_path = folder / f"worker-rank{self.party.rank}.log"
        if not self._worker.start(self._command(folder, manifest_path), log_path=log_path, env=env):
            return None
        self._progress(status="running")
        timed_out = self._worker.follow(
            self._on_event, self._on_bad_event, timeout_s=self.options.job_timeout_s
        )
        returncode = self._worker.wait(self.options.exit_wait_s)
        killed = self._worker.killed
        if killed is not None:
            self._progress(status="aborted", detail=killed)
            return None
        if timed_out:
            self._fail(f"its worker ran longer than {self.options.job_timeout_s:g}s")
            return None
        result = _read_json(output)
        if returncode != 0 or result is None or "error" in result:
            error = (result or {}).get("error") or f"no result (exit {returncode})"
            self._fail(f"its worker failed: {error}")
            return None
        return result

    # -- the worker's events --------------------------------------------------------------

    def _on_event(self, event: WorkerEvent) -> None:
        if isinstance(event, StepProgress | EpochEnded):
            changes: dict[str, Any] = {
                "step": event.step,
                "elapsed_s": event.elapsed_s,
                # an epoch in progress is not done yet
                "epoch": event.epoch - (1 if isinstance(event, StepProgress) else 0),
            }
            loss = event.loss if isinstance(event, EpochEnded) else None
            if loss is not None and self.job.spec.reveal_training_loss:
                changes["loss"] = loss
            self._progress(**changes)
            self._count_steps(event.step)
        if isinstance(event, Aligned) and self.party.role == "data":
            self._align(event)
        if isinstance(event, EpochEnded | Finished) and event.transcript is not None:
            self._count_rounds(event.transcript)
        if isinstance(event, EpochEnded) and event.transcript is not None:
            channels = channel_digests(event.transcript)
            if channels and self.party.role == "data":
                digests = ledger_writes.job_epoch_digests(self.job.job_id, event.epoch, channels)
                self._submit("job_epoch_digests", digests)

    def _on_bad_event(self, error: WorkerEventError) -> None:
        """Our own worker's event that cannot be read is a bug: the job cannot go on."""
        log.warning("job %s: its worker sent a bad event: %s", self.job_hex[:16], error)
        reason = "its worker sent an event this daemon cannot read"  # the log says which
        self._fail(reason)
        self.kill(reason)

    def _count_steps(self, step: int) -> None:
        """The step gauges: this worker's steps, and the job's total from the ledger, read
        again while it is unknown (a PSI job's, until its job_alignment commits)."""
        metrics = self.host.metrics
        if metrics is None:
            return
        if not self._steps_total:
            job = self._records.job(self.job.job_id)
            self._steps_total = job_total_steps(job) if job is not None else 0
        total = self._steps_total
        metrics.job_steps.labels(self.job_hex).set(total)
        metrics.job_step.labels(self.job_hex).set(step)
        metrics.job_progress.labels(self.job_hex).set(min(1.0, step / total) if total else 0.0)

    def _count_rounds(self, transcript: TranscriptSnapshot) -> None:
        """The rounds gauge: communicator operations that sent on any of this party's
        channels so far (the transcript counts them per channel)."""
        metrics = self.host.metrics
        if metrics is None:
            return
        rounds = 0
        for channel in transcript.channels:
            if channel.sender == self.party.rank:
                rounds = max(rounds, channel.rounds)
        metrics.mpc_rounds.labels(self.job_hex).set(rounds)

    def _align(self, event: Aligned) -> None:
        """The worker's PSI result on the ledger (before its first epoch's digests)."""
        alignment = ledger_writes.job_alignment(self.job.job_id, event)
        self._progress(detail=f"{alignment.intersection_size} entities in common")
        too_few = self.host.too_few_rows(alignment.train_rows, alignment.test_rows)
        if too_few is not None:  # the policy approved registered row counts, not this
            self._fail(too_few)
            self.kill(too_few)
            return
        if not self._submit("job_alignment", alignment):
            self._fail("its job_alignment record was not committed")
            self.kill("its job_alignment record was not committed")
            return
        self._count_steps(0)  # the total is on the ledger now

    # -- the end --------------------------------------------------------------------------

    def _finish(self, result: dict[str, Any]) -> None:
        self._progress(status="finishing")
        output = result.get("output") or {}
        if self.party.rank == 0 and not self._complete(output):
            return
        proof = ledger_writes.participation_proof(
            self.job, self.party, _result_transcript(result), self._rows_contributed()
        )
        self._submit("participation_proof", proof)
        self._progress(status="completed", epoch=self.job.spec.epochs)

    def _rows_contributed(self) -> int:
        job = self._records.job(self.job.job_id)
        return job.rows_of(self.party.member_id) if job is not None else 0

    def _complete(self, output: dict[str, Any]) -> bool:
        """Rank 0: job_completed once every data party's last digests are in (bounded wait)."""
        epochs = self.job.spec.epochs
        data_members = [p.member_id for p in self.job.manifest.parties if p.role == "data"]
        job_id = self.job.job_id

        def ready(state: LedgerState) -> tuple[bool, str]:
            job = job_state(state, job_id)
            status = job.status if job is not None else ""
            done = all(epoch_digests(state, job_id, m, epochs) is not None for m in data_members)
            return done, status

        deadline = time.monotonic() + self.options.completion_wait_s
        while True:
            done, status = self._records.ledger.query(ready)
            if status != RUNNING:
                return False
            if done or time.monotonic() > deadline:
                break
            time.sleep(_POLL_S)
        if not self._submit("job_completed", ledger_writes.job_completed(job_id, output)):
            self._fail("its job_completed record was not committed")
            return False
        return True


def _result_transcript(result: dict[str, Any]) -> TranscriptSnapshot | None:
    """The job-end transcript of the worker's result file (none off the relay)."""
    transcript = result.get("transcript")
    return TranscriptSnapshot.from_json(transcript) if transcript else None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        document = parse_json(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
