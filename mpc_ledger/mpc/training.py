"""Joint training under MPC (vertical, horizontal): `run_training`.

The program is transport-agnostic: it calls CrypTen's public API only,
so the same function runs over the mTLS relay (`mpc_ledger.mpc.worker`) and
over CrypTen's own gloo transport (the benchmark's baseline). Every party
calls it with the same `TrainSpec` (`mpc_ledger.mpc.train_spec`, the SPMD
contract is stated there).

Training: a model built in PyTorch from a seed every party knows (a linear
layer, or an MLP with ReLU between its hidden layers; ``classes`` outputs
for cross-entropy, else one), imported with ``crypten.nn.from_pytorch``
(legacy ONNX exporter, see `crypten_compat`) and encrypted; mini-batch SGD
(``crypten.optim.SGD``: momentum and weight decay as in ``torch.optim.SGD``,
so `mpc_ledger.mpc.plaintext.run_plaintext` is the exact reference) on the
secret-shared data, in rank order or (``batch_order = "shuffled"``) a new public
permutation every epoch
(`mpc_ledger.mpc.preprocessing`: each party permutes its own shares, no
message; the result's ``batch_order_digest`` covers every epoch's order);
evaluation under MPC with only aggregates revealed (`mpc_ledger.mpc.evaluation`:
accuracy, precision, recall, F1 and log-loss for a binary model, accuracy
and macro-F1 for a multiclass one, MSE, MAE and R² for a regression);
the trained parameters revealed only to ``spec.recipients`` (everyone else
learns nothing about them).

Standardisation: with ``standardisation = "pooled"`` (horizontal) each party
shares its raw rows and the features are standardised under MPC with every
party's training rows' pooled mean and deviation (`preprocessing`); otherwise
each party standardised its own rows (vertical: its own columns) before
sharing, and a vertical owner hands its columns' mean and deviation in
`PartyData`, shared ``src`` = the owner. The model's recipients, and only
they, receive the statistics with the parameters as ``preprocessing.mean``
and ``preprocessing.scale`` (float32, one per feature, in the model's
feature order: the pooled ones, or each owner's own), so the model digest
covers them; a horizontal job standardised per party has no single
statistic and releases none. The first recipient then broadcasts the
model's digest (`model_digest`, SHA-256 over its canonical encoding) to the
data parties, so rank 0 can put the hash of a model it never sees on the
ledger. With ``spec.reveal_loss`` the mean training loss of each epoch is
revealed to every data party (one extra opening per epoch); otherwise it
never leaves the shares.

Cross-entropy labels are class indices 0..classes-1 in a (rows, 1) column;
the label owner one-hot encodes them *before* anything is shared (CrypTen's
cross-entropy takes one-hot targets), and refuses a value that is not a
class index before it sends a byte. The predicted class is the one-hot argmax
of the outputs, under MPC.

`run_training` reports progress through two optional callbacks: after a
step (at most every ``progress_interval_s``) and after each epoch, where
the caller (the worker) snapshots its transcript.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from mpc_ledger.mpc.crypten_compat import dealer_step_starts, sigmoid_approximation
from mpc_ledger.mpc.evaluation import encrypted_metrics
from mpc_ledger.mpc.model_codec import encode_model, model_digest_of_encoding
from mpc_ledger.mpc.preprocessing import (
    BatchOrderDigest,
    check_pooled_values,
    pooled_statistics,
    standardise,
)
from mpc_ledger.mpc.train_spec import (
    GRAD_THRESHOLD,
    MEAN_NAME,
    SCALE_NAME,
    PartyData,
    TrainSpec,
    build_torch_model,
    epoch_order,
    one_hot_labels,
    parameter_name,
)

__all__ = ["GRAD_THRESHOLD", "STEP_PARTS", "Progress", "model_digest", "run_training"]


def _plain_labels(spec: TrainSpec, data: PartyData) -> PartyData:
    """This party's labels as the model's targets: one-hot for cross-entropy, encoded
    locally before anything is shared (only the owner has values; see `_encrypt_layout`)."""
    if spec.loss != "cross_entropy":
        return data

    def encode(labels: torch.Tensor | None) -> torch.Tensor | None:
        if labels is None:
            return None
        _checked(labels, (labels.shape[0], 1), "labels")
        return one_hot_labels(labels, spec.classes)

    return dataclasses.replace(data, y_train=encode(data.y_train), y_test=encode(data.y_test))


def _encrypt_layout(
    crypten: Any, spec: TrainSpec, rank: int, world_size: int, split: str, data: PartyData
) -> tuple[Any, Any]:
    """The encrypted features and labels of one split, assembled from every party's part."""
    own_x = data.x_train if split == "train" else data.x_test
    own_y = data.y_train if split == "train" else data.y_test
    rows_per_rank = spec.train_rows_per_rank if split == "train" else spec.test_rows_per_rank
    width = spec.output_size  # of the targets: one-hot for cross-entropy
    if spec.layout == "vertical":
        rows = rows_per_rank[0]
        parts = []
        for owner in range(world_size):
            shape = (rows, spec.columns_per_rank[owner])
            plain = own_x if owner == rank and own_x is not None else torch.zeros(shape)
            parts.append(crypten.cryptensor(_checked(plain, shape, "features"), src=owner))
        features = crypten.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        label_plain = (
            own_y if rank == spec.label_rank and own_y is not None else torch.zeros(rows, width)
        )
        labels = crypten.cryptensor(
            _checked(label_plain, (rows, width), "labels"), src=spec.label_rank
        )
        return features, labels
    x_parts, y_parts = [], []
    for owner in range(world_size):
        rows = rows_per_rank[owner]
        x_plain = (
            own_x if owner == rank and own_x is not None else torch.zeros(rows, spec.n_features)
        )
        y_plain = own_y if owner == rank and own_y is not None else torch.zeros(rows, width)
        x_parts.append(
            crypten.cryptensor(_checked(x_plain, (rows, spec.n_features), "features"), src=owner)
        )
        y_parts.append(crypten.cryptensor(_checked(y_plain, (rows, width), "labels"), src=owner))
    return crypten.cat(x_parts, dim=0), crypten.cat(y_parts, dim=0)


def _checked(tensor: torch.Tensor, shape: tuple[int, ...], what: str) -> torch.Tensor:
    if tuple(tensor.shape) != tuple(shape):
        raise ValueError(
            f"this party's {what} have shape {tuple(tensor.shape)}, the job says {shape}"
        )
    return tensor.float()


def _loss(crypten: Any, spec: TrainSpec) -> Any:
    # Without reveal_loss the loss value is never read, so its forward (a log under MPC,
    # dozens of rounds a step) is skipped; the gradient does not use it (sigmoid - target,
    # softmax - target), so the model is the same.
    skip_forward = not spec.reveal_loss
    if spec.loss == "mse":
        return crypten.nn.MSELoss()
    if spec.loss == "bce":
        return crypten.nn.BCEWithLogitsLoss(skip_forward=skip_forward)

    # Not crypten.nn.CrossEntropyLoss: it squeezes its inputs, so a last batch of one row
    # becomes a (classes,) vector and its mean is taken over the classes. The tensor method
    # it calls keeps the batch dimension.
    def cross_entropy(output: Any, target: Any) -> Any:
        return output.cross_entropy(target, skip_forward=skip_forward)

    return cross_entropy


def _optimiser(crypten: Any, spec: TrainSpec, model: Any) -> Any:
    return crypten.optim.SGD(
        model.parameters(),
        spec.learning_rate,
        momentum=spec.momentum,
        weight_decay=spec.weight_decay,
        grad_threshold=spec.grad_threshold or None,  # 0: CrypTen's "no threshold"
    )


Progress = Callable[[dict[str, Any]], None]
# Called with a part's name as each part of a training step ends (a benchmark snapshots its
# counters there): "forward" (the model), "loss" (its forward: with BCE the sigmoid only,
# unless reveal_loss), "backward", "update" (the optimiser's step, its threshold included).
STEP_PARTS = ("forward", "loss", "backward", "update")


def run_training(
    crypten: Any,
    spec: TrainSpec,
    rank: int,
    world_size: int,
    data: PartyData,
    *,
    on_step: Progress | None = None,
    on_epoch: Progress | None = None,
    progress_interval_s: float = 1.0,
    on_step_start: Callable[[int], None] | None = None,
    on_step_part: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train under MPC; return the metric (all parties) and the model (recipients only).

    ``on_step_start(step)`` is called as each training step (from 1) starts, after set-up;
    ``on_step_part(part)`` as each of its `STEP_PARTS` ends."""
    part_ends = on_step_part or _no_part
    started = time.perf_counter()
    data = _plain_labels(spec, data)  # refuses a bad label before anything is shared
    if spec.standardisation == "pooled":  # refuses a value out of range, likewise
        check_pooled_values(data.x_train, "training")
        check_pooled_values(data.x_test, "test")
    x_train, y_train = _encrypt_layout(crypten, spec, rank, world_size, "train", data)
    x_test, y_test = _encrypt_layout(crypten, spec, rank, world_size, "test", data)
    statistics = None
    if spec.standardisation == "pooled":
        pooled = pooled_statistics(
            crypten, spec.train_rows_per_rank, spec.n_features, rank, data.x_train
        )
        chunk_rows = max(min(spec.batch_size, spec.n_train), spec.n_test, 1)
        x_train = standardise(crypten, x_train, pooled, chunk_rows)
        x_test = standardise(crypten, x_test, pooled, chunk_rows)
        statistics = (pooled.mean, pooled.scale)
    elif spec.layout == "vertical":
        statistics = _owner_statistics(crypten, spec, rank, world_size, data)
    torch_model = build_torch_model(spec)
    model = crypten.nn.from_pytorch(torch_model, torch.zeros(1, spec.n_features))
    model.encrypt(src=0)
    model.train()
    loss_fn = _loss(crypten, spec)
    optimiser = _optimiser(crypten, spec, model)
    order_digest = BatchOrderDigest()
    step, last_report = 0, 0.0
    # The spec's sigmoid for the training steps only: the evaluation's log-loss below takes
    # CrypTen's exact one, so the reported metrics do not depend on the approximation.
    with sigmoid_approximation(spec.sigmoid):
        for epoch in range(1, spec.epochs + 1):
            order = _epoch_order(spec, epoch, order_digest)
            loss_sum, batches = None, 0
            for start in range(0, spec.n_train, spec.batch_size):
                dealer_step_starts(spec, step + 1)  # party 0: plan the dealer's answers ahead
                if on_step_start is not None:
                    on_step_start(step + 1)
                stop = min(start + spec.batch_size, spec.n_train)
                output = model(_rows(x_train, order, start, stop))
                part_ends("forward")
                loss = loss_fn(output, _rows(y_train, order, start, stop))
                part_ends("loss")
                optimiser.zero_grad()
                loss.backward()
                part_ends("backward")
                optimiser.step()
                part_ends("update")
                step, batches = step + 1, batches + 1
                if spec.reveal_loss:  # adding shares is local; opened once per epoch
                    loss_sum = loss if loss_sum is None else loss_sum + loss
                now = time.perf_counter()
                if on_step is not None and now - last_report >= progress_interval_s:
                    last_report = now
                    on_step({"epoch": epoch, "step": step, "elapsed_s": now - started})
            report: dict[str, Any] = {
                "epoch": epoch,
                "step": step,
                "elapsed_s": time.perf_counter() - started,
            }
            if loss_sum is not None:
                report["loss"] = float(loss_sum.get_plain_text().item()) / batches
            if on_epoch is not None:
                on_epoch(report)
    train_seconds = time.perf_counter() - started
    model.eval()
    metrics = _evaluate(crypten, spec, model(x_test), y_test)
    revealed: dict[str, list[Any]] = {}
    for name, parameter in model.named_parameters():
        _reveal(spec, rank, revealed, parameter_name(name), parameter)
    if statistics is not None:
        _reveal(spec, rank, revealed, MEAN_NAME, statistics[0])
        _reveal(spec, rank, revealed, SCALE_NAME, statistics[1])
    digest = _share_model_digest(crypten, spec, revealed if rank == spec.recipients[0] else None)
    return {
        **metrics,
        "train_seconds": train_seconds,
        "model": revealed if rank in spec.recipients else None,
        "model_hash": digest.hex(),
        "batch_order_digest": order_digest.hexdigest(),
    }


def _no_part(_part: str) -> None:
    pass


def _reveal(spec: TrainSpec, rank: int, revealed: dict[str, Any], name: str, value: Any) -> None:
    """Open ``value`` to each recipient in turn (nobody else learns anything of it)."""
    for recipient in spec.recipients:
        plain = value.get_plain_text(dst=recipient)
        if recipient == rank:
            revealed[name] = plain.tolist()


def _epoch_order(spec: TrainSpec, epoch: int, digest: BatchOrderDigest) -> torch.Tensor | None:
    order = epoch_order(spec, epoch)
    digest.add(order if order is not None else torch.arange(spec.n_train))
    return order


def _rows(values: Any, order: torch.Tensor | None, start: int, stop: int) -> Any:
    """Rows start..stop of the epoch's order. Each party selects the same positions of its
    own shares (`index_select` copies shares: it opens nothing and sends nothing, so a
    shuffled epoch costs the same rounds and bytes as one in rank order)."""
    if order is None:
        return values[start:stop]
    return values.index_select(0, order[start:stop])


def _owner_statistics(
    crypten: Any, spec: TrainSpec, rank: int, world_size: int, data: PartyData
) -> tuple[Any, Any]:
    """Vertical: each owner's own columns' mean and deviation (its local standardisation),
    shared by that owner (no message) in the model's column order; mean 0, scale 1 for an
    owner that standardised nothing (data already standardised, as in the test harness)."""
    means, scales = [], []
    for owner in range(world_size):
        width = spec.columns_per_rank[owner]
        if width == 0:
            continue
        mean, scale = (
            torch.zeros(width, dtype=torch.float64),
            torch.ones(width, dtype=torch.float64),
        )
        if owner == rank and data.feature_mean is not None and data.feature_scale is not None:
            mean, scale = data.feature_mean.double(), data.feature_scale.double()
        means.append(crypten.cryptensor(_checked_vector(mean, width), src=owner))
        scales.append(crypten.cryptensor(_checked_vector(scale, width), src=owner))
    return crypten.cat(means), crypten.cat(scales)


def _checked_vector(values: torch.Tensor, width: int) -> torch.Tensor:
    if tuple(values.shape) != (width,):
        raise ValueError(f"this party's statistics have shape {tuple(values.shape)}, not {width}")
    return values


def model_digest(parameters: Mapping[str, Any]) -> bytes:
    """SHA-256 over the model's canonical encoding (`mpc_ledger.mpc.model_codec`):
    parameters by name, each as name, shape and float32 little-endian values."""
    return model_digest_of_encoding(encode_model(parameters))


def _share_model_digest(crypten: Any, spec: TrainSpec, revealed: dict[str, Any] | None) -> bytes:
    """The first recipient tells every data party the model's digest (a commitment only)."""
    source = spec.recipients[0]
    buffer = torch.zeros(32, dtype=torch.int64)
    if revealed is not None:
        buffer = torch.tensor(list(model_digest(revealed)), dtype=torch.int64)
    crypten.communicator.get().broadcast(buffer, source)
    return bytes(int(v) & 0xFF for v in buffer.tolist())


def _evaluate(crypten: Any, spec: TrainSpec, output: Any, labels: Any) -> dict[str, float]:
    """The test metrics (`mpc_ledger.mpc.evaluation`): only aggregates are opened, once,
    to every data party."""
    return encrypted_metrics(crypten, spec.loss, output, labels)
