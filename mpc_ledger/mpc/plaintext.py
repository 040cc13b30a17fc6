"""The plaintext reference: the same training as `mpc_ledger.mpc.training.run_training`
in plain PyTorch, the result an MPC run is compared to (tests and benchmarks)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from mpc_ledger.mpc.evaluation import plain_metrics
from mpc_ledger.mpc.preprocessing import pooled_statistics_plain, standardise_plain
from mpc_ledger.mpc.train_spec import (
    MEAN_NAME,
    SCALE_NAME,
    TrainSpec,
    build_torch_model,
    epoch_order,
    one_hot_labels,
)

__all__ = ["run_plaintext"]


def run_plaintext(spec: TrainSpec, full: dict[str, np.ndarray]) -> dict[str, Any]:
    """The same training in plain PyTorch (the reference the MPC result is compared to);
    ``full`` holds labels as (rows, 1) columns (class indices for cross-entropy), and the
    features as the parties share them: raw for pooled standardisation (standardised here
    with the exact pooled statistics, which the model then holds as MPC's does), else
    already standardised. The rows are visited in the MPC run's order (`epoch_order`)."""
    started = time.perf_counter()
    model = build_torch_model(spec)
    full, statistics = _plain_standardised(spec, full)
    x_train = torch.from_numpy(full["x_train"])
    y_train = _plain_targets(spec, torch.from_numpy(full["y_train"]))
    loss_fn: torch.nn.Module = {
        "mse": torch.nn.MSELoss,
        "bce": torch.nn.BCEWithLogitsLoss,
        "cross_entropy": torch.nn.CrossEntropyLoss,
    }[spec.loss]()
    optimiser = torch.optim.SGD(
        model.parameters(),
        lr=spec.learning_rate,
        momentum=spec.momentum,
        weight_decay=spec.weight_decay,
    )
    for epoch in range(1, spec.epochs + 1):
        order = epoch_order(spec, epoch)
        for start in range(0, len(x_train), spec.batch_size):
            stop = min(start + spec.batch_size, len(x_train))
            rows = slice(start, stop) if order is None else order[start:stop]
            optimiser.zero_grad()
            loss = loss_fn(model(x_train[rows]), y_train[rows])
            loss.backward()
            optimiser.step()
    train_seconds = time.perf_counter() - started
    with torch.no_grad():
        output = model(torch.from_numpy(full["x_test"]))
        labels = torch.from_numpy(full["y_test"])
        if spec.loss == "cross_entropy":  # the MPC run's labels are one-hot
            labels = one_hot_labels(labels, spec.classes)
        result = plain_metrics(spec.loss, output, labels)
    parameters = {name: p.detach().tolist() for name, p in model.named_parameters()}
    return {**result, "train_seconds": train_seconds, "model": {**parameters, **statistics}}


def _plain_standardised(
    spec: TrainSpec, full: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, list[float]]]:
    """Pooled: ``full`` standardised with its training rows' statistics, and those (as the
    model's entries); otherwise ``full`` as given and no entries."""
    if spec.standardisation != "pooled":
        return full, {}
    mean, scale = pooled_statistics_plain(full["x_train"])
    standardised = {
        **full,
        "x_train": standardise_plain(full["x_train"], mean, scale),
        "x_test": standardise_plain(full["x_test"], mean, scale),
    }
    return standardised, {MEAN_NAME: mean.tolist(), SCALE_NAME: scale.tolist()}


def _plain_targets(spec: TrainSpec, labels: torch.Tensor) -> torch.Tensor:
    """torch's cross-entropy takes class indices (rows,); the other losses the column."""
    if spec.loss != "cross_entropy":
        return labels
    return one_hot_labels(labels, spec.classes).argmax(dim=1)
