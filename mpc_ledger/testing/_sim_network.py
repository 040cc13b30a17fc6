"""The simulator's event queue and faulty network (virtual time, one seeded RNG).

Time is an integer count of virtual milliseconds. Events with equal times run
in the order they were scheduled (a sequence number breaks ties), so a run is
a pure function of the seed. Until the scenario's stabilisation time the
network drops, duplicates and delays (and so reorders) messages, and may be
partitioned, also one way; from then on it delivers everything within
``stable_delay_ms_max``.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventQueue", "FaultModel", "Network", "Wire"]

Wire = tuple[str, bytes]
"""(kind, payload): "consensus" carries a ConsensusMessage, "sync" a CommittedBlock."""


@dataclass(order=True, slots=True)
class Event:
    time_ms: int
    sequence: int
    kind: str = field(compare=False)
    payload: Any = field(compare=False, default=None)


class EventQueue:
    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._sequence = 0

    def push(self, time_ms: int, kind: str, payload: Any = None) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, Event(time_ms, self._sequence, kind, payload))

    def pop(self) -> Event | None:
        return heapq.heappop(self._heap) if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)


@dataclass(frozen=True, slots=True)
class FaultModel:
    drop_probability: float = 0.0
    duplicate_probability: float = 0.0
    delay_ms_min: int = 1
    delay_ms_max: int = 20
    stable_delay_ms_max: int = 20


class Network:
    """Point-to-point links between process indices, with faults until stabilisation."""

    def __init__(
        self, rng: random.Random, queue: EventQueue, faults: FaultModel, stabilise_at_ms: int
    ) -> None:
        self._rng = rng
        self._queue = queue
        self._faults = faults
        self._stabilise_at_ms = stabilise_at_ms
        self._blocked: set[tuple[int, int]] = set()
        self.sent = 0
        self.dropped = 0
        self.duplicated = 0

    def partition(self, blocked: set[tuple[int, int]]) -> None:
        """Block each directed link (source, destination) in ``blocked``."""
        self._blocked = set(blocked)

    def heal(self) -> None:
        self._blocked = set()

    def send(self, now_ms: int, source: int, destination: int, wire: Wire) -> None:
        self.sent += 1
        stable = now_ms >= self._stabilise_at_ms
        if (source, destination) in self._blocked and not stable:
            self.dropped += 1
            return
        faults = self._faults
        if not stable and self._rng.random() < faults.drop_probability:
            self.dropped += 1
            return
        copies = 1
        if not stable and self._rng.random() < faults.duplicate_probability:
            copies = 2
            self.duplicated += 1
        for _ in range(copies):
            if stable:
                delay_ms = self._rng.randint(1, faults.stable_delay_ms_max)
            else:
                delay_ms = self._rng.randint(faults.delay_ms_min, faults.delay_ms_max)
            self._queue.push(now_ms + delay_ms, "deliver", (source, destination, wire))
