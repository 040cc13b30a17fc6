"""A worker whose CrypTen seeds repeat from job to job, for the tests (run as a script).

    python seeded_worker.py [--no-offline-phase | --mispredict] WORKER-ARGS...

CrypTen draws its pairwise and local seeds from ``os.urandom`` and the dealer its seeds
from torch's default generator (which this torch seeds at random in every process); here
both are seeded with the rank, so two jobs with the same spec draw the same randomness.
``--no-offline-phase``: party 0 asks the dealer for every answer, as before the offline
phase. ``--mispredict``: party 0's plans foresee a wrong third request (a wraps of one
element), so each plan falls back there: party 0 cancels it, discards what the dealer
streamed past it and asks. A test compares the models such jobs train.
"""

import dataclasses
import os
import random
import sys

import torch

from mpc_ledger.mpc import crypten_compat, dealer_offline, worker
from mpc_ledger.mpc.dealer import DealerRequest, RequestKind, stream_window

set_tuple_provider = crypten_compat.set_tuple_provider
step_starts = dealer_offline.OfflinePlanner.step_starts


def mispredicting_step_starts(self, index, schedule, next_number):
    plan = step_starts(self, index, schedule, next_number)
    if plan is None:
        return None
    sequence = list(plan.sequence)
    sequence[2] = DealerRequest(RequestKind.WRAPS, ((1,),))
    wrong = dataclasses.replace(plan, sequence=tuple(sequence))
    self._active = dealer_offline._Active(wrong, stream_window(wrong))
    return wrong


def without_offline_phase(provider, *, offline_phase=False):
    set_tuple_provider(provider, offline_phase=False)


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv and argv[0] == "--no-offline-phase":
        argv = argv[1:]
        crypten_compat.set_tuple_provider = without_offline_phase
    if argv and argv[0] == "--mispredict":
        argv = argv[1:]
        dealer_offline.OfflinePlanner.step_starts = mispredicting_step_starts
    rank = int(argv[argv.index("--rank") + 1])
    os.urandom = random.Random(f"seeded-worker-{rank}").randbytes
    torch.manual_seed(1000 + rank)
    sys.exit(worker.main(argv))
