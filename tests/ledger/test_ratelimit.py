"""The submit rate limit's token buckets, with time given as a value."""

from __future__ import annotations

import pytest

from mpc_ledger.ledger.ratelimit import TokenBuckets


def test_a_burst_then_the_rate():
    buckets = TokenBuckets(rate_per_s=2, burst=3)
    assert [buckets.take("u", 100.0) for _ in range(4)] == [True, True, True, False]
    assert buckets.take("other", 100.0)  # one bucket per key
    assert not buckets.take("u", 100.4)  # 0.8 of a token
    assert buckets.take("u", 100.5)
    assert [buckets.take("u", 200.0) for _ in range(4)] == [True, True, True, False]


def test_the_table_is_bounded_by_forgetting_full_buckets():
    buckets = TokenBuckets(rate_per_s=1, burst=2, max_keys=10)
    for index in range(100):
        assert buckets.take(f"u{index}", float(index))
    assert len(buckets) <= 11


def test_nonsense_settings_are_refused():
    with pytest.raises(ValueError):
        TokenBuckets(rate_per_s=0, burst=1)
