"""The conformance suite a worker runs (the manifest's program ``{"name": "conformance"}``):
each CrypTen operation the training programs use, on inputs from different parties,
revealed to all, beside the plaintext reference a test compares it to. The dealer sizes
its budget from the same inputs (`conformance_inputs`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mpc_ledger.mpc.train_spec import TrainSpec, build_torch_model, parameter_name

__all__ = ["conformance_inputs", "flat", "mlp_step_reference", "run_conformance"]


def conformance_inputs(seed: int = 7) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randn(4, 5, generator=generator),
        "y": torch.randn(4, 5, generator=generator),
        "w": torch.randn(5, 3, generator=generator),
        "mlp_x": torch.randn(6, 5, generator=generator),
        "mlp_y": (torch.rand(6, 1, generator=generator) > 0.5).float(),
    }


def run_conformance(crypten: Any, rank: int, world_size: int) -> dict[str, Any]:
    """Each operation on inputs from different parties, revealed to all (compare to plaintext)."""
    inputs = conformance_inputs()
    last = world_size - 1

    def share(name: str, owner: int) -> Any:
        value = inputs[name]
        plain = value if rank == owner else torch.zeros_like(value)
        return crypten.cryptensor(plain, src=owner)

    x, y, w = share("x", 0), share("y", 1 % world_size), share("w", last)
    results: dict[str, Any] = {
        "add": x + y,
        "mul": x * y,
        "matmul": x.matmul(w),
        "lt": x < y,
        "gt": x > y,
        "relu": x.relu(),
        "sigmoid": x.sigmoid(),
        "softmax": x.softmax(dim=1),
    }
    revealed = {name: value.get_plain_text().tolist() for name, value in results.items()}
    revealed["mlp_step"] = _mlp_step(crypten, share("mlp_x", 0), share("mlp_y", last))
    return revealed


def mlp_step_reference() -> dict[str, Any]:
    """One SGD step of the conformance MLP in plain PyTorch."""
    inputs = conformance_inputs()
    model = _conformance_mlp()
    loss = torch.nn.BCEWithLogitsLoss()(model(inputs["mlp_x"]), inputs["mlp_y"])
    loss.backward()
    with torch.no_grad():
        for parameter in model.parameters():
            assert parameter.grad is not None
            parameter.sub_(0.1 * parameter.grad)
    return {name: p.detach().tolist() for name, p in model.named_parameters()}


def _conformance_mlp() -> torch.nn.Module:
    spec = TrainSpec(
        layout="horizontal",
        model="mlp",
        n_features=5,
        hidden=(4,),
        seed=11,
        train_rows_per_rank=(6,),
        test_rows_per_rank=(0,),
    )
    return build_torch_model(spec)


def _mlp_step(crypten: Any, features: Any, labels: Any) -> dict[str, Any]:
    model = crypten.nn.from_pytorch(_conformance_mlp(), torch.zeros(1, 5))
    model.encrypt(src=0)
    model.train()
    loss = crypten.nn.BCEWithLogitsLoss()(model(features), labels)
    model.zero_grad()
    loss.backward()
    model.update_parameters(0.1)
    return {parameter_name(n): p.get_plain_text().tolist() for n, p in model.named_parameters()}


def flat(values: Sequence[Any]) -> list[float]:
    return torch.tensor(values, dtype=torch.float64).flatten().tolist()
