"""From a ledger job manifest and this party's own files to what a CrypTen worker runs.

Theory of operation: `mpc_ledger.jobs.manifest.JobManifest` is what every
party derived from the ledger; `mpc_ledger.mpc.worker` takes its own small
JSON manifest (ranks, tuple provider, program). `train_spec_for` maps the
job spec onto the training program's `TrainSpec` (the same on every party,
so the SPMD contract holds): every model the spec accepts (logistic, linear
and softmax regression, an MLP of 1 to 8 hidden layers with bce, mse or
cross-entropy), SGD with momentum and weight decay, the batch order and the
standardisation. It refuses only a job
with no test rows (there would be no metric to report). `worker_manifest`
adds this party's data source: its catalogue entry, the registered
fingerprint, the feature and label columns and the row split.

`load_local_table` runs *in the worker*, before CrypTen starts: it reads
the file through the catalogue entry, recomputes the fingerprint over
exactly the rows it reads and refuses to go on if it differs from the
registered one (a file changed between the runner's check and the worker's
read), and keeps the features, the label and (alignment "psi") the ids.
`LocalTable.party_data` cuts it: the rows in the order given (row order, or
the intersection's canonical order after the PSI), this party's own feature
columns standardised with its own training rows' mean and deviation (local
preprocessing; for a vertical job that is the same as standardising the
joined table; the statistics go with the rows, for the model's recipients),
or, for a horizontal job with pooled standardisation, raw (standardised
under MPC, `mpc_ledger.mpc.preprocessing`), each value within
``POOLED_VALUE_BOUND`` (2^16) or refused naming its column and row before
CrypTen starts; train (first rows) and test (last rows) as
`jobs.spec.split_rows` says. `load_local_data` does both for a job aligned
by row order. For a cross-entropy job the label must be a class index, an
integer in [0, classes): any other value is refused with its column and
row (data rows counted from 1), never the value, before CrypTen starts;
the worker makes that the job's abort reason.

The daemon side works on plain JSON (`train_spec_for` returns the fields of
`mpc_ledger.mpc.train_spec.TrainSpec`, which the worker checks), so the
party daemon never imports torch or CrypTen.

Contract: the worker manifest holds a local path and is written 0600 in the
party's own data directory; no value of the data is ever written anywhere.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpc_ledger.errors import ConfigError
from mpc_ledger.jobs.catalogue import CatalogueEntry, load_entry
from mpc_ledger.jobs.datafiles import DataFileError, read_rows
from mpc_ledger.jobs.datasets import FingerprintBuilder
from mpc_ledger.jobs.manifest import JobManifest, ManifestParty
from mpc_ledger.model_kinds import PROGRAM_MODELS

if TYPE_CHECKING:  # the daemon never imports torch: only the worker does
    from mpc_ledger.mpc.train_spec import PartyData, TrainSpec

__all__ = [
    "PROGRAM_MODELS",
    "DataChangedError",
    "LocalDataError",
    "LocalTable",
    "UnsupportedJobError",
    "load_local_data",
    "load_local_table",
    "train_spec_for",
    "worker_manifest",
]


class UnsupportedJobError(ValueError):
    """The job is valid on the ledger but this release's training program cannot run it."""


class LocalDataError(ValueError):
    """This party's data cannot be used for the job. The message becomes the job's abort
    reason (on the ledger, and sent to the peers), so it names the dataset, the column and
    the row, never a value or a local path."""


class DataChangedError(LocalDataError):
    """The file's rows no longer have the registered fingerprint."""


def train_spec_for(manifest: JobManifest) -> dict[str, Any]:
    """The `TrainSpec` fields (as JSON) of the job; `UnsupportedJobError` if it cannot run."""
    spec = manifest.spec
    model = PROGRAM_MODELS.get(spec.model.kind)
    if model is None:  # spec_problems refuses it first; kept for a spec from a newer release
        raise UnsupportedJobError(f"model {spec.model.kind!r} is not supported by this runner")
    optimiser = spec.optimiser
    if optimiser.kind != "sgd":
        raise UnsupportedJobError(f"optimiser {optimiser.kind!r} is not supported by this runner")
    data = [p for p in manifest.parties if p.role == "data"]
    if spec.alignment == "psi":  # the split is the intersection's, known after the PSI
        if spec.test_fraction == 0:
            raise UnsupportedJobError("a job without test rows has no test metric to report")
    elif any(p.test_rows == 0 for p in data) and spec.layout == "vertical":
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
        "hidden": list(spec.model.hidden_sizes) if model == "mlp" else [],
        "seed": spec.seed,
        "recipients": list(manifest.recipient_ranks),
        "reveal_loss": spec.reveal_training_loss,
        "loss": spec.loss,
        "classes": spec.model.classes if spec.loss == "cross_entropy" else 0,
        "momentum": optimiser.momentum,
        "weight_decay": optimiser.weight_decay,
        "batch_order": spec.batch_order,
        "standardisation": spec.standardisation,
        "sigmoid": spec.sigmoid or "exact",
        "grad_threshold": spec.effective_gradient_threshold,
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
    if party.role == "dealer" and manifest.spec.alignment == "psi":
        # the spec states no rows until the PSI; the intersection has at most these
        data = {"max_rows": min(p.row_count for p in manifest.parties if p.role == "data")}
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
        if manifest.spec.alignment == "psi":
            data["alignment"] = {
                "method": "psi",
                "id_column": party.id_column,
                "row_counts": [p.row_count for p in manifest.parties if p.role == "data"],
                "test_fraction": manifest.spec.test_fraction,
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


@dataclasses.dataclass(frozen=True)
class LocalTable:
    """This party's whole table, read and re-fingerprinted in the worker: the ids (PSI jobs
    only), the feature values and the labels (the label owner), in file order."""

    ids: list[object]
    x: Any  # numpy float64 (rows, features)
    y: Any  # numpy float32 (rows, 1), or None
    columns: tuple[str, ...] = ()  # the feature columns' names, in x's order

    @property
    def rows(self) -> int:
        return len(self.x)

    def party_data(self, rows: Sequence[int], train: int, *, pooled: bool = False) -> PartyData:
        """The rows ``rows`` in that order, the first ``train`` of them for training;
        features standardised with those training rows' mean and deviation (given with
        them), or with ``pooled`` raw (standardised under MPC), each within
        `POOLED_VALUE_BOUND` (`LocalDataError` naming the column and row otherwise)."""
        import numpy as np
        import torch

        from mpc_ledger.mpc.train_spec import PartyData

        order = np.asarray(rows, dtype=np.int64)
        x = self.x[order]
        mean = deviation = None
        if pooled:
            self._check_pooled_bound(order)
        else:
            mean = x[:train].mean(axis=0)
            deviation = x[:train].std(axis=0)
            deviation[deviation == 0] = 1.0
            x = (x - mean) / deviation
        x = x.astype(np.float32)
        y = self.y[order] if self.y is not None else None
        return PartyData(
            torch.from_numpy(np.ascontiguousarray(x[:train])),
            torch.from_numpy(np.ascontiguousarray(y[:train])) if y is not None else None,
            torch.from_numpy(np.ascontiguousarray(x[train:])),
            torch.from_numpy(np.ascontiguousarray(y[train:])) if y is not None else None,
            feature_mean=torch.from_numpy(mean) if mean is not None else None,
            feature_scale=torch.from_numpy(deviation) if deviation is not None else None,
        )

    def _check_pooled_bound(self, order: Any) -> None:
        import numpy as np

        from mpc_ledger.mpc.preprocessing import POOLED_VALUE_BOUND

        outside = np.abs(self.x[order]) > POOLED_VALUE_BOUND
        if outside.any():
            position, column = (int(v) for v in np.argwhere(outside)[0])
            name = self.columns[column] if column < len(self.columns) else f"#{column + 1}"
            raise LocalDataError(
                f"column {name!r}, row {int(order[position]) + 1}: a value beyond "
                f"+-{POOLED_VALUE_BOUND:.0f} (2^16), more than pooled standardisation's fixed "
                "point carries; rescale the column (or use standardisation = 'per-party')"
            )


def load_local_table(data: dict[str, Any], spec: TrainSpec) -> LocalTable:
    """Read this party's file through its catalogue entry and re-fingerprint exactly the
    rows read (`DataChangedError` if they changed). In the worker. Every problem is a
    `LocalDataError` whose message may go on the ledger."""
    dataset_id = str(data["dataset_id"])
    try:
        entry = load_entry(Path(data["catalogue"]))
    except ConfigError:  # its message names the local file
        raise LocalDataError(
            f"dataset {dataset_id!r}: this party's catalogue entry cannot be read"
        ) from None
    if entry.dataset_id != dataset_id:
        raise LocalDataError(f"catalogue entry names {entry.dataset_id!r}, not {dataset_id!r}")
    try:
        return _read_table(entry, data, spec)
    except DataFileError as exc:
        raise LocalDataError(f"dataset {dataset_id!r}: {exc.record_reason}") from None


def _read_table(entry: CatalogueEntry, data: dict[str, Any], spec: TrainSpec) -> LocalTable:
    import numpy as np

    builder = FingerprintBuilder(entry.schema)
    names = entry.schema.names
    features = [names.index(c) for c in data["features"]]
    label = names.index(data["label"]) if data["label"] else None
    alignment = data.get("alignment") or {}
    id_index = names.index(alignment["id_column"]) if alignment else None
    ids: list[object] = []
    x_rows: list[list[float]] = []
    y_rows: list[float] = []
    for row in read_rows(entry.path, entry.schema):
        builder.add(row)
        x_rows.append([_number(row[i], names[i]) for i in features])
        if label is not None:
            y_rows.append(_number(row[label], names[label]))
        if id_index is not None:
            ids.append(row[id_index])
    if builder.result().fingerprint.hex() != data["fingerprint"]:
        raise DataChangedError(
            f"dataset {entry.dataset_id!r} changed since it was registered "
            "(its file no longer has the registered fingerprint)"
        )
    if label is not None and spec.loss == "cross_entropy":
        _check_class_indices(y_rows, names[label], spec.classes)
    x = np.asarray(x_rows, dtype=np.float64).reshape(len(x_rows), len(features))
    y = np.asarray(y_rows, dtype=np.float32).reshape(-1, 1) if label is not None else None
    return LocalTable(ids, x, y, tuple(data["features"]))


def load_local_data(data: dict[str, Any], spec: TrainSpec, rank: int) -> PartyData:
    """This party's part of a job aligned by row order (see the module docstring)."""
    table = load_local_table(data, spec)
    train, test = int(data["train_rows"]), int(data["test_rows"])
    if table.rows != train + test:
        raise DataChangedError(
            f"dataset {data['dataset_id']!r} has {table.rows} rows, not {train + test}"
        )
    del rank  # the split is the same for every rank; kept for the call's symmetry
    return table.party_data(range(table.rows), train, pooled=spec.standardisation == "pooled")


def _check_class_indices(labels: list[float], column: str, classes: int) -> None:
    """A cross-entropy label is a class index: an integer in [0, classes)."""
    for row, value in enumerate(labels, start=1):
        if not (value.is_integer() and 0 <= value < classes):
            raise LocalDataError(
                f"column {column!r}, row {row}: the label is not a class index; "
                f"a cross_entropy job with {classes} classes needs an integer from 0 to "
                f"{classes - 1}"
            )


def _number(value: object, column: str) -> float:
    if value is None:
        raise LocalDataError(f"column {column!r} holds a null; the job needs a value in every row")
    if isinstance(value, bool | int | float):
        number = float(value)
        if math.isfinite(number):
            return number
    raise LocalDataError(f"column {column!r} holds a value that is not a finite number")


def read_party_file(data: dict[str, Any], spec: TrainSpec, rank: int) -> PartyData | LocalTable:
    """The worker's reader of this party's file (`mpc_ledger.mpc.tables.FileReader`): the
    whole table for a job aligned by PSI (``data.alignment``), else this party's rows."""
    if data.get("alignment"):
        return load_local_table(data, spec)
    return load_local_data(data, spec, rank)
