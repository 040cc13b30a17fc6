"""`worker_bridge`: every model the job spec accepts maps onto a `TrainSpec` the program runs,
and a cross-entropy label that is not a class index is refused naming its column and row."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mpc_ledger.jobs.catalogue import CatalogueEntry, write_entry
from mpc_ledger.jobs.datafiles import fingerprint_file
from mpc_ledger.jobs.datasets import Column, DatasetSchema
from mpc_ledger.jobs.manifest import JobManifest, ManifestParty
from mpc_ledger.jobs.spec import JobDatasetRef, JobSpec, ModelSpec, OptimiserSpec, spec_problems
from mpc_ledger.jobs.worker_bridge import (
    LocalDataError,
    UnsupportedJobError,
    load_local_data,
    train_spec_for,
)
from mpc_ledger.mpc.train_spec import TrainSpec


def job_spec(**changes) -> JobSpec:
    spec = JobSpec(
        name="flowers",
        layout="vertical",
        datasets=(
            JobDatasetRef("a/sepals", ("sl", "sw")),
            JobDatasetRef("b/petals", ("pl",)),
        ),
        label="species",
        model=ModelSpec("logistic_regression"),
        loss="bce",
        optimiser=OptimiserSpec(learning_rate=0.2),
        epochs=3,
        batch_size=8,
        recipients=("a",),
        seed=5,
    )
    spec = dataclasses.replace(spec, **changes)
    assert spec_problems(spec) == []
    return spec


def manifest_for(spec: JobSpec, test_rows: int = 10) -> JobManifest:
    vertical = spec.layout == "vertical"
    parties = tuple(
        ManifestParty(
            rank=rank,
            member_id=ref.dataset_id.partition("/")[0],
            role="data",
            dataset_id=ref.dataset_id,
            dataset_fingerprint=bytes(32),
            row_count=40 + test_rows,
            train_rows=40,
            test_rows=test_rows,
            feature_columns=ref.features,
            holds_label=rank == 1 or not vertical,
        )
        for rank, ref in enumerate(spec.datasets)
    )
    return JobManifest(
        chain_id=bytes(32),
        job_id=bytes(16),
        submitter="a/sci",
        spec=spec,
        parties=(*parties, ManifestParty(rank=2, member_id="dealer", role="dealer")),
        world_size=2,
        dealer_rank=2,
        label_rank=1 if vertical else None,
        n_features=3 if vertical else len(spec.datasets[0].features),
        recipient_ranks=(0,),
    )


def mapped(spec: JobSpec) -> TrainSpec:
    """What the daemon hands the worker, as the worker reads it."""
    return TrainSpec.from_json(train_spec_for(manifest_for(spec)))


def test_logistic_regression_maps_to_the_defaults():
    train = mapped(job_spec())
    assert (train.model, train.loss, train.classes, train.output_size) == ("logistic", "bce", 0, 1)
    assert (train.momentum, train.weight_decay, train.learning_rate) == (0.0, 0.0, 0.2)
    assert (train.columns_per_rank, train.label_rank, train.recipients) == ((2, 1), 1, (0,))
    assert (train.train_rows_per_rank, train.test_rows_per_rank) == ((40,), (10,))


def test_softmax_regression_maps_with_its_classes():
    spec = job_spec(
        model=ModelSpec("softmax_regression", (), 3),
        loss="cross_entropy",
        optimiser=OptimiserSpec(learning_rate=0.3),
    )
    train = mapped(spec)
    assert (train.model, train.loss, train.classes, train.output_size) == (
        "softmax",
        "cross_entropy",
        3,
        3,
    )


@pytest.mark.parametrize(
    ("hidden_sizes", "loss", "classes", "output_size"),
    [((16, 8), "bce", 0, 1), ((4, 4, 4), "cross_entropy", 5, 5), ((7,), "mse", 0, 1)],
)
def test_an_mlp_keeps_every_hidden_layer_and_its_loss(hidden_sizes, loss, classes, output_size):
    spec = job_spec(model=ModelSpec("mlp", hidden_sizes, classes), loss=loss)
    train = mapped(spec)
    assert (train.model, train.hidden, train.loss) == ("mlp", hidden_sizes, loss)
    assert (train.classes, train.output_size) == (classes, output_size)


def test_momentum_and_weight_decay_are_passed_on():
    spec = job_spec(optimiser=OptimiserSpec(learning_rate=0.1, momentum=0.9, weight_decay=0.01))
    train = mapped(spec)
    assert (train.learning_rate, train.momentum, train.weight_decay) == (0.1, 0.9, 0.01)


def test_a_horizontal_job_maps_rows_per_rank():
    spec = job_spec(
        layout="horizontal",
        datasets=(JobDatasetRef("a/sepals", ("sl", "sw")), JobDatasetRef("b/petals", ("sl", "sw"))),
    )
    train = mapped(spec)
    assert (train.layout, train.n_features, train.columns_per_rank) == ("horizontal", 2, ())
    assert (train.train_rows_per_rank, train.test_rows_per_rank) == ((40, 40), (10, 10))


def test_batch_order_and_standardisation_reach_the_program():
    horizontal = (JobDatasetRef("a/sepals", ("sl", "sw")), JobDatasetRef("b/petals", ("sl", "sw")))
    spec = job_spec(
        layout="horizontal", datasets=horizontal, batch_order="shuffled", standardisation="pooled"
    )
    train = mapped(spec)
    assert (train.batch_order, train.standardisation) == ("shuffled", "pooled")
    old = mapped(job_spec())  # an old spec: both fields absent
    assert (old.batch_order, old.standardisation) == ("", "")


def test_the_sigmoid_and_gradient_threshold_reach_the_program():
    lean = mapped(job_spec(sigmoid="piecewise", gradient_threshold=0.0))
    assert (lean.sigmoid, lean.grad_threshold) == ("piecewise", 0.0)
    old = mapped(job_spec())  # a spec from before the fields: CrypTen's sigmoid and guard
    assert (old.sigmoid, old.grad_threshold) == ("exact", 100.0)
    assert mapped(job_spec(gradient_threshold=5.0)).grad_threshold == 5.0


def test_a_job_without_test_rows_is_still_refused():
    with pytest.raises(UnsupportedJobError, match="no test metric"):
        train_spec_for(manifest_for(job_spec(), test_rows=0))


# -- load_local_data: the label owner's check of class indices ---------------------------------

SCHEMA = DatasetSchema(
    (Column("pl", "float64"), Column("species", "float64"), Column("kind", "int64")),
    label_column="species",
)


def catalogue(tmp_path: Path, labels: list[float], kinds: list[int]) -> tuple[Path, bytes]:
    path = tmp_path / "petals.csv"
    lines = ["pl,species,kind"]
    rows = enumerate(zip(labels, kinds, strict=True))
    lines += [f"{0.5 * i!r},{label!r},{kind}" for i, (label, kind) in rows]
    path.write_text("\n".join(lines) + "\n")
    fingerprint = fingerprint_file(path, SCHEMA).fingerprint
    return write_entry(tmp_path, CatalogueEntry("b/petals", path, SCHEMA, fingerprint)), fingerprint


def load(tmp_path: Path, labels: list[float], *, label: str = "species", kinds=None):
    kinds = kinds if kinds is not None else [0] * len(labels)
    entry_path, fingerprint = catalogue(tmp_path, labels, kinds)
    spec = TrainSpec(
        layout="vertical",
        model="softmax",
        n_features=1,
        columns_per_rank=(1,),
        train_rows_per_rank=(len(labels) - 2,),
        test_rows_per_rank=(2,),
        classes=3,
    )
    data = {
        "catalogue": str(entry_path),
        "dataset_id": "b/petals",
        "fingerprint": fingerprint.hex(),
        "features": ["pl"],
        "label": label,
        "train_rows": len(labels) - 2,
        "test_rows": 2,
    }
    return load_local_data(data, spec, 0)


def test_class_indices_load_as_a_label_column(tmp_path):
    loaded = load(tmp_path, [0.0, 2.0, 1.0, 0.0, 2.0, 1.0])
    assert loaded.y_train is not None and loaded.y_test is not None
    assert loaded.y_train.flatten().tolist() == [0.0, 2.0, 1.0, 0.0]
    assert loaded.y_test.flatten().tolist() == [2.0, 1.0]


def test_a_fractional_label_is_refused_naming_column_and_row_never_the_value(tmp_path):
    with pytest.raises(ValueError, match=r"column 'species', row 3: the label is not a class") as e:
        load(tmp_path, [0.0, 1.0, 3.5, 2.0, 0.0, 1.0])
    assert "3.5" not in str(e.value)  # the reason goes on the ledger


def test_a_label_beyond_the_classes_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"column 'kind', row 5: the label .* from 0 to 2"):
        load(tmp_path, [0.0] * 6, label="kind", kinds=[0, 1, 2, 0, 7, 1])


def test_a_negative_label_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"row 1: the label is not a class index"):
        load(tmp_path, [-1.0, 1.0, 2.0, 0.0, 0.0, 1.0])


def test_a_file_that_no_longer_parses_is_refused_without_its_value_or_path(tmp_path):
    """What the worker reports becomes the job's abort reason on every member's ledger."""
    entry_path, fingerprint = catalogue(tmp_path, [0.0, 1.0, 2.0, 0.0], [0, 1, 2, 0])
    data_file = tmp_path / "petals.csv"
    lines = data_file.read_text().splitlines()
    lines[3] = "Jane Q. Patient 1970-01-01,2.0,2"
    data_file.write_text("\n".join(lines) + "\n")
    spec = TrainSpec(
        layout="vertical",
        model="softmax",
        n_features=1,
        columns_per_rank=(1,),
        train_rows_per_rank=(2,),
        test_rows_per_rank=(2,),
        classes=3,
    )
    data = {
        "catalogue": str(entry_path),
        "dataset_id": "b/petals",
        "fingerprint": fingerprint.hex(),
        "features": ["pl"],
        "label": "species",
        "train_rows": 2,
        "test_rows": 2,
    }
    with pytest.raises(LocalDataError) as caught:
        load_local_data(data, spec, 0)
    reason = str(caught.value)
    assert reason == "dataset 'b/petals': line 4, column 'pl': not a float64"
    assert "Jane" not in reason and str(tmp_path) not in reason
    entry_path.write_text("not = [toml")
    with pytest.raises(LocalDataError) as caught:
        load_local_data(data, spec, 0)
    assert str(caught.value) == "dataset 'b/petals': this party's catalogue entry cannot be read"


def test_the_dealer_of_a_psi_job_is_bounded_by_the_smallest_dataset():
    from mpc_ledger.jobs.worker_bridge import worker_manifest
    from mpc_ledger.mpc.dealer import budget_for_program

    manifest = manifest_for(job_spec(alignment="psi", test_fraction=0.25))
    rows = (60, 45)
    parties = tuple(
        dataclasses.replace(p, row_count=rows[p.rank], train_rows=0, test_rows=0)
        if p.role == "data"
        else p
        for p in manifest.parties
    )
    manifest = dataclasses.replace(manifest, parties=parties)
    dealer = manifest.parties[2]
    program = worker_manifest(manifest, dealer, None, peer_timeout_s=5.0)["program"]
    assert program["data"] == {"max_rows": 45}  # the intersection has at most 45 rows
    budget = budget_for_program(program)
    # the whole test set (at most 45 rows) through the model at once fits one request
    assert budget.max_request_elements >= 45 * 3
    no_rows = {**program, "data": {}}
    with pytest.raises(ValueError, match="row counts"):
        budget_for_program(no_rows)


# -- pooled standardisation: raw values, within the fixed point's bound -----------------------


def pooled_load(tmp_path: Path, petals: list[float], *, standardisation: str = "pooled"):
    labels = [0.0] * len(petals)
    path = tmp_path / "petals.csv"
    lines = ["pl,species,kind"] + [f"{v!r},0.0,0" for v in petals]
    path.write_text("\n".join(lines) + "\n")
    fingerprint = fingerprint_file(path, SCHEMA).fingerprint
    entry_path = write_entry(tmp_path, CatalogueEntry("b/petals", path, SCHEMA, fingerprint))
    spec = TrainSpec(
        layout="horizontal",
        model="logistic",
        n_features=1,
        train_rows_per_rank=(len(labels) - 2, 1),
        test_rows_per_rank=(2, 1),
        standardisation=standardisation,
    )
    data = {
        "catalogue": str(entry_path),
        "dataset_id": "b/petals",
        "fingerprint": fingerprint.hex(),
        "features": ["pl"],
        "label": "species",
        "train_rows": len(labels) - 2,
        "test_rows": 2,
    }
    return load_local_data(data, spec, 0)


def test_a_pooled_job_shares_raw_values_and_a_per_party_one_its_own_standardised(tmp_path):
    values = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    pooled = pooled_load(tmp_path, values)
    assert pooled.x_train is not None and pooled.x_test is not None
    assert pooled.x_train.flatten().tolist() == values[:4]  # standardised under MPC instead
    assert pooled.x_test.flatten().tolist() == values[4:]
    assert pooled.feature_mean is None and pooled.feature_scale is None
    local = pooled_load(tmp_path, values, standardisation="")
    assert local.feature_mean is not None and local.feature_scale is not None
    assert local.feature_mean.tolist() == [25.0]  # of the training rows, given with them
    assert local.feature_scale.tolist() == pytest.approx([(125.0) ** 0.5])
    assert local.x_train is not None
    assert local.x_train.flatten().tolist() == pytest.approx(
        [(v - 25.0) / 125.0**0.5 for v in values[:4]], abs=1e-6
    )


def test_a_value_beyond_the_pooled_bound_is_refused_before_anything_is_shared(tmp_path):
    with pytest.raises(LocalDataError) as caught:
        pooled_load(tmp_path, [1.0, 2.0, 3.0, 70000.5, 5.0, 6.0])
    reason = str(caught.value)
    assert reason.startswith("column 'pl', row 4: a value beyond +-65536 (2^16)"), reason
    assert "70000" not in reason  # the reason goes on the ledger
    # the same value is fine when each party standardises its own rows
    assert pooled_load(tmp_path, [1.0, 2.0, 3.0, 70000.5, 5.0, 6.0], standardisation="")
