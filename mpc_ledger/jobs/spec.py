"""Job specs: TOML in, a checked `JobSpec` out; its protobuf form; the job manifest.

Theory of operation
-------------------
A scientist writes a job spec (see ``parties/job.toml``); it is checked in
three layers, each returning *every* problem as ``field: message``:

1. `spec_from_document`: the TOML's shape (unknown keys, wrong types).
2. `spec_problems`: the values on their own (ranges, known names, the model
   and loss agree, ...). The ledger runs the same check on the `JobSpec`
   decoded from an untrusted `JobSubmission`, so a spec that passes here is
   not refused there for a reason the scientist could have been told.
3. `ledger_problems`: the spec against what the ledger knows (registered
   datasets, their schemas and row counts, the genesis's members, dealers,
   protocols and tuple providers). Pure: the registry is handed in.

`to_proto`/`from_proto` are exact inverses (the record carries the proto;
the deterministic encoding is what is signed and hashed).

What every participant agrees on before training is the job's manifest
(`mpc_ledger.jobs.manifest`), built from a spec that passes all three.

Rows are split the same way everywhere: of ``n`` rows, the last
``floor(n * test_fraction)`` are the test set. Vertical datasets are
aligned by a private set intersection of their id columns by default
(``alignment = "psi"``, `mpc_ledger.mpc.psi`): each dataset names its id
column (``[[datasets]] id_column``, else the one it was registered with);
the parties learn the intersection, and the job trains on it, in an order
no party chose, split as above. ``alignment = "row-order"`` instead says
that row i of every dataset is the same entity, which each owner states by
approving; the datasets must then have the same row count. Horizontal jobs
have nothing to align ("row-order").

Preprocessing fields, encoded so that a proto without them (an old record)
means what jobs did before they existed and hashes as it did: TOML
``shuffle`` (default true) is ``batch_order`` "shuffled", false is ""
(rank order); TOML ``standardisation`` is, for a horizontal job, "pooled"
(the default) or "per-party" (""), and for a vertical job "per-owner" ("",
the only choice). `spec_problems` refuses any other encoding.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mpc_ledger.documents import NestingError, parse_toml
from mpc_ledger.errors import ConfigError
from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.jobs._toml import Fields, merge_problems, read_toml
from mpc_ledger.jobs.datasets import NUMERIC_TYPES, RegisteredDataset, check_dataset_id
from mpc_ledger.proto.v1 import jobs_pb2

__all__ = [
    "ALIGNMENTS",
    "BATCH_ORDERS",
    "DEFAULT_LOSS",
    "DEFAULT_PROTOCOL",
    "ID_TYPES",
    "LAYOUTS",
    "LOSSES",
    "MODEL_KINDS",
    "OPTIMISERS",
    "STANDARDISATIONS",
    "TUPLE_PROVIDERS",
    "JobDatasetRef",
    "JobSpec",
    "JobSpecError",
    "ModelSpec",
    "OptimiserSpec",
    "id_column_of",
    "job_test_rows",
    "ledger_problems",
    "load_job_spec",
    "parse_job_spec",
    "resolve_dealer",
    "spec_from_document",
    "spec_problems",
    "split_rows",
]

LAYOUTS = ("vertical", "horizontal")
ALIGNMENTS = ("psi", "row-order")
ID_TYPES = ("int64", "string")
MODEL_KINDS = ("logistic_regression", "linear_regression", "softmax_regression", "mlp")
LOSSES = ("bce", "mse", "cross_entropy")
DEFAULT_LOSS = {
    "logistic_regression": "bce",
    "linear_regression": "mse",
    "softmax_regression": "cross_entropy",
    "mlp": "bce",
}
_LOSSES_OF = {
    "logistic_regression": ("bce",),
    "linear_regression": ("mse",),
    "softmax_regression": ("cross_entropy",),
    "mlp": LOSSES,
}
OPTIMISERS = ("sgd",)
TUPLE_PROVIDERS = ("dealer", "trusted-first-party")
DEFAULT_PROTOCOL = "crypten-0.4.1-arithmetic"
# The proto's encodings: "" (the field absent) is what jobs did before the field existed.
BATCH_ORDERS = ("", "shuffled")  # rank order, or a new public permutation every epoch
STANDARDISATIONS = ("", "pooled")  # each party its own rows / owner its own columns, or pooled
# The TOML's names for them, per layout (the first is the default).
_TOML_STANDARDISATIONS = {
    "horizontal": {"pooled": "pooled", "per-party": ""},
    "vertical": {"per-owner": ""},
}

# Limits on everything a spec can ask for (TigerBeetle's "put a limit on everything").
MAX_NAME_CHARS = 100
MAX_DESCRIPTION_CHARS = 2000
MIN_DATASETS, MAX_DATASETS = 2, 16
MAX_FEATURES = 4096
MAX_HIDDEN_LAYERS, MAX_HIDDEN_SIZE = 8, 4096
MAX_CLASSES = 1000
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 1 << 16
MAX_SEED = (1 << 63) - 1
MAX_LEARNING_RATE = 100.0
MAX_TEST_FRACTION = 0.5
MAX_RECIPIENTS = 16
_MEMBER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_USER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}/[a-z0-9][a-z0-9._-]{0,62}$")

_TOP_KEYS = (
    "name",
    "description",
    "layout",
    "alignment",
    "datasets",
    "features",
    "label",
    "model",
    "loss",
    "optimiser",
    "epochs",
    "batch_size",
    "seed",
    "test_fraction",
    "recipients",
    "reveal_training_loss",
    "tuple_provider",
    "dealer",
    "protocol",
    "shuffle",
    "standardisation",
)


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

    @property
    def dataset_ids(self) -> tuple[str, ...]:
        return tuple(d.dataset_id for d in self.datasets)

    @property
    def output_size(self) -> int:
        """The model's output width: the class count for cross-entropy, else 1."""
        return self.model.classes if self.loss == "cross_entropy" else 1

    def to_proto(self) -> jobs_pb2.JobSpec:
        return jobs_pb2.JobSpec(
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
        )

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
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- reading TOML ---------------------------------------------------------------------------


def load_job_spec(path: Path) -> JobSpec:
    """Read and check a job spec file; `JobSpecError` lists every problem, with its field."""
    document = read_toml(path)
    spec, problems = spec_from_document(document)
    if spec is None or problems:
        raise JobSpecError(problems, path=path)
    return spec


def parse_job_spec(text: str) -> JobSpec:
    """Like `load_job_spec`, from text (tests, a spec received over an API)."""
    try:
        document = parse_toml(text)
    except (tomllib.TOMLDecodeError, NestingError) as exc:
        raise JobSpecError([f"document: not valid TOML: {exc}"]) from None
    spec, problems = spec_from_document(document)
    if spec is None or problems:
        raise JobSpecError(problems)
    return spec


def spec_from_document(document: Any) -> tuple[JobSpec | None, list[str]]:
    """The spec a parsed TOML document describes and every problem in it (shape and values)."""
    fields = Fields()
    top = fields.table(document, "", _TOP_KEYS)
    layout = fields.text(top, "layout", "")
    datasets = _datasets_from(fields, top, layout)
    model_table = fields.table(top.get("model", {}), "model", ("kind", "hidden_sizes", "classes"))
    if "model" not in top:
        fields.add("model", "required: a [model] table with kind")
    model = ModelSpec(
        kind=fields.text(model_table, "kind", "model"),
        hidden_sizes=fields.integers(model_table, "hidden_sizes", "model", default=()),
        classes=fields.integer(model_table, "classes", "model", default=0),
    )
    optimiser_table = fields.table(
        top.get("optimiser", {}),
        "optimiser",
        ("kind", "learning_rate", "momentum", "weight_decay"),
    )
    if "optimiser" not in top:
        fields.add("optimiser", "required: an [optimiser] table with learning_rate")
    optimiser = OptimiserSpec(
        kind=fields.text(optimiser_table, "kind", "optimiser", default="sgd"),
        learning_rate=fields.number(optimiser_table, "learning_rate", "optimiser"),
        momentum=fields.number(optimiser_table, "momentum", "optimiser", default=0.0),
        weight_decay=fields.number(optimiser_table, "weight_decay", "optimiser", default=0.0),
    )
    spec = JobSpec(
        name=fields.text(top, "name", ""),
        description=fields.text(top, "description", "", default=""),
        layout=layout,
        alignment=fields.text(
            top, "alignment", "", default="psi" if layout == "vertical" else "row-order"
        ),
        datasets=datasets,
        label=fields.text(top, "label", ""),
        model=model,
        # An unknown model kind is reported once, not again as a loss that does not fit it.
        loss=fields.text(top, "loss", "", default=DEFAULT_LOSS.get(model.kind, "bce")),
        optimiser=optimiser,
        epochs=fields.integer(top, "epochs", ""),
        batch_size=fields.integer(top, "batch_size", ""),
        seed=fields.integer(top, "seed", "", default=0),
        test_fraction=fields.number(top, "test_fraction", "", default=0.2),
        recipients=fields.texts(top, "recipients", ""),
        reveal_training_loss=fields.flag(top, "reveal_training_loss", "", default=False),
        tuple_provider=fields.text(top, "tuple_provider", "", default="dealer"),
        dealer=fields.text(top, "dealer", "", default=""),
        protocol=fields.text(top, "protocol", "", default=DEFAULT_PROTOCOL),
        batch_order="shuffled" if fields.flag(top, "shuffle", "", default=True) else "",
        standardisation=_standardisation_from(fields, top, layout),
    )
    problems = merge_problems(fields.problems, spec_problems(spec))
    return spec, _unique(problems)


def _standardisation_from(fields: Fields, top: dict[str, Any], layout: str) -> str:
    """The proto's encoding of ``standardisation`` (default: the layout's first name)."""
    choices = _TOML_STANDARDISATIONS.get(layout)
    if choices is None:  # the layout's own problem is reported
        return ""
    name = fields.text(top, "standardisation", "", default=next(iter(choices)))
    if name not in choices:
        if isinstance(top.get("standardisation"), str):
            allowed = ", ".join(repr(c) for c in choices)
            fields.add("standardisation", f"{name!r} is not one of {allowed} (a {layout} job)")
        return ""
    return choices[name]


def _datasets_from(fields: Fields, top: dict[str, Any], layout: str) -> tuple[JobDatasetRef, ...]:
    """``[[datasets]]`` tables; a top-level ``features`` list is shorthand for horizontal jobs."""
    raw = top.get("datasets")
    if not isinstance(raw, list):
        fields.add("datasets", "required: [[datasets]] tables, each with an id")
        return ()
    shared: tuple[str, ...] | None = None
    if "features" in top:
        shared = fields.texts(top, "features", "")
        if layout == "vertical":
            fields.add("features", "a vertical job lists features in each [[datasets]] table")
    refs: list[JobDatasetRef] = []
    for index, item in enumerate(raw):
        prefix = f"datasets[{index}]"
        table = fields.table(item, prefix, ("id", "features", "id_column"))
        dataset_id = fields.text(table, "id", prefix)
        if "features" in table and shared is not None:
            fields.add(f"{prefix}.features", "features are given at the top level already")
        if shared is not None and layout != "vertical":
            features = shared
        else:
            features = fields.texts(table, "features", prefix)
        id_column = fields.text(table, "id_column", prefix, default="")
        refs.append(JobDatasetRef(dataset_id, features, id_column))
    return tuple(refs)


def _unique(problems: list[str]) -> list[str]:
    return list(dict.fromkeys(problems))


# -- checks on the values -------------------------------------------------------------------


def spec_problems(spec: JobSpec) -> list[str]:
    """Every problem in the spec's values, without the ledger (see the module docstring)."""
    problems: list[str] = []
    add = problems.append
    if not spec.name or len(spec.name) > MAX_NAME_CHARS or not spec.name.isprintable():
        add(f"name: must be 1 to {MAX_NAME_CHARS} printable characters")
    if len(spec.description) > MAX_DESCRIPTION_CHARS:
        add(f"description: longer than {MAX_DESCRIPTION_CHARS} characters")
    if spec.layout not in LAYOUTS:
        add(f"layout: {spec.layout!r} is not one of {', '.join(LAYOUTS)}")
    if spec.alignment not in ALIGNMENTS:
        add(f"alignment: {spec.alignment!r} is not one of {', '.join(ALIGNMENTS)}")
    elif spec.alignment == "psi" and spec.layout == "horizontal":
        add("alignment: 'psi' aligns the rows of a vertical job; a horizontal job has none")
    problems.extend(_dataset_problems(spec))
    if not spec.label:
        add("label: required: the label column's name")
    elif any(spec.label in d.features for d in spec.datasets):
        add(f"label: {spec.label!r} is also listed as a feature")
    problems.extend(_model_problems(spec))
    problems.extend(_training_problems(spec))
    problems.extend(_preprocessing_problems(spec))
    problems.extend(_release_problems(spec))
    return problems


def _dataset_problems(spec: JobSpec) -> list[str]:
    problems: list[str] = []
    if not MIN_DATASETS <= len(spec.datasets) <= MAX_DATASETS:
        problems.append(
            f"datasets: a joint job uses {MIN_DATASETS} to {MAX_DATASETS} datasets, "
            f"not {len(spec.datasets)}"
        )
    seen: dict[str, int] = {}
    for index, ref in enumerate(spec.datasets):
        prefix = f"datasets[{index}]"
        problem = check_dataset_id(ref.dataset_id)
        if problem is not None:
            problems.append(f"{prefix}.id: {problem}")
        elif ref.dataset_id in seen:
            problems.append(f"{prefix}.id: {ref.dataset_id!r} is datasets[{seen[ref.dataset_id]}]")
        seen.setdefault(ref.dataset_id, index)
        if ref.id_column and spec.alignment != "psi":
            problems.append(f"{prefix}.id_column: only alignment 'psi' uses an id column")
        elif ref.id_column and ref.id_column in ref.features:
            problems.append(f"{prefix}.id_column: {ref.id_column!r} is also a feature")
        elif ref.id_column and ref.id_column == spec.label:
            problems.append(f"{prefix}.id_column: {ref.id_column!r} is the label")
        if len(ref.features) > MAX_FEATURES:
            problems.append(f"{prefix}.features: at most {MAX_FEATURES}")
        names: set[str] = set()
        for position, feature in enumerate(ref.features):
            if not feature:
                problems.append(f"{prefix}.features[{position}]: must not be empty")
            elif feature in names:
                problems.append(f"{prefix}.features[{position}]: {feature!r} is listed twice")
            names.add(feature)
    if spec.layout == "horizontal" and spec.datasets:
        first = spec.datasets[0].features
        if not first:
            problems.append("features: a horizontal job needs at least one feature")
        for index, ref in enumerate(spec.datasets[1:], start=1):
            if ref.features != first:
                problems.append(
                    f"datasets[{index}].features: a horizontal job uses the same features, "
                    "in the same order, from every dataset"
                )
    if spec.layout == "vertical" and spec.datasets and not any(d.features for d in spec.datasets):
        problems.append("datasets: a vertical job needs at least one feature in some dataset")
    return problems


def _model_problems(spec: JobSpec) -> list[str]:
    problems: list[str] = []
    model = spec.model
    if model.kind not in MODEL_KINDS:
        problems.append(f"model.kind: {model.kind!r} is not one of {', '.join(MODEL_KINDS)}")
    if model.kind == "mlp":
        if not 1 <= len(model.hidden_sizes) <= MAX_HIDDEN_LAYERS:
            problems.append(f"model.hidden_sizes: an mlp has 1 to {MAX_HIDDEN_LAYERS} layers")
        for index, size in enumerate(model.hidden_sizes):
            if not 1 <= size <= MAX_HIDDEN_SIZE:
                problems.append(
                    f"model.hidden_sizes[{index}]: must be a positive integer "
                    f"(at most {MAX_HIDDEN_SIZE})"
                )
    elif model.hidden_sizes:
        problems.append("model.hidden_sizes: only an mlp has hidden layers")
    if spec.loss not in LOSSES:
        problems.append(f"loss: {spec.loss!r} is not one of {', '.join(LOSSES)}")
    elif model.kind in _LOSSES_OF and spec.loss not in _LOSSES_OF[model.kind]:
        allowed = " or ".join(_LOSSES_OF[model.kind])
        problems.append(f"loss: a {model.kind} model trains with {allowed}, not {spec.loss}")
    if spec.loss == "cross_entropy":
        if not 2 <= model.classes <= MAX_CLASSES:
            problems.append(f"model.classes: cross_entropy needs 2 to {MAX_CLASSES} classes")
    elif model.classes:
        problems.append("model.classes: only a model trained with cross_entropy has classes")
    return problems


def _training_problems(spec: JobSpec) -> list[str]:
    problems: list[str] = []
    optimiser = spec.optimiser
    if optimiser.kind not in OPTIMISERS:
        problems.append(f"optimiser.kind: {optimiser.kind!r} is not one of {', '.join(OPTIMISERS)}")
    if not (math.isfinite(optimiser.learning_rate) and optimiser.learning_rate > 0):
        problems.append("optimiser.learning_rate: must be a positive number")
    elif optimiser.learning_rate > MAX_LEARNING_RATE:
        problems.append(f"optimiser.learning_rate: at most {MAX_LEARNING_RATE}")
    if not (math.isfinite(optimiser.momentum) and 0 <= optimiser.momentum < 1):
        problems.append("optimiser.momentum: must be at least 0 and less than 1")
    if not (math.isfinite(optimiser.weight_decay) and 0 <= optimiser.weight_decay < 1):
        problems.append("optimiser.weight_decay: must be at least 0 and less than 1")
    if not 1 <= spec.epochs <= MAX_EPOCHS:
        problems.append(f"epochs: must be 1 to {MAX_EPOCHS}")
    if not 1 <= spec.batch_size <= MAX_BATCH_SIZE:
        problems.append(f"batch_size: must be 1 to {MAX_BATCH_SIZE}")
    if not 0 <= spec.seed <= MAX_SEED:
        problems.append(f"seed: must be 0 to {MAX_SEED}")
    if not (math.isfinite(spec.test_fraction) and 0 <= spec.test_fraction <= MAX_TEST_FRACTION):
        problems.append(f"test_fraction: must be 0 to {MAX_TEST_FRACTION}")
    return problems


def _preprocessing_problems(spec: JobSpec) -> list[str]:
    """The proto's encodings (a spec from the ledger may hold anything)."""
    problems: list[str] = []
    if spec.batch_order not in BATCH_ORDERS:
        problems.append(f"batch_order: {spec.batch_order!r} is not '' (rank order) or 'shuffled'")
    if spec.standardisation not in STANDARDISATIONS:
        problems.append(
            f"standardisation: {spec.standardisation!r} is not '' (each party's own) or 'pooled'"
        )
    elif spec.standardisation == "pooled" and spec.layout == "vertical":
        problems.append(
            "standardisation: 'pooled' is for horizontal jobs; in a vertical job each owner "
            "holds whole columns and standardises them itself ('per-owner')"
        )
    return problems


def _release_problems(spec: JobSpec) -> list[str]:
    problems: list[str] = []
    if not 1 <= len(spec.recipients) <= MAX_RECIPIENTS:
        problems.append(f"recipients: name 1 to {MAX_RECIPIENTS} recipients of the model")
    for index, recipient in enumerate(spec.recipients):
        if not (_MEMBER_ID.match(recipient) or _USER_ID.match(recipient)):
            problems.append(
                f"recipients[{index}]: {recipient!r} is neither a member id nor a user id"
            )
        elif recipient in spec.recipients[:index]:
            problems.append(f"recipients[{index}]: {recipient!r} is listed twice")
    if spec.tuple_provider not in TUPLE_PROVIDERS:
        problems.append(
            f"tuple_provider: {spec.tuple_provider!r} is not one of {', '.join(TUPLE_PROVIDERS)}"
        )
    if spec.dealer and spec.tuple_provider != "dealer":
        problems.append("dealer: only a job whose tuple_provider is 'dealer' names a dealer")
    elif spec.dealer and not _MEMBER_ID.match(spec.dealer):
        problems.append(f"dealer: {spec.dealer!r} is not a member id")
    if not spec.protocol:
        problems.append("protocol: required")
    return problems


# -- checks against the ledger --------------------------------------------------------------


def resolve_dealer(spec: JobSpec, genesis: Genesis) -> tuple[str | None, str | None]:
    """(the dealer member, None), or (None, why there is none). No dealer without one asked."""
    if spec.tuple_provider != "dealer":
        return None, None
    dealers = [m.id for m in genesis.with_role("dealer")]
    if spec.dealer:
        if spec.dealer not in dealers:
            return None, f"dealer: {spec.dealer!r} is not a member with the dealer role"
        return spec.dealer, None
    if len(dealers) != 1:
        named = ", ".join(dealers) or "none"
        return None, f"dealer: the genesis has {len(dealers)} dealers ({named}); name one"
    return dealers[0], None


def ledger_problems(
    spec: JobSpec, registry: Mapping[str, RegisteredDataset], genesis: Genesis
) -> list[str]:
    """Every problem of a (value-checked) spec against the registered datasets and the genesis."""
    problems: list[str] = []
    found: list[tuple[int, RegisteredDataset]] = []
    owners: dict[str, int] = {}
    for index, ref in enumerate(spec.datasets):
        dataset = registry.get(ref.dataset_id)
        if dataset is None:
            problems.append(f"datasets[{index}].id: no dataset {ref.dataset_id!r} is registered")
            continue
        if dataset.owner in owners:
            problems.append(
                f"datasets[{index}].id: member {dataset.owner!r} already contributes "
                f"datasets[{owners[dataset.owner]}]; a member takes part with one dataset"
            )
        owners.setdefault(dataset.owner, index)
        found.append((index, dataset))
        problems.extend(_feature_problems(index, ref, dataset))
    problems.extend(_layout_problems(spec, found))
    test_problem = _test_rows_problem(spec, found, genesis.mpc.min_test_rows)
    if test_problem is not None:
        problems.append(test_problem)
    dealer, problem = resolve_dealer(spec, genesis)
    if problem is not None:
        problems.append(problem)
    if dealer is not None and dealer in owners:
        problems.append(f"dealer: {dealer!r} also contributes a dataset; the dealer holds none")
    if spec.tuple_provider not in genesis.mpc.allowed_tuple_providers:
        allowed = ", ".join(genesis.mpc.allowed_tuple_providers)
        problems.append(
            f"tuple_provider: this consortium allows {allowed}, not {spec.tuple_provider!r}"
        )
    if spec.protocol not in genesis.mpc.allowed_protocols:
        allowed = ", ".join(genesis.mpc.allowed_protocols)
        problems.append(f"protocol: this consortium allows {allowed}, not {spec.protocol!r}")
    for index, recipient in enumerate(spec.recipients):
        member = recipient.partition("/")[0]
        if genesis.member(member) is None:
            problems.append(f"recipients[{index}]: {member!r} is not a consortium member")
        elif member == dealer:
            problems.append(f"recipients[{index}]: the dealer holds no data and gets no model")
        elif member not in owners and len(found) == len(spec.datasets):
            problems.append(
                f"recipients[{index}]: {member!r} takes no part in this job; "
                "the model is released only to data owners of the job"
            )
    return problems


def _feature_problems(index: int, ref: JobDatasetRef, dataset: RegisteredDataset) -> list[str]:
    problems: list[str] = []
    for position, name in enumerate(ref.features):
        column = dataset.schema.column(name)
        field = f"datasets[{index}].features[{position}]"
        if column is None:
            problems.append(f"{field}: dataset {dataset.dataset_id!r} has no column {name!r}")
        elif column.type not in NUMERIC_TYPES:
            problems.append(f"{field}: column {name!r} is a {column.type}; features are numeric")
        elif column.nullable:
            problems.append(f"{field}: column {name!r} may hold nulls; a feature may not")
    return problems


def _layout_problems(spec: JobSpec, found: list[tuple[int, RegisteredDataset]]) -> list[str]:
    problems: list[str] = []
    holders = [(i, d) for i, d in found if d.schema.column(spec.label) is not None]
    if spec.layout == "vertical":
        if len(found) == len(spec.datasets) and not holders:
            problems.append(f"label: no dataset of the job has a column {spec.label!r}")
        elif len(holders) > 1:
            where = ", ".join(f"datasets[{i}]" for i, _ in holders)
            problems.append(
                f"label: column {spec.label!r} is in {where}; it must be in exactly one"
            )
        if spec.alignment == "psi":
            problems.extend(_id_column_problems(spec, found))
        elif found:
            first_index, first = found[0]
            for index, dataset in found[1:]:
                if dataset.row_count != first.row_count:
                    problems.append(
                        f"datasets[{index}].id: has {dataset.row_count} rows, "
                        f"datasets[{first_index}] has {first.row_count}; vertical datasets "
                        "are aligned by row order and must have the same number of rows"
                    )
    elif spec.layout == "horizontal":
        for index, dataset in found:
            if dataset.schema.column(spec.label) is None:
                problems.append(
                    f"label: dataset {dataset.dataset_id!r} (datasets[{index}]) has no column "
                    f"{spec.label!r}"
                )
        if found:
            first_index, first = found[0]
            for index, dataset in found[1:]:
                if dataset.schema.columns != first.schema.columns:
                    problems.append(
                        f"datasets[{index}].id: its schema differs from datasets[{first_index}]'s; "
                        "a horizontal job needs the same columns and types in every dataset"
                    )
    for index, dataset in holders:
        column = dataset.schema.column(spec.label)
        assert column is not None
        if column.type not in NUMERIC_TYPES or column.nullable:
            problems.append(
                f"label: column {spec.label!r} of datasets[{index}] is a "
                f"{'nullable ' if column.nullable else ''}{column.type}; a label is numeric "
                "and never null"
            )
    for index, dataset in found:
        if split_rows(dataset.row_count, spec.test_fraction)[0] < 1:
            problems.append(f"datasets[{index}].id: leaves no training rows")
    return _unique(problems)


def job_test_rows(spec: JobSpec, row_counts: Sequence[int]) -> int:
    """The most test rows the job's test metric can describe, for datasets of ``row_counts``
    rows: vertical, one dataset's (aligned by PSI, the smallest one's, which the
    intersection cannot exceed); horizontal, every dataset's together."""
    tests = [split_rows(rows, spec.test_fraction)[1] for rows in row_counts]
    if not tests:
        return 0
    return min(tests) if spec.layout == "vertical" else sum(tests)


def _test_rows_problem(
    spec: JobSpec, found: list[tuple[int, RegisteredDataset]], minimum: int
) -> str | None:
    """The consortium's ``min_test_rows``: the revealed test metric never describes fewer
    rows. A job that tests on nothing (test_fraction 0) reveals no metric."""
    if spec.test_fraction == 0 or len(found) != len(spec.datasets):
        return None
    test_rows = job_test_rows(spec, [dataset.row_count for _, dataset in found])
    if test_rows >= minimum:
        return None
    at_most = " at most" if spec.alignment == "psi" else ""
    return (
        f"test_fraction: leaves{at_most} {test_rows} test rows; this consortium's minimum "
        f"is {minimum} (min_test_rows): raise it, or set it to 0 for no test metric"
    )


def id_column_of(ref: JobDatasetRef, dataset: RegisteredDataset) -> str:
    """The id column a psi job aligns ``dataset`` on: the spec's, else the registered one."""
    return ref.id_column or dataset.schema.id_column


def _id_column_problems(spec: JobSpec, found: list[tuple[int, RegisteredDataset]]) -> list[str]:
    problems: list[str] = []
    types: dict[str, int] = {}
    for index, dataset in found:
        ref = spec.datasets[index]
        name = id_column_of(ref, dataset)
        field = f"datasets[{index}].id_column"
        if not name:
            problems.append(
                f"{field}: required for alignment 'psi' (dataset {dataset.dataset_id!r} was "
                "registered without an id column); name one, or use alignment 'row-order'"
            )
            continue
        column = dataset.schema.column(name)
        if column is None:
            problems.append(f"{field}: dataset {dataset.dataset_id!r} has no column {name!r}")
        elif column.type not in ID_TYPES or column.nullable:
            problems.append(
                f"{field}: column {name!r} is a {'nullable ' if column.nullable else ''}"
                f"{column.type}; an id column is a non-null {' or '.join(ID_TYPES)}"
            )
        elif name in ref.features or name == spec.label:
            problems.append(f"{field}: {name!r} is also a feature or the label")
        else:
            types.setdefault(column.type, index)
    if len(types) > 1:
        where = ", ".join(f"datasets[{i}] {t}" for t, i in types.items())
        problems.append(f"datasets: the id columns must have one type, not {where}")
    return problems


def split_rows(row_count: int, test_fraction: float) -> tuple[int, int]:
    """(train rows, test rows): the last ``floor(rows * test_fraction)`` rows are for testing."""
    test = math.floor(row_count * test_fraction)
    return row_count - test, test
