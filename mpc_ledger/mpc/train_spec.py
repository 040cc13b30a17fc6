"""What every party agrees on before training: `TrainSpec`, one party's `PartyData`, and
the pieces the MPC run and its plaintext reference share (the model built from the seed,
one-hot labels, each epoch's row order, CrypTen's parameter names).

SPMD contract: every party calls the same program with the same `TrainSpec`
and makes the same CrypTen calls in the same order; a party passes real
values only for what it owns (`PartyData`) and zero tensors of the right
shape otherwise, so every shape in the spec is known to all parties.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from mpc_ledger.model_kinds import LOSSES, PROGRAM_DEFAULT_LOSS, PROGRAM_KINDS, PROGRAM_LOSSES_OF
from mpc_ledger.mpc.preprocessing import batch_permutation

__all__ = [
    "BATCH_ORDERS",
    "DEFAULT_LOSS",
    "GRAD_THRESHOLD",
    "LAYOUTS",
    "LOSSES",
    "MEAN_NAME",
    "MODELS",
    "PIECEWISE_KNOTS",
    "SCALE_NAME",
    "SIGMOIDS",
    "STANDARDISATIONS",
    "PartyData",
    "TrainSpec",
    "build_torch_model",
    "epoch_order",
    "one_hot_labels",
    "parameter_name",
]

LAYOUTS = ("vertical", "horizontal")
# The model kinds by their program names (`mpc_ledger.model_kinds`, which maps a job
# spec's kind to one).
MODELS = PROGRAM_KINDS
DEFAULT_LOSS = PROGRAM_DEFAULT_LOSS
_LOSSES_OF = PROGRAM_LOSSES_OF
BATCH_ORDERS = ("", "shuffled")
STANDARDISATIONS = ("", "pooled")
# The sigmoid of BCE-with-logits under MPC (`crypten_compat.sigmoid_approximation`, which
# states each one's rounds): "exact" is CrypTen's default (exp and a reciprocal, dozens of
# rounds), the others trade accuracy for rounds. The plaintext reference stays exact.
# Measured (benchmarks/step_breakdown.py, breast cancer, 3 epochs on every row): piecewise
# (a new job's default, `mpc_ledger.jobs.spec`) and chebyshev match plaintext's accuracy,
# piecewise also its parameters (0.013; chebyshev 0.074); poly3 and linear are unbounded
# and do not (poly3 diverges). Jobs may name exact and piecewise; the others are kept for
# measurement.
SIGMOIDS = ("exact", "piecewise", "chebyshev", "poly3", "linear")
# The piecewise sigmoid's knots (`crypten_compat`: the interpolation between them, one
# comparison of the logits against all of them at once, so the dealer's bounds count them).
PIECEWISE_KNOTS = tuple(float(k) for k in (-8, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 8))
# CrypTen's own guard against a wrapped-around share: a gradient element larger than
# this is zeroed (what `crypten.nn.Module.update_parameters` does by default).
GRAD_THRESHOLD = 100.0
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
    # one of SIGMOIDS (bce only: no other loss has a sigmoid)
    sigmoid: str = "exact"
    # SGD zeroes a gradient element above this magnitude; 0: no guard (its comparison,
    # a square and a product per parameter tensor, cost rounds every step)
    grad_threshold: float = GRAD_THRESHOLD

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
        if self.sigmoid not in SIGMOIDS:
            raise ValueError(f"sigmoid {self.sigmoid!r} is not one of {SIGMOIDS}")
        if self.sigmoid != "exact" and self.loss != "bce":
            raise ValueError(f"sigmoid {self.sigmoid!r} is for bce; a {self.loss} model has none")
        if self.sigmoid != "exact" and self.reveal_loss:
            # the loss forward takes a log of the sigmoid, which an approximation can take
            # outside (0, 1): the revealed loss would mean nothing
            raise ValueError(f"sigmoid {self.sigmoid!r} cannot reveal the loss (reveal_loss)")
        if not 0 <= self.grad_threshold < float("inf"):
            raise ValueError("grad_threshold must be 0 (none) or a positive finite number")

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


def epoch_order(spec: TrainSpec, epoch: int) -> torch.Tensor | None:
    """The training rows' order in ``epoch`` (from 1); None for rank order (plain slices)."""
    if spec.batch_order != "shuffled":
        return None
    return batch_permutation(spec.seed, epoch, spec.n_train)


def parameter_name(name: str) -> str:
    """CrypTen names parameters after ONNX initialisers ("0.weight.data"); use PyTorch's."""
    return name.removesuffix(".data")
