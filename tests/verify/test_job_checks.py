"""The verifier's job checks, over jobs committed with real keys, certificates and rules."""

from __future__ import annotations

import hashlib
import html
import json

import pytest

from mpc_ledger.jobs import ledger_writes
from mpc_ledger.jobs import state as job_tables
from mpc_ledger.jobs.datasets import Column, DatasetSchema, FingerprintBuilder, make_registration
from mpc_ledger.jobs.spec import JobDatasetRef, JobSpec, ModelSpec, OptimiserSpec
from mpc_ledger.ledger.records import parse_record
from mpc_ledger.ledger.state import LedgerState
from mpc_ledger.mpc.job_seed import seed_commitment
from mpc_ledger.proto.v1 import jobs_pb2
from mpc_ledger.rulebook import RULEBOOK
from mpc_ledger.testing.chains import ChainBuilder
from mpc_ledger.testing.consortium import make_consortium
from mpc_ledger.verify import verify_export
from mpc_ledger.verify.report import Report, render

from .conftest import export_chain, run_cli_inprocess

COHORT = DatasetSchema(
    (Column("patient_id", "string"), Column("age", "int64"), Column("readmitted", "bool")),
    id_column="patient_id",
    label_column="readmitted",
)
ASSAYS = DatasetSchema((Column("patient_id", "string"), Column("crp", "float64")), "patient_id")
POLICY = hashlib.sha256(b"policy").digest()
MODEL = hashlib.sha256(b"model").digest()
sha256 = hashlib.sha256
RANKS = {"a": 0, "b": 1, "dealer": 2}


def registration(dataset_id: str, schema: DatasetSchema, rows: int = 50):
    builder = FingerprintBuilder(schema)
    values = {"string": lambda i: f"p{i}", "int64": int, "float64": float, "bool": bool}
    for index in range(rows):
        builder.add(tuple(values[c.type](index) for c in schema.columns))
    return make_registration(dataset_id, schema, builder.result(), "test data")


SPEC = JobSpec(
    name="readmission",
    layout="vertical",
    datasets=(JobDatasetRef("a/cohort", ("age",)), JobDatasetRef("b/assays", ("crp",))),
    label="readmitted",
    model=ModelSpec("logistic_regression"),
    loss="bce",
    optimiser=OptimiserSpec(learning_rate=0.1),
    epochs=2,
    batch_size=8,
    recipients=("a",),
    seed=7,
)


@pytest.fixture(scope="module")
def jobs_consortium(tmp_path_factory):
    return make_consortium(
        tmp_path_factory.mktemp("vjobs") / "c", "a,b,c", dealer=True, auditor=True
    )


class JobChain:
    """A ChainBuilder plus the ledger state its honest blocks lead to (for manifests)."""

    def __init__(self, consortium, spec: JobSpec = SPEC):
        self.spec = spec
        keys = {m: consortium.party(m).identity.signing_key for m in consortium.ids}
        self.builder = ChainBuilder(consortium.genesis, keys)
        self.state = LedgerState(consortium.genesis, RULEBOOK)
        self.job_id = b""

    def commit(self, *records: bytes, honest: bool = True) -> None:
        for raw in records:
            parsed = parse_record(raw)
            assert not isinstance(parsed, str)
            reason = self.state.check(parsed)
            assert reason is None or not honest, reason
            if reason is None:
                self.state.apply(parsed)
        self.builder.commit(list(records))

    def record(self, author: str, **payload) -> bytes:
        return self.builder.record(author, **payload)

    @property
    def job(self) -> job_tables.JobState:
        job = job_tables.job_state(self.state, self.job_id)
        assert job is not None
        return job

    def submit(self) -> None:
        b = self.builder
        self.commit(
            b.bind("a", "a/alice", roles=("scientist",)),
            self.record("a", dataset_registration=registration("a/cohort", COHORT)),
            self.record("b", dataset_registration=registration("b/assays", ASSAYS)),
        )
        raw = self.record(
            "a/alice", job_submission=jobs_pb2.JobSubmission(spec=self.spec.to_proto())
        )
        self.commit(raw)
        parsed = parse_record(raw)
        assert not isinstance(parsed, str)
        self.job_id = parsed.id

    def decide(self, member: str) -> bytes:
        decision = jobs_pb2.JobDecision(job_id=self.job_id, approve=True, policy_hash=POLICY)
        return self.record(member, job_decision=decision)

    def start(self, member: str, seed: bytes | None = None) -> bytes:
        """``member``'s start, committing to a seed made up from its id (``seed``: this
        commitment instead; b"" for a start written before replays existed)."""
        party = self.job.manifest.party(member)
        if seed is None:
            chain_id = self.builder.chain_id
            seed = seed_commitment(chain_id, self.job_id, member, sha256(member.encode()).digest())
        started = jobs_pb2.JobStarted(
            job_id=self.job_id,
            manifest_hash=self.job.manifest.manifest_hash,
            dataset_fingerprint=party.dataset_fingerprint,
            seed_commitment=seed,
        )
        return self.record(member, job_started=started)

    def verdict(self, replayer: str, member: str, outcome="correct", detail="", tamper=False):
        """``replayer``'s verdict on ``member``'s side, built as the replay builds it: the
        digests it matched are what the receivers recorded of ``member``'s sends in each
        epoch (``tamper``: one of them is a digest no receiver recorded)."""
        rank = RANKS[member]
        matched = [
            c
            for epoch in (1, 2)
            for c in self.channels(member, epoch, (rank, 0) if tamper and epoch == 2 else None)
            if c.sender_rank == rank
        ]
        message = ledger_writes.replay_verdict(
            self.job,
            rank,
            outcome,
            detail,
            seed_commitment=self.job.seed_commitment_of(member),
            frames_checked=sum(c.messages for c in matched),
            channels_checked=matched,
        )
        return self.record(replayer, replay_verdict=message)

    def channels(self, member: str, epoch: int, tamper: tuple[int, int] | None = None):
        rank = RANKS[member]
        out = []
        for other in RANKS.values():
            if other == rank:
                continue
            for link in ((rank, other), (other, rank)):
                digest = hashlib.sha256(f"{link}@{epoch}".encode()).digest()
                if link == tamper:
                    digest = hashlib.sha256(b"tampered").digest()
                out.append(
                    jobs_pb2.ChannelDigest(
                        sender_rank=link[0],
                        receiver_rank=link[1],
                        digest=digest,
                        messages=10 * epoch,
                        size_bytes=1000 * epoch,
                        rounds=epoch,
                    )
                )
        return out

    def digests(self, member: str, epoch: int, tamper=None) -> bytes:
        message = jobs_pb2.JobEpochDigests(
            job_id=self.job_id, epoch=epoch, channels=self.channels(member, epoch, tamper)
        )
        return self.record(member, job_epoch_digests=message)

    def complete(self) -> bytes:
        message = jobs_pb2.JobCompleted(
            job_id=self.job_id,
            model_hash=MODEL,
            metrics=[
                jobs_pb2.Metric(name="test_accuracy", value=0.9),
                jobs_pb2.Metric(name="test_log_loss", value=0.31415926),
            ],
        )
        return self.record("a", job_completed=message)

    def proof(self, member: str) -> bytes:
        party = self.job.manifest.party(member)
        proof = jobs_pb2.ParticipationProof(
            job_id=self.job_id,
            manifest_hash=self.job.manifest.manifest_hash,
            dataset_fingerprint=party.dataset_fingerprint,
            rank=party.rank,
            final_channels=self.channels(member, 2),
            rows_contributed=self.job.rows_of(member),
            epochs_completed=2,
        )
        return self.record(member, participation_proof=proof)

    def align(self, member: str, size: int, tamper: bool = False) -> bytes:
        rank = RANKS[member]
        channels = [
            jobs_pb2.ChannelDigest(
                sender_rank=link[0],
                receiver_rank=link[1],
                digest=hashlib.sha256(f"{link}@psi{tamper and link == (0, 1)}".encode()).digest(),
                messages=4,
                size_bytes=4096,
                rounds=1,
            )
            for link in ((rank, 1 - rank), (1 - rank, rank))
        ]
        message = jobs_pb2.JobAlignment(
            job_id=self.job_id,
            method="psi",
            intersection_size=size,
            train_rows=size - size // 5,
            test_rows=size // 5,
            channels=channels,
        )
        return self.record(member, job_alignment=message)


def run_job(
    chain: JobChain, *, tamper=None, proofs=("a", "b", "dealer"), tamper_psi=False
) -> JobChain:
    """A job from submission to its proofs; ``tamper`` = (member, epoch, link); a psi job
    (by its spec) aligns 50 rows, ``tamper_psi`` makes b's record of 0->1 differ."""
    chain.submit()
    chain.commit(chain.decide("a"), chain.decide("b"))
    chain.commit(*(chain.start(m) for m in RANKS))
    if chain.spec.alignment == "psi":
        chain.commit(chain.align("a", 50), chain.align("b", 50, tamper=tamper_psi))
    for epoch in (1, 2):
        chain.commit(
            *(
                chain.digests(m, epoch, tamper[2] if tamper and tamper[:2] == (m, epoch) else None)
                for m in RANKS
            )
        )
    chain.commit(chain.complete(), *(chain.proof(m) for m in proofs))
    return chain


def jobs_failures(report: Report) -> list[str]:
    return [f.message for f in report.failures if f.check == "jobs"]


def table(section, title):
    (found,) = [t for t in section.tables if t.title == title]
    return found


def test_a_consistent_job_verifies_with_its_section(jobs_consortium, tmp_path):
    chain = run_job(JobChain(jobs_consortium))
    path = export_chain(jobs_consortium, chain.builder, tmp_path / "x")
    report = verify_export(path, jobs_consortium.genesis)
    assert report.ok, report.failures
    assert "jobs" in report.checks_run and report.chain["jobs"] == "1 audited"
    (section,) = report.jobs
    fields = dict(section.fields)
    assert fields["job id"] == chain.job_id.hex() and fields["submitter"] == "a/alice"
    assert fields["status"] == "completed" and fields["result"] == "ok"
    assert fields["model hash"] == MODEL.hex()
    assert fields["participants"] == "a, b, dealer"
    fingerprint = chain.job.manifest.party("b").dataset_fingerprint.hex()
    assert fingerprint in fields["dataset b/assays"]
    metrics, approvals, timeline, transcripts, replays = section.tables
    assert metrics.title == "Test metrics"
    assert metrics.rows == [["test_accuracy", "0.9"], ["test_log_loss", "0.314159"]]
    assert [row[:3] for row in approvals.rows] == [
        ["a", "approve", POLICY.hex()],
        ["b", "approve", POLICY.hex()],
    ]
    assert [row[3] for row in timeline.rows][:3] == ["submitted", "decision", "decision"]
    # 6 directed links per epoch and for the final digests, all agreeing
    assert len(transcripts.rows) == 18 and {row[2] for row in transcripts.rows} == {"yes"}
    assert ["epoch 2", "0->1 (a -> b)", "yes", "20", "2000"] in transcripts.rows
    assert [row[1:3] for row in replays.rows] == [
        ["a", "not replayed"],
        ["b", "not replayed"],
        ["dealer", "not replayed"],
    ]
    assert fields["replays"] == "0 of 3 participants replayed"
    for fmt in ("text", "json", "html"):
        assert chain.job_id.hex()[:16] in render(report, fmt)
        assert "test_log_loss" in render(report, fmt) and "0.314159" in render(report, fmt)
    # the CLI: exit 0, and --job selects the job by its id (or a prefix of it)
    genesis = jobs_consortium.genesis_path
    assert run_cli_inprocess("verify", path, "--genesis", genesis) == 0
    assert run_cli_inprocess("verify", path, "--genesis", genesis, "--job", chain.job_id.hex()) == 0
    report = verify_export(path, jobs_consortium.genesis, job_id="00" * 32)
    assert jobs_failures(report) == [f"job {'00' * 32!r} is not in this export"]


def test_mismatching_transcript_digests_name_the_link_and_epoch(jobs_consortium, tmp_path):
    chain = run_job(JobChain(jobs_consortium), tamper=("b", 2, (0, 1)))
    report = verify_export(
        export_chain(jobs_consortium, chain.builder, tmp_path / "x"), jobs_consortium.genesis
    )
    assert {f.check for f in report.failures} == {"jobs"}
    (failure,) = report.failures
    assert failure.message.startswith(
        f"job {chain.job_id.hex()[:16]} epoch 2: link 0->1 (a -> b) disagrees: digest "
    )
    assert "sender's record at height" in failure.message
    assert failure.height == 6 and failure.record_id is not None
    (section,) = report.jobs
    assert ["epoch 2", "0->1 (a -> b)", "no", "20", "2000"] in table(section, "Transcripts").rows
    assert dict(section.fields)["result"] == "FAILED"


def test_a_missing_participation_proof(jobs_consortium, tmp_path):
    chain = run_job(JobChain(jobs_consortium), proofs=("a", "b"))
    report = verify_export(
        export_chain(jobs_consortium, chain.builder, tmp_path / "x"), jobs_consortium.genesis
    )
    assert jobs_failures(report) == [
        f"job {chain.job_id.hex()[:16]} completed but 'dealer' wrote no participation_proof"
    ]
    assert report.failures[0].height == 7


def test_a_job_that_ran_without_one_approval(jobs_consortium, tmp_path):
    chain = JobChain(jobs_consortium)
    chain.submit()
    chain.commit(chain.decide("a"))
    # the block an honest consortium would refuse: b never approved
    manifest = chain.job.manifest
    starts = []
    for member in RANKS:
        started = jobs_pb2.JobStarted(
            job_id=chain.job_id,
            manifest_hash=manifest.manifest_hash,
            dataset_fingerprint=manifest.party(member).dataset_fingerprint,
        )
        starts.append(chain.record(member, job_started=started))
    chain.commit(*starts, honest=False)
    path = export_chain(jobs_consortium, chain.builder, tmp_path / "x")
    report = verify_export(path, jobs_consortium.genesis)
    refusals = [f for f in report.failures if f.check == "record-permission"]
    assert len(refusals) == 3 and "pending" in refusals[0].message
    # the refused starts were still certified: the job audit names the start without b
    (failure,) = [f for f in report.failures if f.check == "jobs"]
    assert failure.message == (
        f"job {chain.job_id.hex()[:16]} started (a) without the approval of 'b', owner of its data"
    )
    assert (failure.height, failure.log_index) == (4, refusals[0].log_index)


PSI_SPEC = JobSpec(**{**SPEC.__dict__, "alignment": "psi"})


def test_a_psi_job_shows_its_alignment_and_checks_the_psi_transcript(jobs_consortium, tmp_path):
    chain = run_job(JobChain(jobs_consortium, PSI_SPEC))
    report = verify_export(
        export_chain(jobs_consortium, chain.builder, tmp_path / "x"), jobs_consortium.genesis
    )
    assert report.ok, report.failures
    (section,) = report.jobs
    assert dict(section.fields)["alignment"] == "psi: 50 ids in common"
    timeline, transcripts = table(section, "Timeline"), table(section, "Transcripts")
    assert [row[3:5] for row in timeline.rows if row[3] == "aligned"] == [
        ["aligned", "a"],
        ["aligned", "b"],
    ]
    assert ["psi", "0->1 (a -> b)", "yes", "4", "4096"] in transcripts.rows

    tampered = run_job(JobChain(jobs_consortium, PSI_SPEC), tamper_psi=True)
    report = verify_export(
        export_chain(jobs_consortium, tampered.builder, tmp_path / "y"), jobs_consortium.genesis
    )
    (failure,) = jobs_failures(report)
    assert failure.startswith(
        f"job {tampered.job_id.hex()[:16]} psi: link 0->1 (a -> b) disagrees: digest "
    )


# -- replays (check 7) ----------------------------------------------------------------------


def verify_chain(consortium, chain, path):
    return verify_export(export_chain(consortium, chain.builder, path), consortium.genesis)


def test_correct_replays_show_per_party_and_the_job_verifies(jobs_consortium, tmp_path):
    chain = run_job(JobChain(jobs_consortium))
    chain.commit(chain.verdict("c", "a"), chain.verdict("a", "dealer"))
    report = verify_chain(jobs_consortium, chain, tmp_path / "x")
    assert report.ok, report.failures
    (section,) = report.jobs
    assert dict(section.fields)["replays"] == "2 of 3 participants replayed"
    assert table(section, "Replays").rows == [
        ["0", "a", "replayed: correct", "c", "60", "8"],
        ["1", "b", "not replayed", "", "", ""],
        ["2", "dealer", "replayed: correct", "a", "60", "8"],
    ]
    events = [row[3:6] for row in table(section, "Timeline").rows if row[3] == "replay verdict"]
    assert events == [
        ["replay verdict", "c", "a: correct"],
        ["replay verdict", "a", "dealer: correct"],
    ]
    genesis = jobs_consortium.genesis_path
    assert run_cli_inprocess("verify", tmp_path / "x", "--genesis", genesis) == 0


def test_every_replay_state_in_text_json_and_html_and_a_deviation_fails(
    jobs_consortium, tmp_path, capsys
):
    chain = run_job(JobChain(jobs_consortium))
    detail = "channel 1->0, epoch 2: the first checkpoint that differs"
    chain.commit(chain.verdict("c", "a"), chain.verdict("c", "b", "deviated", detail))
    path = export_chain(jobs_consortium, chain.builder, tmp_path / "x")
    report = verify_export(path, jobs_consortium.genesis)
    short = chain.job_id.hex()[:16]
    (failure,) = report.failures
    assert failure.check == "jobs" and failure.height == 8 and failure.record_id is not None
    assert failure.message == (
        f"job {short}: c's replay of b (rank 1) shows that b deviated from the agreed "
        f"program: {detail}"
    )
    (section,) = report.jobs
    fields = dict(section.fields)
    assert fields["result"] == "FAILED"
    assert fields["replays"] == "2 of 3 participants replayed; deviated: b"
    states = {
        "a": "replayed: correct",
        "b": f"replayed: deviated ({detail})",
        "dealer": "not replayed",
    }
    assert {row[1]: row[2] for row in table(section, "Replays").rows} == states
    text, page = render(report, "text"), render(report, "html")
    for member, state in states.items():
        rank = str(RANKS[member])
        by = "" if member == "dealer" else "c"
        assert f"    {rank} | {member} | {state} | {by} |" in text
        assert f"<td>{member}</td><td>{html.escape(state)}</td><td>{by}</td>" in page
    assert text.startswith("FAILED") and "shows that b deviated" in text
    genesis = jobs_consortium.genesis_path
    assert run_cli_inprocess("verify", path, "--genesis", genesis, "--format", "json") == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False
    assert [f["message"] for f in document["failures"]] == [failure.message]
    (job,) = document["jobs"]
    (replays,) = [t for t in job["tables"] if t["title"] == "Replays"]
    assert {row[1]: (row[2], row[3]) for row in replays["rows"]} == {
        "a": ("replayed: correct", "c"),
        "b": (f"replayed: deviated ({detail})", "c"),
        "dealer": ("not replayed", ""),
    }
    assert job["fields"]["replays"] == "2 of 3 participants replayed; deviated: b"


def test_a_verdict_matching_a_digest_no_receiver_recorded_fails(jobs_consortium, tmp_path):
    chain = run_job(JobChain(jobs_consortium))
    chain.commit(chain.verdict("c", "b", tamper=True))
    report = verify_chain(jobs_consortium, chain, tmp_path / "x")
    (failure,) = jobs_failures(report)
    assert failure.startswith(f"job {chain.job_id.hex()[:16]}: c's replay of b (rank 1) matched ")
    assert failure.endswith("of 1->0 after 20 messages, which a never recorded")


def test_a_party_started_without_a_seed_shows_it_cannot_be_replayed(jobs_consortium, tmp_path):
    chain = JobChain(jobs_consortium)
    chain.submit()
    chain.commit(chain.decide("a"), chain.decide("b"))
    chain.commit(chain.start("a"), chain.start("b", seed=b""), chain.start("dealer"))
    chain.commit(*(chain.digests(m, e) for e in (1, 2) for m in RANKS))
    chain.commit(chain.complete(), *(chain.proof(m) for m in RANKS))
    report = verify_chain(jobs_consortium, chain, tmp_path / "x")
    assert report.ok, report.failures  # an older chain verifies as it did
    (section,) = report.jobs
    assert [row[2] for row in table(section, "Replays").rows] == [
        "not replayed",
        "not replayed (started without a seed commitment)",
        "not replayed",
    ]
