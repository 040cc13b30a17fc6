"""A data owner's check of its dataset before a job starts: the file still is what it
registered.

The file is found through the local catalogue (`mpc_ledger.jobs.catalogue`)
and re-fingerprinted; a missing entry, a file that cannot be read or a
fingerprint that differs from the registered one is `DataCheckFailed`, whose
reason goes on the ledger (``job_aborted``): a `DataFileError`'s
record_reason (column and row), never its message or an OSError's, which
hold values and local paths.
"""

from __future__ import annotations

from pathlib import Path

from mpc_ledger.errors import UserError
from mpc_ledger.jobs.catalogue import entry_path, find_entry
from mpc_ledger.jobs.datafiles import DataFileError, fingerprint_file

__all__ = ["DataCheckFailed", "recheck_dataset"]


class DataCheckFailed(Exception):
    """The dataset cannot be used; ``reason`` is fit for the ledger."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def recheck_dataset(
    data_dir: Path, dataset_id: str, registered_fingerprint: bytes
) -> tuple[bytes, Path]:
    """(the recomputed fingerprint, the catalogue entry's path), or `DataCheckFailed`."""
    try:
        entry = find_entry(data_dir, dataset_id)
        if entry is None:
            raise DataCheckFailed(f"dataset {dataset_id!r} is not in this party's local catalogue")
        fingerprint = fingerprint_file(entry.path, entry.schema).fingerprint
    except DataFileError as exc:
        raise DataCheckFailed(
            f"dataset {dataset_id!r} cannot be read: {exc.record_reason}"
        ) from None
    except (UserError, OSError, ValueError):
        raise DataCheckFailed(
            f"dataset {dataset_id!r}: this party's catalogue entry cannot be read"
        ) from None
    if fingerprint != registered_fingerprint:
        raise DataCheckFailed(
            f"dataset {dataset_id!r} changed since it was registered: its fingerprint is "
            f"{fingerprint.hex()[:16]}, the registered one {registered_fingerprint.hex()[:16]}"
        )
    return fingerprint, entry_path(data_dir, dataset_id)
