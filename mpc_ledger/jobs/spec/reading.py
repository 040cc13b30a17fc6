"""Reading a job spec from TOML: every problem of its shape and values, with its field.

`spec_from_document` reads the TOML's shape (unknown keys, wrong types) and
then runs the value checks (`mpc_ledger.jobs.spec.value_checks`) on what it
read, so a scientist sees every problem at once. The TOML's own spellings
live here: ``shuffle`` (default true) is ``batch_order`` "shuffled", false is
"" (rank order); ``standardisation`` is, for a horizontal job, "pooled" (the
default) or "per-party" (""), and for a vertical job "per-owner" ("", the
only choice); ``sigmoid`` is "piecewise" (the default for a bce job that does
not reveal its loss) or "exact" ("").
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from mpc_ledger.documents import NestingError, parse_toml
from mpc_ledger.jobs._toml import Fields, merge_problems, read_toml
from mpc_ledger.jobs.spec.model import (
    DEFAULT_LOSS,
    DEFAULT_PROTOCOL,
    JobDatasetRef,
    JobSpec,
    JobSpecError,
    ModelSpec,
    OptimiserSpec,
)
from mpc_ledger.jobs.spec.value_checks import spec_problems, unique_problems

__all__ = ["load_job_spec", "parse_job_spec", "spec_from_document"]

# The TOML's names for them, per layout (the first is the default).
_TOML_STANDARDISATIONS = {
    "horizontal": {"pooled": "pooled", "per-party": ""},
    "vertical": {"per-owner": ""},
}

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
    "sigmoid",
    "gradient_threshold",
)
# The TOML's names for a bce job's training sigmoid (`JobSpec.sigmoid`'s encodings).
_TOML_SIGMOIDS = {"piecewise": "piecewise", "exact": ""}


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
    # An unknown model kind is reported once, not again as a loss that does not fit it.
    loss = fields.text(top, "loss", "", default=DEFAULT_LOSS.get(model.kind, "bce"))
    reveal_loss = fields.flag(top, "reveal_training_loss", "", default=False)
    # a bce job's sigmoid; one that reveals its loss takes its log, so the exact one
    sigmoid = "piecewise" if loss == "bce" and not reveal_loss else "exact"
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
        loss=loss,
        optimiser=optimiser,
        epochs=fields.integer(top, "epochs", ""),
        batch_size=fields.integer(top, "batch_size", ""),
        seed=fields.integer(top, "seed", "", default=0),
        test_fraction=fields.number(top, "test_fraction", "", default=0.2),
        recipients=fields.texts(top, "recipients", ""),
        reveal_training_loss=reveal_loss,
        tuple_provider=fields.text(top, "tuple_provider", "", default="dealer"),
        dealer=fields.text(top, "dealer", "", default=""),
        protocol=fields.text(top, "protocol", "", default=DEFAULT_PROTOCOL),
        batch_order="shuffled" if fields.flag(top, "shuffle", "", default=True) else "",
        standardisation=_standardisation_from(fields, top, layout),
        sigmoid=_named(fields, top, "sigmoid", _TOML_SIGMOIDS, sigmoid),
        gradient_threshold=fields.number(top, "gradient_threshold", "", default=0.0),
    )
    problems = merge_problems(fields.problems, spec_problems(spec))
    return spec, unique_problems(problems)


def _standardisation_from(fields: Fields, top: dict[str, Any], layout: str) -> str:
    """The proto's encoding of ``standardisation`` (default: the layout's first name)."""
    choices = _TOML_STANDARDISATIONS.get(layout)
    if choices is None:  # the layout's own problem is reported
        return ""
    default = next(iter(choices))
    return _named(fields, top, "standardisation", choices, default, f" (a {layout} job)")


def _named(
    fields: Fields,
    top: dict[str, Any],
    key: str,
    choices: dict[str, str],
    default: str,
    context: str = "",
) -> str:
    """The proto's encoding (``choices``: TOML name to encoding) of the name at ``key``."""
    name = fields.text(top, key, "", default=default)
    if name not in choices:
        if isinstance(top.get(key), str):  # else `fields.text` reported its type
            allowed = ", ".join(repr(c) for c in choices)
            fields.add(key, f"{name!r} is not one of {allowed}{context}")
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
