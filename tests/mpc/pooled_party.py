"""Pooled statistics under CrypTen for one party holding every row (world size 1: no
messages, the same fixed point, truncations and comparisons): reads the rows and some
between-party deviations as JSON on stdin, prints the revealed mean, scale, standardised
rows and weighted squares of the deviations (their range reduction) as JSON."""

import json
import sys

import torch

from mpc_ledger.mpc.crypten_compat import import_crypten
from mpc_ledger.mpc.preprocessing import _weighted_squares, pooled_statistics, standardise

crypten = import_crypten()
crypten.init()
request = json.load(sys.stdin)
x = torch.tensor(request["x_train"], dtype=torch.float32)
statistics = pooled_statistics(crypten, [len(x)], x.shape[1], 0, x)
rows = standardise(crypten, crypten.cryptensor(x), statistics, chunk_rows=16)
print(
    json.dumps(
        {
            "mean": statistics.mean.get_plain_text().tolist(),
            "scale": statistics.scale.get_plain_text().tolist(),
            "standardised": rows.get_plain_text().tolist(),
            "weighted_squares": _weighted_squares(
                crypten,
                crypten.cryptensor(torch.tensor(request["deviations"], dtype=torch.float64)),
                torch.tensor(request["weights"], dtype=torch.float64).view(-1, 1),
            )
            .get_plain_text()
            .tolist(),
        }
    )
)
crypten.uninit()
