"""Job specs: every problem at once with its field, the proto form, ledger checks, the manifest."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from mpc_ledger.errors import ConfigError
from mpc_ledger.jobs.datasets import Column, DatasetSchema, RegisteredDataset
from mpc_ledger.jobs.manifest import build_manifest
from mpc_ledger.jobs.spec import (
    JobDatasetRef,
    JobSpec,
    JobSpecError,
    ModelSpec,
    ledger_problems,
    load_job_spec,
    parse_job_spec,
    spec_problems,
)

from .conftest import ASSAYS, COHORT, PARTIES, registration, vertical_spec


def registry(*entries):
    return {
        dataset_id: RegisteredDataset.from_registration(
            dataset_id.partition("/")[0], registration(dataset_id, schema, rows)
        )
        for dataset_id, schema, rows in entries
    }


@pytest.fixture
def vertical_registry():
    return registry(("a/cohort", COHORT, 50), ("b/assays", ASSAYS, 50))


def test_the_example_job_loads():
    spec = load_job_spec(PARTIES / "job.toml")
    assert spec.layout == "vertical" and spec.model == ModelSpec("mlp", (16, 8))
    assert spec.dataset_ids == ("hospital-a/cohort-2026", "lab-b/assays-2026")
    assert spec_problems(spec) == []


def test_every_problem_is_reported_with_its_field():
    text = """
name = ""
layout = "diagonal"
alignment = "by-name"
label = "age"
loss = "mse"
epochs = 0
batch_size = "64"
seed = -1
test_fraction = 0.9
recipients = ["a", "A!", "a"]
tuple_provider = "magic"
colour = "blue"

[[datasets]]
id = "a/cohort"
features = ["age", "age", 3]

[[datasets]]
id = "nobody"

[model]
kind = "logistic_regression"
hidden_sizes = [16, 0, -2]
classes = 3

[optimiser]
kind = "adam"
learning_rate = -0.1
momentum = 1.0
"""
    with pytest.raises(JobSpecError) as caught:
        parse_job_spec(text)
    assert list(caught.value.problems) == [
        "colour: unknown key; known: name, description, layout, alignment, datasets, features, "
        "label, model, loss, optimiser, epochs, batch_size, seed, test_fraction, recipients, "
        "reveal_training_loss, tuple_provider, dealer, protocol, shuffle, standardisation, "
        "sigmoid, gradient_threshold",
        "datasets[0].features[2]: must be a string",
        "datasets[1].features: required (a list of strings)",
        "batch_size: must be an integer",
        "name: must be 1 to 100 printable characters",
        "layout: 'diagonal' is not one of vertical, horizontal",
        "alignment: 'by-name' is not one of psi, row-order",
        "datasets[0].features[1]: 'age' is listed twice",
        "datasets[1].id: 'nobody' is not '<member id>/<name>' (lowercase letters, digits, '-' "
        "in the member id, also '.' and '_' in the name, each at most 63 characters)",
        "label: 'age' is also listed as a feature",
        "model.hidden_sizes: only an mlp has hidden layers",
        "loss: a logistic_regression model trains with bce, not mse",
        "model.classes: only a model trained with cross_entropy has classes",
        "optimiser.kind: 'adam' is not one of sgd",
        "optimiser.learning_rate: must be a positive number",
        "optimiser.momentum: must be at least 0 and less than 1",
        "epochs: must be 1 to 10000",
        "seed: must be 0 to 9223372036854775807",
        "test_fraction: must be 0 to 0.5",
        "recipients[1]: 'A!' is neither a member id nor a user id",
        "recipients[2]: 'a' is listed twice",
        "tuple_provider: 'magic' is not one of dealer, trusted-first-party",
    ]


def test_mlp_problems_name_the_layer():
    spec = vertical_spec(model=ModelSpec("mlp", (16, 0, 5000)))
    assert spec_problems(spec) == [
        "model.hidden_sizes[1]: must be a positive integer (at most 4096)",
        "model.hidden_sizes[2]: must be a positive integer (at most 4096)",
    ]
    softmax = vertical_spec(model=ModelSpec("softmax_regression"), loss="cross_entropy")
    assert spec_problems(softmax) == ["model.classes: cross_entropy needs 2 to 1000 classes"]
    assert (
        spec_problems(dataclasses.replace(softmax, model=ModelSpec("softmax_regression", (), 3)))
        == []
    )


def test_a_missing_table_and_file_problems(tmp_path):
    with pytest.raises(JobSpecError) as caught:
        parse_job_spec('name = "x"\nlayout = "vertical"\n')
    problems = caught.value.problems
    assert "datasets: required: [[datasets]] tables, each with an id" in problems
    assert "model: required: a [model] table with kind" in problems
    assert "optimiser.learning_rate: required" in problems
    assert "recipients: required (a list of strings)" in problems
    path = tmp_path / "job.toml"
    path.write_text("name = [")
    with pytest.raises(ConfigError, match=f"^{path}: not valid TOML"):
        load_job_spec(path)


def test_horizontal_shorthand_features():
    spec = parse_job_spec(
        """
name = "h"
layout = "horizontal"
features = ["age", "bmi"]
label = "readmitted"
epochs = 1
batch_size = 4
recipients = ["a"]
[[datasets]]
id = "a/cohort"
[[datasets]]
id = "b/cohort"
[model]
kind = "logistic_regression"
[optimiser]
learning_rate = 0.5
"""
    )
    assert [d.features for d in spec.datasets] == [("age", "bmi"), ("age", "bmi")]
    assert spec.loss == "bce" and spec.tuple_provider == "dealer"


def test_proto_round_trip_is_exact_and_deterministic():
    spec = load_job_spec(PARTIES / "job.toml")
    message = spec.to_proto()
    assert JobSpec.from_proto(message) == spec
    again = type(message)()
    again.ParseFromString(message.SerializeToString(deterministic=True))
    assert again.SerializeToString(deterministic=True) == message.SerializeToString(
        deterministic=True
    )
    assert JobSpec.from_proto(again) == spec


def test_ledger_checks_pass_for_a_good_job(vertical_registry, genesis):
    assert ledger_problems(vertical_spec(), vertical_registry, genesis) == []


def test_ledger_checks_report_everything(genesis):
    other = DatasetSchema(
        (Column("patient_id", "string"), Column("crp", "string"), Column("readmitted", "int64")),
    )
    registered = registry(("a/cohort", COHORT, 50), ("b/assays", other, 40))
    spec = vertical_spec(
        datasets=(
            JobDatasetRef("a/cohort", ("age", "weight")),
            JobDatasetRef("b/assays", ("crp",)),
            JobDatasetRef("c/missing", ("x",)),
        ),
        recipients=("a", "dealer", "zed"),
        dealer="auditor",
    )
    assert ledger_problems(spec, registered, genesis) == [
        "datasets[0].features[1]: dataset 'a/cohort' has no column 'weight'",
        "datasets[1].features[0]: column 'crp' is a string; features are numeric",
        "datasets[2].id: no dataset 'c/missing' is registered",
        "label: column 'readmitted' is in datasets[0], datasets[1]; it must be in exactly one",
        "datasets[1].id: has 40 rows, datasets[0] has 50; vertical datasets are aligned by row "
        "order and must have the same number of rows",
        "dealer: 'auditor' is not a member with the dealer role",
        "recipients[2]: 'zed' is not a consortium member",
    ]


def test_label_nowhere_and_nullable_features(vertical_registry, genesis):
    spec = vertical_spec(
        label="outcome",
        datasets=(JobDatasetRef("a/cohort", ("age",)), JobDatasetRef("b/assays", ("note",))),
    )
    assert ledger_problems(spec, vertical_registry, genesis) == [
        "datasets[1].features[0]: column 'note' is a string; features are numeric",
        "label: no dataset of the job has a column 'outcome'",
    ]


def test_horizontal_needs_the_same_schema(genesis):
    registered = registry(("a/cohort", COHORT, 30), ("b/cohort", ASSAYS, 30))
    spec = vertical_spec(
        layout="horizontal",
        datasets=(JobDatasetRef("a/cohort", ("age",)), JobDatasetRef("b/cohort", ("age",))),
    )
    assert ledger_problems(spec, registered, genesis) == [
        "datasets[1].features[0]: dataset 'b/cohort' has no column 'age'",
        "label: dataset 'b/cohort' (datasets[1]) has no column 'readmitted'",
        "datasets[1].id: its schema differs from datasets[0]'s; a horizontal job needs the same "
        "columns and types in every dataset",
    ]
    outsider = vertical_spec(recipients=("c",))
    assert ledger_problems(
        outsider, registry(("a/cohort", COHORT, 50), ("b/assays", ASSAYS, 50)), genesis
    ) == [
        "recipients[0]: 'c' takes no part in this job; the model is released only to data "
        "owners of the job"
    ]


def test_one_dataset_per_member_and_providers(genesis):
    registered = registry(("a/cohort", COHORT, 50), ("a/more", ASSAYS, 50))
    spec = vertical_spec(
        datasets=(JobDatasetRef("a/cohort", ("age",)), JobDatasetRef("a/more", ("crp",))),
        recipients=("a",),
        tuple_provider="trusted-first-party",
        protocol="spdz",
    )
    assert ledger_problems(spec, registered, genesis) == [
        "datasets[1].id: member 'a' already contributes datasets[0]; a member takes part with "
        "one dataset",
        "tuple_provider: this consortium allows dealer, not 'trusted-first-party'",
        "protocol: this consortium allows crypten-0.4.1-arithmetic, not 'spdz'",
    ]


def test_manifest_assigns_ranks_and_has_a_stable_hash(vertical_registry, genesis):
    spec = vertical_spec()
    job_id = bytes(range(32))
    manifest = build_manifest(job_id, "a/alice", spec, vertical_registry, genesis)
    assert manifest.participants == ("a", "b", "dealer")
    assert (manifest.world_size, manifest.dealer_rank, manifest.label_rank) == (2, 2, 0)
    assert manifest.n_features == 3
    assert manifest.recipient_ranks == (0, 1)
    cohort = manifest.parties[0]
    assert cohort.feature_columns == ("age", "bmi") and cohort.holds_label
    assert (cohort.train_rows, cohort.test_rows) == (40, 10)
    assert cohort.dataset_fingerprint == vertical_registry["a/cohort"].fingerprint
    assert manifest.parties[2].role == "dealer" and manifest.parties[2].dataset_id == ""
    again = build_manifest(job_id, "a/alice", spec, vertical_registry, genesis)
    assert again.manifest_hash == manifest.manifest_hash
    other = build_manifest(job_id, "a/alice", vertical_spec(seed=8), vertical_registry, genesis)
    assert other.manifest_hash != manifest.manifest_hash
    with pytest.raises(ValueError, match="does not check"):
        build_manifest(job_id, "a/alice", vertical_spec(epochs=0), vertical_registry, genesis)


# -- batch order and standardisation --------------------------------------------------------

HORIZONTAL_JOB = """
name = "h"
layout = "horizontal"
features = ["age", "bmi"]
label = "readmitted"
epochs = 1
batch_size = 4
recipients = ["a"]
{extra}
[[datasets]]
id = "a/cohort"
[[datasets]]
id = "b/cohort"
[model]
kind = "logistic_regression"
[optimiser]
learning_rate = 0.5
"""


def horizontal_job(extra: str = "") -> JobSpec:
    return parse_job_spec(HORIZONTAL_JOB.format(extra=extra))


def test_new_specs_shuffle_and_pool_by_default_and_say_so_in_the_proto():
    spec = horizontal_job()
    assert (spec.batch_order, spec.standardisation) == ("shuffled", "pooled")
    message = spec.to_proto()
    assert (message.batch_order, message.standardisation) == ("shuffled", "pooled")
    assert JobSpec.from_proto(message) == spec
    vertical = parse_job_spec(PSI_JOB)  # a vertical job's owners standardise their columns
    assert (vertical.batch_order, vertical.standardisation) == ("shuffled", "")
    explicit = parse_job_spec(
        PSI_JOB.replace(
            'label = "readmitted"', 'label = "readmitted"\nstandardisation = "per-owner"'
        )
    )
    assert explicit == vertical


def test_shuffle_false_and_per_party_mean_what_jobs_did_before():
    spec = horizontal_job('shuffle = false\nstandardisation = "per-party"')
    assert (spec.batch_order, spec.standardisation) == ("", "")
    # proto3 leaves "" out: the record has neither field, as an old release wrote it
    written = {field.name for field, _ in spec.to_proto().ListFields()}
    assert not written & {"batch_order", "standardisation"}


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (
            'standardisation = "global"',
            "standardisation: 'global' is not one of 'pooled', 'per-party' (a horizontal job)",
        ),
        (
            'standardisation = "per-owner"',
            "standardisation: 'per-owner' is not one of 'pooled', 'per-party' (a horizontal job)",
        ),
        ("standardisation = 3", "standardisation: must be a string"),
        ('shuffle = "yes"', "shuffle: must be true or false"),
        ('sigmoid = "tanh"', "sigmoid: 'tanh' is not one of 'piecewise', 'exact'"),
        ("sigmoid = 1", "sigmoid: must be a string"),
        (
            'sigmoid = "piecewise"\nreveal_training_loss = true',
            "sigmoid: 'piecewise' cannot reveal the training loss (its log of an approximated "
            "sigmoid means nothing); use sigmoid = 'exact'",
        ),
        ("gradient_threshold = -1", "gradient_threshold: must be 0 (none) to 1e+06"),
        ("gradient_threshold = inf", "gradient_threshold: must be 0 (none) to 1e+06"),
        ('gradient_threshold = "100"', "gradient_threshold: must be a number"),
    ],
)
def test_a_bad_preprocessing_or_program_field_is_refused_with_its_field(extra, problem):
    with pytest.raises(JobSpecError) as caught:
        horizontal_job(extra)
    assert problem in caught.value.problems, caught.value.problems


def test_a_vertical_job_cannot_pool():
    with pytest.raises(JobSpecError) as caught:
        parse_job_spec(
            PSI_JOB.replace(
                'label = "readmitted"', 'label = "readmitted"\nstandardisation = "pooled"'
            )
        )
    assert (
        "standardisation: 'pooled' is not one of 'per-owner' (a vertical job)"
        in caught.value.problems
    )


def test_the_ledger_refuses_unknown_encodings_in_a_decoded_spec():
    """What `spec_problems` says of a `JobSpec` decoded from an untrusted submission."""
    message = vertical_spec().to_proto()
    message.batch_order, message.standardisation = "reversed", "z-score"
    problems = spec_problems(JobSpec.from_proto(message))
    assert "batch_order: 'reversed' is not '' (rank order) or 'shuffled'" in problems
    assert "standardisation: 'z-score' is not '' (each party's own) or 'pooled'" in problems
    message.standardisation = "pooled"  # known, but not for a vertical job
    assert (
        "standardisation: 'pooled' is for horizontal jobs; in a vertical job each owner holds "
        "whole columns and standardises them itself ('per-owner')"
        in spec_problems(JobSpec.from_proto(message))
    )


# SHA-256 of the deterministic encoding of `vertical_spec()` and of its horizontal twin, as
# the release before batch_order / standardisation wrote them (computed on that release).
OLD_SPEC_DIGESTS = {
    "vertical": "8ec7c81025c0d21d44d3cd656c8f99c42c10cfbad82187085a63d4c3c468e96f",
    "horizontal": "1d2f3ee4f0a4dccde2ae59fa6a14708e281956d9e6a214c485fde071cd0a2924",
}


@pytest.mark.parametrize("layout", ["vertical", "horizontal"])
def test_an_old_spec_still_means_rank_order_per_party_and_hashes_the_same(layout):
    spec = vertical_spec()
    if layout == "horizontal":
        spec = dataclasses.replace(spec, layout="horizontal", alignment="row-order")
    encoded = spec.to_proto().SerializeToString(deterministic=True)
    assert hashlib.sha256(encoded).hexdigest() == OLD_SPEC_DIGESTS[layout]
    old = type(spec.to_proto())()
    old.ParseFromString(encoded)  # an old record: the fields absent
    decoded = JobSpec.from_proto(old)
    assert (decoded.batch_order, decoded.standardisation) == ("", "")
    assert not [p for p in spec_problems(decoded) if p.startswith(("batch", "standard"))]
    assert decoded.to_proto().SerializeToString(deterministic=True) == encoded


# -- the training sigmoid and the gradient threshold ----------------------------------------


def test_new_bce_specs_take_the_piecewise_sigmoid_and_no_threshold_and_say_so():
    spec = horizontal_job()
    assert (spec.sigmoid, spec.gradient_threshold) == ("piecewise", 0.0)
    assert spec.effective_gradient_threshold == 0.0
    message = spec.to_proto()
    assert message.sigmoid == "piecewise"
    assert message.HasField("gradient_threshold")  # 0 is written: absent would mean 100
    assert JobSpec.from_proto(message) == spec


def test_exact_and_a_threshold_are_what_jobs_did_before():
    spec = horizontal_job('sigmoid = "exact"\ngradient_threshold = 100')
    assert (spec.sigmoid, spec.gradient_threshold) == ("", 100.0)


def test_a_job_without_a_sigmoid_or_revealing_its_loss_defaults_to_exact():
    linear = parse_job_spec(
        HORIZONTAL_JOB.format(extra="").replace("logistic_regression", "linear_regression")
    )
    assert (linear.loss, linear.sigmoid) == ("mse", "")
    assert horizontal_job("reveal_training_loss = true").sigmoid == ""


def test_a_sigmoid_named_for_a_job_without_one_is_refused():
    text = HORIZONTAL_JOB.format(extra='sigmoid = "piecewise"')
    with pytest.raises(JobSpecError) as caught:
        parse_job_spec(text.replace("logistic_regression", "linear_regression"))
    assert "sigmoid: only a bce job has one, not a mse job" in caught.value.problems


def test_the_ledger_refuses_an_unknown_sigmoid_in_a_decoded_spec():
    message = vertical_spec().to_proto()
    message.sigmoid = "chebyshev"  # the program knows it; a job may not ask for it
    message.gradient_threshold = float("nan")
    problems = spec_problems(JobSpec.from_proto(message))
    assert "sigmoid: 'chebyshev' is not '' (CrypTen's exact) or 'piecewise'" in problems
    assert "gradient_threshold: must be 0 (none) to 1e+06" in problems


def test_an_old_spec_means_the_exact_sigmoid_and_cryptens_threshold():
    encoded = vertical_spec().to_proto().SerializeToString(deterministic=True)
    assert hashlib.sha256(encoded).hexdigest() == OLD_SPEC_DIGESTS["vertical"]
    old = type(vertical_spec().to_proto())()
    old.ParseFromString(encoded)
    decoded = JobSpec.from_proto(old)
    assert (decoded.sigmoid, decoded.gradient_threshold) == ("", None)
    assert decoded.effective_gradient_threshold == 100.0
    assert decoded.to_proto().SerializeToString(deterministic=True) == encoded


# -- alignment "psi" ------------------------------------------------------------------------

PSI_JOB = """
name = "v"
layout = "vertical"
label = "readmitted"
epochs = 1
batch_size = 4
recipients = ["a"]
[[datasets]]
id = "a/cohort"
features = ["age"]
id_column = "patient_id"
[[datasets]]
id = "b/assays"
features = ["crp"]
[model]
kind = "logistic_regression"
[optimiser]
learning_rate = 0.5
"""


def test_psi_is_the_default_alignment_of_vertical_jobs_only():
    spec = parse_job_spec(PSI_JOB)
    assert spec.alignment == "psi"
    assert [d.id_column for d in spec.datasets] == ["patient_id", ""]
    assert JobSpec.from_proto(spec.to_proto()) == spec
    row_order = parse_job_spec(
        PSI_JOB.replace(
            'layout = "vertical"', 'alignment = "row-order"\nlayout = "vertical"'
        ).replace('id_column = "patient_id"\n', "")
    )
    assert row_order.alignment == "row-order"
    with pytest.raises(JobSpecError) as caught:
        parse_job_spec(
            PSI_JOB.replace('layout = "vertical"', 'layout = "vertical"\nalignment = "row-order"')
        )
    assert caught.value.problems == (
        "datasets[0].id_column: only alignment 'psi' uses an id column",
    )
    horizontal = dataclasses.replace(vertical_spec(), layout="horizontal", alignment="psi")
    assert "alignment: 'psi' aligns the rows of a vertical job; a horizontal job has none" in (
        spec_problems(horizontal)
    )


def test_psi_checks_the_id_columns_against_the_ledger(genesis):
    spec = vertical_spec(alignment="psi")
    # different row counts are fine: the intersection decides
    registered = registry(("a/cohort", COHORT, 50), ("b/assays", ASSAYS, 60))
    assert ledger_problems(spec, registered, genesis) == []
    no_id = DatasetSchema(ASSAYS.columns, id_column="")
    numbered = DatasetSchema(
        (Column("patient_id", "int64"), Column("crp", "float64")), id_column="patient_id"
    )
    floats = DatasetSchema((Column("key", "float64"), Column("crp", "float64")), id_column="key")
    cases = {
        "datasets[1].id_column: required for alignment 'psi' (dataset 'b/assays' was "
        "registered without an id column); name one, or use alignment 'row-order'": no_id,
        "datasets: the id columns must have one type, not datasets[0] string, "
        "datasets[1] int64": numbered,
        "datasets[1].id_column: column 'key' is a float64; an id column is a non-null int64 "
        "or string": floats,
    }
    for expected, schema in cases.items():
        registered = registry(("a/cohort", COHORT, 50), ("b/assays", schema, 60))
        assert ledger_problems(spec, registered, genesis) == [expected]
    named = vertical_spec(
        alignment="psi",
        datasets=(
            JobDatasetRef("a/cohort", ("age", "bmi")),
            JobDatasetRef("b/assays", ("crp",), id_column="nope"),
        ),
    )
    assert ledger_problems(
        named, registry(("a/cohort", COHORT, 50), ("b/assays", ASSAYS, 60)), genesis
    ) == ["datasets[1].id_column: dataset 'b/assays' has no column 'nope'"]
