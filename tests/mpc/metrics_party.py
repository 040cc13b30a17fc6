"""One party of a two-party CrypTen evaluation of test metrics (`mpc_ledger.mpc.evaluation`).

Run as a separate process per party (RANK, WORLD_SIZE, RENDEZVOUS, DISTRIBUTED_BACKEND set by
tests/mpc/test_evaluation.py): rank 0 holds the model's outputs, rank 1 the labels, as in a
vertical job. Every case comes from a seed, so both parties (and the test) know its shape;
rank 0 prints one JSON line: each case's inputs and the metrics the parties opened.
"""

import json

import torch

from mpc_ledger.mpc.crypten_compat import import_crypten
from mpc_ledger.mpc.evaluation import encrypted_metrics

crypten = import_crypten()
crypten.init()
rank = crypten.communicator.get().get_rank()
generator = torch.Generator().manual_seed(17)


def binary(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = (torch.rand(rows, 1, generator=generator) > 0.4).float()
    logits = (2 * labels - 1) * 1.5 + 1.5 * torch.randn(rows, 1, generator=generator)
    logits[:2] = torch.tensor([[12.0], [-12.0]])  # beyond the log-loss clip
    return logits, labels


def multiclass(rows: int, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    # the last class never occurs in the labels: macro-F1's convention matters
    labels = torch.randint(0, classes - 1, (rows,), generator=generator)
    logits = torch.randn(rows, classes, generator=generator)
    logits[torch.arange(rows), labels] += 1.0
    return logits, torch.nn.functional.one_hot(labels, classes).float()


def regression(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = 2 * torch.randn(rows, 1, generator=generator) + 1
    return labels + 0.5 * torch.randn(rows, 1, generator=generator), labels


logits, labels = binary(60)
cases = {
    "binary": ("bce", logits, labels),
    "multiclass": ("cross_entropy", *multiclass(45, 4)),
    "regression": ("mse", *regression(50)),
    # every row right: an accuracy of exactly 1 (opened as a mean, it was 1.0000152)
    "binary_all_right": ("bce", (2 * labels - 1) * 3, labels),
    "regression_exact": ("mse", labels * 0.5, labels * 0.5),
}
results = {}
for name, (loss, output, target) in cases.items():
    # SPMD: both parties make the same calls; only the source's values matter
    output_enc = crypten.cryptensor(output if rank == 0 else torch.zeros_like(output), src=0)
    target_enc = crypten.cryptensor(target if rank == 1 else torch.zeros_like(target), src=1)
    results[name] = {
        "loss": loss,
        "output": output.tolist(),
        "labels": target.tolist(),
        "metrics": encrypted_metrics(crypten, loss, output_enc, target_enc),
    }
if rank == 0:
    print(json.dumps(results))
crypten.uninit()
