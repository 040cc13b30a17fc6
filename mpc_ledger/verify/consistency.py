"""Does this export extend an older one? Fork detection between two exports.

Theory of operation
-------------------
The older export is verified first, on its own, against the same genesis:
its last certified header gives the old log's size ``m`` and root. Then:

1. Block ids are compared at every height both files hold (a partial
   export's anchor included). The first height where they differ is a
   *fork*: two blocks at one height, both certified, which takes at least
   f + 1 validators signing twice. It is reported with the height and both
   ids.
2. The RFC 6962 consistency proof from size ``m`` to this export's size ``n``
   is computed from this export's leaves (after its frontier for a partial
   export, see :mod:`~mpc_ledger.verify.logproofs`) and checked with
   :func:`mpc_ledger.merkle.verify_consistency` against the two
   certified roots. It holds exactly when the old log is a prefix of the new.

When the new export starts after the old log ends (``m`` is smaller than
the log size at its anchor) the nodes the proof needs are not in it: the
check fails, saying which ``--from`` would make it possible.
"""

from __future__ import annotations

import dataclasses

from mpc_ledger.merkle import verify_consistency
from mpc_ledger.verify.logproofs import LeafHashLog
from mpc_ledger.verify.report import Report

__all__ = ["ChainSummary", "compare_summaries", "report_previous_failures"]

_PREVIOUS_FAILURES_LISTED = 20


@dataclasses.dataclass
class ChainSummary:
    """What a verified export says about the chain, for comparing two exports."""

    path: str
    from_height: int
    to_height: int
    # Size and root of the log after the last block (or the anchor), as its
    # certified header states them.
    log_size: int
    log_root: bytes
    # Block id of every block in the file, and of the anchor.
    block_ids: dict[int, bytes]
    # The log as this export knows it.
    log: LeafHashLog | None


def report_previous_failures(report: Report, previous: Report) -> None:
    """The older export's own failures, as ``consistency`` failures of this report."""
    for failure in previous.failures[:_PREVIOUS_FAILURES_LISTED]:
        where = failure.where()
        report.fail(
            "consistency",
            f"the previous export {previous.file} fails [{failure.check}]"
            f"{' at ' + where if where else ''}: {failure.message}",
            height=failure.height,
            record_id=failure.record_id,
        )
    more = sum(previous.failure_counts.values()) - _PREVIOUS_FAILURES_LISTED
    if more > 0:
        report.fail("consistency", f"the previous export has {more} more failures")


def compare_summaries(report: Report, new: ChainSummary, old: ChainSummary) -> None:
    """File a ``consistency`` failure unless ``new`` provably extends ``old``."""
    fork = _first_fork(new, old)
    if fork is not None:
        height, old_id, new_id = fork
        report.fail(
            "consistency",
            f"fork: at height {height} the previous export ({old.path}) has block "
            f"{old_id.hex()[:16]}…, this export has block {new_id.hex()[:16]}…",
            height=height,
        )
    m, n = old.log_size, new.log_size
    if m > n:
        report.fail(
            "consistency",
            f"the previous export holds a log of {m} records, this one {n}: "
            "it does not extend the previous one",
        )
        return
    log = new.log
    if log is None or m < log.base_size:
        report.fail(
            "consistency",
            f"cannot be proven: this export starts at height {new.from_height}, after the "
            f"previous export's log ends (height {old.to_height}); export with "
            f"--from {old.to_height + 1} or lower",
        )
        return
    proof = log.consistency_proof(m, n)
    if verify_consistency(m, n, old.log_root, new.log_root, proof):
        report.chain["extends_previous"] = (
            f"yes: {old.path} (heights {old.from_height}..{old.to_height}, {m} records) is a "
            f"prefix, consistency proof of {len(proof)} hashes verified"
        )
    elif fork is None:
        report.fail(
            "consistency",
            f"the previous export's log ({m} records, root {old.log_root.hex()[:16]}…) is not a "
            f"prefix of this one ({n} records): the consistency proof does not verify",
        )


def _first_fork(new: ChainSummary, old: ChainSummary) -> tuple[int, bytes, bytes] | None:
    for height in sorted(set(new.block_ids) & set(old.block_ids)):
        if new.block_ids[height] != old.block_ids[height]:
            return height, old.block_ids[height], new.block_ids[height]
    return None
