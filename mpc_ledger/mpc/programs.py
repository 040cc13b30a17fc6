"""The CrypTen programs a worker runs, in one place: what each is and where it lives.

A job manifest names its program (`mpc_ledger.mpc.worker`): ``"train"`` is
`mpc_ledger.mpc.training.run_training` on a `TrainSpec`
(`mpc_ledger.mpc.train_spec`), ``"conformance"`` is
`mpc_ledger.mpc.conformance.run_conformance`. Beside them:

- `mpc_ledger.mpc.plaintext`: the plaintext reference an MPC result is compared to;
- `mpc_ledger.mpc.sample_data`: the breast-cancer sample data and one party's cut of it.

This module re-exports their public names (the import path older code uses).
"""

from __future__ import annotations

from mpc_ledger.mpc.conformance import conformance_inputs, flat, mlp_step_reference, run_conformance
from mpc_ledger.mpc.plaintext import run_plaintext
from mpc_ledger.mpc.sample_data import breast_cancer_split, labels_column, party_data
from mpc_ledger.mpc.train_spec import (
    BATCH_ORDERS,
    DEFAULT_LOSS,
    LAYOUTS,
    LOSSES,
    MEAN_NAME,
    MODELS,
    SCALE_NAME,
    STANDARDISATIONS,
    PartyData,
    TrainSpec,
    build_torch_model,
    epoch_order,
    one_hot_labels,
)
from mpc_ledger.mpc.training import GRAD_THRESHOLD, model_digest, run_training

__all__ = [
    "BATCH_ORDERS",
    "DEFAULT_LOSS",
    "GRAD_THRESHOLD",
    "LAYOUTS",
    "LOSSES",
    "MEAN_NAME",
    "MODELS",
    "SCALE_NAME",
    "STANDARDISATIONS",
    "PartyData",
    "TrainSpec",
    "breast_cancer_split",
    "build_torch_model",
    "conformance_inputs",
    "epoch_order",
    "flat",
    "labels_column",
    "mlp_step_reference",
    "model_digest",
    "one_hot_labels",
    "party_data",
    "run_conformance",
    "run_plaintext",
    "run_training",
]
