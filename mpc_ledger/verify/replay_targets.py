"""A replay's checkpoints, from a job's records as the verifier collected them. Pure.

For the party at ``rank``: what it recorded as received (its own
``job_alignment``, ``job_epoch_digests`` and ``participation_proof``
channels into it) and what every other party recorded as received from it
(their records' channels out of it). Labels: ``alignment``, ``epoch N``,
``end`` (`mpc_ledger.mpc.replay`).
"""

from __future__ import annotations

from collections.abc import Iterator

from mpc_ledger.mpc.replay import Checkpoint, ReplayTargets, checkpoints_of
from mpc_ledger.verify.job_view import Channels, JobView

__all__ = ["replay_targets"]


def _checkpoints(view: JobView, member: str) -> Iterator[tuple[str, Channels]]:
    """Every (label, channels) the ledger holds from ``member`` for this job."""
    if member in view.aligned:
        yield "alignment", view.aligned[member][0]
    for epoch in sorted(view.digests):
        if member in view.digests[epoch]:
            yield f"epoch {epoch}", view.digests[epoch][member][0]
    if member in view.proofs:
        yield "end", view.proofs[member][0]


def replay_targets(view: JobView, rank: int) -> ReplayTargets:
    own = view.member_of(rank)
    inbound = checkpoints_of(_checkpoints(view, own), lambda key: key[1] == rank)
    outbound: dict[tuple[int, int], tuple[Checkpoint, ...]] = {}
    for party in view.parties:
        if party.rank == rank:
            continue
        outbound.update(
            checkpoints_of(
                _checkpoints(view, party.member),
                lambda key, receiver=party.rank: key == (rank, receiver),
            )
        )
    return ReplayTargets(rank, inbound, outbound)
