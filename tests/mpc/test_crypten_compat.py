import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

from mpc_ledger.mpc import crypten_compat

from .gloo_parties import run_gloo_parties

HERE = Path(__file__).parent


def test_import_is_idempotent_and_installs_one_stand_in():
    first = crypten_compat.import_crypten()
    stand_in = sys.modules["torch.onnx._internal.registration"]
    second = crypten_compat.import_crypten()
    assert first is second
    assert sys.modules["torch.onnx._internal.registration"] is stand_in
    assert first.__version__ == "0.4.1"
    # CrypTen bound the name from the stand-in, and can build an encrypted tensor API.
    assert hasattr(importlib.import_module("crypten.nn.onnx_converter"), "registry")


def test_does_not_replace_a_real_module(monkeypatch):
    real = importlib.import_module("json")  # any module that exists
    monkeypatch.setitem(sys.modules, "torch.onnx._internal.registration", real)
    crypten_compat._install_registration_stand_in()
    assert sys.modules["torch.onnx._internal.registration"] is real


@pytest.mark.integration
def test_two_process_computation_matches_plaintext(tmp_path):
    outputs = [
        json.loads(out.strip().splitlines()[-1])
        for out in run_gloo_parties(HERE / "crypten_party.py", tmp_path, timeout_s=120)
    ]
    x = torch.tensor([0.5, -1.25, 3.0, 2.0])
    y = torch.tensor([[1.0, 2.0], [3.0, -4.0], [0.25, 0.5], [-1.0, 1.0]])
    expected = (x.unsqueeze(0) @ y).tolist()
    for result in outputs:
        assert torch.allclose(torch.tensor(result["product"]), torch.tensor(expected), atol=1e-2)
        assert result["positive"] == [1.0, 0.0, 1.0, 1.0]
    assert sorted(r["rank"] for r in outputs) == [0, 1]
