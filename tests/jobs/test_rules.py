"""The ledger rules for dataset and job records, with real signatures, refusals included."""

from __future__ import annotations

import hashlib
import math

import pytest

from mpc_ledger.cli.job import _listed_progress, progress_line
from mpc_ledger.client import JobProgress, JobSummary
from mpc_ledger.client.job_records import job_state_of, ledger_progress, trail_detail
from mpc_ledger.client.jobs import JobMethods
from mpc_ledger.jobs import ledger_writes, lifecycle, rules
from mpc_ledger.jobs import state as job_tables
from mpc_ledger.jobs.api import build_progress
from mpc_ledger.jobs.progress import (
    PHASE_ALIGNING,
    PHASE_TRAINING,
    PHASE_WAITING,
    LocalProgress,
    job_total_steps,
)
from mpc_ledger.jobs.spec import JobDatasetRef
from mpc_ledger.ledger.records import parse_record
from mpc_ledger.ledger.state import LedgerState
from mpc_ledger.mpc.job_seed import seed_commitment
from mpc_ledger.proto.v1 import jobs_pb2
from mpc_ledger.rulebook import RULEBOOK
from mpc_ledger.testing.chains import ChainBuilder

from .conftest import ASSAYS, COHORT, raw, registration, vertical_spec

POLICY_HASH = bytes(range(32))


def parsed(record):
    result = parse_record(raw(record))
    assert not isinstance(result, str), result
    return result


def check(state, record):
    return state.check(parsed(record))


def commit(state, *records):
    reason = state.check_block([raw(r) for r in records])
    assert reason is None, reason
    for record in records:
        state.apply(parsed(record))


class Jobs:
    """Builds job records for one state."""

    def __init__(self, authors, state):
        self.authors = authors
        self.state = state

    def register(self, member, dataset_id, schema=COHORT, rows=50):
        return self.authors.record(
            member, dataset_registration=registration(dataset_id, schema, rows)
        )

    def submit(self, spec=None, by="a/alice"):
        spec = spec or vertical_spec()
        return self.authors.record(by, job_submission=jobs_pb2.JobSubmission(spec=spec.to_proto()))

    def submitted(self, spec=None, by="a/alice"):
        record = self.submit(spec, by)
        commit(self.state, record)
        return parsed(record).id

    def decide(self, member, job_id, approve=True, reasons=("ok",), policy_hash=POLICY_HASH):
        decision = jobs_pb2.JobDecision(
            job_id=job_id, approve=approve, reasons=list(reasons), policy_hash=policy_hash
        )
        return self.authors.record(member, job_decision=decision)

    def job(self, job_id):
        return job_tables.job_state(self.state, job_id)

    def fingerprint(self, member, job_id):
        return self.job(job_id).manifest.party(member).dataset_fingerprint

    def commitment(self, member, job_id):
        """The commitment ``member`` starts ``job_id`` with (a seed made up from its id)."""
        seed = hashlib.sha256(member.encode()).digest()
        return seed_commitment(self.authors.genesis.chain_id, job_id, member, seed)

    def start(self, member, job_id, fingerprint=None, manifest_hash=None, seed=None):
        started = jobs_pb2.JobStarted(
            job_id=job_id,
            manifest_hash=manifest_hash or self.job(job_id).manifest.manifest_hash,
            dataset_fingerprint=(
                self.fingerprint(member, job_id) if fingerprint is None else fingerprint
            ),
            seed_commitment=self.commitment(member, job_id) if seed is None else seed,
        )
        return self.authors.record(member, job_started=started)

    def approved(self, job_id):
        commit(self.state, self.decide("a", job_id), self.decide("b", job_id))

    def running(self, job_id):
        self.approved(job_id)
        commit(self.state, *(self.start(m, job_id) for m in ("a", "b", "dealer")))

    def digests(self, member, job_id, epoch=1, channels=None):
        rank = self.job(job_id).manifest.party(member).rank
        channels = channels or [channel(rank, (rank + 1) % 3), channel((rank + 1) % 3, rank)]
        message = jobs_pb2.JobEpochDigests(job_id=job_id, epoch=epoch, channels=channels)
        return self.authors.record(member, job_epoch_digests=message)

    def abort(self, author, job_id, reason="worker crashed"):
        return self.authors.record(
            author, job_aborted=jobs_pb2.JobAborted(job_id=job_id, reason=reason)
        )

    def complete(self, author, job_id, metrics=(("test_accuracy", 0.9),)):
        message = jobs_pb2.JobCompleted(
            job_id=job_id,
            model_hash=bytes(32),
            metrics=[jobs_pb2.Metric(name=n, value=v) for n, v in metrics],
        )
        return self.authors.record(author, job_completed=message)

    def proof(self, member, job_id, **changes):
        party = self.job(job_id).manifest.party(member)
        fields = dict(
            job_id=job_id,
            manifest_hash=self.job(job_id).manifest.manifest_hash,
            dataset_fingerprint=party.dataset_fingerprint,
            rank=party.rank,
            final_channels=[channel(party.rank, (party.rank + 1) % 3)],
            rows_contributed=party.row_count,
            epochs_completed=2,
        )
        fields.update(changes)
        return self.authors.record(
            member, participation_proof=jobs_pb2.ParticipationProof(**fields)
        )


def channel(sender, receiver, digest=b"\x07" * 32):
    return jobs_pb2.ChannelDigest(
        sender_rank=sender, receiver_rank=receiver, digest=digest, messages=3, size_bytes=90
    )


@pytest.fixture
def state(authors):
    state = LedgerState(authors.genesis, RULEBOOK)
    jobs = Jobs(authors, state)
    commit(
        state,
        authors.bind("a", "a/alice"),
        authors.bind("b", "b/bob"),
        authors.bind("a", "a/carol", roles=("compliance",)),
        jobs.register("a", "a/cohort"),
        jobs.register("b", "b/assays", ASSAYS),
        jobs.register("c", "c/cohort"),
    )
    return state


@pytest.fixture
def jobs(authors, state):
    return Jobs(authors, state)


# -- datasets -------------------------------------------------------------------------------


def test_registration_is_recorded(state):
    dataset = job_tables.registered_dataset(state, "a/cohort")
    assert dataset.owner == "a" and dataset.row_count == 50 and dataset.schema == COHORT
    assert len(dataset.fingerprint) == 32


def test_registration_refusals(state, jobs, authors):
    assert check(state, jobs.register("a", "a/cohort")) == (
        "dataset 'a/cohort' is already registered"
    )
    assert check(state, jobs.register("a", "b/mine")) == (
        "dataset_id: member 'a' may register datasets only as 'a/<name>'"
    )
    assert check(state, jobs.register("dealer", "dealer/x")) == (
        "member 'dealer' lacks the data role; only data members register datasets"
    )
    assert check(state, jobs.register("a/alice", "a/x")) == (
        "only members may write dataset_registration records; 'a/alice' is a user"
    )
    forged = jobs.register("a", "a/new")
    forged.body.dataset_registration.row_count = 51
    assert "signature does not verify" in check(state, forged)
    lying = authors.record("a", dataset_registration=registration("a/new", COHORT, 5))
    lying.body.dataset_registration.row_count = 6
    lying = authors.record("a", dataset_registration=lying.body.dataset_registration)
    assert check(state, lying) == "fingerprint: does not match schema_hash, row_count and rows_root"


# -- submissions ----------------------------------------------------------------------------


def test_submission_creates_a_pending_job(jobs):
    job_id = jobs.submitted()
    job = jobs.job(job_id)
    assert job.status == lifecycle.PENDING and job.submitter == "a/alice"
    assert job.owners == ("a", "b") and job.participants == ("a", "b", "dealer")
    assert job.manifest.job_id == job_id


def test_submission_refusals(state, jobs):
    assert check(state, jobs.submit(by="a")) == (
        "only users may write job_submission records; 'a' is a member"
    )
    assert check(state, jobs.submit(by="a/carol")) == (
        "user 'a/carol' lacks the 'scientist' role for job_submission records"
    )
    assert (
        check(state, jobs.submit(by="c/nobody")) == "user 'c/nobody' has no key bound on the ledger"
    )
    spec = vertical_spec(
        epochs=0,
        datasets=(JobDatasetRef("a/cohort", ("age",)), JobDatasetRef("b/other", ("crp",))),
    )
    assert check(state, jobs.submit(spec)) == "job spec: epochs: must be 1 to 10000"
    spec = vertical_spec(
        datasets=(JobDatasetRef("a/cohort", ("age",)), JobDatasetRef("b/other", ("crp",))),
        recipients=("a", "b/zoe"),
    )
    assert check(state, jobs.submit(spec)) == (
        "job spec: datasets[1].id: no dataset 'b/other' is registered; "
        "recipients[1]: user 'b/zoe' has no active key"
    )


def test_a_test_set_of_one_row_is_refused(state, jobs):
    """The test metric is revealed to the submitter: over a few rows it describes a few
    people. Every member's ledger refuses a job whose test set is below the genesis's
    min_test_rows (10 by default)."""
    commit(
        state,
        jobs.register("a", "a/few", COHORT, rows=5),
        jobs.register("b", "b/few", ASSAYS, rows=5),
    )
    datasets = (JobDatasetRef("a/few", ("age",)), JobDatasetRef("b/few", ("crp",)))
    one_row = vertical_spec(datasets=datasets, alignment="row-order", seed=11)
    assert check(state, jobs.submit(one_row)) == (
        "job spec: test_fraction: leaves 1 test rows; this consortium's minimum is 10 "
        "(min_test_rows): raise it, or set it to 0 for no test metric"
    )
    assert state.genesis.mpc.min_test_rows == 10
    psi = vertical_spec(datasets=datasets, alignment="psi", seed=12)
    assert "leaves at most 1 test rows" in check(state, jobs.submit(psi))
    enough = vertical_spec(alignment="row-order", seed=13)  # 50 rows: 10 test rows
    assert check(state, jobs.submit(enough)) is None


# -- decisions ------------------------------------------------------------------------------


def test_every_owner_must_approve(jobs):
    job_id = jobs.submitted()
    commit(jobs.state, jobs.decide("a", job_id))
    assert jobs.job(job_id).status == lifecycle.PENDING
    assert check(jobs.state, jobs.decide("a", job_id)) == (
        f"'a' has already decided on job {job_id.hex()[:16]}"
    )
    commit(jobs.state, jobs.decide("b", job_id))
    job = jobs.job(job_id)
    assert job.status == lifecycle.APPROVED and job.decisions == (("a", True), ("b", True))


def test_decision_refusals(state, jobs):
    job_id = jobs.submitted()
    short = job_id.hex()[:16]
    assert check(state, jobs.decide("c", job_id)) == (
        f"'c' owns no dataset of job {short}; it does not decide"
    )
    assert check(state, jobs.decide("dealer", job_id)) == (
        f"'dealer' owns no dataset of job {short}; it does not decide"
    )
    assert check(state, jobs.decide("a/alice", job_id)) == (
        "only members may write job_decision records; 'a/alice' is a user"
    )
    assert check(state, jobs.decide("a", job_id, approve=False, reasons=())) == (
        "a rejection gives at least one reason"
    )
    assert check(state, jobs.decide("a", job_id, policy_hash=b"x")) == (
        "policy_hash must be a 32-byte SHA-256"
    )
    assert check(state, jobs.decide("a", bytes(32))) == f"no job {'00' * 8} on the ledger"
    assert check(state, jobs.decide("a", b"short")) == (
        "job_id must be 32 bytes (the submission's record id)"
    )


def test_one_rejection_ends_the_job(jobs):
    job_id = jobs.submitted()
    commit(jobs.state, jobs.decide("b", job_id, approve=False, reasons=("too few rows", "mlp")))
    job = jobs.job(job_id)
    assert job.status == lifecycle.REJECTED and job.reason == "b: too few rows; mlp"
    assert check(jobs.state, jobs.decide("a", job_id)) == (
        f"job {job_id.hex()[:16]} is rejected; a job_decision record is not allowed now"
    )
    assert "is rejected" in check(jobs.state, jobs.abort("a/alice", job_id))


class TakenTransitions(dict):
    """`rules._TRANSITIONS` that remembers each transition the rules look up to apply."""

    def __init__(self, table):
        super().__init__(table)
        self.taken = []

    def __getitem__(self, key):
        self.taken.append(key)
        return super().__getitem__(key)


def test_every_status_a_job_reaches_comes_from_the_transitions_table(jobs, monkeypatch):
    """The table is the whole state machine: no rule sets a status past it (issue #14)."""
    table = TakenTransitions(rules._TRANSITIONS)
    monkeypatch.setattr(rules, "_TRANSITIONS", table)
    rejected = jobs.submitted()
    commit(jobs.state, jobs.decide("b", rejected, approve=False, reasons=("too few rows",)))
    assert jobs.job(rejected).status == lifecycle.REJECTED
    assert set(table.taken) == {(lifecycle.PENDING, "reject")}
    table.taken.clear()
    aborted = jobs.submitted()
    jobs.approved(aborted)
    commit(jobs.state, jobs.abort("a/alice", aborted))
    assert jobs.job(aborted).status == lifecycle.ABORTED
    assert list(dict.fromkeys(table.taken)) == [
        (lifecycle.PENDING, "approve"),
        (lifecycle.PENDING, "approve-last"),
        (lifecycle.APPROVED, "abort"),
    ]


class StatusWatch:
    """Commits records one at a time and notes the kinds that changed their job's status."""

    def __init__(self, jobs):
        self.jobs = jobs
        self.changed = set()

    def commit(self, *records):
        for record in records:
            message = getattr(record.body, record.body.WhichOneof("payload"))
            job_id = getattr(message, "job_id", b"") or parsed(record).id
            before = self.jobs.job(job_id)
            commit(self.jobs.state, record)
            if before is None or self.jobs.job(job_id).status != before.status:
                self.changed.add(record.body.WhichOneof("payload"))


def test_the_status_kinds_are_the_kinds_that_move_a_job(jobs):
    """`JOB_STATUS_KINDS` (what the runner and the tally wake on) names every trail kind
    that changed a job's status over whole lives, and no other (issue #14)."""
    watch = StatusWatch(jobs)
    done, rejected = jobs.submit(), jobs.submit()
    watch.commit(done, rejected)
    done, rejected = parsed(done).id, parsed(rejected).id
    watch.commit(jobs.decide("a", done), jobs.decide("b", done))
    watch.commit(*(jobs.start(m, done) for m in ("a", "b", "dealer")))
    watch.commit(jobs.digests("a", done), jobs.proof("b", done), jobs.complete("a", done))
    watch.commit(jobs.proof("a", done), jobs.decide("b", rejected, approve=False))
    aborted = jobs.submitted()
    watch.commit(jobs.abort("a/alice", aborted))
    assert watch.changed == {"job_submission", *rules.JOB_STATUS_KINDS}
    assert set(rules.JOB_STATUS_KINDS) < set(rules.JOB_TRAIL_KINDS)
    assert set(rules.JOB_TRAIL_KINDS) == set(rules.JOB_RULES) - {"dataset_registration"}


def test_decision_after_start_is_refused(jobs):
    job_id = jobs.submitted()
    jobs.running(job_id)
    assert check(jobs.state, jobs.decide("a", job_id, approve=False)) == (
        f"job {job_id.hex()[:16]} is running; a job_decision record is not allowed now"
    )


# -- starting -------------------------------------------------------------------------------


def test_start_needs_approval_and_the_right_facts(jobs):
    job_id = jobs.submitted()
    short = job_id.hex()[:16]
    assert check(jobs.state, jobs.start("a", job_id)) == (
        f"job {short} is pending; a job_started record is not allowed now"
    )
    jobs.approved(job_id)
    assert check(jobs.state, jobs.start("c", job_id, fingerprint=b"")) == (
        f"'c' is not a participant of job {short} (a, b, dealer); "
        "it may not write job_started records"
    )
    assert check(jobs.state, jobs.start("a", job_id, manifest_hash=bytes(32))) == (
        "manifest_hash is not the hash of the job's manifest"
    )
    assert check(jobs.state, jobs.start("a", job_id, fingerprint=bytes(32))) == (
        "dataset_fingerprint differs from 'a/cohort''s registered fingerprint; "
        "the data changed: abort the job instead"
    )
    assert check(jobs.state, jobs.start("dealer", job_id, fingerprint=bytes(32))) == (
        "the dealer holds no dataset; dataset_fingerprint must be empty"
    )
    commit(jobs.state, jobs.start("dealer", job_id))
    assert jobs.job(job_id).status == lifecycle.RUNNING
    assert check(jobs.state, jobs.start("dealer", job_id)) == (
        f"'dealer' has already started job {short}"
    )
    commit(jobs.state, jobs.start("a", job_id))
    assert jobs.job(job_id).started == ("dealer", "a")


def test_a_start_commits_to_its_workers_seed_or_to_nothing(jobs):
    job_id = jobs.submitted()
    jobs.approved(job_id)
    for wrong in (bytes(31), bytes(33)):
        assert check(jobs.state, jobs.start("a", job_id, seed=wrong)) == (
            "seed_commitment must be a 32-byte SHA-256 (or empty: a worker without a "
            "committed seed)"
        )
    # a record written before replays existed has none, and still passes
    commit(jobs.state, jobs.start("a", job_id, seed=b""), jobs.start("b", job_id))
    job = jobs.job(job_id)
    assert job.seed_commitment_of("a") == b""
    assert job.seed_commitment_of("b") == jobs.commitment("b", job_id)
    assert len(job.seed_commitment_of("b")) == 32 and job.seed_commitment_of("dealer") == b""
    # the builder the runner writes with carries it
    built = ledger_writes.job_started(job, jobs.fingerprint("a", job_id), b"\x01" * 32)
    assert built.seed_commitment == b"\x01" * 32
    assert ledger_writes.job_started(job, b"").seed_commitment == b""


# -- epoch digests --------------------------------------------------------------------------


def test_epoch_digests(jobs):
    job_id = jobs.submitted()
    jobs.running(job_id)
    commit(jobs.state, jobs.digests("a", job_id, epoch=1), jobs.digests("b", job_id, epoch=1))
    stored = job_tables.epoch_digests(jobs.state, job_id, "a", 1)
    assert [(c.sender_rank, c.receiver_rank) for c in stored.channels] == [(0, 1), (1, 0)]
    assert stored.channels[0].digest == b"\x07" * 32 and stored.channels[0].messages == 3
    assert check(jobs.state, jobs.digests("a", job_id, epoch=1)) == (
        "'a' has already written epoch 1's digests"
    )
    assert check(jobs.state, jobs.digests("a", job_id, epoch=2)) is None


def test_epoch_digest_refusals(jobs, authors):
    job_id = jobs.submitted()
    short = job_id.hex()[:16]
    jobs.approved(job_id)
    commit(jobs.state, jobs.start("a", job_id))
    assert check(jobs.state, jobs.digests("b", job_id)) == f"'b' has not started job {short}"
    message = jobs_pb2.JobEpochDigests(job_id=job_id, epoch=1, channels=[channel(2, 0)])
    assert check(jobs.state, authors.record("c", job_epoch_digests=message)) == (
        f"'c' is not a participant of job {short} (a, b, dealer); "
        "it may not write job_epoch_digests records"
    )
    assert check(jobs.state, jobs.digests("a", job_id, epoch=0)) == "epoch must be 1 to 2"
    assert check(jobs.state, jobs.digests("a", job_id, epoch=3)) == "epoch must be 1 to 2"
    cases = {
        "channels[0]: 1->2 does not end at the author's rank 0": [channel(1, 2)],
        "channels[1]: 0->1 is given twice": [channel(0, 1), channel(0, 1)],
        "channels[0]: 0->3 is not a channel between two of 3 ranks": [channel(0, 3)],
        "channels[0]: 0->0 is not a channel between two of 3 ranks": [channel(0, 0)],
        "channels[0].digest: must be a 32-byte SHA-256": [channel(0, 1, digest=b"x")],
        "give 1 to 4 channels (this job has 3 parties)": [],
    }
    for expected, channels in cases.items():
        message = jobs_pb2.JobEpochDigests(job_id=job_id, epoch=1, channels=channels)
        assert check(jobs.state, authors.record("a", job_epoch_digests=message)) == expected


# -- private set intersection (alignment "psi") ---------------------------------------------


def align(jobs, member, job_id, size=50, split=None, method="psi", channels=None):
    rank = jobs.job(job_id).manifest.party(member).rank
    train, test = split or (size - math.floor(size * 0.2), math.floor(size * 0.2))
    message = jobs_pb2.JobAlignment(
        job_id=job_id,
        method=method,
        intersection_size=size,
        train_rows=train,
        test_rows=test,
        channels=channels or [channel(rank, (rank + 1) % 2), channel((rank + 1) % 2, rank)],
    )
    return jobs.authors.record(member, job_alignment=message)


def test_a_psi_job_is_aligned_by_every_data_owner_before_its_epochs(jobs):
    job_id = jobs.submitted(vertical_spec(alignment="psi"))
    manifest = jobs.job(job_id).manifest
    assert [p.id_column for p in manifest.parties] == ["patient_id", "patient_id", ""]
    assert [(p.train_rows, p.test_rows) for p in manifest.parties[:2]] == [(0, 0), (0, 0)]
    jobs.running(job_id)
    assert check(jobs.state, jobs.digests("a", job_id)) == (
        "'a' has not written its job_alignment (the PSI comes first)"
    )
    commit(jobs.state, align(jobs, "a", job_id))
    assert check(jobs.state, align(jobs, "b", job_id, size=49)) == (
        "intersection_size: 'a' found 50 entities in common, 'b' 49"
    )
    commit(jobs.state, align(jobs, "b", job_id), jobs.digests("a", job_id))
    job = jobs.job(job_id)
    assert [
        (a.member_id, a.intersection_size, a.train_rows, a.test_rows) for a in job.alignments
    ] == [
        ("a", 50, 40, 10),
        ("b", 50, 40, 10),
    ]
    assert job.rows_of("a") == 50 and job.rows_of("dealer") == 0
    assert check(jobs.state, jobs.proof("a", job_id, rows_contributed=40)) == (
        "rows_contributed: 'a' puts 50 rows into this job"
    )
    assert check(jobs.state, jobs.proof("a", job_id, rows_contributed=50)) is None


def test_a_psi_jobs_progress_knows_its_total_once_its_alignment_commits(jobs):
    """Issue #17: a PSI job's phase until its job_alignment is on the ledger, then its total
    steps (2 epochs of ceil(40 / 8) batches) in the daemon's progress, `job watch`'s line and
    `job list`'s summary, which reads the same records from blocks."""
    job_id = jobs.submitted(vertical_spec(alignment="psi"))
    trail = []

    def progress(local=None):
        job = jobs.job(job_id)
        message = build_progress(job, local, show_loss=False, now=0.0)
        datasets = job_tables.registered_datasets(jobs.state, job.spec.dataset_ids)
        listed = ledger_progress(job.spec, job.status, trail, datasets, jobs.authors.genesis)
        return JobProgress.from_proto(message), listed

    def commit_all(*records):
        commit(jobs.state, *records)
        for record in map(parsed, records):
            trail.append((record.kind, record.body.author, getattr(record.body, record.kind)))

    assert progress()[0].phase == PHASE_WAITING
    commit_all(jobs.decide("a", job_id), jobs.decide("b", job_id))
    commit_all(*(jobs.start(m, job_id) for m in ("a", "b", "dealer")))
    watched, listed = progress()
    assert (watched.phase, watched.steps, watched.eta_s) == (PHASE_ALIGNING, 0, None)
    assert "%" not in progress_line(watched) and "step 0/?" in progress_line(watched)
    assert (listed["phase"], listed["steps"]) == (PHASE_ALIGNING, 0)
    commit_all(align(jobs, "a", job_id), align(jobs, "b", job_id))
    running = LocalProgress(job_id.hex(), "running", 2, epoch=0, step=4, elapsed_s=8.0)
    watched, listed = progress(running)
    assert (watched.phase, watched.step, watched.steps, watched.eta_s) == (
        PHASE_TRAINING,
        4,
        10,
        12,
    )
    assert "[#########...............]  40.0%" in progress_line(watched)
    assert (listed["step"], listed["steps"], listed["phase"]) == (0, 10, PHASE_TRAINING)
    commit_all(jobs.digests("a", job_id), jobs.digests("b", job_id))
    listed = progress()[1]
    assert (listed["epoch"], listed["step"], listed["steps"]) == (1, 5, 10)
    summary = JobSummary("ab" * 32, "readmission", "a/alice", "running", "", 1, (), **listed)
    assert _listed_progress(summary) == "50.0%  epoch 1/2  step 5/10"
    # a row-order job's total is known from the start, from the registered row counts
    plain = jobs.job(jobs.submitted(vertical_spec(alignment="row-order")))
    assert job_total_steps(plain) == 2 * math.ceil(40 / 8)


def test_alignment_refusals(jobs):
    row_order = jobs.submitted()
    jobs.running(row_order)
    assert check(jobs.state, align(jobs, "a", row_order)) == (
        f"job {row_order.hex()[:16]} aligns by row-order; it has no PSI"
    )
    job_id = jobs.submitted(vertical_spec(alignment="psi", seed=8))
    jobs.approved(job_id)
    commit(jobs.state, jobs.start("a", job_id))
    assert check(jobs.state, align(jobs, "b", job_id)) == (
        f"'b' has not started job {job_id.hex()[:16]}"
    )
    commit(jobs.state, jobs.start("b", job_id), jobs.start("dealer", job_id))
    assert check(jobs.state, align(jobs, "dealer", job_id)) == (
        "only the job's data owners take part in its private set intersection"
    )
    assert check(jobs.state, align(jobs, "a", job_id, method="row-order")) == (
        "method: 'row-order' is not the job's alignment 'psi'"
    )
    assert check(jobs.state, align(jobs, "a", job_id, size=0)) == (
        "intersection_size: must be 1 to 'a''s 50 rows"
    )
    assert check(jobs.state, align(jobs, "a", job_id, size=51)) == (
        "intersection_size: must be 1 to 'a''s 50 rows"
    )
    assert check(jobs.state, align(jobs, "a", job_id, split=(30, 20))) == (
        "train_rows/test_rows: 50 rows split 40/10 for this job"
    )
    # 45 entities in common leave 9 test rows: a test metric over fewer than the
    # consortium's min_test_rows (10) would describe too few people.
    assert check(jobs.state, align(jobs, "a", job_id, size=45)) == (
        "test_rows: the intersection leaves 9 test rows; this consortium's minimum is 10 "
        "(min_test_rows)"
    )
    assert check(jobs.state, align(jobs, "a", job_id, channels=[channel(1, 2)])) == (
        "channels[0]: 1->2 does not end at the author's rank 0"
    )
    commit(jobs.state, align(jobs, "a", job_id))
    assert check(jobs.state, align(jobs, "a", job_id)) == (
        f"'a' has already written its alignment for job {job_id.hex()[:16]}"
    )
    assert check(jobs.state, jobs.complete("a", job_id)) == "'b' wrote no job_alignment"


# -- the end --------------------------------------------------------------------------------


def test_completion_and_proofs(jobs):
    job_id = jobs.submitted()
    short = job_id.hex()[:16]
    jobs.running(job_id)
    commit(jobs.state, jobs.proof("b", job_id))
    assert check(jobs.state, jobs.complete("b", job_id)) == (
        f"only rank 0 ('a') writes job_completed for job {short}"
    )
    assert check(jobs.state, jobs.complete("a", job_id, metrics=(("Accuracy", 1.0),))) == (
        "metrics[0].name: 'Accuracy' is not a new snake_case name"
    )
    assert check(jobs.state, jobs.complete("a", job_id, metrics=(("mse", math.inf),))) == (
        "metrics[0].value: must be a finite number"
    )
    commit(jobs.state, jobs.complete("a", job_id))
    job = jobs.job(job_id)
    assert job.status == lifecycle.COMPLETED and job.metrics == (("test_accuracy", 0.9),)
    commit(jobs.state, jobs.proof("a", job_id), jobs.proof("dealer", job_id))
    assert jobs.job(job_id).proofs == ("b", "a", "dealer")
    assert check(jobs.state, jobs.proof("a", job_id)) == (
        f"'a' has already proved its participation in job {short}"
    )
    for late in (
        jobs.digests("a", job_id, epoch=2),
        jobs.abort("a", job_id),
        jobs.complete("a", job_id),
    ):
        assert f"job {short} is completed" in check(jobs.state, late)


def test_completion_needs_every_participant_started(jobs):
    job_id = jobs.submitted()
    jobs.approved(job_id)
    commit(jobs.state, jobs.start("a", job_id))
    assert check(jobs.state, jobs.complete("a", job_id)) == (
        f"'b', 'dealer' never started job {job_id.hex()[:16]}"
    )


def test_proof_refusals(jobs):
    job_id = jobs.submitted()
    jobs.running(job_id)
    assert check(jobs.state, jobs.proof("a", job_id, rank=1)) == (
        "rank: 'a' is rank 0 in this job, not 1"
    )
    assert check(jobs.state, jobs.proof("a", job_id, rows_contributed=49)) == (
        "rows_contributed: 'a' puts 50 rows into this job"
    )
    assert check(jobs.state, jobs.proof("a", job_id, manifest_hash=bytes(32))) == (
        "manifest_hash is not the hash of the job's manifest"
    )
    assert check(jobs.state, jobs.proof("a", job_id, epochs_completed=3)) == (
        "epochs_completed: the job has 2 epochs"
    )
    assert "differs from 'a/cohort''s registered" in check(
        jobs.state, jobs.proof("a", job_id, dataset_fingerprint=bytes(32))
    )


# -- replays -------------------------------------------------------------------------------


def completed(jobs, *, seeds=None):
    """A completed job whose participants started with ``seeds`` (member -> commitment;
    by default each its own)."""
    job_id = jobs.submitted()
    jobs.approved(job_id)
    seeds = seeds or {}
    commit(jobs.state, *(jobs.start(m, job_id, seed=seeds.get(m)) for m in ("a", "b", "dealer")))
    commit(jobs.state, jobs.complete("a", job_id))
    return job_id


def verdict(jobs, author, job_id, party, outcome="correct", text="", **changes):
    """A ``replay_verdict`` by ``author`` of rank ``party`` built as the replay builds it,
    then ``changes``."""
    job = jobs.job(job_id)
    member = job.manifest.parties[party].member_id
    message = ledger_writes.replay_verdict(
        job,
        party,
        outcome,
        text,
        seed_commitment=job.seed_commitment_of(member),
        frames_checked=12,
        channels_checked=[channel(party, (party + 1) % 3), channel(party, (party + 2) % 3)],
    )
    for field, value in changes.items():
        if field == "channels_checked":
            del message.channels_checked[:]
            message.channels_checked.extend(value)
        else:
            setattr(message, field, value)
    return jobs.authors.record(author, replay_verdict=message)


def test_replay_verdicts_are_kept_per_replayer_and_rank_and_move_no_status(jobs):
    job_id = completed(jobs)
    deviated = "channel 1->0, epoch 2: the first checkpoint that differs"
    commit(
        jobs.state,
        verdict(jobs, "c", job_id, 0),
        verdict(jobs, "a", job_id, 1, "deviated", deviated),
        verdict(jobs, "c", job_id, 2),
    )
    # another replayer of the same party is another verdict
    commit(jobs.state, verdict(jobs, "b", job_id, 1))
    job = jobs.job(job_id)
    assert job.status == lifecycle.COMPLETED
    assert [(r.replayer, r.rank, r.member, r.verdict) for r in job.replays] == [
        ("c", 0, "a", "correct"),
        ("a", 1, "b", "deviated"),
        ("c", 2, "dealer", "correct"),
        ("b", 1, "b", "correct"),
    ]
    assert job.replay_by("a", 1).detail == deviated
    assert check(jobs.state, verdict(jobs, "c", job_id, 0, "deviated", "x")) == (
        f"'c' has already written a replay verdict for rank 0 ('a') of job {job_id.hex()[:16]}"
    )
    # the dealer's verdict carries no fingerprint, a data party's its own
    assert jobs.job(job_id).replays[2].member == "dealer"
    assert "replay_verdict" in rules.JOB_TRAIL_KINDS
    assert "replay_verdict" not in rules.JOB_STATUS_KINDS


def test_replay_verdict_refusals(jobs):
    job_id = completed(jobs)
    short = job_id.hex()[:16]
    a_seed = jobs.job(job_id).seed_commitment_of("a")
    wrong_seed = (
        "seed_commitment differs from the one 'a' committed in its job_started: the replay "
        "did not run with that party's seed"
    )
    cases = [
        ("rank: job {short} has ranks 0 to 2, not 3", dict(rank=3)),
        ("member: rank 0 of job {short} is 'a', not 'b'", dict(member="b")),
        ("verdict: 'fine' is not one of correct, deviated", dict(verdict="fine")),
        ("verdict: '' is not one of correct, deviated", dict(verdict="")),
        ("detail: longer than 500 characters", dict(detail="x" * 501)),
        (wrong_seed, dict(seed_commitment=bytes(32))),
        (wrong_seed, dict(seed_commitment=b"")),
        (
            "dataset_fingerprint differs from 'a/cohort''s fingerprint that 'a' started job "
            "{short} with: the replay ran on other data",
            dict(dataset_fingerprint=bytes(32)),
        ),
        (
            "channels_checked[1]: 1->0 is not sent by the replayed rank 0",
            dict(channels_checked=[channel(0, 1), channel(1, 0)]),
        ),
        (
            "channels_checked[0]: 0->0 is not a channel between two of 3 ranks",
            dict(channels_checked=[channel(0, 0)]),
        ),
        (
            "channels_checked[0]: 0->3 is not a channel between two of 3 ranks",
            dict(channels_checked=[channel(0, 3)]),
        ),
        (
            "channels_checked[0].digest: must be a 32-byte SHA-256",
            dict(channels_checked=[channel(0, 1, digest=b"x")]),
        ),
        (
            "channels_checked: at most 8 for this job (3 parties)",
            dict(channels_checked=[channel(0, 1)] * 9),
        ),
    ]
    for expected, changes in cases:
        record = verdict(jobs, "c", job_id, 0, **changes)
        assert check(jobs.state, record) == expected.format(short=short), changes
    assert check(jobs.state, verdict(jobs, "c", job_id, 0, detail="x" * 500)) is None
    assert check(jobs.state, verdict(jobs, "c", job_id, 0, channels_checked=[])) is None
    with pytest.raises(KeyError, match=f"job {short} has no rank 3"):
        ledger_writes.replay_verdict(
            jobs.job(job_id),
            3,
            "correct",
            "",
            seed_commitment=a_seed,
            frames_checked=0,
            channels_checked=[],
        )
    # the builder clips a long detail to what the rules take
    clipped = verdict(jobs, "c", job_id, 0, "deviated", "y" * 900)
    assert len(clipped.body.replay_verdict.detail) == 500 and check(jobs.state, clipped) is None
    assert check(jobs.state, verdict(jobs, "c", job_id, 2, dataset_fingerprint=b"x" * 32)) == (
        "the dealer holds no dataset; dataset_fingerprint must be empty"
    )
    assert check(jobs.state, verdict(jobs, "c", job_id, 1, seed_commitment=a_seed)).startswith(
        "seed_commitment differs from the one 'b' committed"
    )
    # a user may not write one (the replayer signs as a member)
    message = parsed(verdict(jobs, "c", job_id, 0)).body.replay_verdict
    assert check(jobs.state, jobs.authors.record("a/alice", replay_verdict=message)) == (
        "only members may write replay_verdict records; 'a/alice' is a user"
    )
    unknown = jobs_pb2.ReplayVerdict(job_id=bytes(32), rank=0, member="a", verdict="correct")
    assert check(jobs.state, jobs.authors.record("c", replay_verdict=unknown)) == (
        f"no job {bytes(32).hex()[:16]} on the ledger"
    )


def test_the_client_trail_names_the_programs_sigmoid_and_threshold():
    old = jobs_pb2.JobSubmission(spec=vertical_spec().to_proto())  # before the fields
    assert "2 epochs, sigmoid exact, gradient threshold 100, datasets" in trail_detail(
        "job_submission", old
    )
    new = vertical_spec(sigmoid="piecewise", gradient_threshold=0.0)
    detail = trail_detail("job_submission", jobs_pb2.JobSubmission(spec=new.to_proto()))
    assert "sigmoid piecewise, no gradient threshold, datasets" in detail, detail


def test_the_client_trail_describes_a_verdict_and_keeps_the_job_completed(jobs):
    job_id = completed(jobs)
    correct = parsed(verdict(jobs, "c", job_id, 0)).body.replay_verdict
    deviated = parsed(verdict(jobs, "c", job_id, 1, "deviated", "channel 1->0, epoch 2"))
    deviated = deviated.body.replay_verdict
    assert trail_detail("replay_verdict", correct) == (
        "replay of a: correct; rank 0, 12 frames, 2 channel digests"
    )
    assert trail_detail("replay_verdict", deviated) == (
        "replay of b: deviated (channel 1->0, epoch 2); rank 1, 12 frames, 2 channel digests"
    )
    done = [
        ("job_decision", "a", jobs_pb2.JobDecision(approve=True)),
        ("job_decision", "b", jobs_pb2.JobDecision(approve=True)),
        *(("job_started", m, None) for m in ("a", "b", "dealer")),
        ("job_completed", "a", None),
    ]
    trail = [*done, ("replay_verdict", "c", deviated), ("replay_verdict", "c", correct)]
    assert job_state_of(trail, {"a", "b"}) == (lifecycle.COMPLETED, "")


def test_a_replay_needs_a_completed_job_and_a_committed_seed(jobs):
    job_id = jobs.submitted()
    short = job_id.hex()[:16]
    jobs.running(job_id)
    message = jobs_pb2.ReplayVerdict(
        job_id=job_id,
        rank=0,
        member="a",
        verdict="correct",
        seed_commitment=jobs.job(job_id).seed_commitment_of("a"),
        dataset_fingerprint=jobs.fingerprint("a", job_id),
    )
    assert check(jobs.state, jobs.authors.record("c", replay_verdict=message)) == (
        f"job {short} is running; a replay_verdict record is not allowed now"
    )
    commit(jobs.state, jobs.abort("b", job_id))
    assert check(jobs.state, jobs.authors.record("c", replay_verdict=message)) == (
        f"job {short} is aborted; a replay_verdict record is not allowed now"
    )
    # b started as before replays existed: its side has no seed to replay with
    old = completed(jobs, seeds={"b": b""})
    assert check(jobs.state, verdict(jobs, "c", old, 1)) == (
        f"'b' started job {old.hex()[:16]} without a seed commitment; its side cannot be replayed"
    )
    assert check(jobs.state, verdict(jobs, "c", old, 0)) is None


def test_abort_ends_the_job_and_nothing_follows(jobs):
    job_id = jobs.submitted()
    short = job_id.hex()[:16]
    jobs.running(job_id)
    commit(jobs.state, jobs.digests("a", job_id))
    commit(jobs.state, jobs.abort("b", job_id, reason="fingerprint mismatch at b"))
    job = jobs.job(job_id)
    assert job.status == lifecycle.ABORTED and job.reason == "fingerprint mismatch at b"
    assert job.ended_by == "b"
    later = [
        jobs.abort("a", job_id),
        jobs.abort("a/alice", job_id),
        jobs.decide("a", job_id),
        jobs.start("a", job_id),
        jobs.digests("a", job_id, epoch=2),
        jobs.complete("a", job_id),
        jobs.proof("a", job_id),
    ]
    for record in later:
        kind = record.body.WhichOneof("payload")
        assert check(jobs.state, record) == (
            f"job {short} is aborted; a {kind} record is not allowed now"
        )


def test_who_may_abort(jobs):
    job_id = jobs.submitted()
    short = job_id.hex()[:16]
    assert check(jobs.state, jobs.abort("c", job_id)) == (
        f"'c' is neither a participant nor the submitter of job {short}; it may not abort it"
    )
    assert "neither a participant nor the submitter" in check(
        jobs.state, jobs.abort("b/bob", job_id)
    )
    assert check(jobs.state, jobs.abort("a", job_id, reason="  ")) == "reason: required"
    assert check(jobs.state, jobs.abort("dealer", job_id)) is None
    commit(jobs.state, jobs.abort("a/alice", job_id, reason="wrong features"))
    assert jobs.job(job_id).status == lifecycle.ABORTED


def test_a_whole_job_fits_in_one_block_in_order(authors, jobs):
    state = LedgerState(authors.genesis, RULEBOOK)
    setup = [
        authors.bind("a", "a/alice"),
        authors.bind("b", "b/bob"),
        jobs.register("a", "a/cohort"),
        jobs.register("b", "b/assays", ASSAYS),
    ]
    submission = jobs.submit()
    job_id = parsed(submission).id
    decisions = [jobs.decide("a", job_id), jobs.decide("b", job_id)]
    assert state.check_block([raw(r) for r in [*setup, submission, *decisions]]) is None
    reason = state.check_block([raw(r) for r in [*setup, *decisions, submission]])
    assert reason.startswith("record 4") and "no job" in reason
    for record in [*setup, submission, *decisions]:  # the committed path applies unchecked
        state.apply(parsed(record))
    assert job_tables.job_state(state, job_id).status == lifecycle.APPROVED


class BlockReader(JobMethods):
    """`UserClient`'s job methods over certified blocks held here (no daemon to ask)."""

    def __init__(self, genesis, blocks):
        self.genesis = genesis
        self._blocks = blocks

    def blocks(self, from_height, max_blocks=1000, timeout_s=30):
        yield from self._blocks[from_height - 1 : from_height - 1 + max_blocks]


def test_job_list_takes_a_jobs_owners_from_its_datasets_registrations(jobs_consortium):
    """Issue #14: `jobs()` finds who owns a dataset where the rules do, in its registration,
    not in the member part of its id (right only while two id patterns agree). The ledger
    refuses ids outside their registrant's namespace, so only a chain built here can hold
    registrations whose ids name someone else, and tell the two ways apart."""
    keys = {m: jobs_consortium.party(m).identity.signing_key for m in jobs_consortium.ids}
    chain = ChainBuilder(jobs_consortium.genesis, keys)
    reader = BlockReader(jobs_consortium.genesis, chain.blocks)
    chain.commit(
        [
            chain.record("c", dataset_registration=registration("a/cohort", COHORT, 50)),
            chain.record("a", dataset_registration=registration("b/assays", ASSAYS, 50)),
        ]
    )
    spec = vertical_spec().to_proto()
    submission = chain.record("a/alice", job_submission=jobs_pb2.JobSubmission(spec=spec))
    job_id = parse_record(submission).id
    chain.commit([submission])

    def decision(member):
        message = jobs_pb2.JobDecision(job_id=job_id, approve=True, policy_hash=POLICY_HASH)
        return chain.record(member, job_decision=message)

    chain.commit([decision("c"), decision("a")])  # the registrants, so every owner
    assert [job.state for job in reader.jobs()] == [lifecycle.APPROVED]
    started = jobs_pb2.JobStarted(job_id=job_id)  # the client reads who, not what
    chain.commit([chain.record(m, job_started=started) for m in ("c", "a", "dealer")])
    digests = jobs_pb2.JobEpochDigests(job_id=job_id, epoch=1)
    chain.commit([chain.record(m, job_epoch_digests=digests) for m in ("c", "a")])
    (job,) = reader.jobs()
    assert (job.state, job.phase, job.epoch) == (lifecycle.RUNNING, PHASE_TRAINING, 1)
    assert job.steps == 2 * math.ceil(40 / 8) and job.step == job.steps // 2
