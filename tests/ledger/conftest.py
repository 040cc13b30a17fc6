"""Fixtures for the ledger's pure core: a genesis with real keys, signers for its members."""

from __future__ import annotations

import pytest

from mpc_ledger.proto.v1 import ledger_pb2
from mpc_ledger.testing.authors import Authors
from mpc_ledger.testing.consortium import make_consortium


@pytest.fixture(scope="module")
def ledger_consortium(tmp_path_factory):
    return make_consortium(tmp_path_factory.mktemp("ledger") / "c", "a,b,c", auditor=True)


@pytest.fixture(scope="module")
def authors(ledger_consortium):
    return Authors(ledger_consortium)


def raw(record: ledger_pb2.Record) -> bytes:
    return record.SerializeToString(deterministic=True)
