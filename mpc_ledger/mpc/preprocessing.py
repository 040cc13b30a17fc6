"""What a training job does to its rows before SGD sees them: their order and their scale.

Batch order. With ``shuffle`` the training rows are visited in a new order
every epoch: `batch_permutation` (pure) derives it from the job's public seed
and the epoch, SHA-256(`SHUFFLE_TAG` || 0x00 || seed as u64 BE || epoch as
u32 BE) read as eight big-endian u32 words seeding numpy's `RandomState`
(whose stream numpy keeps stable across releases, NEP 19), whose
``permutation(rows)`` is the order. Every party computes it alone; rows'
positions are not secret, so each party permutes its own shares locally
(`index_select` on a shared tensor moves shares, it opens nothing and sends
nothing) and `run_plaintext` uses the same order. `batch_order_digest`
folds each epoch's order into one digest every party reports, so a test (or
an operator) can see that all of them trained in the same order.

Pooled standardisation (horizontal jobs). Each party computes over its own
training rows, in plaintext and float64, what it alone knows: its rows'
mean ``m_k``, its part of the pooled mean ``n_k m_k / n`` and its part of the
within-party sum of squares ``sum (x - m_k)^2 / n`` (``n`` is every party's
training rows together, public). These are secret-shared (``src`` = the
party: CrypTen shares by pseudo-random zero shares, no message), so nobody
learns another party's statistics. Under MPC:

  mean = sum_k n_k m_k / n            (additions of shares only)
  var  = sum_k sum(x - m_k)^2 / n + sum_k (n_k / n) (m_k - mean)^2

The second form (Chan et al.'s pooled variance) never squares a raw value:
x^2 of a large value in fixed point (16 fractional bits in a 64-bit ring; with
two parties each truncation fails with probability about |value| / 2^48)
would overflow or wrap. The only squares are of ``d_k = m_k - mean``, and
those are first range-reduced: a vectorised comparison of |d_k| against the
public powers 2^j (j in `DEVIATION_EXPONENTS`) gives a secret one-hot
exponent (0/1 shares of scale 1), ``d_k 2^-e`` in [1, 2) is squared, and the
square is scaled back by 4^e. `var` is range-reduced the same way (against
4^j, j in `VARIANCE_EXPONENTS`) to ``r`` in [1, 4), where Newton's iteration
for the inverse square root converges (`_inverse_root`): ``std = 2^e
sqrt(r)``. Multiplying by a one-hot of scale 1 is exact (no truncation), and
a class that is not selected contributes an exact zero whatever its shifted
value, so no scaling overflows for the value that counts. `standardise`
divides the centred rows by std without a tiny fixed-point ``1 / std``: a
second one-hot picks a public shift 2^-s (s in `COARSE_SHIFTS`) of the
centred values, which are then multiplied by ``2^s / std`` (in [2^-4, 2^8]).

A column whose pooled variance is below 4^-8 (deviation under 2^-8, about
0.004: constant, as far as 16 fractional bits can tell) gets scale 1, as the
per-party code does for a deviation of exactly 0; `pooled_statistics_plain`
(the reference) applies the same rule. Bound: every feature value of a
pooled job must satisfy ``|x| <= POOLED_VALUE_BOUND`` (2^16); the worker
refuses a larger one before anything is shared. Precision: the pooled
statistics to about 2^-16 relative, a standardised value ``z`` to about
2^-12 |z| + 2^-16 / std. Cost: the comparisons and products above are on
(parties x features x 26)-element vectors, and `standardise` multiplies
every row twice (once by a five-way one-hot): a few epochs' worth of
triples for a small model, once per job.

Nothing here reveals anything: the caller (`training.run_training`) opens the
pooled mean and deviation only to the model's recipients, with the model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "COARSE_SHIFTS",
    "DEVIATION_EXPONENTS",
    "POOLED_VALUE_BOUND",
    "SHUFFLE_TAG",
    "VARIANCE_EXPONENTS",
    "VARIANCE_MIN",
    "BatchOrderDigest",
    "PooledStatistics",
    "batch_permutation",
    "check_pooled_values",
    "pooled_statistics",
    "pooled_statistics_plain",
    "standardise",
    "standardise_plain",
]

SHUFFLE_TAG = b"mpc-ledger/shuffle/v1"
POOLED_VALUE_BOUND = float(1 << 16)
# |m_k - mean| is at most 2 * POOLED_VALUE_BOUND = 2^17; below 2^-8 it counts as 0 (its square
# would be under the fixed point's resolution).
DEVIATION_EXPONENTS = tuple(range(-8, 18))
# var is at most (2 * POOLED_VALUE_BOUND)^2 = 4^17; below 4^-8 the column is constant.
VARIANCE_EXPONENTS = tuple(range(-8, 18))
VARIANCE_MIN = 4.0 ** VARIANCE_EXPONENTS[0]
# The public shifts `standardise` chooses among (by a secret one-hot) before dividing.
COARSE_SHIFTS = (0, 4, 8, 12, 16)


# --- batch order ---------------------------------------------------------------------------


def batch_permutation(seed: int, epoch: int, rows: int) -> torch.Tensor:
    """The training rows' order in ``epoch`` (from 1), as int64 indices. Pure."""
    digest = hashlib.sha256(SHUFFLE_TAG + b"\x00" + struct.pack(">QI", seed, epoch)).digest()
    words = np.frombuffer(digest, dtype=">u4").astype(np.uint32)
    order = np.random.RandomState(words).permutation(rows)
    return torch.from_numpy(order.astype(np.int64))


class BatchOrderDigest:
    """SHA-256 over every epoch's order (each index as u32 BE), in epoch order."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256(SHUFFLE_TAG + b"/digest\x00")

    def add(self, order: torch.Tensor) -> None:
        self._digest.update(order.numpy().astype(">u4").tobytes())

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


# --- pooled standardisation: the plaintext reference ---------------------------------------


def pooled_statistics_plain(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) of every party's training rows together; scale 1 where the variance is
    under `VARIANCE_MIN` (the rule the MPC computation applies)."""
    values = np.asarray(x_train, dtype=np.float64)
    mean = values.mean(axis=0)
    variance = values.var(axis=0)
    scale = np.where(variance < VARIANCE_MIN, 1.0, np.sqrt(variance))
    return mean, scale


def standardise_plain(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    standardised: np.ndarray = ((np.asarray(x, dtype=np.float64) - mean) / scale).astype(np.float32)
    return standardised


def check_pooled_values(x: torch.Tensor | None, what: str) -> None:
    """ValueError (naming the row and column, never the value) for a value a pooled job's
    fixed point cannot carry; called before anything is shared."""
    if x is None or x.numel() == 0:
        return
    bad = ~torch.isfinite(x) | (x.abs() > POOLED_VALUE_BOUND)
    if bool(bad.any()):
        row, column = (int(v) for v in bad.nonzero()[0].tolist())
        raise ValueError(
            f"{what} row {row + 1}, feature {column + 1}: pooled standardisation takes values "
            f"from -{POOLED_VALUE_BOUND:.0f} to {POOLED_VALUE_BOUND:.0f} (2^16); rescale the "
            "column"
        )


# --- pooled standardisation under MPC ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PooledStatistics:
    """Secret-shared (n_features,) vectors: the pooled mean and deviation (1 for a constant
    column), and how `standardise` divides by the deviation: ``coarse`` (len(COARSE_SHIFTS),
    n_features) 0/1 shares selecting a public shift 2^-s of the centred values, and
    ``inverse_scale`` = 2^s / deviation, in [2^-4, 2^8]: kept away from the fixed point's
    last bits, so a column with a deviation in the thousands keeps its precision."""

    mean: Any
    scale: Any
    coarse: Any
    inverse_scale: Any


def pooled_statistics(
    crypten: Any,
    rows_per_rank: Sequence[int],
    n_features: int,
    rank: int,
    own_x_train: torch.Tensor | None,
) -> PooledStatistics:
    """The pooled statistics of every rank's training rows (see the module docstring)."""
    n_total = sum(rows_per_rank)
    mean_parts, local_means, square_parts = [], [], []
    for owner, rows in enumerate(rows_per_rank):
        own = owner == rank and own_x_train is not None and rows > 0
        local = _local_statistics(own_x_train if own else None, n_total, n_features)
        mean_parts.append(crypten.cryptensor(local[0], src=owner))
        local_means.append(crypten.cryptensor(local[1], src=owner))
        square_parts.append(crypten.cryptensor(local[2], src=owner))
    mean = crypten.stack(mean_parts).sum(0)
    deviations = crypten.stack(local_means) - mean  # (parties, features)
    weights = torch.tensor([rows / n_total for rows in rows_per_rank], dtype=torch.float64)
    between = _weighted_squares(crypten, deviations, weights.view(-1, 1))
    variance = crypten.stack(square_parts).sum(0) + between
    return _deviation_of(crypten, mean, variance)


def standardise(crypten: Any, x: Any, statistics: PooledStatistics, chunk_rows: int) -> Any:
    """(x - mean) / scale under MPC, ``chunk_rows`` rows per multiplication (so no request
    to the dealer is larger than a training step's): the centred rows shifted by the
    selected 2^-s (one multiplication by the scale-1 one-hot, exact), then times 2^s / std."""
    rows = x.size(0)
    if rows == 0:
        return x
    divisors = torch.tensor([float(1 << s) for s in COARSE_SHIFTS]).view(-1, 1, 1)
    selector = statistics.coarse.unsqueeze(1)  # (shifts, 1, features)
    parts = []
    for start in range(0, rows, max(chunk_rows, 1)):
        centred = x[start : start + chunk_rows] - statistics.mean
        shifted = (selector * centred.unsqueeze(0).div(divisors)).sum(0)
        parts.append(shifted * statistics.inverse_scale)
    return parts[0] if len(parts) == 1 else crypten.cat(parts, dim=0)


def _local_statistics(
    x: torch.Tensor | None, n_total: int, n_features: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """This party's (n_k m_k / n, m_k, sum (x - m_k)^2 / n), float64; zeros for a rank's
    part this party does not hold (its owner supplies it)."""
    if x is None:
        zeros = torch.zeros(n_features, dtype=torch.float64)
        return zeros, zeros, zeros
    values = x.double()
    local_mean = values.mean(dim=0)
    squares = ((values - local_mean) ** 2).sum(dim=0)
    return values.sum(dim=0) / n_total, local_mean, squares / n_total


def _weighted_squares(crypten: Any, deviations: Any, weights: torch.Tensor) -> Any:
    """sum_k weights_k d_k^2, each d_k range-reduced before it is squared."""
    magnitude = _one_hot_magnitude(crypten, deviations, DEVIATION_EXPONENTS, base=2, signed=True)
    reduced = _shifted(deviations, magnitude, [-e for e in DEVIATION_EXPONENTS])
    weighted = reduced.square() * weights  # in [0, 4): no overflow, no wrapped truncation
    restored = _shifted(weighted, magnitude, [2 * e for e in DEVIATION_EXPONENTS])
    return restored.sum(0)


def _deviation_of(crypten: Any, mean: Any, variance: Any) -> PooledStatistics:
    """The deviation of a secret variance vector (1 where it is under VARIANCE_MIN), and
    the coarse shift and inverse `standardise` divides by."""
    magnitude = _one_hot_magnitude(crypten, variance, VARIANCE_EXPONENTS, base=4, signed=False)
    reduced = _shifted(variance, magnitude, [-2 * e for e in VARIANCE_EXPONENTS])  # [1, 4)
    constant = 1 - magnitude.sum(0)  # 1 where no class was selected (scale 1)
    # A constant column's reduced value is 0; keep Newton's iteration on its domain there.
    inverse_root = _inverse_root(reduced + constant)
    scale = _shifted(reduced * inverse_root, magnitude, list(VARIANCE_EXPONENTS)) + constant
    shifts = [_coarse_shift(e) for e in VARIANCE_EXPONENTS]
    inverse = _shifted(
        inverse_root, magnitude, [s - e for s, e in zip(shifts, VARIANCE_EXPONENTS, strict=True)]
    )
    coarse = crypten.stack(
        [
            sum(
                (magnitude[j] for j, s in enumerate(shifts) if s == shift),
                start=constant if shift == 0 else constant * 0,
            )
            for shift in COARSE_SHIFTS
        ]
    )
    return PooledStatistics(mean, scale, coarse, inverse + constant)


def _coarse_shift(exponent: int) -> int:
    """The public shift s (in COARSE_SHIFTS) for a deviation in [2^e, 2^(e+1)): 2^(s-e) / sqrt(r)
    then lies in [2^-4, 2^8]."""
    return min(max(0, exponent - exponent % 4), COARSE_SHIFTS[-1])


def _inverse_root(reduced: Any) -> Any:
    """1 / sqrt(r) for r in [1, 4): Newton's iteration from the best linear start on that
    interval (relative error 0.086, then 0.011, 2e-4 and 6e-8: under the fixed point's
    resolution after three steps). CrypTen's own inv_sqrt starts from an exp() meant for a
    wide domain and is off by 1e-3 near 1 after its three steps."""
    estimate = 1.067 - reduced * 0.1525
    for _ in range(3):
        estimate = estimate * (3 - reduced * estimate.square()) * 0.5
    return estimate


def _one_hot_magnitude(
    crypten: Any, values: Any, exponents: Sequence[int], *, base: int, signed: bool
) -> Any:
    """(len(exponents), *values.shape) shares of 0/1 (scale 1): row j is 1 where
    base^exponents[j] <= |values| < base^exponents[j+1] (the last row: no upper bound);
    all rows 0 below the smallest power."""
    shape = (len(exponents),) + (1,) * values.dim()
    thresholds = torch.tensor([float(base) ** e for e in exponents], dtype=torch.float64)
    thresholds = thresholds.view(shape)
    at_least = values.unsqueeze(0).ge(thresholds)
    if signed:  # |v| >= t is v >= t or -v >= t; at most one of the two holds
        at_least = at_least + (-values).unsqueeze(0).ge(thresholds)
    # one-hot = the thermometer code less itself shifted by one class
    return crypten.cat([at_least[:-1] - at_least[1:], at_least[-1:]], dim=0)


def _shifted(values: Any, one_hot: Any, powers: Sequence[int]) -> Any:
    """sum_j one_hot_j * values * 2^powers[j]: the selected power applied, exactly enough.

    A power above 0 is folded into the one-hot (a 0/1 share of scale 1 times a public
    integer is exact); one below 0 divides the values by a public integer (a truncation).
    The product of a scale-1 share with a fixed-point one is not truncated, so the
    selected class is exact and every other contributes exactly 0."""
    shape = (len(powers),) + (1,) * values.dim()
    exponents = torch.tensor(list(powers), dtype=torch.int64).view(shape)
    up = torch.where(exponents > 0, 2 ** exponents.clamp(min=0), 1)
    down = torch.where(exponents < 0, 2 ** (-exponents).clamp(min=0), 1)
    weights = one_hot * up
    divided = values.unsqueeze(0).div(down.double())
    return (weights * divided).sum(0)
