"""Where a job's files live on this party: ``<data_dir>/jobs/<job id in hex>`` (0700).

It holds the worker's manifest (a local path, 0600), its result and log and,
on a recipient's machine only, the model (``model.pt`` and its canonical
encoding ``model.bin``, 0600), which the worker writes and `Jobs/Result`
serves. One place for the path, so the runner and the API agree on it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODEL_FILE", "job_folder", "make_job_folder", "model_file"]

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
