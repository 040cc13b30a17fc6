"""What the worker needs of this party's whole table, for a job whose rows a PSI aligns.

The worker runs the intersection over the table's ids first and only then
cuts its rows (`party_data`). The table is read, and re-fingerprinted, from
the party's registered file by `mpc_ledger.jobs.worker_bridge.LocalTable`;
this Protocol is the worker's side of that contract, so that the MPC layer
does not depend on the jobs layer for a type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # torch, only where a worker runs
    from mpc_ledger.mpc.programs import PartyData

__all__ = ["LocalTable"]


class LocalTable(Protocol):
    @property
    def ids(self) -> list[object]:
        """Each row's id (the PSI's input), in file order."""

    @property
    def rows(self) -> int: ...

    def party_data(self, rows: Sequence[int], train: int, *, pooled: bool = False) -> PartyData:
        """The rows ``rows`` in that order, the first ``train`` of them for training."""
