"""The checks of a (value-checked) job spec against what the ledger knows: `ledger_problems`.

Registered datasets, their schemas and row counts, the genesis's members,
dealers, protocols and tuple providers. Pure: the registry is handed in.

Vertical datasets are aligned by a private set intersection of their id
columns by default (``alignment = "psi"``, `mpc_ledger.mpc.psi`): each
dataset names its id column (``[[datasets]] id_column``, else the one it was
registered with); ``alignment = "row-order"`` instead says that row i of
every dataset is the same entity, and the datasets must then have the same
row count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.jobs.datasets import NUMERIC_TYPES, RegisteredDataset
from mpc_ledger.jobs.spec.model import ID_TYPES, JobDatasetRef, JobSpec, id_column_of, split_rows
from mpc_ledger.jobs.spec.value_checks import unique_problems

__all__ = ["job_test_rows", "ledger_problems", "resolve_dealer"]


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
    return unique_problems(problems)


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
