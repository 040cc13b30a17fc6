"""A trained model's test metrics: computed on secret shares, only a few aggregates opened.

Theory of operation
-------------------
Every metric a job reports is a ratio of a few sums over the test rows. The
sums are computed on the shares of the model's outputs and the labels, and
stacked so that ONE opening (``get_plain_text``) reveals them all, to every
data party; `metrics_from_aggregates` then derives the metrics from them in
plaintext and clips each to its valid range. `plain_aggregates` computes the
same sums in plain PyTorch, so `run_plaintext`'s reference and the tests go
through the same derivation. ``n``, the number of test rows, is public (it is
in the job's spec or alignment record).

What is opened, by task (the task follows from the job's loss):

- binary (``bce``; the output is a logit, predicted positive when > 0): the
  true positives, the predicted positives, the actual positives and the sum
  of the rows' log-loss -> ``test_accuracy``, ``test_precision``,
  ``test_recall``, ``test_f1``, ``test_log_loss``.
- multiclass (``cross_entropy``; the predicted class is the largest output; a
  fixed-point tie counts for every tied class, as the accuracy always did):
  per class, the true positives, the predicted and the actual count ->
  ``test_accuracy``, ``test_macro_f1``.
- regression (``mse``): the sums of squared errors, of absolute errors, and of
  the labels' squared deviations from their mean -> ``test_mse``, ``test_mae``,
  ``test_r2``.

The counts are sums of 0/1 values, so the opened fixed-point numbers (a few
2^-16 off per row) are rounded to integers: an accuracy is exact, never
1.0000152. Conventions are scikit-learn's defaults: the precision with no
predicted positive, the recall with no actual positive and the F1 with
neither are 0 (``zero_division=0``); macro-F1 averages the classes that occur
in the labels or the predictions (``f1_score(average="macro")``); R² of
labels that are constant (their squared deviations below the fixed-point
resolution per row) is 1 for exact predictions, else 0 (``r2_score``'s
``force_finite``). Log-loss uses the predicted probabilities clipped to
[`LOG_LOSS_EPS`, 1 - `LOG_LOSS_EPS`]: 16 fractional bits cannot hold a
smaller probability faithfully, and CrypTen's log converges on [1e-4, 250]. The
log is an approximation: a row's log-loss is within about 0.01 of the exact
one for probabilities above 0.3, within about 0.12 near the clip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = [
    "FIXED_POINT_RESOLUTION",
    "LOG_LOSS_EPS",
    "METRICS_OF_TASK",
    "encrypted_metrics",
    "metrics_from_aggregates",
    "plain_aggregates",
    "plain_metrics",
    "task_of",
]

LOG_LOSS_EPS = 1e-4
# CrypTen's default encoder: 16 fractional bits
FIXED_POINT_RESOLUTION = 2.0**-16
TASKS = {"bce": "binary", "cross_entropy": "multiclass", "mse": "regression"}
METRICS_OF_TASK = {
    "binary": ("test_accuracy", "test_precision", "test_recall", "test_f1", "test_log_loss"),
    "multiclass": ("test_accuracy", "test_macro_f1"),
    "regression": ("test_mse", "test_mae", "test_r2"),
}


def task_of(loss: str) -> str:
    """ "binary", "multiclass" or "regression" for a job's loss."""
    try:
        return TASKS[loss]
    except KeyError:
        raise ValueError(f"no test metrics for the loss {loss!r}") from None


# -- under MPC ---------------------------------------------------------------------------------


def encrypted_metrics(crypten: Any, loss: str, output: Any, labels: Any) -> dict[str, float]:
    """The metrics of encrypted outputs against encrypted labels (one-hot for cross-entropy);
    every data party opens the same aggregates, once, and derives the same metrics."""
    task = task_of(loss)
    aggregates = _ENCRYPTED[task](crypten, output, labels).get_plain_text()
    rows, classes = int(labels.size(0)), int(labels.size(1))
    return metrics_from_aggregates(task, aggregates.tolist(), rows, classes)


def _fixed_point(tensor: Any) -> Any:
    # imported here: only an MPC run needs crypten_compat (the plaintext metrics do not);
    # it also once closed an import cycle (crypten_compat -> dealer -> programs -> here)
    from mpc_ledger.mpc.crypten_compat import fixed_point as in_default_encoding

    return in_default_encoding(tensor)


def _binary_encrypted(crypten: Any, output: Any, labels: Any) -> Any:
    predicted = _fixed_point(output > 0)  # encrypted 0/1
    positive = output.sigmoid()
    # the probability of each row's own label, clipped; one log per row. Not
    # log(input_in_01=True), which CrypTen's own BCE uses: it is 0.04 off near 1, where a
    # good model's rows are; the plain log is within 0.01 there
    own = labels * positive + (1 - labels) * (1 - positive)
    log_likelihood = own.hardtanh(LOG_LOSS_EPS, 1 - LOG_LOSS_EPS).log()
    counts = [(predicted * labels).sum(), predicted.sum(), labels.sum()]
    return crypten.stack([*counts, -log_likelihood.sum()])


def _multiclass_encrypted(crypten: Any, output: Any, labels: Any) -> Any:
    predicted = _fixed_point(output.argmax(dim=1, one_hot=True))  # encrypted one-hot rows
    per_class = [(predicted * labels).sum(dim=0), predicted.sum(dim=0), labels.sum(dim=0)]
    return crypten.cat(per_class)


def _regression_encrypted(crypten: Any, output: Any, labels: Any) -> Any:
    error = output - labels
    deviation = labels - labels.mean()  # a public 1/n times a sum
    sums = [(error * error).sum(), error.abs().sum(), (deviation * deviation).sum()]
    return crypten.stack(sums)


_ENCRYPTED: dict[str, Callable[[Any, Any, Any], Any]] = {
    "binary": _binary_encrypted,
    "multiclass": _multiclass_encrypted,
    "regression": _regression_encrypted,
}


# -- in plaintext (the reference) -----------------------------------------------------------


def plain_metrics(loss: str, output: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """`encrypted_metrics` in plain PyTorch (labels one-hot for cross-entropy)."""
    task = task_of(loss)
    aggregates = plain_aggregates(task, output, labels)
    return metrics_from_aggregates(task, aggregates, labels.shape[0], labels.shape[1])


def plain_aggregates(task: str, output: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """The aggregates the task opens under MPC, computed in float64."""
    output, labels = output.double(), labels.double()
    if task == "binary":
        predicted = (output > 0).double()
        positive = torch.sigmoid(output)
        own = labels * positive + (1 - labels) * (1 - positive)
        log_likelihood = own.clamp(LOG_LOSS_EPS, 1 - LOG_LOSS_EPS).log()
        counts = [(predicted * labels).sum(), predicted.sum(), labels.sum()]
        return [float(v) for v in [*counts, -log_likelihood.sum()]]
    if task == "multiclass":
        classes = labels.shape[1]
        predicted = torch.nn.functional.one_hot(output.argmax(dim=1), classes).double()
        per_class = [(predicted * labels).sum(dim=0), predicted.sum(dim=0), labels.sum(dim=0)]
        return torch.cat(per_class).tolist()
    error = output - labels
    deviation = labels - labels.mean()
    return [float((error**2).sum()), float(error.abs().sum()), float((deviation**2).sum())]


# -- from aggregates to metrics (pure) ------------------------------------------------------


def metrics_from_aggregates(
    task: str, aggregates: Sequence[float], rows: int, classes: int
) -> dict[str, float]:
    """The task's metrics (`METRICS_OF_TASK`) from its opened aggregates over ``rows`` test
    rows (``classes``: the labels' width, for multiclass), each clipped to its range."""
    if rows < 1:
        raise ValueError("test metrics need at least one test row")
    if task == "binary":
        return _binary_metrics(aggregates, rows)
    if task == "multiclass":
        return _multiclass_metrics(aggregates, rows, classes)
    if task == "regression":
        return _regression_metrics(aggregates, rows)
    raise ValueError(f"unknown task {task!r}")


def _count(value: float) -> int:
    """A sum of 0/1 values, opened from fixed point: an integer by construction."""
    return max(0, round(value))


def _ratio(numerator: float, denominator: float) -> float:
    """In [0, 1]; 0 for an empty denominator (scikit-learn's zero_division=0)."""
    if denominator <= 0:
        return 0.0
    return min(1.0, max(0.0, numerator / denominator))


def _binary_metrics(aggregates: Sequence[float], rows: int) -> dict[str, float]:
    true_positive, predicted, actual = (_count(v) for v in aggregates[:3])
    log_loss_sum = aggregates[3]
    true_negative = rows - predicted - actual + true_positive
    return {
        "test_accuracy": _ratio(true_positive + true_negative, rows),
        "test_precision": _ratio(true_positive, predicted),
        "test_recall": _ratio(true_positive, actual),
        "test_f1": _ratio(2 * true_positive, predicted + actual),
        "test_log_loss": max(0.0, log_loss_sum / rows),
    }


def _multiclass_metrics(aggregates: Sequence[float], rows: int, classes: int) -> dict[str, float]:
    if len(aggregates) != 3 * classes:
        raise ValueError(f"{len(aggregates)} aggregates for {classes} classes")
    counts = [_count(v) for v in aggregates]
    true_positive, predicted, actual = (counts[k * classes : (k + 1) * classes] for k in range(3))
    # the classes that occur in the labels or the predictions, as f1_score(average="macro")
    present = [c for c in range(classes) if predicted[c] + actual[c] > 0]
    f1s = [_ratio(2 * true_positive[c], predicted[c] + actual[c]) for c in present]
    return {
        "test_accuracy": _ratio(sum(true_positive), rows),
        "test_macro_f1": _ratio(sum(f1s), len(f1s)),
    }


def _regression_metrics(aggregates: Sequence[float], rows: int) -> dict[str, float]:
    squared, absolute, total = (max(0.0, v) for v in aggregates[:3])
    if total <= FIXED_POINT_RESOLUTION * rows:  # constant labels, as far as fixed point sees
        r2 = 1.0 if squared <= FIXED_POINT_RESOLUTION * rows else 0.0
    else:
        r2 = min(1.0, 1.0 - squared / total)
    return {"test_mse": squared / rows, "test_mae": absolute / rows, "test_r2": r2}
