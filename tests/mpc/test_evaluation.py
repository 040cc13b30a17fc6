"""Test metrics (`mpc_ledger.mpc.evaluation`): opened under real CrypTen, against scikit-learn.

The MPC test runs two CrypTen parties as processes on CrypTen's gloo transport (as
test_crypten_compat.py does: the cheapest real run), rank 0 holding the outputs and rank 1 the
labels; `tests/mpc/metrics_party.py` prints each case's inputs and opened metrics. The pure
derivation's clipping and conventions are tested on aggregates made up to sit where fixed point
puts them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import metrics as sk

from mpc_ledger.mpc.evaluation import (
    LOG_LOSS_EPS,
    METRICS_OF_TASK,
    metrics_from_aggregates,
    plain_metrics,
    task_of,
)

from .gloo_parties import run_gloo_parties

HERE = Path(__file__).parent

LOG_LOSS_ATOL = 0.02  # CrypTen's log (see evaluation's docstring)
SUM_RTOL = 1e-3  # fixed point's 2^-16 per row, over sums of squares and absolute values


def sklearn_metrics(loss: str, output: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """What scikit-learn says of the same outputs (zero_division=0, probabilities clipped as
    the job clips them)."""
    if loss == "bce":
        truth, predicted = labels.ravel(), (output.ravel() > 0).astype(float)
        probability = np.clip(1 / (1 + np.exp(-output.ravel())), LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
        return {
            "test_accuracy": sk.accuracy_score(truth, predicted),
            "test_precision": sk.precision_score(truth, predicted, zero_division=0),
            "test_recall": sk.recall_score(truth, predicted, zero_division=0),
            "test_f1": sk.f1_score(truth, predicted, zero_division=0),
            "test_log_loss": sk.log_loss(truth, probability, labels=[0, 1]),
        }
    if loss == "cross_entropy":
        truth, predicted = labels.argmax(axis=1), output.argmax(axis=1)
        return {
            "test_accuracy": sk.accuracy_score(truth, predicted),
            "test_macro_f1": sk.f1_score(truth, predicted, average="macro", zero_division=0),
        }
    return {
        "test_mse": sk.mean_squared_error(labels, output),
        "test_mae": sk.mean_absolute_error(labels, output),
        "test_r2": sk.r2_score(labels, output),
    }


def close(name: str, got: float, expected: float) -> bool:
    if name == "test_log_loss":
        return abs(got - expected) <= LOG_LOSS_ATOL
    if name in ("test_mse", "test_mae", "test_r2"):
        return abs(got - expected) <= SUM_RTOL * max(1.0, abs(expected))
    return got == pytest.approx(expected, abs=1e-12)  # from exact counts


@pytest.fixture(scope="module")
def opened(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("evaluation")
    outputs = run_gloo_parties(HERE / "metrics_party.py", folder)
    return json.loads(outputs[0].strip().splitlines()[-1])


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("case", ["binary", "multiclass", "regression"])
def test_each_metric_opened_under_mpc_is_scikit_learns(opened, case):
    result = opened[case]
    output, labels = np.array(result["output"]), np.array(result["labels"])
    expected = sklearn_metrics(result["loss"], output, labels)
    got = result["metrics"]
    assert sorted(got) == sorted(METRICS_OF_TASK[task_of(result["loss"])])
    for name, value in expected.items():
        assert close(name, got[name], value), (case, name, got[name], value)
    # the plaintext reference (`run_plaintext`'s metrics) is scikit-learn's too, exactly
    plain = plain_metrics(result["loss"], torch.tensor(output), torch.tensor(labels))
    for name, value in expected.items():
        assert plain[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (case, name)


@pytest.mark.integration
@pytest.mark.slow
def test_metrics_of_a_perfect_model_are_exactly_at_their_bounds(opened):
    right = opened["binary_all_right"]["metrics"]
    assert [right[n] for n in ("test_accuracy", "test_precision", "test_recall", "test_f1")] == [
        1.0,
        1.0,
        1.0,
        1.0,
    ]
    exact = opened["regression_exact"]["metrics"]
    assert exact == {"test_mse": 0.0, "test_mae": 0.0, "test_r2": 1.0}


def test_aggregates_off_by_fixed_point_are_rounded_and_clipped():
    # 30 rows all right, each count and sum a little off, as fixed point opens them
    binary = metrics_from_aggregates("binary", [18.0003, 17.9998, 18.0001, -0.0004], 30, 1)
    assert binary == {
        "test_accuracy": 1.0,
        "test_precision": 1.0,
        "test_recall": 1.0,
        "test_f1": 1.0,
        "test_log_loss": 0.0,
    }
    # a sum of squared errors opened slightly negative: the MSE is 0, R² at most 1
    regression = metrics_from_aggregates("regression", [-2e-5, -1e-5, 40.0], 20, 1)
    assert regression == {"test_mse": 0.0, "test_mae": 0.0, "test_r2": 1.0}


def test_empty_classes_follow_scikit_learns_conventions():
    # no predicted and no actual positive: precision, recall and F1 are 0 (zero_division=0)
    none = metrics_from_aggregates("binary", [0, 0, 0, 3.0], 10, 1)
    assert none["test_accuracy"] == 1.0
    assert (none["test_precision"], none["test_recall"], none["test_f1"]) == (0.0, 0.0, 0.0)
    # classes 0 and 1 only (class 2 neither predicted nor in the labels): macro-F1 over two
    truth, predicted = [0, 0, 1, 1], [0, 1, 1, 1]
    tp, pp, ap = [1, 2, 0], [1, 3, 0], [2, 2, 0]
    multiclass = metrics_from_aggregates("multiclass", tp + pp + ap, 4, 3)
    expected = sk.f1_score(truth, predicted, average="macro")
    assert multiclass["test_macro_f1"] == pytest.approx(expected)
    # constant labels: R² is 0 unless the predictions are exact (r2_score's force_finite)
    assert metrics_from_aggregates("regression", [4.0, 2.0, 0.0], 4, 1)["test_r2"] == 0.0


def test_no_test_rows_and_an_unknown_loss_are_refused():
    with pytest.raises(ValueError, match="at least one test row"):
        metrics_from_aggregates("binary", [0, 0, 0, 0], 0, 1)
    with pytest.raises(ValueError, match="no test metrics for the loss 'hinge'"):
        task_of("hinge")
