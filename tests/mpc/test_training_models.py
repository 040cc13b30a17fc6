"""Every model the job spec accepts, trained under MPC, against the same training in plain
PyTorch (`run_plaintext`).

Each test goes the way a job does, short of the ledger: a `JobSpec`, its `JobManifest`,
`worker_manifest` per party (so `train_spec_for` maps it), each party's own CSV file and
catalogue entry (so `load_local_data` re-fingerprints, standardises and checks the labels), and
two real worker processes (`python -m mpc_ledger.mpc.worker`) on CrypTen's gloo transport with
the trusted-first-party provider (two processes, no daemons: the cheapest real run). The
reference gets the same preprocessing (each party's columns standardised by its own training
rows) and the same row order.

After a few dozen rows and two epochs the parameters agree within fixed-point error (CrypTen
keeps 16 fractional bits; softmax, log and the reciprocal are approximations) and the test
accuracy is the plaintext one, give or take one row.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mpc_ledger.jobs.catalogue import CatalogueEntry, write_entry
from mpc_ledger.jobs.datafiles import fingerprint_file
from mpc_ledger.jobs.datasets import Column, DatasetSchema
from mpc_ledger.jobs.job_run import JOB_WORKER_PROGRAM
from mpc_ledger.jobs.manifest import JobManifest, ManifestParty
from mpc_ledger.jobs.spec import (
    JobDatasetRef,
    JobSpec,
    ModelSpec,
    OptimiserSpec,
    spec_problems,
    split_rows,
)
from mpc_ledger.jobs.worker_bridge import worker_manifest
from mpc_ledger.mpc.plaintext import run_plaintext
from mpc_ledger.mpc.preprocessing import (
    BatchOrderDigest,
    batch_permutation,
    pooled_statistics_plain,
)
from mpc_ledger.mpc.train_spec import MEAN_NAME, SCALE_NAME, TrainSpec
from mpc_ledger.mpc.training import model_digest
from mpc_ledger.mpc.worker_command import worker_command
from mpc_ledger.testing.mpc_cluster import WorkerProcess, wait_all

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARAMETER_ATOL = 0.05
STATISTICS_RTOL = 1e-3  # the pooled statistics under MPC: 16 fractional bits, range-reduced
MEMBERS = ("a", "b")


@dataclasses.dataclass(frozen=True)
class Table:
    """One party's dataset: feature columns and, for the label holder, the label."""

    features: dict[str, np.ndarray]
    label: np.ndarray | None = None


def shuffled(features: np.ndarray, labels: np.ndarray, rows: int, seed: int = 0):
    order = np.random.default_rng(seed).permutation(len(labels))[:rows]
    return features[order], labels[order]


def standardised(columns: np.ndarray, train_rows: int) -> np.ndarray:
    """What `load_local_data` does to one party's columns."""
    mean = columns[:train_rows].mean(axis=0)
    deviation = columns[:train_rows].std(axis=0)
    deviation[deviation == 0] = 1.0
    return ((columns - mean) / deviation).astype(np.float32)


def write_dataset(folder: Path, member: str, table: Table, label: str) -> tuple[Path, bytes]:
    """The party's CSV file and catalogue entry; (entry path, fingerprint)."""
    names = list(table.features)
    columns = [Column(name, "float64") for name in names]
    values = [table.features[name] for name in names]
    if table.label is not None:
        columns.append(Column(label, "int64"))
        values.append(table.label)
    schema = DatasetSchema(tuple(columns), label_column=label if table.label is not None else "")
    path = folder / f"{member}.csv"
    lines = [",".join(c.name for c in columns)]
    for row in zip(*values, strict=True):
        cells = [repr(float(v)) for v in row[: len(names)]] + [
            str(int(v)) for v in row[len(names) :]
        ]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    fingerprint = fingerprint_file(path, schema).fingerprint
    entry = CatalogueEntry(f"{member}/data", path, schema, fingerprint)
    return write_entry(folder / member, entry), fingerprint


def manifest_for(spec: JobSpec, tables: dict[str, Table], fingerprints: dict[str, bytes]):
    rows = len(next(iter(tables["a"].features.values())))
    train, test = split_rows(rows, spec.test_fraction)
    parties = tuple(
        ManifestParty(
            rank=rank,
            member_id=member,
            role="data",
            dataset_id=f"{member}/data",
            dataset_fingerprint=fingerprints[member],
            row_count=rows,
            train_rows=train,
            test_rows=test,
            feature_columns=tuple(tables[member].features),
            holds_label=tables[member].label is not None,
        )
        for rank, member in enumerate(MEMBERS)
    )
    vertical = spec.layout == "vertical"
    return JobManifest(
        chain_id=bytes(32),
        job_id=bytes(16),
        submitter="a/sci",
        spec=spec,
        parties=parties,
        world_size=len(MEMBERS),
        dealer_rank=None,
        label_rank=next(p.rank for p in parties if p.holds_label) if vertical else None,
        n_features=sum(len(p.feature_columns) for p in parties)
        if vertical
        else len(parties[0].feature_columns),
        recipient_ranks=(0,),
    )


def job(name: str, layout: str, **changes: Any) -> JobSpec:
    spec = JobSpec(
        name=name,
        layout=layout,
        datasets=(),
        label="y",
        model=ModelSpec("logistic_regression"),
        loss="bce",
        optimiser=OptimiserSpec(learning_rate=0.3),
        epochs=2,
        batch_size=8,
        recipients=("a",),
        seed=3,
        test_fraction=0.25,
        tuple_provider="trusted-first-party",
    )
    return dataclasses.replace(spec, **changes)


def train_both_ways(tmp_path: Path, spec: JobSpec, tables: dict[str, Table]):
    """(each rank's whole result, the plaintext result, the TrainSpec the workers ran,
    the plaintext data)."""
    spec = dataclasses.replace(
        spec,
        datasets=tuple(JobDatasetRef(f"{m}/data", tuple(tables[m].features)) for m in MEMBERS),
    )
    assert spec_problems(spec) == []
    written = {m: write_dataset(tmp_path, m, tables[m], spec.label) for m in MEMBERS}
    manifest = manifest_for(spec, tables, {m: fp for m, (_, fp) in written.items()})
    workers = []
    for rank, member in enumerate(MEMBERS):
        party = manifest.parties[rank]
        document = worker_manifest(manifest, party, written[member][0], peer_timeout_s=60.0)
        document["allow_trusted_first_party"] = True  # two local processes, no dealer
        manifest_path = tmp_path / f"manifest-{rank}.json"
        manifest_path.write_text(json.dumps(document))
        output, log_path = tmp_path / f"rank{rank}.json", tmp_path / f"rank{rank}.log"
        rendezvous = f"file://{tmp_path / 'rendezvous'}"
        command = worker_command(
            manifest_path, rank, output, rendezvous=rendezvous, program=JOB_WORKER_PROGRAM
        )
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(command, stdout=log_file, stderr=log_file)
        workers.append(WorkerProcess(rank, member, process, output, log_path))
    wait_all(workers, timeout_s=120)
    logs = "\n".join(w.log() for w in workers)
    assert [w.process.returncode for w in workers] == [0, 0], logs
    train_spec = TrainSpec.from_json(document["program"]["spec"])
    full = reference_data(spec, tables, manifest.parties[0].train_rows)
    plain = run_plaintext(train_spec, full)
    return [w.result() for w in workers], plain, train_spec, full


def reference_data(spec: JobSpec, tables: dict[str, Table], train: int):
    """What the parties share: each party's columns standardised by its own ``train``
    training rows, or (pooled) raw, standardised by `run_plaintext` as under MPC."""

    def shared(columns: np.ndarray) -> np.ndarray:
        if spec.standardisation == "pooled":
            return columns.astype(np.float32)
        return standardised(columns, train)

    parts = {m: shared(np.column_stack(list(tables[m].features.values()))) for m in MEMBERS}
    labels = {m: tables[m].label for m in MEMBERS if tables[m].label is not None}
    join = np.hstack if spec.layout == "vertical" else np.vstack
    x_train = join([parts[m][:train] for m in MEMBERS])
    x_test = join([parts[m][train:] for m in MEMBERS])
    y = [labels[m].astype(np.float32).reshape(-1, 1) for m in MEMBERS if m in labels]
    return {
        "x_train": np.ascontiguousarray(x_train),
        "x_test": np.ascontiguousarray(x_test),
        "y_train": np.vstack([column[:train] for column in y]),
        "y_test": np.vstack([column[train:] for column in y]),
    }


def outputs_of(results):
    return [r["output"] for r in results]


def check_against_plaintext(outputs, plain, n_test: int) -> None:
    """The MPC model is the plaintext one (the statistics it holds too, where the reference
    computed them); only the recipient learns it, the hash covers everything it holds."""
    recipient, other = outputs
    assert other["model"] is None  # only the recipient learns the model and its statistics
    assert recipient["model_hash"] == other["model_hash"]
    assert bytes.fromhex(recipient["model_hash"]) == model_digest(recipient["model"])
    statistics = {MEAN_NAME, SCALE_NAME}
    assert sorted(set(recipient["model"]) - statistics) == sorted(set(plain["model"]) - statistics)
    for name, value in plain["model"].items():
        got = torch.tensor(recipient["model"][name], dtype=torch.float64)
        if name in statistics:
            expected = torch.tensor(value, dtype=torch.float64)
            assert torch.allclose(got, expected, rtol=STATISTICS_RTOL, atol=1e-4), (name, got)
            continue
        expected = torch.tensor(value, dtype=torch.float64)
        assert torch.allclose(got, expected, atol=PARAMETER_ATOL), (name, got, value)
    assert recipient["test_accuracy"] == other["test_accuracy"]
    assert abs(recipient["test_accuracy"] - plain["test_accuracy"]) <= 1 / n_test + 1e-3


def test_softmax_regression_on_three_classes(tmp_path):
    from sklearn.datasets import load_iris

    features, labels = shuffled(*load_iris(return_X_y=True), rows=60)
    tables = {
        "a": Table({"sepal_length": features[:, 0], "sepal_width": features[:, 1]}),
        "b": Table({"petal_length": features[:, 2], "petal_width": features[:, 3]}, labels),
    }
    spec = job(
        "iris",
        "vertical",
        model=ModelSpec("softmax_regression", (), 3),
        loss="cross_entropy",
        reveal_training_loss=True,  # runs the cross-entropy's forward (a log) under MPC too
        batch_size=11,  # 45 training rows: the last batch has one row
    )
    results, plain, train_spec, _full = train_both_ways(tmp_path, spec, tables)
    outputs = outputs_of(results)
    assert (train_spec.model, train_spec.output_size) == ("softmax", 3)
    assert np.array(outputs[0]["model"]["weight"]).shape == (3, 4)
    check_against_plaintext(outputs, plain, n_test=15)
    assert plain["test_accuracy"] >= 0.8  # the reference learned something to compare with


def test_mlp_with_two_hidden_layers_horizontal_cross_entropy(tmp_path):
    from sklearn.datasets import load_wine

    features, labels = shuffled(*load_wine(return_X_y=True), rows=64)
    features = features[:, :6]
    names = [f"f{i}" for i in range(features.shape[1])]

    def table(rows: slice) -> Table:
        return Table({n: features[rows, i] for i, n in enumerate(names)}, labels[rows])

    tables = {"a": table(slice(0, 32)), "b": table(slice(32, 64))}
    spec = job(
        "wine",
        "horizontal",
        model=ModelSpec("mlp", (8, 6), 3),
        loss="cross_entropy",
        optimiser=OptimiserSpec(learning_rate=0.5),
    )
    results, plain, train_spec, _full = train_both_ways(tmp_path, spec, tables)
    outputs = outputs_of(results)
    assert train_spec.hidden == (8, 6)
    shapes = {n: np.array(v).shape for n, v in outputs[0]["model"].items()}
    assert shapes == {
        "0.weight": (8, 6),
        "0.bias": (8,),
        "2.weight": (6, 8),
        "2.bias": (6,),
        "4.weight": (3, 6),
        "4.bias": (3,),
    }
    check_against_plaintext(outputs, plain, n_test=16)


def test_momentum_and_weight_decay(tmp_path):
    from sklearn.datasets import load_breast_cancer

    features, labels = shuffled(*load_breast_cancer(return_X_y=True), rows=48)
    tables = {
        "a": Table({f"a{i}": features[:, i] for i in range(4)}),
        "b": Table({f"b{i}": features[:, 4 + i] for i in range(4)}, labels),
    }
    spec = job(
        "cancer",
        "vertical",
        optimiser=OptimiserSpec(learning_rate=0.2, momentum=0.8, weight_decay=0.05),
    )
    results, plain, train_spec, full = train_both_ways(tmp_path, spec, tables)
    outputs = outputs_of(results)
    assert (train_spec.momentum, train_spec.weight_decay) == (0.8, 0.05)
    check_against_plaintext(outputs, plain, n_test=12)
    # each owner's own columns' statistics, released to the recipient only, in column order
    own = np.column_stack([features[:36, i] for i in range(8)])  # the 36 training rows
    model = outputs[0]["model"]
    assert np.allclose(model[MEAN_NAME], own.mean(axis=0), rtol=1e-4, atol=3e-5)
    assert np.allclose(model[SCALE_NAME], own.std(axis=0), rtol=1e-4, atol=3e-5)
    without = run_plaintext(dataclasses.replace(train_spec, momentum=0.0, weight_decay=0.0), full)
    # the settings matter: plain SGD ends elsewhere, beyond the tolerance the MPC run met
    assert not torch.allclose(
        torch.tensor(without["model"]["weight"]),
        torch.tensor(plain["model"]["weight"]),
        atol=PARAMETER_ATOL,
    )


def test_the_new_jobs_program_trains_to_plaintext_with_the_exact_sigmoid(tmp_path):
    """The default program of a new bce job (piecewise sigmoid, no gradient threshold)
    against plaintext PyTorch with torch's exact sigmoid: the same model within the
    tolerance, the same test accuracy within one row. (Its round trips: the demo's test and
    benchmarks/step_breakdown.py.)"""
    from sklearn.datasets import load_breast_cancer

    features, labels = shuffled(*load_breast_cancer(return_X_y=True), rows=160)
    tables = {
        "a": Table({f"a{i}": features[:, i] for i in range(15)}),
        "b": Table({f"b{i}": features[:, 15 + i] for i in range(15)}, labels),
    }
    spec = job("cancer", "vertical", epochs=2, sigmoid="piecewise", gradient_threshold=0.0)
    results, plain, train_spec, _ = train_both_ways(tmp_path, spec, tables)
    assert (train_spec.sigmoid, train_spec.grad_threshold) == ("piecewise", 0.0)
    check_against_plaintext(outputs_of(results), plain, n_test=40)


def test_pooled_standardisation_and_shuffled_batches_horizontal(tmp_path):
    """Two hospitals with different populations: b's features are a's scaled and shifted,
    and one column is the same constant everywhere. Under MPC the pooled statistics are
    numpy's, the model is the plaintext one trained on the pooled standardisation in the
    same shuffled order, and both differ from rank order or per-party standardisation."""
    from sklearn.datasets import load_breast_cancer

    features, labels = shuffled(*load_breast_cancer(return_X_y=True), rows=48)
    features = features[:, [0, 1, 4]]
    names = ["radius", "texture", "smoothness"]

    def table(rows: slice, scale: float, shift: float) -> Table:
        columns = {n: features[rows, i] * scale + shift for i, n in enumerate(names)}
        return Table({**columns, "site": np.full(24, 3.0)}, labels[rows])

    tables = {"a": table(slice(0, 24), 1.0, 0.0), "b": table(slice(24, 48), 4.0, 30.0)}
    spec = job(
        "pooled",
        "horizontal",
        batch_order="shuffled",
        standardisation="pooled",
        # large steps, so the last batches weigh: the order shows in the model
        optimiser=OptimiserSpec(learning_rate=1.0),
        batch_size=6,
    )
    results, plain, train_spec, full = train_both_ways(tmp_path, spec, tables)
    outputs = outputs_of(results)
    assert (train_spec.batch_order, train_spec.standardisation) == ("shuffled", "pooled")
    check_against_plaintext(outputs, plain, n_test=12)

    model = outputs[0]["model"]
    mean, scale = pooled_statistics_plain(full["x_train"])  # every party's training rows
    assert np.allclose(model[MEAN_NAME], mean, rtol=STATISTICS_RTOL)
    assert np.allclose(model[SCALE_NAME], scale, rtol=STATISTICS_RTOL)
    assert model[SCALE_NAME][3] == 1.0 and model[MEAN_NAME][3] == 3.0  # the constant column

    # every party derived the same order, the documented one
    expected = BatchOrderDigest()
    for epoch in (1, 2):
        expected.add(batch_permutation(train_spec.seed, epoch, 36))
    assert {o["batch_order_digest"] for o in outputs} == {expected.hexdigest()}
    # the order was applied: rank order ends elsewhere, beyond the tolerance the MPC run met
    rank_order = run_plaintext(dataclasses.replace(train_spec, batch_order=""), full)
    assert not np.allclose(rank_order["model"]["weight"], model["weight"], atol=PARAMETER_ATOL), (
        rank_order["model"]["weight"]
    )
    # and the pooling was: each party's own standardisation ends elsewhere too
    local = run_plaintext(
        dataclasses.replace(train_spec, standardisation=""),
        reference_data(dataclasses.replace(spec, standardisation=""), tables, 18),
    )
    assert not np.allclose(local["model"]["weight"], model["weight"], atol=PARAMETER_ATOL)
