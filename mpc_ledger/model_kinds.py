"""The one model vocabulary: every model kind a job can train, once, with both its spellings.

A model kind has one canonical name, the job spec's: ``logistic_regression``,
``linear_regression``, ``softmax_regression``, ``mlp``. It is what a
scientist writes, what a policy allows, and what a `JobSubmission` carries,
so it is hashed into committed records (the submission, the manifest hash,
each owner's policy hash); changing it would change what old chains say, so
it stays as it is.

The training program (`mpc_ledger.mpc.train_spec.TrainSpec`) and the model
file (`mpc_ledger.mpc.model_file`, whose ``kind`` is already written in
files users hold) name the same kinds by a short program name (``logistic``,
``linear``, ``softmax``, ``mlp``). That spelling is not a second vocabulary:
it is derived from `KINDS` here, mapped at the one boundary where a job
spec becomes a training program (`mpc_ledger.jobs.worker_bridge`) and where
a model file is written (`mpc_ledger.client`), through `PROGRAM_MODELS`.

Each kind also says which losses it trains with and its default one, so the
spec's checks and the program's agree by construction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

__all__ = [
    "KINDS",
    "LOSSES",
    "MODEL_KINDS",
    "PROGRAM_DEFAULT_LOSS",
    "PROGRAM_KINDS",
    "PROGRAM_LOSSES_OF",
    "PROGRAM_MODELS",
    "SPEC_DEFAULT_LOSS",
    "SPEC_LOSSES_OF",
    "ModelKind",
]

LOSSES = ("bce", "mse", "cross_entropy")


@dataclasses.dataclass(frozen=True)
class ModelKind:
    name: str  # the job spec's (canonical; on the ledger)
    program_name: str  # the training program's and the model file's
    default_loss: str
    losses: tuple[str, ...]


KINDS = (
    ModelKind("logistic_regression", "logistic", "bce", ("bce",)),
    ModelKind("linear_regression", "linear", "mse", ("mse",)),
    ModelKind("softmax_regression", "softmax", "cross_entropy", ("cross_entropy",)),
    ModelKind("mlp", "mlp", "bce", LOSSES),
)

# By the spec's (canonical) name.
MODEL_KINDS = tuple(kind.name for kind in KINDS)
SPEC_DEFAULT_LOSS: Mapping[str, str] = {kind.name: kind.default_loss for kind in KINDS}
SPEC_LOSSES_OF: Mapping[str, tuple[str, ...]] = {kind.name: kind.losses for kind in KINDS}
# The spec's name -> the program's.
PROGRAM_MODELS: Mapping[str, str] = {kind.name: kind.program_name for kind in KINDS}
# By the program's name.
PROGRAM_KINDS = tuple(kind.program_name for kind in KINDS)
PROGRAM_DEFAULT_LOSS: Mapping[str, str] = {kind.program_name: kind.default_loss for kind in KINDS}
PROGRAM_LOSSES_OF: Mapping[str, tuple[str, ...]] = {
    kind.program_name: kind.losses for kind in KINDS
}
