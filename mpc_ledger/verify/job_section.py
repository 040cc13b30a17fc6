"""Rendering: one job's `Section` of the report, and the jobs' part of the `Report`.

Reads what was collected (`mpc_ledger.verify.job_view`) and what the checks
found (`mpc_ledger.verify.job_checks`); decides nothing itself. A job's
section: who submitted, datasets and fingerprints, the test metrics,
approvals and policy hashes, timeline, the transcript table, each party's
replays ("replayed: correct", "replayed: deviated (…)" or "not replayed",
and by whom), the result.
"""

from __future__ import annotations

from collections.abc import Sequence

from mpc_ledger.timestamps import block_time_text
from mpc_ledger.verify.job_checks import JobCheck
from mpc_ledger.verify.job_view import JobCollector, JobView, Registration, Verdict
from mpc_ledger.verify.report import Report, Section, Table

__all__ = ["job_section", "report_jobs"]


def job_section(job: JobView, datasets: dict[str, Registration], check: JobCheck) -> Section:
    submitted_at = block_time_text(job.submitted.time_ms, milliseconds=False)
    fields = [
        ("job id", job.job_id.hex()),
        ("name", job.name),
        ("submitter", job.submitter),
        ("submitted", f"{job.submitted.text()}, {submitted_at}"),
        ("status", job.status),
    ]
    for dataset_id in job.dataset_ids:
        registered = datasets.get(dataset_id)
        fields.append(
            (
                f"dataset {dataset_id}",
                "not registered in this export"
                if registered is None
                else f"owner {registered[0]}, fingerprint {registered[1].hex()} "
                f"(registered at height {registered[2].height})",
            )
        )
    fields.append(("participants", ", ".join(job.participants)))
    if job.aligned:
        size = next(iter(job.aligned.values()))[1]
        fields.append(("alignment", f"{job.alignment}: {size} ids in common"))
    else:
        fields.append(("alignment", job.alignment))
    metrics: list[list[str]] = []
    if job.completed:
        model_hash, completed_metrics, _ = job.completed[0]
        fields.append(("model hash", model_hash.hex()))
        metrics = [[name, f"{value:.6g}"] for name, value in completed_metrics]
    if job.aborted is not None:
        author, reason, _ = job.aborted
        fields.append(("aborted", f"by {author}: {reason}"))
    fields.append(("proofs", f"{len(job.proofs)} of {len(job.parties)} participants"))
    fields.append(("replays", _replays_summary(job)))
    fields.append(("result", "FAILED" if check.findings else "ok"))
    approvals = [
        [owner, "approve" if approve else "reject", policy.hex(), str(at.height)]
        for owner, approve, policy, at in job.decisions
    ]
    # the test metrics as the job_completed record states them (each already clipped to
    # its range by the workers); an aborted job has none
    tables = [Table("Test metrics", ["metric", "value"], metrics)] if metrics else []
    return Section(
        title=f"Job {job.short} ({job.name})",
        fields=fields,
        tables=[
            *tables,
            Table("Approvals", ["owner", "decision", "policy hash", "height"], approvals),
            Table(
                "Timeline",
                ["height", "time", "record #", "event", "author", "detail"],
                job.timeline,
            ),
            Table(
                "Transcripts",
                ["epoch", "link", "agree", "messages", "bytes"],
                check.transcript,
            ),
            Table(
                "Replays",
                ["rank", "party", "replay", "by", "frames checked", "height"],
                _replay_rows(job),
            ),
        ],
    )


def _replay_text(verdict: Verdict) -> str:
    """What one verdict says of its party, as every report shows it."""
    if verdict.verdict == "correct":
        return "replayed: correct"
    # the rules take no verdict but "correct" and "deviated"
    return f"replayed: deviated ({verdict.detail or 'no detail given'})"


def _replay_rows(job: JobView) -> list[list[str]]:
    """One row per party and verdict, in rank order; "not replayed" for a party without
    (and why it never can be, when it started without committing to a seed)."""
    committed = {s.member for s in job.starts if s.seed_commitment and not s.refused}
    rows = []
    for party in sorted(job.parties, key=lambda p: p.rank):
        verdicts = [v for v in job.verdicts if v.rank == party.rank]
        if not verdicts:
            started = any(s.member == party.member and not s.refused for s in job.starts)
            text = "not replayed"
            if started and party.member not in committed:
                text += " (started without a seed commitment)"
            rows.append([str(party.rank), party.member, text, "", "", ""])
        for verdict in verdicts:
            rows.append(
                [
                    str(party.rank),
                    party.member,
                    _replay_text(verdict),
                    verdict.replayer,
                    str(verdict.frames_checked),
                    str(verdict.at.height),
                ]
            )
    return rows


def _replays_summary(job: JobView) -> str:
    replayed = {v.rank for v in job.verdicts}
    deviated = sorted({v.member for v in job.verdicts if v.verdict == "deviated"})
    text = f"{len(replayed)} of {len(job.parties)} participants replayed"
    if deviated:
        text += f"; deviated: {', '.join(deviated)}"
    return text


def report_jobs(
    report: Report,
    collected: JobCollector,
    checked: Sequence[tuple[JobView, JobCheck]],
    *,
    job_id: str | None,
) -> None:
    """The limitations, every job's section and failures, and the ``jobs`` summary."""
    if collected.not_audited:
        kinds = ", ".join(f"{kind} ({n})" for kind, n in sorted(collected.not_audited.items()))
        report.limitations.append(
            f"records of kinds this verifier has no job checks for were checked for "
            f"signature and permission only: {kinds}"
        )
    for before_id, first in collected.before_range.items():
        report.limitations.append(
            f"job {before_id.hex()[:16]} was submitted before this export's first height; "
            f"its records from height {first.height} on were not audited as a job"
        )
    for job, check in checked:
        report.jobs.append(job_section(job, collected.datasets, check))
        for finding in check.findings:
            at = finding.at
            if at is None:
                report.fail("jobs", finding.message)
            else:
                report.fail(
                    "jobs",
                    finding.message,
                    height=at.height,
                    log_index=at.log_index,
                    record_id=at.record_id,
                )
    audited = len(checked)
    if audited:
        report.ran("jobs")
        report.chain["jobs"] = f"{audited} audited"
    elif collected.not_audited:
        report.chain["jobs"] = "not audited by this version"
    elif collected.before_range:
        report.chain["jobs"] = "none audited (submitted before this export)"
    else:
        report.chain["jobs"] = "none in this export"
    if job_id is not None and not audited and not collected.before_range:
        report.fail("jobs", f"job {job_id!r} is not in this export")
