"""A data owner's decision from its policy file, and the PSI row check (`jobs.approval`)."""

from __future__ import annotations

import types

from mpc_ledger.jobs.approval import NO_POLICY_HASH, decide, too_few_rows
from mpc_ledger.jobs.policy import load_policy

from .conftest import PARTIES, vertical_spec

POLICY = PARTIES / "policies" / "hospital-a.toml"  # min_rows 100, min_test_rows 20


def _job():
    return types.SimpleNamespace(job_id=bytes(32), spec=vertical_spec(), submitter="a/alice")


def _no_registry():
    raise AssertionError("the registry is read only to evaluate a policy")


def test_no_policy_rejects_without_reading_the_ledger():
    decision = decide(None, "a", _job(), _no_registry)
    assert not decision.approve
    assert decision.reasons == ("no policy configured",)
    assert decision.policy_hash == NO_POLICY_HASH


def test_a_policy_that_cannot_be_read_rejects_saying_why_without_its_path(tmp_path):
    missing = tmp_path / "policy.toml"
    decision = decide(missing, "a", _job(), _no_registry)
    assert not decision.approve and decision.policy_hash == NO_POLICY_HASH
    [reason] = decision.reasons
    assert reason.startswith("the policy cannot be read: ") and str(tmp_path) not in reason
    broken = tmp_path / "broken.toml"
    broken.write_text("version = 1\nmax_epochs = 'many'\n")
    [reason] = decide(broken, "a", _job(), _no_registry).reasons
    assert reason.startswith("the policy cannot be read: ") and "\n" not in reason


def test_a_policy_that_fails_to_evaluate_still_decides(tmp_path):
    def registry():
        raise KeyError("boom")

    decision = decide(POLICY, "hospital-a", _job(), registry)
    assert not decision.approve and decision.policy_hash == NO_POLICY_HASH
    assert decision.reasons == ("the policy could not be evaluated (KeyError)",)


def test_a_readable_policy_is_evaluated_against_the_registry():
    decision = decide(POLICY, "hospital-a", _job(), dict)
    assert decision.policy_hash == load_policy(POLICY, "hospital-a").policy_hash
    assert not decision.approve  # a/alice may not submit on hospital-a's data


def test_too_few_rows_names_the_minimum_that_is_not_met(tmp_path):
    assert too_few_rows(None, "a", 10, 500, 9) == (
        "the private set intersection leaves 9 test rows; "
        "the consortium's minimum is 10 (min_test_rows)"
    )
    assert too_few_rows(None, "a", 10, 1, 10) is None  # no policy: it approved already
    assert too_few_rows(POLICY, "hospital-a", 10, 99, 50) == (
        "the private set intersection leaves 99 training rows; "
        "hospital-a's policy needs at least 100 (min_rows)"
    )
    assert too_few_rows(POLICY, "hospital-a", 10, 100, 19) == (
        "the private set intersection leaves 19 test rows; "
        "hospital-a's policy needs at least 20 (min_test_rows)"
    )
    assert too_few_rows(POLICY, "hospital-a", 10, 100, 20) is None
    assert too_few_rows(tmp_path / "gone.toml", "a", 10, 1, 10) is None  # unreadable now
