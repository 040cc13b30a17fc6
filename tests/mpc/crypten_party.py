"""One party of a two-party CrypTen computation over CrypTen's own local transport.

Run as a separate process per party (RANK, WORLD_SIZE, RENDEZVOUS,
DISTRIBUTED_BACKEND set by the test). Prints one JSON line with the result.
"""

import json

import torch

from mpc_ledger.mpc.crypten_compat import import_crypten

crypten = import_crypten()
crypten.init()
rank = crypten.communicator.get().get_rank()
x = torch.tensor([0.5, -1.25, 3.0, 2.0])
y = torch.tensor([[1.0, 2.0], [3.0, -4.0], [0.25, 0.5], [-1.0, 1.0]])
# SPMD: both parties make the same calls; only the source's values matter.
x_enc = crypten.cryptensor(x if rank == 0 else torch.zeros_like(x), src=0)
y_enc = crypten.cryptensor(y if rank == 1 else torch.zeros_like(y), src=1)
product = (x_enc.unsqueeze(0).matmul(y_enc)).get_plain_text()
positive = (x_enc > 0).get_plain_text()
print(json.dumps({"rank": rank, "product": product.tolist(), "positive": positive.tolist()}))
crypten.uninit()
