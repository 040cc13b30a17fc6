"""Fixtures for the jobs core: a consortium with a dealer and an auditor, real keys, records."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mpc_ledger.daemon.processes import DaemonProcess, stop_all
from mpc_ledger.jobs.datasets import Column, DatasetSchema, FingerprintBuilder, make_registration
from mpc_ledger.jobs.spec import JobDatasetRef, JobSpec, ModelSpec, OptimiserSpec
from mpc_ledger.proto.v1 import jobs_pb2, ledger_pb2
from mpc_ledger.testing.authors import Authors
from mpc_ledger.testing.consortium import make_consortium
from mpc_ledger.testing.processes import live_pids, run_cli

PARTIES = Path(__file__).resolve().parents[2] / "parties"

COHORT = DatasetSchema(
    (
        Column("patient_id", "string"),
        Column("age", "int64"),
        Column("bmi", "float64"),
        Column("readmitted", "bool"),
    ),
    id_column="patient_id",
    label_column="readmitted",
)
ASSAYS = DatasetSchema(
    (Column("patient_id", "string"), Column("crp", "float64"), Column("note", "string", True)),
    id_column="patient_id",
)


def registration(dataset_id: str, schema: DatasetSchema, rows: int) -> jobs_pb2.DatasetRegistration:
    """A registration whose hashes agree, over ``rows`` made-up rows."""
    builder = FingerprintBuilder(schema)
    for index in range(rows):
        builder.add(tuple(_value(c, index) for c in schema.columns))
    return make_registration(dataset_id, schema, builder.result(), "test data")


def _value(column: Column, index: int):
    return {
        "string": f"p{index}",
        "int64": index,
        "float64": index / 2,
        "bool": index % 2 == 0,
    }[column.type]


def vertical_spec(**changes) -> JobSpec:
    spec = JobSpec(
        name="readmission",
        layout="vertical",
        datasets=(
            JobDatasetRef("a/cohort", ("age", "bmi")),
            JobDatasetRef("b/assays", ("crp",)),
        ),
        label="readmitted",
        model=ModelSpec("logistic_regression"),
        loss="bce",
        optimiser=OptimiserSpec(learning_rate=0.1),
        epochs=2,
        batch_size=8,
        recipients=("a", "b/bob"),
        seed=7,
    )
    return dataclasses.replace(spec, **changes)


@pytest.fixture(scope="session")
def jobs_consortium(tmp_path_factory):
    root = tmp_path_factory.mktemp("jobs") / "c"
    return make_consortium(root, "a,b,c", dealer=True, auditor=True)


@pytest.fixture(scope="session")
def authors(jobs_consortium):
    return Authors(jobs_consortium)


@pytest.fixture(scope="session")
def genesis(jobs_consortium):
    return jobs_consortium.genesis


def raw(record: ledger_pb2.Record) -> bytes:
    return record.SerializeToString(deterministic=True)


# -- a consortium run through the CLI (tests/jobs/test_job_cli.py, test_job_concurrency.py) --

CLI_ROWS = 80
CLI_SHARED = 60  # patients both CLI data parties hold


def cli(*args, ok=True, timeout_s=120):
    """`mpc-ledger ARGS...` in a child process; asserts success unless ``ok=False``."""
    result = run_cli(*args, timeout_s=timeout_s)
    if ok:
        assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


def write_csv(path, header, columns):
    lines = [",".join(header)] + [",".join(map(str, row)) for row in zip(*columns, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def make_user(root, consortium, user_id):
    """A scientist's profile made with `user keygen`, bound by its member with `user add`."""
    member_id, name = user_id.split("/")
    profile = root / name
    cli("user", "keygen", "--id", user_id, "--out", profile)
    cli(
        "user",
        "add",
        profile / "user.json",
        "--roles",
        "scientist",
        "--config",
        consortium.config(member_id),
        "--out",
        profile / "keys" / "tls.crt",
    )
    shutil.copy(consortium.genesis_path, profile / "genesis.json")
    return profile


def cli_policy(*members: str, min_rows: int = 0, min_test_rows: int = 0) -> str:
    """A data owner's policy for the CLI world: scientists and recipients of ``members``."""
    patterns = ", ".join(f'"{m}/*"' for m in members)
    return f"""version = 1
submitters = [{patterns}]
datasets = ["*"]
models = ["logistic_regression"]
max_epochs = 5
recipients = [{patterns}]
allow_loss_reveal = true
min_rows = {min_rows}
min_test_rows = {min_test_rows}
"""


def cli_job(name: str, recipient: str = "a/alice") -> str:
    """A job spec over the CLI world's datasets (vertical; aligned by PSI, the default)."""
    return f"""name = "{name}"
layout = "vertical"
label = "y"
epochs = 1
batch_size = 32
seed = 1
test_fraction = 0.25
recipients = ["{recipient}"]
reveal_training_loss = true

[[datasets]]
id = "a/feat"
features = ["f0", "f1", "f2"]

[[datasets]]
id = "b/lab"
features = ["g0", "g1"]

[model]
kind = "logistic_regression"

[optimiser]
learning_rate = 0.5
"""


@contextlib.contextmanager
def cli_job_world(
    root: Path,
    policy: str,
    *,
    check_logs: bool = False,
    policy_of: dict[str, str] | None = None,
    env_of: dict[str, dict[str, str]] | None = None,
) -> Iterator:
    """Data parties a and b (vertical: a/feat holds f0-f2, b/lab holds g0, g1 and the label
    y; each has patients the other lacks, in its own order, with an id column), the dealer
    and an auditor; both data parties use ``policy`` (or ``policy_of[member]`` where given);
    the datasets are registered with `dataset register`; ``env_of[member]`` is added to that
    daemon's environment. Yields the consortium; stops every daemon after."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    consortium = make_consortium(root / "c", "a,b", dealer=True, auditor=True)
    for member_id in ("a", "b"):
        folder = root / "c" / member_id
        (folder / "policy.toml").write_text((policy_of or {}).get(member_id, policy))
        config = folder / "party.toml"
        config.write_text(
            config.read_text().replace("[party]\n", '[party]\npolicy = "policy.toml"\n')
        )
    features, labels = load_breast_cancer(return_X_y=True)
    features = (features[:CLI_ROWS] - features.mean(0)) / features.std(0)
    ids = np.array([f"p{i}" for i in range(CLI_ROWS)])
    # The parties share CLI_SHARED patients (p10..p69), each in its own order: jobs align
    # them by PSI (the default for vertical jobs).
    rng = np.random.default_rng(5)
    a_rows = rng.permutation(np.arange(0, CLI_SHARED + 10))
    b_rows = rng.permutation(np.arange(10, CLI_ROWS))
    write_csv(
        root / "a.csv", ["id", "f0", "f1", "f2"], [ids[a_rows], *features[a_rows, :3].T.round(4)]
    )
    write_csv(
        root / "b.csv",
        ["id", "g0", "g1", "y"],
        [ids[b_rows], *features[b_rows, 3:5].T.round(4), labels[b_rows].astype(np.int64)],
    )
    daemons = [
        DaemonProcess(consortium.config(m), root / f"{m}.log", env=(env_of or {}).get(m))
        for m in consortium.ids
    ]
    try:
        for member_id, daemon in zip(consortium.ids, daemons, strict=True):
            daemon.wait_serving(consortium.genesis.member(member_id).endpoint, 60)
        for member_id, name, columns, extra in (
            ("a", "feat", "id:string,f0:float64,f1:float64,f2:float64", ["--id-column", "id"]),
            (
                "b",
                "lab",
                "id:string,g0:float64,g1:float64,y:int64",
                ["--id-column", "id", "--label-column", "y"],
            ),
        ):
            cli(
                "dataset",
                "register",
                root / f"{member_id}.csv",
                "--id",
                f"{member_id}/{name}",
                "--columns",
                columns,
                *extra,
                "--config",
                consortium.config(member_id),
            )
        yield consortium
    finally:
        stop_all(daemons)
        if check_logs:
            for daemon in daemons:
                log = daemon.log_path.read_text(errors="replace")
                assert "ERROR   mpc_ledger.jobs" not in log, f"{daemon.config}:\n{log}"


def worker_pids(mention: str) -> list[int]:
    """Pids of live MPC worker processes whose command line mentions ``mention``: the program
    a daemon runs for its jobs (`mpc_ledger.jobs.worker_main`) or the bare MPC worker."""
    return sorted(
        {
            *live_pids("mpc_ledger.jobs.worker_main", mention),
            *live_pids("mpc_ledger.mpc.worker", mention),
        }
    )
