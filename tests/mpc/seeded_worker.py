"""A worker whose CrypTen seeds repeat from job to job, for the tests (run as a script).

    python seeded_worker.py [--no-offline-phase] WORKER-ARGS...

CrypTen draws its pairwise and local seeds from ``os.urandom`` and the dealer its seeds
from torch's default generator (which this torch seeds at random in every process); here
both are seeded with the rank, so two jobs with the same spec draw the same randomness.
``--no-offline-phase``: party 0 asks the dealer for every answer, as before the offline
phase. A test compares the models two such jobs train.
"""

import os
import random
import sys

import torch

from mpc_ledger.mpc import crypten_compat, worker

set_tuple_provider = crypten_compat.set_tuple_provider


def without_offline_phase(provider, *, offline_phase=False):
    set_tuple_provider(provider, offline_phase=False)


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv and argv[0] == "--no-offline-phase":
        argv = argv[1:]
        crypten_compat.set_tuple_provider = without_offline_phase
    rank = int(argv[argv.index("--rank") + 1])
    os.urandom = random.Random(f"seeded-worker-{rank}").randbytes
    torch.manual_seed(1000 + rank)
    sys.exit(worker.main(argv))
