"""Job checks of the export verifier: the plug-in point for DESIGN.md "Jobs".

Theory of operation
-------------------
The chain verifier (:mod:`mpc_ledger.verify.chain`) replays every record
through the ledger's rules and hands each record that passed them, in log
order, to :meth:`JobAudit.observe` together with where it sits
(:class:`RecordContext`) and the ledger state as of that record. After the
last block it calls :meth:`JobAudit.finish`, which checks each job it saw
and fills the report: one :class:`~mpc_ledger.verify.report.Section` per job
(who submitted, datasets and fingerprints, approvals and policy hashes,
timeline, the transcript table, the result) and a ``jobs`` failure for each
broken rule, naming the job, the block height and the record.

The job checks this module is for, once the job record kinds exist
(``protos/mpc_ledger/v1/jobs.proto``, rules in ``mpc_ledger/jobs/rules.py``):

* every job was approved by each of its data owners *before* it started,
  under the policy hash recorded with the approval;
* the dataset fingerprints a job used equal those registered;
* transcript digests agree pairwise for every epoch (A's "sent to B" equals
  B's "received from A");
* every participant's proof of participation is there;
* the released model's hash is the one committed.

This version of the verifier knows the ledger's own record kinds only
(notes and user key bindings). It never guesses at other kinds' formats:
records of any other kind are counted and named in the report as not audited
as jobs, and a report on an export without them says there are no jobs in
it. :func:`load_record_rules` registers the job record kinds' ledger rules
(whose authors may write them) with the state machine exactly as the party
daemon does, so those records are still replayed and their signatures and
permissions checked by the chain verifier.
"""

from __future__ import annotations

import importlib
from collections import Counter
from dataclasses import dataclass

from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.ledger.records import ParsedRecord
from mpc_ledger.ledger.state import LedgerState
from mpc_ledger.verify.report import Report

__all__ = ["LEDGER_RECORD_KINDS", "JobAudit", "RecordContext", "load_record_rules"]

# Record kinds that are the ledger's own business, not a job's.
LEDGER_RECORD_KINDS = frozenset({"note", "bind_user", "revoke_user"})
_JOB_RULES_MODULE = "mpc_ledger.jobs.rules"


def load_record_rules() -> bool:
    """Register the job record kinds' ledger rules, as the daemon does; False if none exist."""
    try:
        importlib.import_module(_JOB_RULES_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name is not None and _JOB_RULES_MODULE.startswith(exc.name):
            return False
        raise
    return True


@dataclass(frozen=True, slots=True)
class RecordContext:
    """Where a record was committed."""

    height: int
    log_index: int
    block_time_ms: int


class JobAudit:
    """Collects an export's job records and checks each job at the end (module docstring)."""

    def __init__(self, genesis: Genesis, *, job_id: str | None = None, partial: bool = False):
        self.genesis = genesis
        self.job_id = job_id
        self.partial = partial
        self._not_audited: Counter[str] = Counter()

    def observe(self, record: ParsedRecord, at: RecordContext, state: LedgerState) -> None:
        """One record that passed the ledger's rules (called in log order)."""
        if record.kind not in LEDGER_RECORD_KINDS:
            self._not_audited[record.kind] += 1

    def finish(self, report: Report) -> None:
        """Check every job seen; add its section and its failures to ``report``.

        This version has no job-level checks yet, so the ``jobs`` check is not
        reported as passed: a report must never claim what was not checked.
        """
        report.chain["jobs"] = "none in this export"
        if self._not_audited:
            kinds = ", ".join(f"{kind} ({n})" for kind, n in sorted(self._not_audited.items()))
            report.chain["jobs"] = "not audited by this version"
            report.limitations.append(
                f"records of kinds this verifier has no job checks for were checked for "
                f"signature and permission only: {kinds}"
            )
        if self.job_id is not None:
            report.fail("jobs", f"job {self.job_id!r} is not in this export")
