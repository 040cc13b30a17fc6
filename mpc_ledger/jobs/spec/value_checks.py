"""The value checks of a job spec, without the ledger: `spec_problems`.

Every problem as ``field: message`` (ranges, known names, the model and loss
agree, ...). The ledger runs the same check on the `JobSpec` decoded from an
untrusted `JobSubmission`, so a spec that passes here is not refused there
for a reason the scientist could have been told. Pure.
"""

from __future__ import annotations

import math

from mpc_ledger.identity.ids import MEMBER_ID, QUALIFIED_ID
from mpc_ledger.jobs.datasets import check_dataset_id
from mpc_ledger.jobs.spec.model import (
    ALIGNMENTS,
    BATCH_ORDERS,
    BATCH_SIZE_MAX,
    CLASSES_MAX,
    DATASETS_MAX,
    DATASETS_MIN,
    DESCRIPTION_MAX_CHARS,
    EPOCHS_MAX,
    FEATURES_MAX,
    GRADIENT_THRESHOLD_MAX,
    HIDDEN_LAYERS_MAX,
    HIDDEN_SIZE_MAX,
    LAYOUTS,
    LEARNING_RATE_MAX,
    LOSSES,
    LOSSES_OF,
    MODEL_KINDS,
    NAME_MAX_CHARS,
    OPTIMISERS,
    RECIPIENTS_MAX,
    SEED_MAX,
    SIGMOIDS,
    STANDARDISATIONS,
    TEST_FRACTION_MAX,
    TUPLE_PROVIDERS,
    JobSpec,
)

__all__ = ["spec_problems", "unique_problems"]


def unique_problems(problems: list[str]) -> list[str]:
    """``problems`` without repeats, in their order (one cause reported once)."""
    return list(dict.fromkeys(problems))


def spec_problems(spec: JobSpec) -> list[str]:
    """Every problem in the spec's values, without the ledger (see the module docstring)."""
    problems: list[str] = []
    add = problems.append
    if not spec.name or len(spec.name) > NAME_MAX_CHARS or not spec.name.isprintable():
        add(f"name: must be 1 to {NAME_MAX_CHARS} printable characters")
    if len(spec.description) > DESCRIPTION_MAX_CHARS:
        add(f"description: longer than {DESCRIPTION_MAX_CHARS} characters")
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
    if not DATASETS_MIN <= len(spec.datasets) <= DATASETS_MAX:
        problems.append(
            f"datasets: a joint job uses {DATASETS_MIN} to {DATASETS_MAX} datasets, "
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
        if len(ref.features) > FEATURES_MAX:
            problems.append(f"{prefix}.features: at most {FEATURES_MAX}")
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
        if not 1 <= len(model.hidden_sizes) <= HIDDEN_LAYERS_MAX:
            problems.append(f"model.hidden_sizes: an mlp has 1 to {HIDDEN_LAYERS_MAX} layers")
        for index, size in enumerate(model.hidden_sizes):
            if not 1 <= size <= HIDDEN_SIZE_MAX:
                problems.append(
                    f"model.hidden_sizes[{index}]: must be a positive integer "
                    f"(at most {HIDDEN_SIZE_MAX})"
                )
    elif model.hidden_sizes:
        problems.append("model.hidden_sizes: only an mlp has hidden layers")
    if spec.loss not in LOSSES:
        problems.append(f"loss: {spec.loss!r} is not one of {', '.join(LOSSES)}")
    elif model.kind in LOSSES_OF and spec.loss not in LOSSES_OF[model.kind]:
        allowed = " or ".join(LOSSES_OF[model.kind])
        problems.append(f"loss: a {model.kind} model trains with {allowed}, not {spec.loss}")
    if spec.loss == "cross_entropy":
        if not 2 <= model.classes <= CLASSES_MAX:
            problems.append(f"model.classes: cross_entropy needs 2 to {CLASSES_MAX} classes")
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
    elif optimiser.learning_rate > LEARNING_RATE_MAX:
        problems.append(f"optimiser.learning_rate: at most {LEARNING_RATE_MAX}")
    if not (math.isfinite(optimiser.momentum) and 0 <= optimiser.momentum < 1):
        problems.append("optimiser.momentum: must be at least 0 and less than 1")
    if not (math.isfinite(optimiser.weight_decay) and 0 <= optimiser.weight_decay < 1):
        problems.append("optimiser.weight_decay: must be at least 0 and less than 1")
    if not 1 <= spec.epochs <= EPOCHS_MAX:
        problems.append(f"epochs: must be 1 to {EPOCHS_MAX}")
    if not 1 <= spec.batch_size <= BATCH_SIZE_MAX:
        problems.append(f"batch_size: must be 1 to {BATCH_SIZE_MAX}")
    if not 0 <= spec.seed <= SEED_MAX:
        problems.append(f"seed: must be 0 to {SEED_MAX}")
    if not (math.isfinite(spec.test_fraction) and 0 <= spec.test_fraction <= TEST_FRACTION_MAX):
        problems.append(f"test_fraction: must be 0 to {TEST_FRACTION_MAX}")
    if spec.sigmoid not in SIGMOIDS:
        problems.append(f"sigmoid: {spec.sigmoid!r} is not '' (CrypTen's exact) or 'piecewise'")
    elif spec.sigmoid and spec.loss != "bce":
        problems.append(f"sigmoid: only a bce job has one, not a {spec.loss} job")
    elif spec.sigmoid and spec.reveal_training_loss:
        problems.append(
            f"sigmoid: {spec.sigmoid!r} cannot reveal the training loss (its log of an "
            "approximated sigmoid means nothing); use sigmoid = 'exact'"
        )
    threshold = spec.gradient_threshold
    if threshold is not None and not (
        math.isfinite(threshold) and 0 <= threshold <= GRADIENT_THRESHOLD_MAX
    ):
        problems.append(f"gradient_threshold: must be 0 (none) to {GRADIENT_THRESHOLD_MAX:g}")
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
    if not 1 <= len(spec.recipients) <= RECIPIENTS_MAX:
        problems.append(f"recipients: name 1 to {RECIPIENTS_MAX} recipients of the model")
    for index, recipient in enumerate(spec.recipients):
        if not (MEMBER_ID.match(recipient) or QUALIFIED_ID.match(recipient)):
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
    elif spec.dealer and not MEMBER_ID.match(spec.dealer):
        problems.append(f"dealer: {spec.dealer!r} is not a member id")
    if not spec.protocol:
        problems.append("protocol: required")
    return problems
