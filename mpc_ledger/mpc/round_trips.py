"""Sequential round trips, frames and bytes of one party: what a step costs on a real network.

Theory of operation. Between organisations a secret-shared step costs what
its *sequential* round trips cost (each one a network RTT), whatever the CPU
does. `RoundTripCounter` counts them from the communicator's frame events,
in the order the party issues them; it is pure (no clock, no I/O):

* ``sent(peer, size_bytes)``: a logical frame handed to the transport.
* ``received(peer, size_bytes)``: a logical frame taken for use, i.e. the
  party waits on it now (a ``recv``, a collective's receive, an ``irecv``'s
  ``wait``).

A round trip is counted at a receive that follows at least one send since
the party's previous receive: a send whose reply the sender waits for counts
once, and a batch of independent sends (an all-reduce's frames to every
peer) followed by the waits for their replies also counts once. A receive
with no send before it (the second reply of that batch, a broadcast a party
only listens to) adds nothing: it overlaps with a wait already counted. The
count does not depend on timing (whether a frame had already arrived), so a
job's counts are the same on every run. A round trip belongs to the class
of the peer received from: the dealer's ranks, or the data peers'.

One receive is not a reply: a *streamed* frame, which its sender sent ahead
without being asked (the dealer's offline phase, `mpc_ledger.mpc.dealer_offline`:
answers generated from a plan, up to two steps ahead, paced by credit sent
half a window earlier). Taking one waits on no send of this party's since
its previous receive, so it is counted as a frame, never as a round trip,
and the sends before it are still waiting for the next real reply.

`TrafficCounts` is a frozen snapshot; `TrafficCounts.minus` gives what
happened between two snapshots, and `training_report` turns the window
between the first and the last training step into per-step figures (the
worker reads the clock and passes the times in).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from typing import Any

__all__ = ["PeerTraffic", "RoundTripCounter", "TrafficCounts", "training_report"]


@dataclasses.dataclass(frozen=True)
class PeerTraffic:
    """Frames and bytes to and from one peer rank."""

    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    bytes_received: int = 0

    def minus(self, earlier: PeerTraffic) -> PeerTraffic:
        return PeerTraffic(
            self.frames_sent - earlier.frames_sent,
            self.bytes_sent - earlier.bytes_sent,
            self.frames_received - earlier.frames_received,
            self.bytes_received - earlier.bytes_received,
        )

    @property
    def frames(self) -> int:
        return self.frames_sent + self.frames_received

    @property
    def size_bytes(self) -> int:
        return self.bytes_sent + self.bytes_received


@dataclasses.dataclass(frozen=True)
class TrafficCounts:
    """One party's counts at one point of the job (cumulative)."""

    peer_round_trips: int = 0
    dealer_round_trips: int = 0
    peers: Mapping[int, PeerTraffic] = dataclasses.field(default_factory=dict)

    @property
    def round_trips(self) -> int:
        return self.peer_round_trips + self.dealer_round_trips

    def totals(self) -> dict[str, int]:
        """Round trips (all, to data peers, to the dealer), frames and bytes, over all peers."""
        return {
            "round_trips": self.round_trips,
            "peer_round_trips": self.peer_round_trips,
            "dealer_round_trips": self.dealer_round_trips,
            "frames": sum(t.frames for t in self.peers.values()),
            "bytes": sum(t.size_bytes for t in self.peers.values()),
        }

    def minus(self, earlier: TrafficCounts) -> TrafficCounts:
        """What happened after ``earlier`` (a snapshot of the same counter)."""
        empty = PeerTraffic()
        return TrafficCounts(
            self.peer_round_trips - earlier.peer_round_trips,
            self.dealer_round_trips - earlier.dealer_round_trips,
            {
                rank: traffic.minus(earlier.peers.get(rank, empty))
                for rank, traffic in sorted(self.peers.items())
            },
        )


class RoundTripCounter:
    """Counts one party's sequential round trips (per peer class), frames and bytes."""

    def __init__(self, dealer_ranks: Collection[int] = ()) -> None:
        self._dealer_ranks = frozenset(dealer_ranks)
        self._sent_since_receive = False
        self._peer_round_trips = 0
        self._dealer_round_trips = 0
        # rank -> [frames sent, bytes sent, frames received, bytes received]
        self._peers: dict[int, list[int]] = {}

    def _peer(self, rank: int) -> list[int]:
        counts = self._peers.get(rank)
        if counts is None:
            counts = self._peers[rank] = [0, 0, 0, 0]
        return counts

    def sent(self, peer: int, size_bytes: int) -> None:
        counts = self._peer(peer)
        counts[0] += 1
        counts[1] += size_bytes
        self._sent_since_receive = True

    def received(self, peer: int, size_bytes: int, *, streamed: bool = False) -> None:
        counts = self._peer(peer)
        counts[2] += 1
        counts[3] += size_bytes
        if streamed:  # sent ahead, unasked: a reply to none of this party's sends
            return
        if self._sent_since_receive:
            self._sent_since_receive = False
            if peer in self._dealer_ranks:
                self._dealer_round_trips += 1
            else:
                self._peer_round_trips += 1

    def snapshot(self) -> TrafficCounts:
        return TrafficCounts(
            self._peer_round_trips,
            self._dealer_round_trips,
            {rank: PeerTraffic(*counts) for rank, counts in sorted(self._peers.items())},
        )


def _per(value: float, steps: int) -> float:
    return round(value / steps, 2)


def training_report(
    start: TrafficCounts,
    end: TrafficCounts,
    *,
    steps: int,
    seconds: float,
    name_of: Callable[[int], str] = str,
) -> dict[str, Any]:
    """The training window's totals and per-step figures, as the worker's result carries them.

    ``per_step.per_peer`` is keyed by ``name_of(rank)`` (the member id in a job).
    """
    window = end.minus(start)
    totals = window.totals()
    per_step: dict[str, Any] = {"seconds": round(seconds / steps, 4) if steps else 0.0}
    per_step.update({key: _per(value, steps) if steps else 0.0 for key, value in totals.items()})
    per_step["per_peer"] = {
        name_of(rank): {
            field.name: _per(getattr(traffic, field.name), steps) if steps else 0.0
            for field in dataclasses.fields(PeerTraffic)
        }
        for rank, traffic in window.peers.items()
    }
    return {"steps": steps, "seconds": round(seconds, 4), "totals": totals, "per_step": per_step}
