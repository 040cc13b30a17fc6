"""Fixtures for the jobs core: a consortium with a dealer and an auditor, real keys, records."""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path

import nacl.signing
import pytest

from mpc_ledger.identity.signing import Signer
from mpc_ledger.jobs.datasets import Column, DatasetSchema, FingerprintBuilder, make_registration
from mpc_ledger.jobs.spec import JobDatasetRef, JobSpec, ModelSpec, OptimiserSpec
from mpc_ledger.ledger.records import make_record
from mpc_ledger.proto.v1 import jobs_pb2, ledger_pb2
from mpc_ledger.testing.consortium import make_consortium

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


class Authors:
    """Signers for every member of the consortium, and for users made up on demand."""

    def __init__(self, consortium):
        self.genesis = consortium.genesis
        self.chain_id = self.genesis.chain_id
        self.signers = {
            member_id: Signer(consortium.party(member_id).identity.signing_key, self.chain_id)
            for member_id in consortium.ids
        }
        self.user_keys: dict[str, nacl.signing.SigningKey] = {}

    def user_signer(self, user_id: str) -> Signer:
        key = self.user_keys.setdefault(user_id, nacl.signing.SigningKey.generate())
        return Signer(key, self.chain_id)

    def record(self, author: str, signer: Signer | None = None, **payload) -> ledger_pb2.Record:
        body = ledger_pb2.RecordBody(author=author, nonce=secrets.randbits(63), **payload)
        if signer is None:
            signer = self.signers.get(author) or self.user_signer(author)
        return make_record(signer, body)

    def bind(self, member: str, user_id: str, roles=("scientist",)):
        key = bytes(self.user_signer(user_id).public_key)
        binding = ledger_pb2.UserKeyBinding(user_id=user_id, public_key=key, roles=list(roles))
        return self.record(member, bind_user=binding)


@pytest.fixture(scope="session")
def jobs_consortium(tmp_path_factory):
    root = tmp_path_factory.mktemp("jobs") / "c"
    return make_consortium(root, "a,b,c", "--dealer", "--auditor")


@pytest.fixture(scope="session")
def authors(jobs_consortium):
    return Authors(jobs_consortium)


@pytest.fixture(scope="session")
def genesis(jobs_consortium):
    return jobs_consortium.genesis


def raw(record: ledger_pb2.Record) -> bytes:
    return record.SerializeToString(deterministic=True)
