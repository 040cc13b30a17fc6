"""Where a job's files live on this party: ``<data_dir>/jobs/<job id in hex>`` (0700).

It holds the worker's manifest (a local path, 0600), its result and log and,
on a recipient's machine only, the model (``model.pt`` and its canonical
encoding ``model.bin``, 0600), which the worker writes and `Jobs/Result`
serves. For a replay (`mpc-ledger audit replay`) it also keeps the worker's
committed job seed and its encrypted inbound log (`ReplayFiles`, 0600 each);
the inbound log's key is the party's own, one per data folder
(`log_key_path`). One place for the paths, so the runner, the API and the
replay agree on them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

__all__ = [
    "MODEL_FILE",
    "ReplayFiles",
    "job_folder",
    "log_key_path",
    "make_job_folder",
    "model_file",
    "replay_files",
]

# The model's canonical encoding (`mpc_ledger.mpc.model_codec`), which the worker writes
# beside model.pt: the client checks it against the ledger's model hash and never
# unpickles what it downloads.
MODEL_FILE = "model.bin"


def job_folder(data_dir: Path, job_id: bytes) -> Path:
    return Path(data_dir) / "jobs" / job_id.hex()


def make_job_folder(data_dir: Path, job_id: bytes) -> Path:
    """`job_folder`, created (0700) if it is not there."""
    folder = job_folder(data_dir, job_id)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def model_file(data_dir: Path, job_id: bytes) -> Path:
    """The model's canonical encoding on a recipient's machine (the worker writes it)."""
    return job_folder(data_dir, job_id) / MODEL_FILE


@dataclasses.dataclass(frozen=True)
class ReplayFiles:
    """One worker's files a replay needs, in its job folder."""

    seed: Path  # the committed job seed (`mpc_ledger.mpc.job_seed`)
    inbound_log: Path  # every frame it received (`mpc_ledger.mpc.inbound_log`)
    manifest: Path  # the worker manifest it ran


def replay_files(folder: Path, rank: int) -> ReplayFiles:
    return ReplayFiles(
        seed=folder / f"job-seed-rank{rank}",
        inbound_log=folder / f"inbound-rank{rank}.log",
        manifest=folder / f"worker-manifest-rank{rank}.json",
    )


def log_key_path(data_dir: Path) -> Path:
    """The party's inbound-log key (0600, created by the first worker that needs it)."""
    return Path(data_dir) / "inbound-log.key"
