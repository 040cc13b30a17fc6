"""One model vocabulary (issue #14 item 5): the spec's names are the ledger's, and every
other spelling is derived from `mpc_ledger.model_kinds`."""

from __future__ import annotations

from mpc_ledger import model_kinds
from mpc_ledger.jobs import spec
from mpc_ledger.jobs.spec.model import LOSSES_OF
from mpc_ledger.mpc import model_file, train_spec


def test_the_spec_keeps_the_names_old_records_carry():
    assert spec.MODEL_KINDS == (
        "logistic_regression",
        "linear_regression",
        "softmax_regression",
        "mlp",
    )


def test_every_spelling_comes_from_the_one_table():
    assert tuple(model_kinds.PROGRAM_MODELS) == spec.MODEL_KINDS
    assert tuple(model_kinds.PROGRAM_MODELS.values()) == train_spec.MODELS
    assert train_spec.MODELS == model_file.MODEL_KINDS
    for kind in model_kinds.KINDS:
        assert spec.DEFAULT_LOSS[kind.name] == train_spec.DEFAULT_LOSS[kind.program_name]
        assert LOSSES_OF[kind.name] == model_kinds.PROGRAM_LOSSES_OF[kind.program_name]
    assert spec.LOSSES == train_spec.LOSSES == model_file.LOSSES
