"""A data owner's say on a job, from its local policy file: its decision, its row check.

The policy file (`party.config.policy_path`) is read afresh each time, so an
operator's edit applies to the next job. Whatever goes wrong, a decision is
made: no policy configured rejects with "no policy configured"; one that
cannot be read or evaluated rejects saying why, without its local path
(the reason goes on the ledger), under `NO_POLICY_HASH`.

`too_few_rows` is the check a private set intersection's outcome gets: the
approval counted the registered rows, the intersection may leave fewer.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from mpc_ledger.errors import ConfigError, UserError
from mpc_ledger.jobs.datasets import RegisteredDataset
from mpc_ledger.jobs.policy import PolicyDecision, evaluate, load_policy
from mpc_ledger.jobs.state import JobState

__all__ = ["NO_POLICY_HASH", "REASON_MAX_CHARS", "decide", "too_few_rows"]

log = logging.getLogger(__name__)

# The policy hash of a decision taken without a (readable) policy.
NO_POLICY_HASH = hashlib.sha256(b"mpc-ledger/policy/v1\x00no policy").digest()
REASON_MAX_CHARS = 1900  # the rules allow 2000


def decide(
    policy_path: Path | None,
    member_id: str,
    job: JobState,
    registered: Callable[[], Mapping[str, RegisteredDataset]],
) -> PolicyDecision:
    """This member's decision on ``job``; never raises (``registered``: the job's datasets'
    registrations, read from the ledger only when a policy is there to use them)."""
    try:
        return _evaluate(policy_path, member_id, job, registered)
    except Exception as exc:
        log.exception("job %s: evaluating the policy failed", job.job_id.hex()[:16])
        reason = f"the policy could not be evaluated ({type(exc).__name__})"
        return PolicyDecision(False, (reason,), NO_POLICY_HASH)


def _evaluate(
    policy_path: Path | None,
    member_id: str,
    job: JobState,
    registered: Callable[[], Mapping[str, RegisteredDataset]],
) -> PolicyDecision:
    if policy_path is None:
        return PolicyDecision(False, ("no policy configured",), NO_POLICY_HASH)
    try:
        policy = load_policy(policy_path, member_id)
    except UserError as exc:  # its detail names the field, not the local file
        reason = f"the policy cannot be read: {_one_line(exc.detail)}"[:REASON_MAX_CHARS]
        return PolicyDecision(False, (reason,), NO_POLICY_HASH)
    except OSError as exc:
        reason = f"the policy cannot be read: {exc.strerror or type(exc).__name__}"
        return PolicyDecision(False, (reason,), NO_POLICY_HASH)
    return evaluate(policy, member_id, job.spec, job.submitter, registered())


def too_few_rows(
    policy_path: Path | None,
    member_id: str,
    min_test_rows: int,
    train_rows: int,
    test_rows: int,
) -> str | None:
    """Why the rows a private set intersection leaves are too few: fewer test rows than
    the consortium's ``min_test_rows``, or fewer than this member's policy's
    ``min_rows``/``min_test_rows``; None when they are not (or no policy can be read:
    it approved already)."""
    if test_rows < min_test_rows:
        return (
            f"the private set intersection leaves {test_rows} test rows; "
            f"the consortium's minimum is {min_test_rows} (min_test_rows)"
        )
    if policy_path is None:
        return None
    try:
        policy = load_policy(policy_path, member_id)
    except (ConfigError, UserError, OSError):
        return None
    if train_rows < policy.min_rows:
        return (
            f"the private set intersection leaves {train_rows} training rows; "
            f"{member_id}'s policy needs at least {policy.min_rows} (min_rows)"
        )
    if test_rows < policy.min_test_rows:
        return (
            f"the private set intersection leaves {test_rows} test rows; "
            f"{member_id}'s policy needs at least {policy.min_test_rows} "
            "(min_test_rows)"
        )
    return None


def _one_line(problems: str) -> str:
    """A ConfigError's "what:\n  problem\n  problem" as one line, for a record's reason."""
    head, *rest = problems.split("\n  ")
    return f"{head} {'; '.join(rest)}" if rest else head
