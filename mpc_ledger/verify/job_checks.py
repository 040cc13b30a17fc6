"""Checking: the job rules restated over one collected `JobView`, as findings.

Pure: `check_job` reads a view (`mpc_ledger.verify.job_view`) and returns
what is wrong with it (`Finding`: a message and the record it names) and the
transcript table its comparisons fill (one row per link: do both ends
agree). It writes nothing and reads no state beyond the view; the numbered
checks are those of `mpc_ledger.verify.jobs`. Findings come in the order
the records they concern were read: the starts' (checks 1 and 2) first, then
the alignment's, each epoch's, the completed job's, and its replay verdicts'
(check 7).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from mpc_ledger.verify.job_view import (
    EMPTY_DIGEST,
    HASH_BYTES,
    At,
    Channel,
    Channels,
    JobView,
    Verdict,
)

__all__ = ["Finding", "JobCheck", "check_job"]


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """A broken job rule: what, and the record it names (None: the job as a whole)."""

    message: str
    at: At | None


@dataclasses.dataclass(frozen=True)
class JobCheck:
    """What checking one job found, and its transcript table."""

    findings: list[Finding]
    transcript: list[list[str]]  # epoch, link, agree, messages, bytes


def check_job(job: JobView) -> JobCheck:
    """Checks 1 to 7 on one job."""
    findings = _start_findings(job)
    transcript: list[list[str]] = []
    _check_alignment(job, findings, transcript)
    for epoch in sorted(job.digests):
        _compare(job, f"epoch {epoch}", job.digests[epoch], findings, transcript)
    if job.completed:
        model_hash, _, done = job.completed[0]
        for member in job.participants:  # check 4
            if member not in job.proofs:
                findings.append(
                    Finding(
                        f"job {job.short} completed but {member!r} wrote no participation_proof",
                        done,
                    )
                )
        _compare(job, "final", job.proofs, findings, transcript)
        if len(model_hash) != HASH_BYTES:  # check 5
            findings.append(
                Finding(f"job {job.short} completed without a 32-byte model hash", done)
            )
        for other, _, at in job.completed[1:]:
            if other != model_hash:
                findings.append(
                    Finding(
                        f"job {job.short}: model hash {other.hex()[:16]}… differs from "
                        f"{model_hash.hex()[:16]}… ({done.text()})",
                        at,
                    )
                )
    for verdict in job.verdicts:
        findings.extend(_verdict_findings(job, verdict))
    return JobCheck(findings, transcript)


def _start_findings(job: JobView) -> list[Finding]:
    """Check 1 (every owner approved before the first start) and check 2 (each data
    owner started with its dataset's registered fingerprint), start by start."""
    findings: list[Finding] = []
    owners = [p.member for p in job.parties if p.role == "data"]
    for index, start in enumerate(job.starts):
        if index == 0:
            approved = {
                owner
                for owner, approve, policy, _ in job.decisions[: start.decisions_before]
                if approve and len(policy) == HASH_BYTES
            }
            missing = [owner for owner in dict.fromkeys(owners) if owner not in approved]
            if missing:
                findings.append(
                    Finding(
                        f"job {job.short} started ({start.member}) without the approval of "
                        f"{', '.join(map(repr, missing))}, owner of its data",
                        start.at,
                    )
                )
        registered = start.registered
        if registered is not None and registered[1] != start.fingerprint:
            party = next(p for p in job.parties if p.member == start.member)
            findings.append(
                Finding(
                    f"job {job.short}: {start.member} started with dataset fingerprint "
                    f"{start.fingerprint.hex()[:16]}…, but {party.dataset_id!r} is registered "
                    f"with {registered[1].hex()[:16]}… ({registered[2].text()})",
                    start.at,
                )
            )
    return findings


def _end(channels: Channels, link: tuple[int, int]) -> Channel:
    return channels.get(link) or Channel(link[0], link[1], EMPTY_DIGEST, 0, 0, 0)


def _differences(sent: Channel, got: Channel) -> list[str]:
    problems = []
    if sent.digest != got.digest:
        problems.append(f"digest {sent.digest.hex()[:16]}… sent, {got.digest.hex()[:16]}… received")
    if sent.messages != got.messages:
        problems.append(f"{sent.messages} messages sent, {got.messages} received")
    if sent.size_bytes != got.size_bytes:
        problems.append(f"{sent.size_bytes} bytes sent, {got.size_bytes} received")
    return problems


def _compare(
    job: JobView,
    label: str,
    ends: Mapping[str, tuple[Channels, At]],
    findings: list[Finding],
    rows: list[list[str]],
) -> None:
    """Checks 3 and 4: A's record of A->B equals B's record of A->B, for every link."""
    ranks = {p.member: p.rank for p in job.parties}
    by_rank = {ranks[m]: (channels, at) for m, (channels, at) in ends.items() if m in ranks}
    links = sorted({link for channels, _ in by_rank.values() for link in channels})
    for link in links:
        sender, receiver = link
        name = f"{sender}->{receiver} ({job.member_of(sender)} -> {job.member_of(receiver)})"
        if sender not in by_rank or receiver not in by_rank:
            reported = by_rank.get(sender) or by_rank.get(receiver)
            assert reported is not None
            one = _end(reported[0], link)
            rows.append([label, name, "one end only", str(one.messages), str(one.size_bytes)])
            continue
        (sent_channels, sent_at), (got_channels, got_at) = by_rank[sender], by_rank[receiver]
        sent, got = _end(sent_channels, link), _end(got_channels, link)
        problems = _differences(sent, got)
        messages = (
            str(sent.messages)
            if sent.messages == got.messages
            else f"{sent.messages}/{got.messages}"
        )
        size = (
            str(sent.size_bytes)
            if sent.size_bytes == got.size_bytes
            else f"{sent.size_bytes}/{got.size_bytes}"
        )
        rows.append([label, name, "no" if problems else "yes", messages, size])
        if problems:
            later = max(sent_at, got_at, key=lambda a: a.log_index)
            findings.append(
                Finding(
                    f"job {job.short} {label}: link {name} disagrees: {'; '.join(problems)} "
                    f"(sender's record at {sent_at.text()}, receiver's at {got_at.text()})",
                    later,
                )
            )


def _check_alignment(job: JobView, findings: list[Finding], transcript: list[list[str]]) -> None:
    """Check 6 (alignment "psi")."""
    if not job.aligned:
        if job.alignment == "psi" and job.completed:
            findings.append(
                Finding(f"job {job.short} completed without any job_alignment", job.completed[0][2])
            )
        return
    sizes = {member: size for member, (_, size, _) in job.aligned.items()}
    first_member, first_size = next(iter(sizes.items()))
    for member, (_, size, at) in job.aligned.items():
        if size != first_size:
            findings.append(
                Finding(
                    f"job {job.short}: {member} states {size} ids in common, "
                    f"{first_member} {first_size}",
                    at,
                )
            )
    if job.completed:
        owners = [p.member for p in job.parties if p.role == "data"]
        for member in owners:
            if member not in job.aligned:
                findings.append(
                    Finding(
                        f"job {job.short} completed but {member!r} wrote no job_alignment",
                        job.completed[0][2],
                    )
                )
    ends = {member: (channels, at) for member, (channels, _, at) in job.aligned.items()}
    _compare(job, "psi", ends, findings, transcript)


def _recorded_by_receiver(job: JobView, link: tuple[int, int]) -> set[tuple[bytes, int]]:
    """(digest, messages) of ``link`` in every record its receiver wrote: its PSI end, each
    epoch's digests, its participation proof (what a replay compares sent frames with)."""
    receiver = job.member_of(link[1])
    tables = [job.aligned[receiver][0]] if receiver in job.aligned else []
    tables += [ends[receiver][0] for ends in job.digests.values() if receiver in ends]
    tables += [job.proofs[receiver][0]] if receiver in job.proofs else []
    return {(t[link].digest, t[link].messages) for t in tables if link in t}


def _verdict_findings(job: JobView, verdict: Verdict) -> list[Finding]:
    """Check 7: the digests a verdict says it matched are ones the receivers recorded, and
    a "deviated" verdict is itself a failure: a participant is proven not to have run the
    agreed program. (That the verdict names a party by its rank, with the seed commitment
    and fingerprint the party started with, the rules already refused otherwise: such a
    record is a ``record-permission`` failure and never reaches the views.)"""
    at, who = verdict.at, f"{verdict.replayer}'s replay of {verdict.member} (rank {verdict.rank})"
    findings = []
    for channel in verdict.channels_checked:
        link = (channel.sender, channel.receiver)
        if (channel.digest, channel.messages) not in _recorded_by_receiver(job, link):
            findings.append(
                Finding(
                    f"job {job.short}: {who} matched digest {channel.digest.hex()[:16]}… of "
                    f"{link[0]}->{link[1]} after {channel.messages} messages, which "
                    f"{job.member_of(link[1])} never recorded",
                    at,
                )
            )
    if verdict.verdict == "deviated":
        findings.append(
            Finding(
                f"job {job.short}: {who} shows that {verdict.member} deviated from the agreed "
                f"program: {verdict.detail or '(no detail given)'}",
                at,
            )
        )
    return findings
