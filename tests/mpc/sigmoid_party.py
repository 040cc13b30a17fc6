"""One CrypTen process (world size 1): each `TrainSpec.sigmoid` against torch's (a script).

Prints one JSON line: per approximation, the largest error of the sigmoid on [-4, 4], the
BCE-with-logits gradient (which takes the sigmoid in its forward) at three logits, and
whether ``MPCTensor.sigmoid`` is CrypTen's own again after the block.
"""

import json

import torch

from mpc_ledger.mpc import crypten_compat
from mpc_ledger.mpc.train_spec import SIGMOIDS


def main():
    crypten = crypten_compat.import_crypten()
    crypten.init()
    x = torch.linspace(-4, 4, 33)
    logits = torch.tensor([[-3.0], [0.5], [3.0]])
    result = {}
    for name in SIGMOIDS:
        with crypten_compat.sigmoid_approximation(name):
            error = (crypten.cryptensor(x).sigmoid().get_plain_text() - torch.sigmoid(x)).abs()
            encrypted = crypten.cryptensor(logits, requires_grad=True)
            loss = crypten.nn.BCEWithLogitsLoss(skip_forward=True)
            loss(encrypted, crypten.cryptensor(torch.ones(3, 1))).backward()
        result[name] = {
            "max_error": float(error.max()),
            "gradient": (encrypted.grad.get_plain_text().flatten() * 3).tolist(),
            "restored": "sigmoid" not in vars(crypten.mpc.MPCTensor),
        }
    crypten.uninit()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
