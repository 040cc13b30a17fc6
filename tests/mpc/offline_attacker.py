"""Workers that break the dealer's offline phase, for the tests (run as a script).

    python offline_attacker.py MODE WORKER-ARGS...

At the dealer's rank:
MODE ``wrong-size``: its 3rd streamed answer is one row longer than the plan's request
(header and tensor alike), as a dealer that streamed an unforeseen batch would send.
MODE ``dies``: it dies (SIGKILL, no goodbye) after streaming 3 answers.
At party 0:
MODE ``greedy-plan``: its first plan asks for its sequence 100,000 times over, far more
answers than the job's budget allows.
"""

import dataclasses
import os
import signal
import sys

import torch

from mpc_ledger.mpc import crypten_compat, dealer, worker

honest_stream = dealer.DealerChannel.stream
honest_send_plan = crypten_compat._Party0Offline.send_plan
streamed = {"count": 0}


def attacking_stream(self, number, result):
    streamed["count"] += 1
    if MODE == "dies" and streamed["count"] > 3:
        os.kill(os.getpid(), signal.SIGKILL)
    if MODE == "wrong-size" and streamed["count"] == 3:
        result = torch.cat([result, result[:1]]) if result.dim() else result.reshape(1)
    honest_stream(self, number, result)


def greedy_send_plan(self, comm, plan):
    honest_send_plan(self, comm, dataclasses.replace(plan, repeats=100_000))


if __name__ == "__main__":
    MODE = sys.argv[1]
    dealer.DealerChannel.stream = attacking_stream
    crypten_compat._Party0Offline.send_plan = (
        greedy_send_plan if MODE == "greedy-plan" else honest_send_plan
    )
    sys.exit(worker.main(sys.argv[2:]))
