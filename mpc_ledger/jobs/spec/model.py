"""A job spec's names and limits, its domain types (`JobSpec`), and their protobuf form.

`JobSpec.to_proto`/`JobSpec.from_proto` are exact inverses (the record carries
the proto; the deterministic encoding is what is signed and hashed).

Rows are split the same way everywhere (`split_rows`): of ``n`` rows, the
last ``floor(n * test_fraction)`` are the test set.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mpc_ledger.errors import ConfigError
from mpc_ledger.jobs.datasets import RegisteredDataset
from mpc_ledger.model_kinds import LOSSES, MODEL_KINDS, SPEC_DEFAULT_LOSS, SPEC_LOSSES_OF
from mpc_ledger.mpc.tables import split_rows
from mpc_ledger.proto.v1 import jobs_pb2

__all__ = [
    "ALIGNMENTS",
    "BATCH_ORDERS",
    "DEFAULT_LOSS",
    "DEFAULT_PROTOCOL",
    "GRADIENT_THRESHOLD_ABSENT",
    "GRADIENT_THRESHOLD_MAX",
    "ID_TYPES",
    "LAYOUTS",
    "LOSSES",
    "LOSSES_OF",
    "MODEL_KINDS",
    "OPTIMISERS",
    "SIGMOIDS",
    "STANDARDISATIONS",
    "TUPLE_PROVIDERS",
    "JobDatasetRef",
    "JobSpec",
    "JobSpecError",
    "ModelSpec",
    "OptimiserSpec",
    "id_column_of",
    "split_rows",
]

LAYOUTS = ("vertical", "horizontal")
ALIGNMENTS = ("psi", "row-order")
ID_TYPES = ("int64", "string")
# The model kinds and losses, by the spec's (canonical) names: `mpc_ledger.model_kinds`.
DEFAULT_LOSS = SPEC_DEFAULT_LOSS
LOSSES_OF = SPEC_LOSSES_OF
OPTIMISERS = ("sgd",)
TUPLE_PROVIDERS = ("dealer", "trusted-first-party")
DEFAULT_PROTOCOL = "crypten-0.4.1-arithmetic"
# The proto's encodings: "" (the field absent) is what jobs did before the field existed.
BATCH_ORDERS = ("", "shuffled")  # rank order, or a new public permutation every epoch
STANDARDISATIONS = ("", "pooled")  # each party its own rows / owner its own columns, or pooled
# A bce job's training sigmoid: "" CrypTen's exact one, or its piecewise-linear interpolation
# (`mpc_ledger.mpc.crypten_compat`; the program's other approximations are for measurement).
SIGMOIDS = ("", "piecewise")
# The gradient threshold of a spec without one (CrypTen's default), and the largest allowed.
GRADIENT_THRESHOLD_ABSENT = 100.0
GRADIENT_THRESHOLD_MAX = 1e6

# Limits on everything a spec can ask for (TigerBeetle's "put a limit on everything").
NAME_MAX_CHARS = 100
DESCRIPTION_MAX_CHARS = 2000
DATASETS_MIN, DATASETS_MAX = 2, 16
FEATURES_MAX = 4096
HIDDEN_LAYERS_MAX, HIDDEN_SIZE_MAX = 8, 4096
CLASSES_MAX = 1000
EPOCHS_MAX = 10_000
BATCH_SIZE_MAX = 1 << 16
SEED_MAX = (1 << 63) - 1
LEARNING_RATE_MAX = 100.0
TEST_FRACTION_MAX = 0.5
RECIPIENTS_MAX = 16


class JobSpecError(ConfigError):
    """A job spec with problems; ``problems`` lists every one as ``field: message``."""

    def __init__(self, problems: list[str], *, path: Path | str | None = None) -> None:
        self.problems = tuple(problems)
        super().__init__("\n  ".join(["invalid job spec:", *problems]), path=path)


@dataclasses.dataclass(frozen=True)
class JobDatasetRef:
    dataset_id: str
    features: tuple[str, ...] = ()
    id_column: str = ""  # alignment "psi": "" = the dataset's registered id column


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    kind: str
    hidden_sizes: tuple[int, ...] = ()
    classes: int = 0


@dataclasses.dataclass(frozen=True)
class OptimiserSpec:
    kind: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0


@dataclasses.dataclass(frozen=True)
class JobSpec:
    name: str
    layout: str
    datasets: tuple[JobDatasetRef, ...]
    label: str
    model: ModelSpec
    loss: str
    optimiser: OptimiserSpec
    epochs: int
    batch_size: int
    recipients: tuple[str, ...]
    seed: int = 0
    test_fraction: float = 0.2
    reveal_training_loss: bool = False
    tuple_provider: str = "dealer"
    dealer: str = ""
    protocol: str = DEFAULT_PROTOCOL
    alignment: str = "row-order"
    description: str = ""
    batch_order: str = ""
    standardisation: str = ""
    sigmoid: str = ""
    # None: the field absent (a spec from before it existed), which is CrypTen's 100
    gradient_threshold: float | None = None

    @property
    def dataset_ids(self) -> tuple[str, ...]:
        return tuple(d.dataset_id for d in self.datasets)

    @property
    def output_size(self) -> int:
        """The model's output width: the class count for cross-entropy, else 1."""
        return self.model.classes if self.loss == "cross_entropy" else 1

    @property
    def effective_gradient_threshold(self) -> float:
        """The threshold SGD applies (0: none); an absent field is CrypTen's default."""
        if self.gradient_threshold is None:
            return GRADIENT_THRESHOLD_ABSENT
        return self.gradient_threshold

    def to_proto(self) -> jobs_pb2.JobSpec:
        message = jobs_pb2.JobSpec(
            name=self.name,
            description=self.description,
            layout=self.layout,
            alignment=self.alignment,
            datasets=[
                jobs_pb2.JobDataset(
                    dataset_id=d.dataset_id, features=list(d.features), id_column=d.id_column
                )
                for d in self.datasets
            ],
            label=self.label,
            model=jobs_pb2.ModelSpec(
                kind=self.model.kind,
                hidden_sizes=list(self.model.hidden_sizes),
                classes=self.model.classes,
            ),
            loss=self.loss,
            optimiser=jobs_pb2.OptimiserSpec(**dataclasses.asdict(self.optimiser)),
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            test_fraction=self.test_fraction,
            recipients=list(self.recipients),
            reveal_training_loss=self.reveal_training_loss,
            tuple_provider=self.tuple_provider,
            dealer=self.dealer,
            protocol=self.protocol,
            batch_order=self.batch_order,
            standardisation=self.standardisation,
            sigmoid=self.sigmoid,
        )
        if self.gradient_threshold is not None:
            message.gradient_threshold = self.gradient_threshold
        return message

    @classmethod
    def from_proto(cls, message: jobs_pb2.JobSpec) -> JobSpec:
        optimiser = message.optimiser
        return cls(
            name=message.name,
            description=message.description,
            layout=message.layout,
            alignment=message.alignment,
            datasets=tuple(
                JobDatasetRef(d.dataset_id, tuple(d.features), d.id_column)
                for d in message.datasets
            ),
            label=message.label,
            model=ModelSpec(
                message.model.kind, tuple(message.model.hidden_sizes), message.model.classes
            ),
            loss=message.loss,
            optimiser=OptimiserSpec(
                optimiser.kind,
                optimiser.learning_rate,
                optimiser.momentum,
                optimiser.weight_decay,
            ),
            epochs=message.epochs,
            batch_size=message.batch_size,
            seed=message.seed,
            test_fraction=message.test_fraction,
            recipients=tuple(message.recipients),
            reveal_training_loss=message.reveal_training_loss,
            tuple_provider=message.tuple_provider,
            dealer=message.dealer,
            protocol=message.protocol,
            batch_order=message.batch_order,
            standardisation=message.standardisation,
            sigmoid=message.sigmoid,
            gradient_threshold=(
                message.gradient_threshold if message.HasField("gradient_threshold") else None
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def id_column_of(ref: JobDatasetRef, dataset: RegisteredDataset) -> str:
    """The id column a psi job aligns ``dataset`` on: the spec's, else the registered one."""
    return ref.id_column or dataset.schema.id_column
