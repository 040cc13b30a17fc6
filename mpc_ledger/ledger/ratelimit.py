"""Token buckets per key, with time as an input: the submit rate limit of a daemon.

This is admission, not validation: it runs where a record is submitted, on
that daemon's clock, and never in what validators replay (clocks differ, so
validators would disagree). A bucket holds at most ``burst`` tokens and
refills at ``rate_per_s``; a record takes one.
"""

from __future__ import annotations

__all__ = ["TokenBuckets"]


class TokenBuckets:
    def __init__(self, rate_per_s: float, burst: int, *, max_keys: int = 100_000) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at_s)

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now_s: float) -> bool:
        """Take a token from ``key``'s bucket at time ``now_s``; False when it is empty."""
        tokens = self._tokens(key, now_s)
        if tokens < 1:
            self._buckets[key] = (tokens, now_s)
            return False
        self._buckets[key] = (tokens - 1, now_s)
        if len(self._buckets) > self.max_keys:
            self._forget_full(now_s)
        return True

    def _tokens(self, key: str, now_s: float) -> float:
        held = self._buckets.get(key)
        if held is None:
            return float(self.burst)
        tokens, at_s = held
        return min(float(self.burst), tokens + max(0.0, now_s - at_s) * self.rate_per_s)

    def _forget_full(self, now_s: float) -> None:
        # A full bucket is the same as no bucket: forgetting those bounds the table.
        for key in [k for k in self._buckets if self._tokens(k, now_s) >= self.burst]:
            del self._buckets[key]
