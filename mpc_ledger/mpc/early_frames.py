"""The relay's buffer for frames that arrive before their worker attaches. No I/O.

A peer's worker may start (and send) before this member's worker has
attached to its relay, so frames for a local rank that is not there yet
wait here, keyed by (job id, receiver rank). Everything is bounded:

* bytes are counted as whole messages (`frame_cost`: the serialized frame
  plus per-entry overhead), so frames without tensor data count too;
* each (sender member, job id) may hold at most ``max_bytes_per_sender_job``
  and all senders together at most ``max_bytes``; a frame over either is
  refused, not stored;
* an entry that no worker claims within ``ttl_s`` of its first frame is
  dropped (`expire`): the clock is an input, so tests need no sleeps.

Entries are kept in the order they were created, which is the order of
their deadlines, so `expire` only looks at the entries it drops.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

from mpc_ledger.proto.v1 import mpc_pb2

__all__ = [
    "DEFAULT_EARLY_BYTES",
    "DEFAULT_EARLY_BYTES_PER_SENDER_JOB",
    "DEFAULT_EARLY_TTL_S",
    "FRAME_OVERHEAD_BYTES",
    "EarlyFrames",
    "EarlyRefusal",
    "frame_cost",
]

DEFAULT_EARLY_BYTES = 256 * 1024 * 1024
# One honest sender's frames for one job before its worker here attaches: a job's
# first messages are small, but a large early tensor (tens of MiB) must still fit.
DEFAULT_EARLY_BYTES_PER_SENDER_JOB = 128 * 1024 * 1024
# Every participant's worker starts within a block of the others (they all wait
# for the same committed records); twice the default peer timeout is ample.
DEFAULT_EARLY_TTL_S = 120.0
# A protobuf field tag and length, a list slot and the bookkeeping per frame.
FRAME_OVERHEAD_BYTES = 64

Key = tuple[str, int]  # (job id, receiver rank)


def frame_cost(frame: mpc_pb2.MpcFrame) -> int:
    """What one frame costs the buffer: the whole serialized message, not just its data."""
    return frame.ByteSize() + FRAME_OVERHEAD_BYTES


class EarlyRefusal(enum.Enum):
    """Why a frame was not buffered (values are metric labels)."""

    SENDER_QUOTA = "early_sender_quota"
    FULL = "early_buffer_full"


@dataclasses.dataclass
class _Entry:
    created_s: float
    frames: list[tuple[str, mpc_pb2.MpcFrame, int]]  # (sender member, frame, cost)


class EarlyFrames:
    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_EARLY_BYTES,
        max_bytes_per_sender_job: int = DEFAULT_EARLY_BYTES_PER_SENDER_JOB,
        ttl_s: float = DEFAULT_EARLY_TTL_S,
        clock: Callable[[], float],
    ) -> None:
        self._max_bytes = max_bytes
        self._max_bytes_per_sender_job = max_bytes_per_sender_job
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[Key, _Entry] = {}
        self._by_sender_job: dict[tuple[str, str], int] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def bytes_from(self, sender: str, job_id: str) -> int:
        return self._by_sender_job.get((sender, job_id), 0)

    def add(self, key: Key, sender: str, frame: mpc_pb2.MpcFrame) -> EarlyRefusal | None:
        """Keep ``frame`` for the worker of ``key``, or say why not (nothing is stored then)."""
        cost = frame_cost(frame)
        quota_key = (sender, key[0])
        held = self._by_sender_job.get(quota_key, 0)
        if held + cost > self._max_bytes_per_sender_job:
            return EarlyRefusal.SENDER_QUOTA
        if self.bytes + cost > self._max_bytes:
            return EarlyRefusal.FULL
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(self._clock(), [])
        entry.frames.append((sender, frame, cost))
        self._by_sender_job[quota_key] = held + cost
        self.bytes += cost
        return None

    def take(self, key: Key) -> list[mpc_pb2.MpcFrame]:
        """Everything waiting for ``key``, in arrival order; the buffer forgets it."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return []
        self._release(key[0], entry)
        return [frame for _, frame, _ in entry.frames]

    def discard(self, key: Key) -> int:
        """Drop what waits for ``key``; how many frames that was."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return 0
        self._release(key[0], entry)
        return len(entry.frames)

    def expire(self) -> list[tuple[Key, int]]:
        """Drop the entries older than the TTL: (key, frames dropped) for each."""
        now = self._clock()
        dropped = []
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if now - entry.created_s < self._ttl_s:
                break
            del self._entries[key]
            self._release(key[0], entry)
            dropped.append((key, len(entry.frames)))
        return dropped

    def _release(self, job_id: str, entry: _Entry) -> None:
        for sender, _, cost in entry.frames:
            quota_key = (sender, job_id)
            left = self._by_sender_job[quota_key] - cost
            if left:
                self._by_sender_job[quota_key] = left
            else:
                del self._by_sender_job[quota_key]
            self.bytes -= cost
