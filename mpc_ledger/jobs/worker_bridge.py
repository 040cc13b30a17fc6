"""From a ledger job manifest and this party's own files to what a CrypTen worker runs.

Theory of operation: `mpc_ledger.jobs.manifest.JobManifest` is what every
party derived from the ledger; `mpc_ledger.mpc.worker` takes its own small
JSON manifest (ranks, tuple provider, program). `train_spec_for` maps the
job spec onto the training program's `TrainSpec` (the same on every party,
so the SPMD contract holds) and refuses what the program cannot run yet;
`worker_manifest` adds this party's data source: its catalogue entry, the
registered fingerprint, the feature and label columns and the row split.

`load_local_data` runs *in the worker*, before CrypTen starts: it reads the
file through the catalogue entry, recomputes the fingerprint over exactly
the rows it reads and refuses to go on if it differs from the registered
one (a file changed between the runner's check and the worker's read), then
cuts the features and label, standardises this party's own feature columns
with its own training rows' mean and deviation (local preprocessing; for a
vertical job that is the same as standardising the joined table) and splits
train (first rows) from test (last rows), as `jobs.spec.split_rows` says.

The daemon side works on plain JSON (`train_spec_for` returns the fields of
`mpc_ledger.mpc.programs.TrainSpec`, which the worker checks), so the
party daemon never imports torch or CrypTen.

Contract: the worker manifest holds a local path and is written 0600 in the
party's own data directory; no value of the data is ever written anywhere.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpc_ledger.jobs.catalogue import load_entry
from mpc_ledger.jobs.datafiles import read_rows
from mpc_ledger.jobs.datasets import FingerprintBuilder
from mpc_ledger.jobs.manifest import JobManifest, ManifestParty

if TYPE_CHECKING:  # the daemon never imports torch: only the worker does
    from mpc_ledger.mpc.programs import PartyData, TrainSpec

__all__ = [
    "DataChangedError",
    "UnsupportedJobError",
    "load_local_data",
    "train_spec_for",
    "worker_manifest",
]

_MODELS = {"logistic_regression": "logistic", "linear_regression": "linear", "mlp": "mlp"}
_LOSSES = {"logistic": ("bce",), "linear": ("mse",), "mlp": ("bce",)}


class UnsupportedJobError(ValueError):
    """The job is valid on the ledger but this release's training program cannot run it."""


class DataChangedError(RuntimeError):
    """The file's rows no longer have the registered fingerprint."""


def train_spec_for(manifest: JobManifest) -> dict[str, Any]:
    """The `TrainSpec` fields (as JSON) of the job; `UnsupportedJobError` if it cannot run."""
    spec = manifest.spec
    model = _MODELS.get(spec.model.kind)
    if model is None:
        raise UnsupportedJobError(f"model {spec.model.kind!r} is not supported by this runner yet")
    if spec.loss not in _LOSSES[model]:
        raise UnsupportedJobError(f"loss {spec.loss!r} with {spec.model.kind!r} is not supported")
    hidden = spec.model.hidden_sizes
    if model == "mlp" and len(hidden) != 1:
        raise UnsupportedJobError("an mlp with other than one hidden layer is not supported yet")
    optimiser = spec.optimiser
    if optimiser.momentum or optimiser.weight_decay:
        raise UnsupportedJobError("sgd momentum and weight decay are not supported yet")
    data = [p for p in manifest.parties if p.role == "data"]
    if any(p.test_rows == 0 for p in data) and spec.layout == "vertical":
        raise UnsupportedJobError("a job without test rows has no test metric to report")
    if spec.layout == "horizontal" and sum(p.test_rows for p in data) == 0:
        raise UnsupportedJobError("a job without test rows has no test metric to report")
    vertical = spec.layout == "vertical"
    return {
        "layout": spec.layout,
        "model": model,
        "n_features": manifest.n_features,
        "columns_per_rank": [len(p.feature_columns) for p in data] if vertical else [],
        "label_rank": manifest.label_rank if manifest.label_rank is not None else 0,
        "train_rows_per_rank": [data[0].train_rows] if vertical else [p.train_rows for p in data],
        "test_rows_per_rank": [data[0].test_rows] if vertical else [p.test_rows for p in data],
        "epochs": spec.epochs,
        "batch_size": spec.batch_size,
        "learning_rate": optimiser.learning_rate,
        "hidden": hidden[0] if hidden else 8,
        "seed": spec.seed,
        "recipients": list(manifest.recipient_ranks),
        "reveal_loss": spec.reveal_training_loss,
    }


def worker_manifest(
    manifest: JobManifest,
    party: ManifestParty,
    catalogue_path: Path | None,
    *,
    peer_timeout_s: float,
) -> dict[str, Any]:
    """The worker's manifest (`mpc_ledger.mpc.worker.JobManifest` as JSON) for ``party``
    (``catalogue_path``: its catalogue entry; None for the dealer)."""
    train_spec = train_spec_for(manifest)
    data: dict[str, Any] = {}
    if party.role == "data":
        assert catalogue_path is not None
        data = {
            "source": "file",
            "catalogue": str(catalogue_path),
            "dataset_id": party.dataset_id,
            "fingerprint": party.dataset_fingerprint.hex(),
            "features": list(party.feature_columns),
            "label": manifest.spec.label if party.holds_label else "",
            "train_rows": party.train_rows,
            "test_rows": party.test_rows,
        }
    return {
        "job_id": manifest.job_id.hex(),
        "members": list(manifest.participants),
        "world_size": manifest.world_size,
        "tuple_provider": manifest.spec.tuple_provider,
        "allow_trusted_first_party": False,
        "peer_timeout_s": peer_timeout_s,
        "program": {"name": "train", "spec": train_spec, "data": data},
    }


def load_local_data(data: dict[str, Any], spec: TrainSpec, rank: int) -> PartyData:
    """This party's part, re-fingerprinted (see the module docstring). In the worker."""
    import numpy as np
    import torch

    from mpc_ledger.mpc.programs import PartyData

    entry = load_entry(Path(data["catalogue"]))
    if entry.dataset_id != data["dataset_id"]:
        raise ValueError(f"catalogue entry names {entry.dataset_id!r}, not {data['dataset_id']!r}")
    builder = FingerprintBuilder(entry.schema)
    names = entry.schema.names
    features = [names.index(c) for c in data["features"]]
    label = names.index(data["label"]) if data["label"] else None
    x_rows: list[list[float]] = []
    y_rows: list[float] = []
    for row in read_rows(entry.path, entry.schema):
        builder.add(row)
        x_rows.append([_number(row[i], names[i]) for i in features])
        if label is not None:
            y_rows.append(_number(row[label], names[label]))
    if builder.result().fingerprint.hex() != data["fingerprint"]:
        raise DataChangedError(
            f"dataset {entry.dataset_id!r} changed since it was registered "
            f"({entry.path} no longer has the registered fingerprint)"
        )
    train, test = int(data["train_rows"]), int(data["test_rows"])
    if len(x_rows) != train + test:
        raise DataChangedError(
            f"dataset {entry.dataset_id!r} has {len(x_rows)} rows, not {train + test}"
        )
    x = np.asarray(x_rows, dtype=np.float64).reshape(len(x_rows), len(features))
    mean = x[:train].mean(axis=0)
    deviation = x[:train].std(axis=0)
    deviation[deviation == 0] = 1.0
    x = ((x - mean) / deviation).astype(np.float32)
    y = np.asarray(y_rows, dtype=np.float32).reshape(-1, 1) if label is not None else None
    del rank  # the split is the same for every rank; kept for the call's symmetry
    return PartyData(
        torch.from_numpy(np.ascontiguousarray(x[:train])),
        torch.from_numpy(np.ascontiguousarray(y[:train])) if y is not None else None,
        torch.from_numpy(np.ascontiguousarray(x[train:])),
        torch.from_numpy(np.ascontiguousarray(y[train:])) if y is not None else None,
    )


def _number(value: object, column: str) -> float:
    if value is None:
        raise ValueError(f"column {column!r} holds a null; the job needs a value in every row")
    if isinstance(value, bool | int | float):
        number = float(value)
        if math.isfinite(number):
            return number
    raise ValueError(f"column {column!r} holds a value that is not a finite number")
