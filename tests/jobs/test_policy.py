"""Policies: loading with every problem, evaluation with every reason, the hash."""

from __future__ import annotations

import dataclasses

import pytest

from mpc_ledger.errors import ConfigError
from mpc_ledger.jobs.datasets import RegisteredDataset
from mpc_ledger.jobs.policy import Policy, evaluate, load_policy, policy_from_document
from mpc_ledger.jobs.spec import JobDatasetRef, ModelSpec, load_job_spec

from .conftest import ASSAYS, COHORT, PARTIES, registration, vertical_spec


def registered(rows=600):
    return {
        dataset_id: RegisteredDataset.from_registration(
            dataset_id.partition("/")[0], registration(dataset_id, schema, rows)
        )
        for dataset_id, schema in (("a/cohort", COHORT), ("b/assays", ASSAYS))
    }


POLICY = Policy(
    submitters=("a/*", "b/bob"),
    datasets=("a/cohort",),
    models=("logistic_regression",),
    max_epochs=5,
    recipients=("a/*", "b/bob"),
    min_rows=100,
)


def test_the_example_policies_approve_the_example_job():
    job = load_job_spec(PARTIES / "job.toml")
    rows = 1000
    registry = {
        ref.dataset_id: RegisteredDataset.from_registration(
            ref.dataset_id.partition("/")[0],
            registration(ref.dataset_id, schema, rows),
        )
        for ref, schema in zip(job.datasets, (COHORT, ASSAYS), strict=True)
    }
    for member in ("hospital-a", "lab-b"):
        policy = load_policy(PARTIES / "policies" / f"{member}.toml", member)
        decision = evaluate(policy, member, job, "hospital-a/alice", registry)
        assert decision.approve, decision.reasons
        assert decision.reasons == (f"allowed by policy {policy.policy_hash.hex()[:16]}",)


def test_approval():
    decision = evaluate(POLICY, "a", vertical_spec(), "a/alice", registered())
    assert decision.approve and decision.policy_hash == POLICY.policy_hash
    message = decision.to_proto(bytes(32))
    assert message.approve and list(message.reasons) == list(decision.reasons)


def test_rejection_lists_every_reason():
    job = vertical_spec(
        model=ModelSpec("mlp", (4,)),
        epochs=9,
        recipients=("a", "b", "c/carol"),
        reveal_training_loss=True,
        datasets=(JobDatasetRef("a/other", ("age",)), JobDatasetRef("b/assays", ("crp",))),
    )
    decision = evaluate(POLICY, "a", job, "c/mallory", registered(rows=60))
    assert not decision.approve
    assert decision.reasons == (
        "submitter 'c/mallory' may not submit jobs on this member's data",
        "dataset 'a/other' is not open to jobs",
        "model 'mlp' is not allowed (allowed: logistic_regression)",
        "9 epochs exceed the maximum of 5",
        "recipient 'b' may not receive the model",
        "recipient 'c/carol' may not receive the model",
        "the training loss may not be revealed",
        "dataset 'a/other' is not registered",
    )


def test_minimum_rows_and_tuple_provider():
    job = vertical_spec(tuple_provider="trusted-first-party")
    decision = evaluate(POLICY, "a", job, "b/bob", registered(rows=100))
    assert decision.reasons == (
        "tuple provider 'trusted-first-party' is not allowed",
        "the job trains on 80 rows; the minimum is 100",
    )
    not_ours = evaluate(POLICY, "c", vertical_spec(), "a/alice", registered())
    assert "the job uses none of 'c''s datasets" in not_ours.reasons


def test_a_policys_min_test_rows_is_its_owners_own_minimum():
    strict = dataclasses.replace(POLICY, min_rows=0, min_test_rows=25)
    decision = evaluate(strict, "a", vertical_spec(), "a/alice", registered(rows=100))
    assert not decision.approve
    assert decision.reasons == ("the job tests on 20 rows; the minimum is 25 (min_test_rows)",)
    assert evaluate(strict, "a", vertical_spec(), "a/alice", registered(rows=125)).approve
    assert strict.policy_hash != dataclasses.replace(strict, min_test_rows=0).policy_hash
    loaded, problems = policy_from_document(
        {
            "submitters": ["a/*"],
            "datasets": ["*"],
            "models": ["*"],
            "max_epochs": 1,
            "recipients": ["a"],
            "min_test_rows": 30,
        },
        "a",
    )
    assert problems == [] and loaded is not None and loaded.min_test_rows == 30


def test_integers_beyond_what_the_policy_hash_encodes_are_load_errors(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(
        'submitters = ["a/*"]\ndatasets = ["*"]\nmodels = ["*"]\nrecipients = ["a"]\n'
        f"max_epochs = {2**32}\nmin_rows = -1\nmin_test_rows = {2**64}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_policy(path, "a")
    assert str(caught.value) == "\n  ".join(
        [
            f"{path}: invalid policy:",
            "max_epochs: must be an integer from 1 to 4294967295",
            "min_rows: must be an integer from 0 to 18446744073709551615",
            "min_test_rows: must be an integer from 0 to 18446744073709551615",
        ]
    )


def test_hash_ignores_order_and_duplicates_but_not_rules():
    shuffled = dataclasses.replace(POLICY, submitters=("b/bob", "a/*", "b/bob"))
    assert shuffled.policy_hash == POLICY.policy_hash
    assert dataclasses.replace(POLICY, max_epochs=6).policy_hash != POLICY.policy_hash
    assert dataclasses.replace(POLICY, allow_loss_reveal=True).policy_hash != POLICY.policy_hash


def test_loading_reports_every_problem(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(
        'submitters = ["a", "b/*", "Bad!"]\n'
        'datasets = ["b/cohort", "*"]\n'
        'models = ["mlp", "gbm"]\n'
        "max_epochs = 0\n"
        'min_rows = "many"\n'
        'tuple_providers = ["oracle"]\n'
        "script = 'rm -rf /'\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_policy(path, "a")
    assert str(caught.value) == "\n  ".join(
        [
            f"{path}: invalid policy:",
            "script: unknown key; known: version, submitters, datasets, models, max_epochs, "
            "recipients, allow_loss_reveal, min_rows, min_test_rows, tuple_providers",
            "recipients: required (a list of strings)",
            "min_rows: must be an integer",
            "submitters[0]: jobs are submitted by users: write 'a/*' or 'a/<name>'",
            "submitters[2]: 'Bad!' is not '*', a member id, 'member/*' or 'member/user'",
            "datasets[0]: 'b/cohort' is not 'a''s; a policy opens only its member's own datasets",
            "models[1]: 'gbm' is not one of logistic_regression, linear_regression, "
            "softmax_regression, mlp",
            "max_epochs: must be an integer from 1 to 4294967295",
            "tuple_providers[0]: 'oracle' is not one of dealer, trusted-first-party",
        ]
    )


def test_wildcards():
    policy, problems = policy_from_document(
        {
            "submitters": ["*"],
            "datasets": ["*"],
            "models": ["*"],
            "max_epochs": 100,
            "recipients": ["*"],
        }
    )
    assert problems == [] and policy is not None
    job = vertical_spec(model=ModelSpec("mlp", (3,)), recipients=("a", "b", "b/bob"))
    assert evaluate(policy, "b", job, "c/anyone", registered()).approve


def test_a_policy_that_cannot_be_read_says_why_without_repeating_its_path(tmp_path):
    """The detail (without the path) is the rejection's reason on the ledger."""
    with pytest.raises(ConfigError) as caught:
        load_policy(tmp_path, "a")  # a folder
    assert caught.value.detail == "cannot read: Is a directory"
    assert str(caught.value) == f"{tmp_path}: cannot read: Is a directory"
