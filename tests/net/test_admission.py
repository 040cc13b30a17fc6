"""`UserAdmission`, the pure counter behind users' share of a daemon (the real server's
behaviour under attack is in tests/cli/test_user_cli.py)."""

from __future__ import annotations

from mpc_ledger.net.admission import UserAdmission, UserLimits

FOLLOW = "/mpc_ledger.v1.Ledger/Follow"
TIP = "/mpc_ledger.v1.Ledger/Tip"


def admission(**limits):
    return UserAdmission(UserLimits(**limits), frozenset({FOLLOW}))


def test_a_user_gets_at_most_streams_per_user_long_streams():
    gate = admission(threads=16, calls_per_user=8, streams_per_user=2, streams_total=12)
    first, _ = gate.admit("a/erin", FOLLOW)
    second, _ = gate.admit("a/erin", FOLLOW)
    third, reason = gate.admit("a/erin", FOLLOW)
    assert first is not None and second is not None and third is None
    assert "'a/erin' has 2 long streams open" in reason
    assert gate.admit("a/erin", TIP)[0] is not None  # short calls still admitted
    assert gate.admit("a/frank", FOLLOW)[0] is not None  # another user's streams too


def test_released_slots_come_back_once():
    gate = admission(threads=16, calls_per_user=8, streams_per_user=1, streams_total=12)
    release, _ = gate.admit("a/erin", FOLLOW)
    assert release is not None
    release()
    release()  # idempotent: a second release must not free a slot someone else holds
    again, _ = gate.admit("a/erin", FOLLOW)
    assert again is not None
    assert gate.admit("a/erin", FOLLOW)[0] is None
    again()
    assert gate.open_calls("a/erin") == 0


def test_users_together_never_hold_more_calls_than_the_pool_has_threads():
    gate = admission(threads=3, calls_per_user=8, streams_per_user=4, streams_total=2)
    assert gate.admit("a/u1", FOLLOW)[0] is not None
    assert gate.admit("a/u2", FOLLOW)[0] is not None
    refused, reason = gate.admit("a/u3", FOLLOW)
    assert refused is None and "users hold 2 streams" in reason
    assert gate.admit("a/u3", TIP)[0] is not None
    refused, reason = gate.admit("a/u4", TIP)
    assert refused is None and "users hold 3 calls" in reason


def test_calls_per_user_bounds_short_calls():
    gate = admission(threads=16, calls_per_user=2, streams_per_user=4, streams_total=12)
    assert gate.admit("a/erin", TIP)[0] is not None
    assert gate.admit("a/erin", TIP)[0] is not None
    refused, reason = gate.admit("a/erin", TIP)
    assert refused is None and "'a/erin' has 2 calls open" in reason
