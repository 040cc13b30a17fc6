"""What the worker needs of this party's data from the layer above: the whole table (for a job
whose rows a PSI aligns), a reader of the registered file, and the row split.

The worker runs the intersection over the table's ids first and only then
cuts its rows (`party_data`). The table is read, and re-fingerprinted, from
the party's registered file by `mpc_ledger.jobs.worker_bridge.LocalTable`;
this Protocol is the worker's side of that contract, so that the MPC layer
does not depend on the jobs layer for a type.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # torch, only where a worker runs
    from mpc_ledger.mpc.train_spec import PartyData, TrainSpec

__all__ = ["FileReader", "LocalTable", "split_rows"]


class LocalTable(Protocol):
    @property
    def ids(self) -> list[object]:
        """Each row's id (the PSI's input), in file order."""

    @property
    def rows(self) -> int: ...

    def party_data(self, rows: Sequence[int], train: int, *, pooled: bool = False) -> PartyData:
        """The rows ``rows`` in that order, the first ``train`` of them for training."""


# Reads this party's registered file for a job (the jobs layer's
# `mpc_ledger.jobs.worker_bridge.read_party_file`, passed in by the daemon's
# worker program `mpc_ledger.jobs.worker_main`): the manifest's ``data``
# section, the training spec and this party's rank -> its rows (aligned by row
# order) or its whole table (to be aligned by PSI).
FileReader = Callable[[dict[str, Any], "TrainSpec", int], "PartyData | LocalTable"]


def split_rows(row_count: int, test_fraction: float) -> tuple[int, int]:
    """(train rows, test rows): the last ``floor(rows * test_fraction)`` rows are for testing.

    The program's rule, which the job spec's checks (`mpc_ledger.jobs.spec`) apply too."""
    test = math.floor(row_count * test_fraction)
    return row_count - test, test
