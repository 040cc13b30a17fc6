"""The pure parts of a replay: the committed seed and what is derived from it, the targets'
encoding, and the verdict on a replay's digests (`mpc_ledger.mpc.job_seed`, `mpc.replay`)."""

from __future__ import annotations

import os

import pytest

from mpc_ledger.mpc.job_seed import (
    JobSeedError,
    SeededRandom,
    derive,
    read_job_seed,
    seed_commitment,
    write_job_seed,
)
from mpc_ledger.mpc.replay import Checkpoint, ReplayTargets, inbound_problems, judge, label_order

SEED = bytes(range(32))


def test_the_commitment_binds_chain_job_member_and_seed():
    base = seed_commitment(b"chain", b"job", "a", SEED)
    assert len(base) == 32
    others = {
        seed_commitment(b"chain2", b"job", "a", SEED),
        seed_commitment(b"chain", b"job2", "a", SEED),
        seed_commitment(b"chain", b"job", "b", SEED),
        seed_commitment(b"chain", b"job", "a", bytes(32)),
        # length-prefixed fields: moving a byte from one field to the next changes it
        seed_commitment(b"chai", b"njob", "a", SEED),
    }
    assert base not in others and len(others) == 5
    with pytest.raises(JobSeedError, match="32 bytes"):
        seed_commitment(b"chain", b"job", "a", SEED[:31])


def test_derived_values_are_deterministic_and_separated_by_purpose():
    assert derive(SEED, "a") == derive(SEED, "a") != derive(SEED, "b")
    first, again, other = (
        SeededRandom(SEED, "psi"),
        SeededRandom(SEED, "psi"),
        SeededRandom(SEED, "x"),
    )
    rows = list(range(50))
    shuffled = [rows[:], rows[:], rows[:]]
    for generator, target in zip((first, again, other), shuffled, strict=True):
        generator.shuffle(target)
    assert shuffled[0] == shuffled[1] != shuffled[2] and sorted(shuffled[0]) == rows
    assert SeededRandom(SEED, "psi").randbytes(64) == SeededRandom(SEED, "psi").randbytes(64)
    draws = [SeededRandom(SEED, "r").random() for _ in range(2)]
    assert draws[0] == draws[1] and 0 <= draws[0] < 1


def test_a_seed_file_is_private_and_exactly_32_bytes(tmp_path):
    path = tmp_path / "seed"
    write_job_seed(path, SEED)
    assert read_job_seed(path) == SEED and path.stat().st_mode & 0o777 == 0o600
    os.chmod(path, 0o644)
    with pytest.raises(JobSeedError, match="readable by others"):
        read_job_seed(path)
    os.chmod(path, 0o600)
    path.write_bytes(SEED + b"x")
    with pytest.raises(JobSeedError, match="this file has 33"):
        read_job_seed(path)
    with pytest.raises(JobSeedError, match="cannot read"):
        read_job_seed(tmp_path / "missing")


def _point(label, messages, digest):
    return Checkpoint(label_order(label), label, messages, digest)


TARGETS = ReplayTargets(
    rank=0,
    inbound={(1, 0): (_point("epoch 1", 3, "aa"), _point("end", 5, "bb"))},
    outbound={
        (0, 1): (_point("epoch 1", 4, "c1"), _point("epoch 2", 8, "c2"), _point("end", 9, "c3")),
        (0, 2): (_point("epoch 1", 2, "d1"), _point("end", 6, "d3")),
    },
)


def test_the_targets_survive_their_json_and_say_what_to_watch():
    assert ReplayTargets.from_json(TARGETS.to_json()) == TARGETS
    assert TARGETS.watch() == {(0, 1): (4, 8, 9), (0, 2): (2, 6)}
    assert TARGETS.inbound_watch() == {(1, 0): (3, 5)}


def test_every_checkpoint_matched_is_correct():
    verdict = judge(
        TARGETS, {(0, 1): {4: "c1", 8: "c2", 9: "c3"}, (0, 2): {2: "d1", 6: "d3"}}, stopped=None
    )
    assert verdict.correct and verdict.detail == "" and verdict.frames_checked == 15
    assert verdict.channels_checked == ((0, 1, 9, "c3"), (0, 2, 6, "d3"))


def test_the_first_differing_checkpoint_across_channels_is_named():
    digests = {(0, 1): {4: "c1", 8: "XX", 9: "c3"}, (0, 2): {2: "d1", 6: "YY"}}
    verdict = judge(TARGETS, digests, stopped=None, describe=lambda r: "abc"[r])
    assert not verdict.correct
    assert verdict.deviated_label == "epoch 2" and verdict.deviated_channels == ((0, 1),)
    assert verdict.detail.startswith("channel a→b, epoch 2: what it sent differs")


def test_a_replay_that_stopped_before_a_checkpoint_deviates_there_with_the_reason():
    digests = {(0, 1): {4: "c1"}, (0, 2): {2: "d1"}}
    verdict = judge(TARGETS, digests, stopped="the log ran out", describe=lambda r: "abc"[r])
    assert not verdict.correct and verdict.deviated_label == "epoch 2"
    assert "stopped before it (the log ran out)" in verdict.detail


def test_the_log_must_reproduce_what_the_party_recorded_as_received():
    assert inbound_problems(TARGETS, {(1, 0): {3: "aa", 5: "bb"}}) == []
    [wrong] = inbound_problems(TARGETS, {(1, 0): {3: "aa", 5: "zz"}})
    assert "channel 1->0 at end" in wrong and "the ledger's bb" in wrong
    [short] = inbound_problems(TARGETS, {(1, 0): {3: "aa"}})
    assert "records 5 messages received; the log holds fewer" in short
