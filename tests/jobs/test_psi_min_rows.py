"""A policy's ``min_rows`` and ``min_test_rows`` hold for the rows a private set intersection
leaves, not only for the registered row counts it approved: real daemons, started by the CLI."""

from __future__ import annotations

import json

import pytest

from .conftest import CLI_SHARED, cli, cli_job, cli_job_world, cli_policy, make_user

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Each data party registered 70 rows: 53 training rows at test_fraction 0.25, enough for
# min_rows = 50. The 60 rows they share leave 45.
POLICY = cli_policy("a", min_rows=50)
JOB = cli_job("small-intersection")


def test_an_intersection_below_a_policys_min_rows_aborts_the_job(tmp_path):
    # Only a's policy sets the bound, so the abort is a's (with both, whichever party's
    # abort commits first would be the reason).
    with cli_job_world(tmp_path, POLICY, policy_of={"b": cli_policy("a")}) as consortium:
        alice = make_user(tmp_path, consortium, "a/alice")
        (tmp_path / "job.toml").write_text(JOB)
        job_id = cli("job", "submit", tmp_path / "job.toml", "--profile", alice).stdout.strip()
        watched = cli("job", "watch", job_id, "--profile", alice, ok=False, timeout_s=180)
        assert watched.returncode == 1, watched.stdout
        train_rows = CLI_SHARED - CLI_SHARED // 4
        assert (
            f"the private set intersection leaves {train_rows} training rows; "
            "a's policy needs at least 50 (min_rows)"
        ) in watched.stdout, watched.stdout
        shown = cli("job", "show", job_id, "--format", "json", "--profile", alice)
        trail = json.loads(shown.stdout)
        kinds = [entry["kind"] for entry in trail]
        # both owners approved (the registered rows were enough); nothing trained
        assert kinds.count("job_decision") == 2 and "job_aborted" in kinds
        assert "job_epoch_digests" not in kinds and "job_completed" not in kinds


# The registered 70 rows leave at most 17 test rows, enough for min_test_rows = 16; the 60
# the parties share leave 15.
TEST_ROWS_POLICY = cli_policy("a", min_test_rows=16)


def test_an_intersection_below_a_policys_min_test_rows_aborts_the_job(tmp_path):
    # Only b's policy sets this bound: the abort is b's.
    with cli_job_world(tmp_path, cli_policy("a"), policy_of={"b": TEST_ROWS_POLICY}) as consortium:
        alice = make_user(tmp_path, consortium, "a/alice")
        (tmp_path / "job.toml").write_text(cli_job("few-test-rows"))
        job_id = cli("job", "submit", tmp_path / "job.toml", "--profile", alice).stdout.strip()
        watched = cli("job", "watch", job_id, "--profile", alice, ok=False, timeout_s=180)
        assert watched.returncode == 1, watched.stdout
        test_rows = CLI_SHARED // 4
        assert (
            f"the private set intersection leaves {test_rows} test rows; "
            "b's policy needs at least 16 (min_test_rows)"
        ) in watched.stdout, watched.stdout
        shown = cli("job", "show", job_id, "--format", "json", "--profile", alice)
        kinds = [entry["kind"] for entry in json.loads(shown.stdout)]
        assert kinds.count("job_decision") == 2 and "job_aborted" in kinds
        assert "job_alignment" not in kinds and "job_completed" not in kinds
