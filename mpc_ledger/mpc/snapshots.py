"""A transcript's frozen state (`TranscriptSnapshot`), as a plain value with no torch.

`mpc_ledger.mpc.transcript` keeps the running digests inside a worker and
takes these snapshots; the party daemon receives them in the worker's events
(`mpc_ledger.mpc.worker_events`) and never imports torch or CrypTen, so the
values live here, apart from the frame hashing that needs `frames`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["ChannelStats", "TranscriptSnapshot"]


@dataclasses.dataclass(frozen=True)
class ChannelStats:
    """One end's view of one directed channel."""

    sender: int
    receiver: int
    digest: str  # hex SHA-256
    messages: int
    size_bytes: int
    rounds: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class TranscriptSnapshot:
    """A party's channels at one point (epoch end, job end)."""

    job_id: str
    rank: int
    label: str
    channels: tuple[ChannelStats, ...]

    def channel(self, sender: int, receiver: int) -> ChannelStats | None:
        for stats in self.channels:
            if (stats.sender, stats.receiver) == (sender, receiver):
                return stats
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "rank": self.rank,
            "label": self.label,
            "channels": [c.to_json() for c in self.channels],
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TranscriptSnapshot:
        channels = tuple(ChannelStats(**c) for c in raw["channels"])
        return cls(str(raw["job_id"]), int(raw["rank"]), str(raw["label"]), channels)
