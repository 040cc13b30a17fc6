"""The worker's command line, built in one place for everything that starts workers.

The party daemon's job runner (``mpc_ledger.jobs.runner``) and the test and
benchmark harnesses (``mpc_ledger.testing.mpc_cluster``, ``benchmarks/``) all
start ``python -m mpc_ledger.mpc.worker`` with the same flags; the flags are
parsed by ``mpc_ledger.mpc.worker.main``. This module imports neither torch nor
CrypTen, so that a daemon building a command does not wait on them.

The transport is the relay (``socket_path``: the party daemon's MPC relay
socket, every frame over mTLS) or CrypTen's own gloo (``rendezvous``: a
``file://`` path shared by local processes, for tests and benchmarks only).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["WORKER_PROGRAM", "worker_command"]

WORKER_PROGRAM: tuple[str, ...] = (sys.executable, "-m", "mpc_ledger.mpc.worker")


def worker_command(
    manifest_path: Path,
    rank: int,
    output_path: Path,
    *,
    socket_path: Path | None = None,
    rendezvous: str | None = None,
    events: bool = False,
    model_path: Path | None = None,
    program: Sequence[str] = WORKER_PROGRAM,
    job_seed: Path | None = None,
    inbound_log: Path | None = None,
    log_key: Path | None = None,
    replay_log: Path | None = None,
    replay_watch: Path | None = None,
) -> list[str]:
    """``program`` (the worker, or a test double taking its flags) for one rank of a job.

    Exactly one of ``socket_path`` (the relay), ``rendezvous`` (gloo) and
    ``replay_log`` (a replay, `mpc_ledger.mpc.replay`: receives served from that
    inbound log, the digests ``replay_watch`` names kept); ``events``: JSON lines
    on stdout for the runner; ``model_path``: recipients save the trained model
    there; ``job_seed``: the committed seed every random choice derives from;
    ``inbound_log`` (with ``log_key``): keep every frame received there.
    """
    if sum(x is not None for x in (socket_path, rendezvous, replay_log)) != 1:
        raise ValueError("give the worker exactly one of socket_path, rendezvous and replay_log")
    command = [
        *program,
        *("--manifest", str(manifest_path)),
        *("--rank", str(rank)),
        *("--output", str(output_path)),
    ]
    if socket_path is not None:
        command += ["--socket", str(socket_path)]
    elif rendezvous is not None:
        command += ["--transport", "gloo", "--rendezvous", str(rendezvous)]
    else:
        command += ["--transport", "replay", "--replay-log", str(replay_log)]
        if replay_watch is not None:
            command += ["--replay-watch", str(replay_watch)]
    if job_seed is not None:
        command += ["--job-seed", str(job_seed)]
    if inbound_log is not None:
        command += ["--inbound-log", str(inbound_log)]
    if log_key is not None:
        command += ["--log-key", str(log_key)]
    if events:
        command.append("--events")
    if model_path is not None:
        command += ["--model-out", str(model_path)]
    return command
