"""CrypTen programs a worker runs: joint training (vertical, horizontal) and a conformance suite.

The programs are transport-agnostic: they call CrypTen's public API only,
so the same function runs over the mTLS relay (`mpc_ledger.mpc.worker`) and
over CrypTen's own gloo transport (the benchmark's baseline).

SPMD contract: every party calls the same function with the same `TrainSpec`
and makes the same CrypTen calls in the same order; a party passes real
values only for what it owns (`PartyData`) and zero tensors of the right
shape otherwise, so every shape in the spec is known to all parties.

Training: a model built in PyTorch from a seed every party knows (a linear
layer, or an MLP with ReLU between its hidden layers; ``classes`` outputs
for cross-entropy, else one), imported with ``crypten.nn.from_pytorch``
(legacy ONNX exporter, see `crypten_compat`) and encrypted; mini-batch SGD
(``crypten.optim.SGD``: momentum and weight decay as in ``torch.optim.SGD``,
so `run_plaintext` is the exact reference) on the secret-shared data, in rank
order or (``batch_order = "shuffled"``) a new public permutation every epoch
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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from mpc_ledger.mpc.evaluation import encrypted_metrics, plain_metrics
from mpc_ledger.mpc.model_codec import encode_model, model_digest_of_encoding
from mpc_ledger.mpc.preprocessing import (
    BatchOrderDigest,
    batch_permutation,
    check_pooled_values,
    pooled_statistics,
    pooled_statistics_plain,
    standardise,
    standardise_plain,
)

__all__ = [
    "DEFAULT_LOSS",
    "LAYOUTS",
    "LOSSES",
    "MODELS",
    "PartyData",
    "TrainSpec",
    "breast_cancer_split",
    "build_torch_model",
    "conformance_inputs",
    "model_digest",
    "one_hot_labels",
    "party_data",
    "run_conformance",
    "run_plaintext",
    "run_training",
]

LAYOUTS = ("vertical", "horizontal")
MODELS = ("logistic", "linear", "softmax", "mlp")
LOSSES = ("bce", "mse", "cross_entropy")
DEFAULT_LOSS = {"logistic": "bce", "linear": "mse", "softmax": "cross_entropy", "mlp": "bce"}
_LOSSES_OF = {
    "logistic": ("bce",),
    "linear": ("mse",),
    "softmax": ("cross_entropy",),
    "mlp": LOSSES,
}
# CrypTen's own guard against a wrapped-around share: a gradient element larger than
# this is zeroed (what `crypten.nn.Module.update_parameters` does by default).
GRAD_THRESHOLD = 100.0
BATCH_ORDERS = ("", "shuffled")
STANDARDISATIONS = ("", "pooled")
# The statistics the model expects its inputs standardised with, released with it.
MEAN_NAME, SCALE_NAME = "preprocessing.mean", "preprocessing.scale"


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """What every party agrees on before training (the job spec's MPC part)."""

    layout: str
    model: str
    n_features: int
    # vertical: columns held by each data rank, in column order
    columns_per_rank: tuple[int, ...] = ()
    label_rank: int = 0
    # rows of the training / test set held by each data rank (horizontal), or
    # the shared row counts (vertical: one entry each)
    train_rows_per_rank: tuple[int, ...] = ()
    test_rows_per_rank: tuple[int, ...] = ()
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 0.5
    # mlp: the hidden layers' widths (an int is read as one layer, as before)
    hidden: tuple[int, ...] = (8,)
    seed: int = 0
    recipients: tuple[int, ...] = (0,)
    reveal_loss: bool = False
    # "" is the model's default loss (DEFAULT_LOSS); an mlp takes any of LOSSES
    loss: str = ""
    # cross_entropy: the number of classes (labels are 0..classes-1); else 0
    classes: int = 0
    momentum: float = 0.0
    weight_decay: float = 0.0
    # "shuffled": the training rows in a new public order every epoch
    # (`preprocessing.batch_permutation`); "": in rank order, the same every epoch
    batch_order: str = ""
    # "pooled" (horizontal): the raw rows are shared and standardised under MPC with every
    # party's training rows' statistics; "": each party standardised its own rows (vertical:
    # its own columns) before sharing them
    standardisation: str = ""

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout {self.layout!r} is not one of {LAYOUTS}")
        if self.model not in MODELS:
            raise ValueError(f"model {self.model!r} is not one of {MODELS}")
        if self.layout == "vertical" and sum(self.columns_per_rank) != self.n_features:
            raise ValueError("vertical layout: columns_per_rank must add up to n_features")
        hidden: Any = self.hidden
        # frozen: normalise through object.__setattr__ (an int or a JSON list in, a tuple kept)
        object.__setattr__(self, "hidden", (hidden,) if isinstance(hidden, int) else tuple(hidden))
        if not self.loss:
            object.__setattr__(self, "loss", DEFAULT_LOSS[self.model])
        if self.loss not in _LOSSES_OF[self.model]:
            allowed = " or ".join(_LOSSES_OF[self.model])
            raise ValueError(f"a {self.model} model trains with {allowed}, not {self.loss!r}")
        if self.loss == "cross_entropy" and self.classes < 2:
            raise ValueError("cross_entropy needs classes >= 2")
        if self.loss != "cross_entropy" and self.classes != 0:
            raise ValueError("only a model trained with cross_entropy has classes")
        if self.model == "mlp" and (not self.hidden or min(self.hidden) < 1):
            raise ValueError("an mlp needs at least one hidden layer, each at least 1 wide")
        if not 0 <= self.momentum < 1:
            raise ValueError("momentum must be at least 0 and less than 1")
        if not 0 <= self.weight_decay < 1:
            raise ValueError("weight_decay must be at least 0 and less than 1")
        if self.batch_order not in BATCH_ORDERS:
            raise ValueError(f"batch_order {self.batch_order!r} is not one of {BATCH_ORDERS}")
        if self.standardisation not in STANDARDISATIONS:
            raise ValueError(
                f"standardisation {self.standardisation!r} is not one of {STANDARDISATIONS}"
            )
        if self.standardisation == "pooled" and self.layout != "horizontal":
            raise ValueError("pooled standardisation is for horizontal jobs")

    @property
    def output_size(self) -> int:
        """The model's output width: the class count for cross-entropy, else 1."""
        return self.classes if self.loss == "cross_entropy" else 1

    @property
    def n_train(self) -> int:
        return (
            sum(self.train_rows_per_rank)
            if self.layout == "horizontal"
            else self.train_rows_per_rank[0]
        )

    @property
    def n_test(self) -> int:
        return (
            sum(self.test_rows_per_rank)
            if self.layout == "horizontal"
            else self.test_rows_per_rank[0]
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TrainSpec:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - fields
        if unknown:
            raise ValueError(f"unknown training spec fields: {sorted(unknown)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class PartyData:
    """One party's own part of the data (None where it holds nothing); with the mean and
    deviation it standardised its own features with, where it did (`worker_bridge`)."""

    x_train: torch.Tensor | None
    y_train: torch.Tensor | None
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    feature_mean: torch.Tensor | None = None
    feature_scale: torch.Tensor | None = None


def breast_cancer_split(seed: int = 0, rows: int | None = None) -> dict[str, np.ndarray]:
    """scikit-learn's breast-cancer data (shipped, no download), standardised, 75/25 split."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    features, labels = load_breast_cancer(return_X_y=True)
    if rows is not None:
        features, labels = features[:rows], labels[:rows]
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.25, random_state=seed, stratify=labels
    )
    scaler = StandardScaler().fit(x_train)
    return {
        "x_train": scaler.transform(x_train).astype(np.float32),
        "x_test": scaler.transform(x_test).astype(np.float32),
        "y_train": labels_column(y_train),
        "y_test": labels_column(y_test),
    }


def labels_column(labels: np.ndarray) -> np.ndarray:
    return labels.astype(np.float32).reshape(-1, 1)


def party_data(spec: TrainSpec, rank: int, full: dict[str, np.ndarray]) -> PartyData:
    """Cut one party's part out of a whole data set (test and benchmark harnesses only)."""

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    if spec.layout == "vertical":
        start = sum(spec.columns_per_rank[:rank])
        stop = start + spec.columns_per_rank[rank]
        own_labels = rank == spec.label_rank
        return PartyData(
            tensor(full["x_train"][:, start:stop]),
            tensor(full["y_train"]) if own_labels else None,
            tensor(full["x_test"][:, start:stop]),
            tensor(full["y_test"]) if own_labels else None,
        )
    train_start = sum(spec.train_rows_per_rank[:rank])
    train_stop = train_start + spec.train_rows_per_rank[rank]
    test_start = sum(spec.test_rows_per_rank[:rank])
    test_stop = test_start + spec.test_rows_per_rank[rank]
    return PartyData(
        tensor(full["x_train"][train_start:train_stop]),
        tensor(full["y_train"][train_start:train_stop]),
        tensor(full["x_test"][test_start:test_stop]),
        tensor(full["y_test"][test_start:test_stop]),
    )


def build_torch_model(spec: TrainSpec) -> torch.nn.Module:
    """The model every party builds identically from ``spec.seed`` (public initial weights)."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(spec.seed)
    try:
        if spec.model == "mlp":
            layers: list[torch.nn.Module] = []
            width = spec.n_features
            for size in spec.hidden:
                layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
                width = size
            layers.append(torch.nn.Linear(width, spec.output_size))
            return torch.nn.Sequential(*layers)
        return torch.nn.Linear(spec.n_features, spec.output_size)
    finally:
        torch.random.set_rng_state(generator_state)


def one_hot_labels(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Class indices, a (rows, 1) column, as (rows, classes) one-hot rows.

    ValueError, naming the first bad row (counted from 1) but never its value
    (the reason may reach the ledger), for anything that is not an integer in
    [0, classes).
    """
    flat = labels.reshape(-1).double()
    bad = ~torch.isfinite(flat) | (flat != flat.round()) | (flat < 0) | (flat >= classes)
    if bool(bad.any()):
        row = int(bad.nonzero()[0].item())
        raise ValueError(
            f"label row {row + 1} does not hold a class index (an integer from 0 to {classes - 1})"
        )
    return torch.nn.functional.one_hot(flat.long(), classes).float()


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
    if spec.loss == "mse":
        return crypten.nn.MSELoss()
    if spec.loss == "bce":
        return crypten.nn.BCEWithLogitsLoss()
    # Not crypten.nn.CrossEntropyLoss: it squeezes its inputs, so a last batch of one row
    # becomes a (classes,) vector and its mean is taken over the classes. The tensor method
    # it calls keeps the batch dimension. Without reveal_loss the loss value is never read,
    # so its forward (a log under MPC) is skipped; the gradient (softmax - target) is exact.
    skip_forward = not spec.reveal_loss

    def cross_entropy(output: Any, target: Any) -> Any:
        return output.cross_entropy(target, skip_forward=skip_forward)

    return cross_entropy


def _optimiser(crypten: Any, spec: TrainSpec, model: Any) -> Any:
    return crypten.optim.SGD(
        model.parameters(),
        spec.learning_rate,
        momentum=spec.momentum,
        weight_decay=spec.weight_decay,
        grad_threshold=GRAD_THRESHOLD,
    )


Progress = Callable[[dict[str, Any]], None]


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
) -> dict[str, Any]:
    """Train under MPC; return the metric (all parties) and the model (recipients only)."""
    from mpc_ledger.mpc.crypten_compat import dealer_step_starts  # (it imports this module)

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
    for epoch in range(1, spec.epochs + 1):
        order = _epoch_order(spec, epoch, order_digest)
        loss_sum, batches = None, 0
        for start in range(0, spec.n_train, spec.batch_size):
            dealer_step_starts(spec, step + 1)  # party 0: plan the dealer's answers ahead
            stop = min(start + spec.batch_size, spec.n_train)
            output = model(_rows(x_train, order, start, stop))
            loss = loss_fn(output, _rows(y_train, order, start, stop))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
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
        _reveal(spec, rank, revealed, _parameter_name(name), parameter)
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


def _reveal(spec: TrainSpec, rank: int, revealed: dict[str, Any], name: str, value: Any) -> None:
    """Open ``value`` to each recipient in turn (nobody else learns anything of it)."""
    for recipient in spec.recipients:
        plain = value.get_plain_text(dst=recipient)
        if recipient == rank:
            revealed[name] = plain.tolist()


def epoch_order(spec: TrainSpec, epoch: int) -> torch.Tensor | None:
    """The training rows' order in ``epoch`` (from 1); None for rank order (plain slices)."""
    if spec.batch_order != "shuffled":
        return None
    return batch_permutation(spec.seed, epoch, spec.n_train)


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


# --- conformance ---------------------------------------------------------------------------


def conformance_inputs(seed: int = 7) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randn(4, 5, generator=generator),
        "y": torch.randn(4, 5, generator=generator),
        "w": torch.randn(5, 3, generator=generator),
        "mlp_x": torch.randn(6, 5, generator=generator),
        "mlp_y": (torch.rand(6, 1, generator=generator) > 0.5).float(),
    }


def run_conformance(crypten: Any, rank: int, world_size: int) -> dict[str, Any]:
    """Each operation on inputs from different parties, revealed to all (compare to plaintext)."""
    inputs = conformance_inputs()
    last = world_size - 1

    def share(name: str, owner: int) -> Any:
        value = inputs[name]
        plain = value if rank == owner else torch.zeros_like(value)
        return crypten.cryptensor(plain, src=owner)

    x, y, w = share("x", 0), share("y", 1 % world_size), share("w", last)
    results: dict[str, Any] = {
        "add": x + y,
        "mul": x * y,
        "matmul": x.matmul(w),
        "lt": x < y,
        "gt": x > y,
        "relu": x.relu(),
        "sigmoid": x.sigmoid(),
        "softmax": x.softmax(dim=1),
    }
    revealed = {name: value.get_plain_text().tolist() for name, value in results.items()}
    revealed["mlp_step"] = _mlp_step(crypten, share("mlp_x", 0), share("mlp_y", last))
    return revealed


def mlp_step_reference() -> dict[str, Any]:
    """One SGD step of the conformance MLP in plain PyTorch."""
    inputs = conformance_inputs()
    model = _conformance_mlp()
    loss = torch.nn.BCEWithLogitsLoss()(model(inputs["mlp_x"]), inputs["mlp_y"])
    loss.backward()
    with torch.no_grad():
        for parameter in model.parameters():
            assert parameter.grad is not None
            parameter.sub_(0.1 * parameter.grad)
    return {name: p.detach().tolist() for name, p in model.named_parameters()}


def _conformance_mlp() -> torch.nn.Module:
    spec = TrainSpec(
        layout="horizontal",
        model="mlp",
        n_features=5,
        hidden=(4,),
        seed=11,
        train_rows_per_rank=(6,),
        test_rows_per_rank=(0,),
    )
    return build_torch_model(spec)


def _mlp_step(crypten: Any, features: Any, labels: Any) -> dict[str, Any]:
    model = crypten.nn.from_pytorch(_conformance_mlp(), torch.zeros(1, 5))
    model.encrypt(src=0)
    model.train()
    loss = crypten.nn.BCEWithLogitsLoss()(model(features), labels)
    model.zero_grad()
    loss.backward()
    model.update_parameters(0.1)
    return {_parameter_name(n): p.get_plain_text().tolist() for n, p in model.named_parameters()}


def _parameter_name(name: str) -> str:
    """CrypTen names parameters after ONNX initialisers ("0.weight.data"); use PyTorch's."""
    return name.removesuffix(".data")


def flat(values: Sequence[Any]) -> list[float]:
    return torch.tensor(values, dtype=torch.float64).flatten().tolist()
