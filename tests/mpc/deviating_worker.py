"""A party's worker that deviates where the pairwise transcript check cannot see it.

    python deviating_worker.py WORKER-ARGS...   (what a party daemon runs for its jobs)

The program a daemon runs (`mpc_ledger.jobs.worker_main`: the MPC worker and the reader of
the party's registered file) with one change: after its epoch-1 snapshot, the first tensor
frame it sends to another data party gets one bit of its payload flipped *before* it is
hashed. It records what it really sent, so sender and receiver agree on every digest and
`verify`'s checks pass; only a replay, which recomputes what the honest program sends,
can tell. It says on stderr (its log) which channel it altered. The rest of its
randomness comes from the committed seed like an honest worker's. With
``MPC_LEDGER_TEST_UNSEEDED=1`` it alters nothing and is the honest program, except that
CrypTen draws its own seeds from ``os.urandom`` as shipped: randomness the committed seed
does not explain, which a replay must catch too.
"""

import os
import sys

from mpc_ledger.jobs.worker_bridge import read_party_file
from mpc_ledger.mpc import crypten_compat, worker
from mpc_ledger.mpc.communicator import MpcCommunicator

ALTERED = "deviating worker: altered its first frame of epoch 2 to rank"


class Deviating(MpcCommunicator):
    armed = False

    def snapshot(self, label):
        taken = super().snapshot(label)
        if label == "epoch-1":
            self.armed = True
        return taken

    def _tensor_frame(self, dst, tensors):
        frame = super()._tensor_frame(dst, tensors)
        if self.armed and dst < self.world_size and len(frame.data) >= 8:
            self.armed = False
            data = bytearray(frame.data)
            data[0] ^= 0x01
            frame.data = bytes(data)
            print(f"{ALTERED} {dst}", file=sys.stderr, flush=True)
        return frame


def unseeded() -> None:
    """CrypTen keeps its own seeds from ``os.urandom`` (as shipped): an honest program whose
    randomness the committed seed does not fix."""
    crypten_compat.seed_crypten = lambda seed: None


if __name__ == "__main__":
    double = Deviating
    if os.environ.get("MPC_LEDGER_TEST_UNSEEDED") == "1":
        unseeded()
        double = MpcCommunicator
    sys.exit(worker.main(sys.argv[1:], communicator_class=double, read_file=read_party_file))
