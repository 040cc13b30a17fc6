"""A party's worker that deviates where the pairwise transcript check cannot see it.

    python deviating_worker.py WORKER-ARGS...   (what a party daemon runs for its jobs)

The program a daemon runs (`mpc_ledger.jobs.worker_main`: the MPC worker and the reader of
the party's registered file) with one change: after its epoch-1 snapshot, the first tensor
frame it sends to another data party gets one bit of its payload flipped *before* it is
hashed. It records what it really sent, so sender and receiver agree on every digest and
`verify`'s checks pass; only a replay, which recomputes what the honest program sends,
can tell. It says on stderr (its log) which channel it altered. The rest of its
randomness comes from the committed seed like an honest worker's. The test says per job
what to be (`mode`): ``deviate`` (the above), ``honest``, or ``unseeded``: the honest
program, except that CrypTen draws its own seeds from ``os.urandom`` as shipped, which
the committed seed does not explain and a replay must catch too.
"""

import sys
from pathlib import Path

from mpc_ledger.jobs.worker_bridge import read_party_file
from mpc_ledger.mpc import crypten_compat, worker
from mpc_ledger.mpc.communicator import MpcCommunicator

MODE_FILE = "test-worker-mode"
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


def mode(argv):
    """What the test asked of this job: the first line of ``test-worker-mode`` in the
    party's data folder (the manifest is ``<data_dir>/jobs/<job>/...``); honest without."""
    manifest = Path(argv[argv.index("--manifest") + 1])
    marker = manifest.parents[2] / MODE_FILE
    return marker.read_text().strip() if marker.exists() else "honest"


if __name__ == "__main__":
    argv = sys.argv[1:]
    chosen = mode(argv)
    double = {"deviate": Deviating, "unseeded": MpcCommunicator, "honest": MpcCommunicator}[chosen]
    if chosen == "unseeded":
        unseeded()
    sys.exit(worker.main(argv, communicator_class=double, read_file=read_party_file))
