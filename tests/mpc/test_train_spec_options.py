"""`TrainSpec.sigmoid` and `TrainSpec.grad_threshold`: defaults, validation, JSON, and the
approximations themselves under CrypTen (one process)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mpc_ledger.mpc.train_spec import GRAD_THRESHOLD, SIGMOIDS, TrainSpec

HERE = Path(__file__).parent


def spec(**fields):
    base = {
        "layout": "vertical",
        "model": "logistic",
        "n_features": 4,
        "columns_per_rank": (2, 2),
        "train_rows_per_rank": (8,),
        "test_rows_per_rank": (4,),
    }
    return TrainSpec(**{**base, **fields})


def test_defaults_are_todays_program():
    default = spec()
    assert default.sigmoid == "exact"
    assert default.grad_threshold == GRAD_THRESHOLD == 100.0


def test_a_spec_from_before_the_fields_reads_with_the_defaults():
    old = spec().to_json()
    del old["sigmoid"], old["grad_threshold"]
    assert TrainSpec.from_json(old) == spec()


@pytest.mark.parametrize("sigmoid", SIGMOIDS)
def test_each_sigmoid_and_no_threshold_survive_json(sigmoid):
    chosen = spec(sigmoid=sigmoid, grad_threshold=0.0)
    document = json.loads(json.dumps(chosen.to_json()))
    assert document["sigmoid"] == sigmoid
    assert TrainSpec.from_json(document) == chosen


def test_an_unknown_sigmoid_is_refused_by_name():
    with pytest.raises(ValueError, match="sigmoid 'tanh' is not one of"):
        spec(sigmoid="tanh")


def test_an_approximation_is_for_bce_only():
    with pytest.raises(ValueError, match="for bce; a mse model has none"):
        spec(model="mlp", loss="mse", sigmoid="poly3")
    spec(model="mlp", loss="mse")  # the exact default stays valid for every loss


def test_an_approximation_cannot_reveal_the_loss():
    with pytest.raises(ValueError, match="cannot reveal the loss"):
        spec(sigmoid="linear", reveal_loss=True)
    spec(reveal_loss=True)


@pytest.mark.parametrize("threshold", [-1.0, float("inf"), float("nan")])
def test_a_negative_or_infinite_threshold_is_refused(threshold):
    with pytest.raises(ValueError, match="grad_threshold must be 0"):
        spec(grad_threshold=threshold)


@pytest.mark.integration
def test_each_approximation_is_the_sigmoid_of_training_and_only_within_its_block():
    run = subprocess.run(
        [sys.executable, str(HERE / "sigmoid_party.py")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert sorted(result) == sorted(SIGMOIDS)
    assert all(r["restored"] for r in result.values())
    # How far each is from torch's sigmoid on [-4, 4]: exact to fixed point; the linear
    # interpolation between knots (0.012 at +-0.5); 6-term Chebyshev; the cubic least-squares
    # fit on [-8, 8]; the Taylor line (0.52 at 4).
    bounds = {"exact": 0.01, "piecewise": 0.013, "chebyshev": 0.06, "poly3": 0.1, "linear": 0.52}
    for name, bound in bounds.items():
        assert result[name]["max_error"] < bound, name
    # The loss's gradient, sigmoid(z) - 1, is the approximation's: the line's at z = -3 is
    # 0.5 - 0.75 - 1 = -1.25, where the exact one is about -0.95.
    logits = torch.tensor([-3.0, 0.5, 3.0])
    exact = (torch.sigmoid(logits) - 1).tolist()
    assert result["exact"]["gradient"] == pytest.approx(exact, abs=0.01)
    assert result["linear"]["gradient"] == pytest.approx((0.5 + logits / 4 - 1).tolist(), abs=0.01)
    assert result["linear"]["gradient"] != pytest.approx(exact, abs=0.1)
    # the interpolation's, not CrypTen's: at 0.5 halfway between sigmoid(0) and sigmoid(1)
    piecewise = result["piecewise"]["gradient"]
    assert piecewise == pytest.approx(exact, abs=0.013)
    halfway = (0.5 + float(torch.sigmoid(torch.tensor(1.0)))) / 2 - 1
    assert piecewise[1] == pytest.approx(halfway, abs=1e-3) and abs(piecewise[1] - exact[1]) > 5e-3
