"""A data owner's policy: which jobs may use its data. Configuration, never code.

Theory of operation
-------------------
Each party keeps a policy file (TOML, see ``parties/policies/``). When a job
that uses one of its datasets is submitted, its daemon calls `evaluate`,
which checks the job against every rule of the policy and returns a
`PolicyDecision` with *every* reason it found (a rejection lists each rule
the job breaks; an approval says which policy allowed it). The daemon
writes that decision as a `JobDecision` record, with the policy's hash, so
an auditor can tell which policy was applied without seeing the file.

The hash is SHA-256 over a tag and the deterministic encoding of the
normalised policy (`PolicyDocument`, lists sorted and without duplicates),
so reformatting the file, reordering a list or adding comments does not
change it; changing any rule does.

Patterns: ``"*"`` matches anything; ``"member/*"`` matches every user of a
member (submitters) or that member and its users (recipients); anything
else matches itself exactly. `evaluate` is pure: the registry of datasets
is handed in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

from mpc_ledger.errors import ConfigError
from mpc_ledger.identity.ids import MEMBER_ID_SYNTAX, NAME_SYNTAX
from mpc_ledger.jobs._toml import Fields, read_toml
from mpc_ledger.jobs.datasets import RegisteredDataset, check_dataset_id, owner_of
from mpc_ledger.jobs.spec import (
    MODEL_KINDS,
    TUPLE_PROVIDERS,
    JobSpec,
    job_test_rows,
    split_rows,
)
from mpc_ledger.proto.v1 import jobs_pb2

__all__ = [
    "POLICY_VERSION",
    "Policy",
    "PolicyDecision",
    "evaluate",
    "load_policy",
    "policy_from_document",
    "policy_problems",
]

POLICY_VERSION = 1
_POLICY_TAG = b"mpc-ledger/policy/v1\x00"
_KEYS = (
    "version",
    "submitters",
    "datasets",
    "models",
    "max_epochs",
    "recipients",
    "allow_loss_reveal",
    "min_rows",
    "min_test_rows",
    "tuple_providers",
)
# The ranges of the PolicyDocument fields the policy hash encodes.
_UINT32_MAX, _UINT64_MAX = (1 << 32) - 1, (1 << 64) - 1
_PATTERN = re.compile(rf"^(\*|{MEMBER_ID_SYNTAX}(/(\*|{NAME_SYNTAX}))?)$")  # ids, with wildcards


@dataclasses.dataclass(frozen=True)
class Policy:
    submitters: tuple[str, ...]
    datasets: tuple[str, ...]
    models: tuple[str, ...]
    max_epochs: int
    recipients: tuple[str, ...]
    allow_loss_reveal: bool = False
    min_rows: int = 0
    tuple_providers: tuple[str, ...] = ("dealer",)
    version: int = POLICY_VERSION
    min_test_rows: int = 0  # on top of the consortium's (genesis mpc.min_test_rows)

    def to_proto(self) -> jobs_pb2.PolicyDocument:
        def normal(items: tuple[str, ...]) -> list[str]:
            return sorted(set(items))

        return jobs_pb2.PolicyDocument(
            version=self.version,
            submitters=normal(self.submitters),
            datasets=normal(self.datasets),
            models=normal(self.models),
            max_epochs=self.max_epochs,
            recipients=normal(self.recipients),
            allow_loss_reveal=self.allow_loss_reveal,
            min_rows=self.min_rows,
            tuple_providers=normal(self.tuple_providers),
            min_test_rows=self.min_test_rows,
        )

    @property
    def policy_hash(self) -> bytes:
        encoded = self.to_proto().SerializeToString(deterministic=True)
        return hashlib.sha256(_POLICY_TAG + encoded).digest()


@dataclasses.dataclass(frozen=True)
class PolicyDecision:
    approve: bool
    reasons: tuple[str, ...]
    policy_hash: bytes

    def to_proto(self, job_id: bytes) -> jobs_pb2.JobDecision:
        return jobs_pb2.JobDecision(
            job_id=job_id,
            approve=self.approve,
            reasons=list(self.reasons),
            policy_hash=self.policy_hash,
        )


# -- reading --------------------------------------------------------------------------------


def load_policy(path: Path, member_id: str | None = None) -> Policy:
    """Read a policy file, reporting every problem at once.

    ``member_id`` (the owner) checks that ``datasets`` names only its own.
    """
    policy, problems = policy_from_document(read_toml(path), member_id)
    if policy is None or problems:
        raise ConfigError("\n  ".join(["invalid policy:", *problems]), path=path)
    return policy


def policy_from_document(
    document: object, member_id: str | None = None
) -> tuple[Policy | None, list[str]]:
    fields = Fields()
    table = fields.table(document, "", _KEYS)
    policy = Policy(
        version=fields.integer(table, "version", "", default=POLICY_VERSION),
        submitters=fields.texts(table, "submitters", ""),
        datasets=fields.texts(table, "datasets", ""),
        models=fields.texts(table, "models", ""),
        max_epochs=fields.integer(table, "max_epochs", ""),
        recipients=fields.texts(table, "recipients", ""),
        allow_loss_reveal=fields.flag(table, "allow_loss_reveal", "", default=False),
        min_rows=fields.integer(table, "min_rows", "", default=0),
        min_test_rows=fields.integer(table, "min_test_rows", "", default=0),
        tuple_providers=fields.texts(table, "tuple_providers", "", default=("dealer",)),
    )
    named = {problem.partition(": ")[0] for problem in fields.problems}
    problems = fields.problems + [
        p for p in policy_problems(policy, member_id) if p.partition(": ")[0] not in named
    ]
    return policy, problems


def policy_problems(policy: Policy, member_id: str | None = None) -> list[str]:
    problems: list[str] = []
    if policy.version != POLICY_VERSION:
        problems.append(f"version: this release reads policy version {POLICY_VERSION}")
    for key in ("submitters", "recipients"):
        for index, pattern in enumerate(getattr(policy, key)):
            if not _PATTERN.match(pattern):
                problems.append(
                    f"{key}[{index}]: {pattern!r} is not '*', a member id, "
                    "'member/*' or 'member/user'"
                )
            elif key == "submitters" and "/" not in pattern and pattern != "*":
                problems.append(
                    f"{key}[{index}]: jobs are submitted by users: write '{pattern}/*' "
                    f"or '{pattern}/<name>'"
                )
    for index, dataset_id in enumerate(policy.datasets):
        if dataset_id == "*":
            continue
        problem = check_dataset_id(dataset_id)
        if problem is not None:
            problems.append(f"datasets[{index}]: {problem}")
        elif member_id is not None and owner_of(dataset_id) != member_id:
            problems.append(
                f"datasets[{index}]: {dataset_id!r} is not {member_id!r}'s; "
                "a policy opens only its member's own datasets"
            )
    for index, model in enumerate(policy.models):
        if model != "*" and model not in MODEL_KINDS:
            problems.append(f"models[{index}]: {model!r} is not one of {', '.join(MODEL_KINDS)}")
    if not 1 <= policy.max_epochs <= _UINT32_MAX:
        problems.append(f"max_epochs: must be an integer from 1 to {_UINT32_MAX}")
    for key in ("min_rows", "min_test_rows"):
        if not 0 <= getattr(policy, key) <= _UINT64_MAX:
            problems.append(f"{key}: must be an integer from 0 to {_UINT64_MAX}")
    for index, provider in enumerate(policy.tuple_providers):
        if provider not in TUPLE_PROVIDERS:
            problems.append(
                f"tuple_providers[{index}]: {provider!r} is not one of {', '.join(TUPLE_PROVIDERS)}"
            )
    return problems


# -- evaluating -----------------------------------------------------------------------------


def _matches(pattern: str, principal: str) -> bool:
    if pattern in ("*", principal):
        return True
    if pattern.endswith("/*"):
        member = pattern[:-2]
        return principal == member or principal.startswith(member + "/")
    return False


def evaluate(
    policy: Policy,
    member_id: str,
    job: JobSpec,
    submitter: str,
    registry: Mapping[str, RegisteredDataset],
) -> PolicyDecision:
    """``member_id``'s decision on ``job`` submitted by ``submitter``, with every reason."""
    reasons: list[str] = []
    add = reasons.append
    if not any(_matches(p, submitter) for p in policy.submitters):
        add(f"submitter {submitter!r} may not submit jobs on this member's data")
    own = [ref.dataset_id for ref in job.datasets if owner_of(ref.dataset_id) == member_id]
    if not own:
        add(f"the job uses none of {member_id!r}'s datasets")
    for dataset_id in own:
        if "*" not in policy.datasets and dataset_id not in policy.datasets:
            add(f"dataset {dataset_id!r} is not open to jobs")
    if "*" not in policy.models and job.model.kind not in policy.models:
        add(f"model {job.model.kind!r} is not allowed (allowed: {', '.join(policy.models)})")
    if job.epochs > policy.max_epochs:
        add(f"{job.epochs} epochs exceed the maximum of {policy.max_epochs}")
    for recipient in job.recipients:
        if not any(_matches(p, recipient) for p in policy.recipients):
            add(f"recipient {recipient!r} may not receive the model")
    if job.reveal_training_loss and not policy.allow_loss_reveal:
        add("the training loss may not be revealed")
    if job.tuple_provider not in policy.tuple_providers:
        add(f"tuple provider {job.tuple_provider!r} is not allowed")
    reasons.extend(_row_reasons(policy, job, registry))
    if reasons:
        return PolicyDecision(False, tuple(reasons), policy.policy_hash)
    approval = f"allowed by policy {policy.policy_hash.hex()[:16]}"
    return PolicyDecision(True, (approval,), policy.policy_hash)


def _row_reasons(
    policy: Policy, job: JobSpec, registry: Mapping[str, RegisteredDataset]
) -> list[str]:
    """``min_rows`` bounds the job's training rows (vertical: shared rows; horizontal: the sum),
    ``min_test_rows`` the rows its revealed test metric describes (`job_test_rows`)."""
    datasets = [registry.get(ref.dataset_id) for ref in job.datasets]
    missing = [ref.dataset_id for ref, d in zip(job.datasets, datasets, strict=True) if d is None]
    if missing:
        return [f"dataset {dataset_id!r} is not registered" for dataset_id in missing]
    trains = [split_rows(d.row_count, job.test_fraction)[0] for d in datasets if d is not None]
    rows = min(trains) if job.layout == "vertical" else sum(trains)
    reasons = []
    if rows < policy.min_rows:
        reasons.append(f"the job trains on {rows} rows; the minimum is {policy.min_rows}")
    tests = job_test_rows(job, [d.row_count for d in datasets if d is not None])
    if job.test_fraction > 0 and tests < policy.min_test_rows:
        reasons.append(
            f"the job tests on {tests} rows; the minimum is {policy.min_test_rows} (min_test_rows)"
        )
    return reasons
