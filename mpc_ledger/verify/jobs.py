"""Job checks of the export verifier (DESIGN.md "Jobs").

Theory of operation
-------------------
The chain verifier (:mod:`mpc_ledger.verify.chain`) replays every record
through the ledger's rules and hands each record that passed them, in log
order, to :meth:`JobAudit.observe` together with where it sits
(:class:`RecordContext`) and the ledger state as of that record. After the
last block it calls :meth:`JobAudit.finish`, which checks each job it saw
and fills the report: one :class:`~mpc_ledger.verify.report.Section` per job
(who submitted, datasets and fingerprints, the test metrics, approvals and
policy hashes, timeline, the transcript table, the replays, the result) and
a ``jobs`` failure for each broken rule, naming the job, the block height
and the record.

Three steps, three modules; `JobAudit` only runs them in order:

- collect (`mpc_ledger.verify.job_view`): records in, one `JobView` per job;
- check (`mpc_ledger.verify.job_checks`): a view in, findings out (pure);
- report (`mpc_ledger.verify.job_section`): views and findings in, sections
  and failures on the `Report`.

The audit restates the job rules from the records themselves rather than
trusting the state machine's bookkeeping, so it is a second, independent
reading of the same facts:

1. every data owner of the job's datasets approved it (``job_decision``
   with approve and a 32-byte policy hash) before the job's first
   ``job_started`` in log order;
2. each data owner's ``job_started`` fingerprint equals the fingerprint of
   its dataset's ``dataset_registration``;
3. transcript digests agree pairwise for every epoch present: rank A's
   record of channel A->B (what A sent) equals rank B's record of the same
   channel (what B received), digest, message count and bytes, as
   :func:`mpc_ledger.mpc.transcript.compare_transcripts` compares them; a
   channel one end does not list counts as empty at that end;
4. a completed job has a ``participation_proof`` by every participant, and
   the proofs' final channel digests agree pairwise the same way;
5. a completed job's model hash is recorded (32 bytes), and is the same in
   every record that carries it;
6. a job aligned by private set intersection (alignment "psi"): every data
   owner of a completed job wrote a ``job_alignment``, they all state the
   same intersection size, and their transcripts at the PSI's end agree
   pairwise as in check 3;
7. each ``replay_verdict`` (someone re-ran one party's side from its
   committed seed, its data and the frames it received; the rules took it
   only with the seed commitment and fingerprint that party started with)
   lists digests the receiving party recorded as the ones it matched; a
   verdict "deviated" is a failure: that participant is proven not to have
   run the agreed program. The section shows every party as "replayed:
   correct" (by whom), "replayed: deviated (…)" or "not replayed".

Records the rules refused are reported by the chain verifier
(``record-permission``) and never reach :meth:`observe`; a chain verifier
that also wants them audited as job events (a start without every approval
shows up only there) hands them to :meth:`refused`.

Partial exports: a job submitted before the export's first height cannot be
audited; it is named as a limitation, not a failure. Records of kinds that
are neither the ledger's own nor job kinds are counted and named as not
audited. Which kinds are which comes from the rules themselves
(`mpc_ledger.ledger.state.LEDGER_RULES`, `mpc_ledger.jobs.rules.JOB_RULES`),
the two halves of the rulebook the chain verifier replays records with, so
a kind gains an audit here only by being added to one of them.
"""

from __future__ import annotations

from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.ledger.records import ParsedRecord
from mpc_ledger.ledger.state import LedgerState
from mpc_ledger.verify.job_checks import check_job
from mpc_ledger.verify.job_section import report_jobs
from mpc_ledger.verify.job_view import (
    JOB_RECORD_KINDS,
    LEDGER_RECORD_KINDS,
    JobCollector,
    RecordContext,
)
from mpc_ledger.verify.report import Report

__all__ = [
    "JOB_RECORD_KINDS",
    "LEDGER_RECORD_KINDS",
    "JobAudit",
    "RecordContext",
]


class JobAudit:
    """Collects an export's job records and checks each job at the end (module docstring)."""

    def __init__(self, genesis: Genesis, *, job_id: str | None = None, partial: bool = False):
        self.genesis = genesis
        self.job_id = job_id
        self.partial = partial
        self._collected = JobCollector(genesis, job_id=job_id, partial=partial)

    def observe(self, record: ParsedRecord, at: RecordContext, state: LedgerState) -> None:
        """One record that passed the ledger's rules (called in log order)."""
        self._collected.observe(record, at, state)

    def refused(self, record: ParsedRecord, at: RecordContext) -> None:
        """A job record the rules refused (see `JobCollector.refused`)."""
        self._collected.refused(record, at)

    def finish(self, report: Report) -> None:
        """Check every job seen; add its section and its failures to ``report``."""
        checked = [(job, check_job(job)) for job in self._collected.jobs.values()]
        report_jobs(report, self._collected, checked, job_id=self.job_id)
        report.job_views = dict(self._collected.jobs)
