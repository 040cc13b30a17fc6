"""The worker program a party daemon runs for its jobs: ``python -m mpc_ledger.jobs.worker_main``.

It is `mpc_ledger.mpc.worker` with one thing added from this layer: the reader of
this party's registered file (`mpc_ledger.jobs.worker_bridge.read_party_file`:
catalogue entry, re-fingerprint, rows). The composition lives here, above both,
so that the MPC layer never imports the jobs layer (the layer contracts in
pyproject.toml); the command line is the MPC worker's. The runner starts it as
`mpc_ledger.jobs.job_run.JOB_WORKER_PROGRAM` (a constant there, so the daemon
never imports this module, torch or CrypTen).
"""

from __future__ import annotations

import sys

from mpc_ledger.jobs.worker_bridge import read_party_file
from mpc_ledger.mpc import worker

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    return worker.main(argv, read_file=read_party_file)


if __name__ == "__main__":
    sys.exit(main())
