"""`mpc_ledger.mpc.preprocessing`: the documented batch order, the plaintext reference's rules,
and the pooled statistics under CrypTen across the whole range of magnitudes a pooled job
accepts (the range reductions' every class), against numpy."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mpc_ledger.mpc.preprocessing import (
    POOLED_VALUE_BOUND,
    SHUFFLE_TAG,
    BatchOrderDigest,
    batch_permutation,
    check_pooled_values,
    pooled_statistics_plain,
    standardise_plain,
)

HERE = Path(__file__).parent


def test_the_batch_order_is_the_documented_derivation():
    digest = hashlib.sha256(SHUFFLE_TAG + b"\x00" + struct.pack(">QI", 2026, 1)).digest()
    words = np.frombuffer(digest, dtype=">u4").astype(np.uint32)
    expected = np.random.RandomState(words).permutation(10)
    order = batch_permutation(2026, 1, 10)
    assert order.tolist() == expected.tolist() == [8, 4, 9, 2, 0, 6, 3, 5, 1, 7]
    assert order.dtype == torch.int64
    assert batch_permutation(2026, 2, 10).tolist() == [1, 5, 9, 3, 2, 8, 0, 7, 4, 6]
    assert sorted(batch_permutation(7, 3, 1000).tolist()) == list(range(1000))
    assert batch_permutation(7, 3, 1000).tolist() != batch_permutation(8, 3, 1000).tolist()


def test_the_order_digest_covers_every_epoch_in_order():
    one, two = BatchOrderDigest(), BatchOrderDigest()
    first, second = batch_permutation(1, 1, 50), batch_permutation(1, 2, 50)
    one.add(first)
    one.add(second)
    two.add(second)
    two.add(first)
    assert one.hexdigest() != two.hexdigest()


def test_the_reference_gives_a_constant_column_scale_one():
    x = np.array([[1.0, 5.0, 0.0], [3.0, 5.0, 0.001], [8.0, 5.0, 0.0]])
    mean, scale = pooled_statistics_plain(x)
    assert mean.tolist() == pytest.approx([4.0, 5.0, 0.001 / 3])
    # the third column's deviation (5e-4) is under 2^-8: constant, as far as MPC can tell
    assert scale.tolist() == pytest.approx([np.std([1.0, 3.0, 8.0]), 1.0, 1.0])
    assert standardise_plain(x, mean, scale)[:, 1].tolist() == [0.0, 0.0, 0.0]


def test_a_value_beyond_the_bound_is_refused_naming_its_row_and_feature_only():
    x = torch.zeros(4, 3)
    check_pooled_values(x, "training")
    x[2, 1] = POOLED_VALUE_BOUND + 1
    with pytest.raises(
        ValueError, match=r"^training row 3, feature 2: pooled standardisation"
    ) as e:
        check_pooled_values(x, "training")
    assert "65537" not in str(e.value)
    x[2, 1] = float("nan")
    with pytest.raises(ValueError, match="row 3, feature 2"):
        check_pooled_values(x, "training")


@pytest.mark.integration
def test_pooled_statistics_under_crypten_match_numpy_across_magnitudes():
    """Columns from a deviation of 1e-3 to one near the bound (two populations each) and a
    constant column; between-party deviations from 2^-7 to 2^16 of either sign: every
    class of both range reductions is used."""
    rng = np.random.default_rng(0)
    a, b = np.empty((30, 5)), np.empty((20, 5))
    for column, (mean_a, mean_b, deviation) in enumerate(
        [(0.2, 0.3, 0.001), (5.0, 9.0, 2.0), (300.0, -200.0, 40.0), (30000.0, -30000.0, 900.0)]
    ):
        a[:, column] = rng.normal(mean_a, deviation, 30)
        b[:, column] = rng.normal(mean_b, deviation, 20)
    a[:, 4] = b[:, 4] = -7.0
    x = np.vstack([a, b]).astype(np.float32)
    deviations = np.array([[2.0**e * (1.5 if e % 2 else -1.25) for e in range(-7, 17)], [0.0] * 24])
    weights = np.array([0.6, 0.4])
    request = json.dumps(
        {"x_train": x.tolist(), "deviations": deviations.tolist(), "weights": weights.tolist()}
    )
    done = subprocess.run(
        [sys.executable, str(HERE / "pooled_party.py")],
        input=request,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    revealed = json.loads(done.stdout.strip().splitlines()[-1])
    mean, scale = pooled_statistics_plain(x)
    assert np.allclose(revealed["mean"], mean, rtol=1e-4, atol=1e-4)
    assert np.allclose(revealed["scale"], scale, rtol=1e-3)
    assert revealed["scale"][4] == 1.0 and revealed["mean"][4] == -7.0
    expected = standardise_plain(x, mean, scale)
    assert np.allclose(revealed["standardised"], expected, atol=2e-3)
    assert np.abs(np.asarray(revealed["standardised"])[:, 4]).max() == 0.0
    squares = (weights[:, None] * deviations**2).sum(axis=0)
    assert np.allclose(revealed["weighted_squares"], squares, rtol=1e-4, atol=1e-4)
