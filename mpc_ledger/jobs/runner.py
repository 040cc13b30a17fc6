"""The job runner inside a party daemon: the ledger is the coordinator (DESIGN.md "Jobs").

Theory of operation
-------------------
Every daemon sees the same committed ledger state and acts on it alone; no
party tells another what to do. The ledger node calls `JobRunner.on_commit`
on its loop thread after each durable block; it only queues the ids of the
jobs the block touched. One dispatcher thread takes them and *reconciles*:
it reads the job's committed state (`LedgerNode.query`) and does what this
member owes the job in that state, once:

* pending, this member owns one of its datasets and has not decided: load
  the policy (`party.config.policy_path`, read afresh each time; none
  configured rejects with "no policy configured", one that cannot be read or
  evaluated rejects saying why, without its path), `policy.evaluate`, write
  a ``job_decision``. The committed state says whether it already decided,
  so a restarted daemon never decides twice.
* approved or running, this member is a participant and runs nothing for
  it: start a `_JobRun` thread (below). If the ledger says this member
  already started the job but no worker of it runs here (the daemon
  restarted mid-job), the job cannot go on: write ``job_aborted``.
* aborted or rejected: kill this member's worker for it (its process group).

A `_JobRun` does, in this order, each step bounded by `RunnerOptions`:

1. Data owners re-fingerprint the dataset file (found through the local
   catalogue, `mpc_ledger.jobs.catalogue`) and compare with the registered
   fingerprint in the manifest. A mismatch, a missing file or a job the
   training program cannot run writes ``job_aborted`` naming the reason,
   before any worker exists. The dealer holds no data.
2. ``job_started`` (manifest hash, the fingerprint just recomputed), waited
   for until committed; then it waits until *every* participant's
   ``job_started`` is committed, so no worker starts anywhere unless every
   party's data checked out.
3. The worker (`python -m mpc_ledger.mpc.worker --events`) in its own
   process group, dying with the daemon, attached to the daemon's MPC relay.
   It re-reads and re-fingerprints the file itself before CrypTen starts.
   With alignment "psi" the data ranks' workers first run the private set
   intersection (`mpc_ledger.mpc.psi`); each data owner writes the
   ``job_alignment`` record it reports (the intersection's size and split,
   the transcript after the PSI) before anything else; a data owner whose
   policy's ``min_rows`` exceeds the intersection's training rows aborts
   the job instead (its approval counted the registered rows).
   Its JSON lines feed the progress registry, the step gauges (the total
   from the ledger: `mpc_ledger.jobs.progress`) and, at each epoch end, a
   ``job_epoch_digests`` record with its transcript snapshot (data ranks;
   the dealer serves tuples and has no epochs).
4. On success: rank 0 waits (bounded) until every data party's last epoch
   digests are committed, then writes ``job_completed`` (the model hash the
   first recipient broadcast, the aggregate test metric); every participant
   writes its ``participation_proof`` (final channel digests).
5. On failure (non-zero exit, the job's time limit, a peer's failure seen
   by the worker, a runner error): ``job_aborted`` with the reason, unless
   the ledger already ended the job.

What is written where. The ledger gets only the records above: hashes,
digests, counts, metrics, reasons. The job folder ``<data_dir>/jobs/<job>``
(0700) holds the worker's manifest (a local path, 0600), its result and log
and, on a recipient's machine only, the model (``model.pt``, 0600).
Plaintext shares, other parties' data and, on any machine that is not a
recipient, the model are never written anywhere: the worker never has them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import queue
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from mpc_ledger.documents import parse_json
from mpc_ledger.errors import ConfigError, UserError
from mpc_ledger.identity.party import Party
from mpc_ledger.identity.signing import Signer
from mpc_ledger.jobs.catalogue import entry_path, find_entry
from mpc_ledger.jobs.datafiles import DataFileError, fingerprint_file
from mpc_ledger.jobs.manifest import ManifestParty
from mpc_ledger.jobs.policy import PolicyDecision, evaluate, load_policy
from mpc_ledger.jobs.progress import job_total_steps
from mpc_ledger.jobs.rules import (
    ABORTED,
    APPROVED,
    JOB_STATUS_KINDS,
    JOBS_TABLE,
    PENDING,
    REJECTED,
    RUNNING,
    JobState,
    epoch_digests,
    job_state,
    registered_datasets,
)
from mpc_ledger.jobs.worker_bridge import UnsupportedJobError, worker_manifest
from mpc_ledger.ledger.records import ParsedRecord, make_record
from mpc_ledger.ledger.state import LedgerState
from mpc_ledger.metrics import DaemonMetrics
from mpc_ledger.mpc.worker_command import WORKER_PROGRAM, worker_command
from mpc_ledger.proto.v1 import jobs_pb2, ledger_pb2

__all__ = [
    "NO_POLICY_HASH",
    "JobRunner",
    "LedgerAccess",
    "LocalProgress",
    "ProgressRegistry",
    "RunnerOptions",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# The policy hash of a decision taken without a (readable) policy.
NO_POLICY_HASH = hashlib.sha256(b"mpc-ledger/policy/v1\x00no policy").digest()
_REASON_MAX_CHARS = 1900  # the rules allow 2000
_ENDED = (ABORTED, REJECTED)


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
    worker_command: tuple[str, ...] = WORKER_PROGRAM  # or a test double taking its flags


class LedgerAccess(Protocol):
    """What the runner needs of `mpc_ledger.ledger.node.LedgerNode`."""

    def submit(self, raw: bytes, *, timeout_s: float = 10.0) -> Any: ...

    def wait_committed(self, record_id: bytes, timeout_s: float) -> tuple[int, int] | None: ...

    def query(self, read: Callable[[LedgerState], T], timeout_s: float = 10.0) -> T: ...


# -- progress (in memory, for `job watch`: mpc_ledger.jobs.api) -----------------------------


@dataclasses.dataclass(frozen=True)
class LocalProgress:
    """This daemon's own worker's progress on one job, as its events say (the client's
    `mpc_ledger.client.JobProgress` is what `job watch` receives: this joined with the
    ledger's view by `mpc_ledger.jobs.api`)."""

    job_id: str  # hex
    status: str  # starting, running, finishing, completed, aborted
    epochs: int
    epoch: int = 0
    step: int = 0
    elapsed_s: float = 0.0
    loss: float | None = None  # only when the job's spec reveals it to the submitter
    detail: str = ""  # why it was aborted
    updated_s: float = 0.0  # time.monotonic() of the last change


class ProgressRegistry:
    """This daemon's view of the jobs it takes part in; thread-safe, never persisted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, LocalProgress] = {}

    def begin(self, job_id: str, epochs: int) -> None:
        with self._lock:
            started = LocalProgress(job_id, "starting", epochs, updated_s=time.monotonic())
            self._jobs[job_id] = started

    def update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            current = self._jobs.get(job_id)
            if current is not None:
                changes["updated_s"] = time.monotonic()
                self._jobs[job_id] = dataclasses.replace(current, **changes)

    def get(self, job_id: str) -> LocalProgress | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[LocalProgress]:
        with self._lock:
            return list(self._jobs.values())


# -- the runner -----------------------------------------------------------------------------


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
        self._signer = Signer(party.identity.signing_key, party.genesis.chain_id)
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._lock = threading.Lock()
        self._runs: dict[bytes, _JobRun] = {}  # every job this daemon ran (or is running)
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
                    found = self.job(job_id)
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
        me = self.member_id
        if job.status == PENDING and me in job.owners:
            if job.job_id not in self._decided and all(o != me for o, _ in job.decisions):
                self._decided.add(job.job_id)
                self._decide(job)
        elif job.status in (APPROVED, RUNNING) and me in job.participants:
            with self._lock:
                known = job.job_id in self._runs
            if known:
                return
            # Started by an earlier life of this daemon: its worker is gone.
            run = _JobRun(self, job, resume=me in job.started)
            with self._lock:
                self._runs[job.job_id] = run
            run.start()
        elif job.status in _ENDED:
            with self._lock:
                run_or_none = self._runs.get(job.job_id)
            if run_or_none is not None and run_or_none.is_alive():
                run_or_none.kill(f"the job was {job.status} by {job.ended_by}: {job.reason}")

    def _decide(self, job: JobState) -> None:
        # The job is marked decided before this: whatever goes wrong, a decision is written,
        # or the job would wait for this member forever.
        try:
            decision = self._evaluate(job)
        except Exception as exc:
            log.exception("job %s: evaluating the policy failed", job.job_id.hex()[:16])
            reason = f"the policy could not be evaluated ({type(exc).__name__})"
            decision = PolicyDecision(False, (reason,), NO_POLICY_HASH)
        self.submit("job_decision", decision.to_proto(job.job_id), wait=False, job_id=job.job_id)
        log.info(
            "job %s: %s (%s)",
            job.job_id.hex()[:16],
            "approved" if decision.approve else "rejected",
            "; ".join(decision.reasons),
        )

    def _evaluate(self, job: JobState) -> PolicyDecision:
        path = self.party.config.policy_path
        if path is None:
            return PolicyDecision(False, ("no policy configured",), NO_POLICY_HASH)
        try:
            policy = load_policy(path, self.member_id)
        except UserError as exc:  # its detail names the field, not the local file
            reason = f"the policy cannot be read: {_one_line(exc.detail)}"[:_REASON_MAX_CHARS]
            return PolicyDecision(False, (reason,), NO_POLICY_HASH)
        except OSError as exc:
            reason = f"the policy cannot be read: {exc.strerror or type(exc).__name__}"
            return PolicyDecision(False, (reason,), NO_POLICY_HASH)
        registry = self.ledger.query(lambda s: registered_datasets(s, job.spec.dataset_ids))
        return evaluate(policy, self.member_id, job.spec, job.submitter, registry)

    def too_few_rows(self, train_rows: int, test_rows: int) -> str | None:
        """Why the rows a private set intersection leaves are too few: fewer test rows than
        the consortium's ``min_test_rows``, or fewer than this member's policy's
        ``min_rows``/``min_test_rows``; None when they are not (or no policy can be read:
        it approved already)."""
        least_tests = self.party.genesis.mpc.min_test_rows
        if test_rows < least_tests:
            return (
                f"the private set intersection leaves {test_rows} test rows; "
                f"the consortium's minimum is {least_tests} (min_test_rows)"
            )
        path = self.party.config.policy_path
        if path is None:
            return None
        try:
            policy = load_policy(path, self.member_id)
        except (ConfigError, UserError, OSError):
            return None
        if train_rows < policy.min_rows:
            return (
                f"the private set intersection leaves {train_rows} training rows; "
                f"{self.member_id}'s policy needs at least {policy.min_rows} (min_rows)"
            )
        if test_rows < policy.min_test_rows:
            return (
                f"the private set intersection leaves {test_rows} test rows; "
                f"{self.member_id}'s policy needs at least {policy.min_test_rows} "
                "(min_test_rows)"
            )
        return None

    # -- ledger writes --------------------------------------------------------------------

    def submit(self, kind: str, message: Any, *, wait: bool, job_id: bytes) -> bool:
        """Sign and submit one record; with ``wait``, True only once it is committed."""
        body = ledger_pb2.RecordBody(
            author=self.member_id,
            nonce=secrets.randbits(63),
            created_ms=int(time.time() * 1000),
            **{kind: message},
        )
        raw = make_record(self._signer, body).SerializeToString(deterministic=True)
        try:
            result = self.ledger.submit(raw, timeout_s=self.options.commit_timeout_s)
        except Exception as exc:  # the node stopping, a timeout
            log.warning("job %s: %s not submitted: %s", job_id.hex()[:16], kind, exc)
            return False
        if not result.accepted:
            log.warning("job %s: the ledger refused %s: %s", job_id.hex()[:16], kind, result.reason)
            return False
        if not wait:
            return True
        # In slices: a record the job's end made void is dropped, never committed.
        deadline = time.monotonic() + self.options.commit_timeout_s
        while time.monotonic() < deadline:
            slice_s = min(1.0, max(0.0, deadline - time.monotonic()))
            if self.ledger.wait_committed(result.record_id, slice_s) is not None:
                return True
            job = self.job(job_id)
            if job is None or job.status in _ENDED:
                return False
        log.warning("job %s: %s not committed in time", job_id.hex()[:16], kind)
        return False

    def abort(self, job_id: bytes, reason: str) -> None:
        """Write job_aborted unless the job already ended (then there is nothing to say)."""
        job = self.ledger.query(lambda state: job_state(state, job_id))
        if job is None or job.status not in (PENDING, APPROVED, RUNNING):
            return
        text = f"{self.member_id}: {reason}"[:_REASON_MAX_CHARS]
        log.warning("job %s: aborting: %s", job_id.hex()[:16], text)
        self.submit(
            "job_aborted",
            jobs_pb2.JobAborted(job_id=job_id, reason=text),
            wait=False,
            job_id=job_id,
        )

    def job(self, job_id: bytes) -> JobState | None:
        return self.ledger.query(lambda state: job_state(state, job_id))

    def job_folder(self, job_id: bytes) -> Path:
        folder = self.party.config.data_dir / "jobs" / job_id.hex()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder


class _JobRun(threading.Thread):
    """This member's part of one job, from the fingerprint check to the proof."""

    def __init__(self, runner: JobRunner, job: JobState, *, resume: bool = False) -> None:
        super().__init__(name=f"job-{job.job_id.hex()[:8]}", daemon=True)
        self.runner = runner
        self.job = job
        self.job_hex = job.job_id.hex()
        self.options = runner.options
        self._resume = resume
        party = job.manifest.party(runner.member_id)
        assert party is not None  # a participant
        self.party: ManifestParty = party
        self._process: subprocess.Popen[bytes] | None = None
        self._killed: str | None = None
        self._kill_lock = threading.Lock()
        self._steps_total = job_total_steps(job)  # 0: a PSI job's, until its alignment commits
        runner.progress.begin(self.job_hex, job.spec.epochs)

    # -- control from other threads -------------------------------------------------------

    def kill(self, reason: str) -> None:
        with self._kill_lock:
            if self._killed is None:
                self._killed = reason
            process = self._process
        if process is not None and process.poll() is None:
            log.info("job %s: killing the worker: %s", self.job_hex[:16], reason)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    # -- the run --------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:
            log.exception("job %s: the runner failed", self.job_hex[:16])
            # The type only: an error's text may name a local path (the log has it).
            self._fail(f"runner error: {type(exc).__name__}")
        finally:
            process = self._process
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def _fail(self, reason: str) -> None:
        self.runner.progress.update(self.job_hex, status="aborted", detail=reason)
        if self._killed is None:
            self.runner.abort(self.job.job_id, reason)

    def _run(self) -> None:
        if self._resume:
            self._fail("its party daemon restarted during the job; its worker is gone")
            return
        fingerprint, catalogue = self._check_data()
        if fingerprint is None:
            return
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
        started = jobs_pb2.JobStarted(
            job_id=self.job.job_id,
            manifest_hash=self.job.manifest.manifest_hash,
            dataset_fingerprint=fingerprint,
        )
        if not self.runner.submit("job_started", started, wait=True, job_id=self.job.job_id):
            self._fail("its job_started record was not committed")
            return
        if not self._wait_all_started():
            return
        folder = self.runner.job_folder(self.job.job_id)
        manifest_path = folder / f"worker-manifest-rank{self.party.rank}.json"
        _write_private(manifest_path, json.dumps(manifest, indent=2) + "\n")
        result = self._run_worker(folder, manifest_path)
        if result is not None:
            self._finish(result)

    def _wait_all_started(self) -> bool:
        """No worker starts until every participant re-fingerprinted and wrote job_started,
        so a changed file anywhere stops the job before any party's worker exists."""
        deadline = time.monotonic() + self.options.start_wait_s
        while self._killed is None:
            job = self.runner.job(self.job.job_id)
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
            time.sleep(0.1)
        return False

    def _check_data(self) -> tuple[bytes | None, Path | None]:
        """(the recomputed fingerprint, the catalogue entry's path); (None, None) = aborted."""
        if self.party.role != "data":
            return b"", None
        data_dir = self.runner.party.config.data_dir
        dataset_id = self.party.dataset_id
        # The reasons below go on the ledger: a `DataFileError`'s record_reason (column
        # and row), never its message or an OSError's, which hold values and local paths.
        try:
            entry = find_entry(data_dir, dataset_id)
            if entry is None:
                self._fail(f"dataset {dataset_id!r} is not in this party's local catalogue")
                return None, None
            fingerprint = fingerprint_file(entry.path, entry.schema).fingerprint
        except DataFileError as exc:
            self._fail(f"dataset {dataset_id!r} cannot be read: {exc.record_reason}")
            return None, None
        except (UserError, OSError, ValueError):
            self._fail(f"dataset {dataset_id!r}: this party's catalogue entry cannot be read")
            return None, None
        if fingerprint != self.party.dataset_fingerprint:
            self._fail(
                f"dataset {dataset_id!r} changed since it was registered: its fingerprint is "
                f"{fingerprint.hex()[:16]}, the registered one "
                f"{self.party.dataset_fingerprint.hex()[:16]}"
            )
            return None, None
        return fingerprint, entry_path(data_dir, dataset_id)

    def _command(self, folder: Path, manifest_path: Path) -> list[str]:
        rank = self.party.rank
        recipient = rank in self.job.manifest.recipient_ranks
        return worker_command(
            manifest_path,
            rank,
            folder / f"result-rank{rank}.json",
            socket_path=self.runner.socket_path,
            events=True,
            model_path=folder / "model.pt" if recipient else None,
            program=self.options.worker_command,
        )

    def _run_worker(self, folder: Path, manifest_path: Path) -> dict[str, Any] | None:
        """Run the worker to its end; its result, or None when the job failed (and why was said)."""
        output = folder / f"result-rank{self.party.rank}.json"
        output.unlink(missing_ok=True)
        env = {**os.environ, "MPC_LEDGER_WORKER_PARENT": str(os.getpid())}
        log_path = folder / f"worker-rank{self.party.rank}.log"
        with log_path.open("ab") as log_file, self._kill_lock:
            if self._killed is not None:
                return None
            self._process = subprocess.Popen(
                self._command(folder, manifest_path),
                stdout=subprocess.PIPE,
                stderr=log_file,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # its own process group: killed as one
            )
        process = self._process
        self.runner.progress.update(self.job_hex, status="running")
        timed_out = self._follow(process)
        try:
            process.wait(self.options.exit_wait_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if self._killed is not None:
            self.runner.progress.update(self.job_hex, status="aborted", detail=self._killed)
            return None
        if timed_out:
            self._fail(f"its worker ran longer than {self.options.job_timeout_s:g}s")
            return None
        result = _read_json(output)
        if process.returncode != 0 or result is None or "error" in result:
            error = (result or {}).get("error") or f"no result (exit {process.returncode})"
            self._fail(f"its worker failed: {error}")
            return None
        return result

    def _follow(self, process: subprocess.Popen[bytes]) -> bool:
        """Handle the worker's JSON lines until it closes its output; True if it timed out."""
        lines: queue.Queue[bytes | None] = queue.Queue()

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, name=f"{self.name}-out", daemon=True).start()
        deadline = time.monotonic() + self.options.job_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                return True
            try:
                line = lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if line is None:
                return False
            self._on_event(line)

    def _on_event(self, line: bytes) -> None:
        try:
            event = parse_json(line)
        except ValueError:
            return  # not one of ours (a library printing)
        if not isinstance(event, dict):
            return
        kind = event.get("event")
        if kind in ("progress", "epoch"):
            changes: dict[str, Any] = {
                "step": int(event.get("step", 0)),
                "elapsed_s": float(event.get("elapsed_s", 0.0)),
                "epoch": int(event.get("epoch", 0)) - (1 if kind == "progress" else 0),
            }
            if "loss" in event and self.job.spec.reveal_training_loss:
                changes["loss"] = float(event["loss"])
            self.runner.progress.update(self.job_hex, **changes)
            self._count_steps(changes["step"])
        if kind == "alignment" and self.party.role == "data":
            self._align(event)
        if kind in ("epoch", "result") and isinstance(event.get("transcript"), dict):
            self._count_rounds(event["transcript"])
        if kind == "epoch" and isinstance(event.get("transcript"), dict):
            channels = _channels(event["transcript"])
            if channels and self.party.role == "data":
                digests = jobs_pb2.JobEpochDigests(
                    job_id=self.job.job_id, epoch=int(event["epoch"]), channels=channels
                )
                self.runner.submit("job_epoch_digests", digests, wait=True, job_id=self.job.job_id)

    def _count_steps(self, step: int) -> None:
        """The step gauges: this worker's steps, and the job's total from the ledger, read
        again while it is unknown (a PSI job's, until its job_alignment commits)."""
        metrics = self.runner.metrics
        if metrics is None:
            return
        if not self._steps_total:
            job = self.runner.job(self.job.job_id)
            self._steps_total = job_total_steps(job) if job is not None else 0
        total = self._steps_total
        metrics.job_steps.labels(self.job_hex).set(total)
        metrics.job_step.labels(self.job_hex).set(step)
        metrics.job_progress.labels(self.job_hex).set(min(1.0, step / total) if total else 0.0)

    def _count_rounds(self, transcript: dict[str, Any]) -> None:
        """The rounds gauge: communicator operations that sent on any of this party's
        channels so far (the transcript counts them per channel)."""
        metrics = self.runner.metrics
        if metrics is None:
            return
        rounds = 0
        for channel in transcript.get("channels", []):
            if isinstance(channel, dict) and channel.get("sender") == self.party.rank:
                rounds = max(rounds, int(channel.get("rounds", 0)))
        metrics.mpc_rounds.labels(self.job_hex).set(rounds)

    def _align(self, event: dict[str, Any]) -> None:
        """The worker's PSI result on the ledger (before its first epoch's digests)."""
        transcript = event.get("transcript")
        alignment = jobs_pb2.JobAlignment(
            job_id=self.job.job_id,
            method=str(event.get("method", "")),
            intersection_size=int(event.get("intersection_size", 0)),
            train_rows=int(event.get("train_rows", 0)),
            test_rows=int(event.get("test_rows", 0)),
            channels=_channels(transcript if isinstance(transcript, dict) else {}),
        )
        self.runner.progress.update(
            self.job_hex, detail=f"{alignment.intersection_size} entities in common"
        )
        too_few = self.runner.too_few_rows(alignment.train_rows, alignment.test_rows)
        if too_few is not None:  # the policy approved registered row counts, not this
            self._fail(too_few)
            self.kill(too_few)
            return
        if not self.runner.submit("job_alignment", alignment, wait=True, job_id=self.job.job_id):
            self._fail("its job_alignment record was not committed")
            self.kill("its job_alignment record was not committed")
            return
        self._count_steps(0)  # the total is on the ledger now

    def _finish(self, result: dict[str, Any]) -> None:
        self.runner.progress.update(self.job_hex, status="finishing")
        output = result.get("output") or {}
        if self.party.rank == 0 and not self._complete(output):
            return
        proof = jobs_pb2.ParticipationProof(
            job_id=self.job.job_id,
            manifest_hash=self.job.manifest.manifest_hash,
            dataset_fingerprint=self.party.dataset_fingerprint,
            rank=self.party.rank,
            final_channels=_channels(result.get("transcript") or {}),
            rows_contributed=self._rows_contributed(),
            epochs_completed=self.job.spec.epochs,
        )
        self.runner.submit("participation_proof", proof, wait=True, job_id=self.job.job_id)
        self.runner.progress.update(self.job_hex, status="completed", epoch=self.job.spec.epochs)

    def _rows_contributed(self) -> int:
        job = self.runner.job(self.job.job_id)
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
            done, status = self.runner.ledger.query(ready)
            if status != RUNNING:
                return False
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        metrics = [
            jobs_pb2.Metric(name=name, value=float(value))
            for name, value in sorted(output.items())
            if name.startswith("test_") and isinstance(value, int | float)
        ]
        try:
            model_hash = bytes.fromhex(str(output.get("model_hash", "")))
        except ValueError:
            model_hash = b""
        completed = jobs_pb2.JobCompleted(job_id=job_id, model_hash=model_hash, metrics=metrics)
        if not self.runner.submit("job_completed", completed, wait=True, job_id=job_id):
            self._fail("its job_completed record was not committed")
            return False
        return True


def _one_line(problems: str) -> str:
    """A ConfigError's "what:\n  problem\n  problem" as one line, for a record's reason."""
    head, *rest = problems.split("\n  ")
    return f"{head} {'; '.join(rest)}" if rest else head


def _channels(transcript: dict[str, Any]) -> Sequence[jobs_pb2.ChannelDigest]:
    channels = []
    for channel in transcript.get("channels", []):
        channels.append(
            jobs_pb2.ChannelDigest(
                sender_rank=int(channel["sender"]),
                receiver_rank=int(channel["receiver"]),
                digest=bytes.fromhex(channel["digest"]),
                messages=int(channel["messages"]),
                size_bytes=int(channel["size_bytes"]),
                rounds=int(channel["rounds"]),
            )
        )
    return channels


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
