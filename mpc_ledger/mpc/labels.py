"""Deterministic labels: which frame a receiver is waiting for, and which it must refuse.

Every frame is labelled (job id, seq, sender rank, receiver rank); ``seq``
counts frames per directed channel from 0, in the order the sender's program
issues them. CrypTen programs are SPMD, so the receiver allocates the same
labels in the same order when it posts its receives (`reserve`), even when a
frame arrives before its receive is posted (it is buffered: `offer`) or
receives are waited on out of order (`irecv`).

Refused, with `LabelError` naming the peer: a frame for another job or
another receiver, from a rank outside the job, a seq already consumed or
already buffered (a replay or duplicate), a seq implausibly far ahead, and
buffering beyond the byte limit. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable

from mpc_ledger.proto.v1 import mpc_pb2

__all__ = ["LabelError", "Mailbox"]

SEQ_AHEAD_MAX = 1 << 20
BUFFERED_MAX_BYTES = 1 << 30


class LabelError(Exception):
    """A peer's frame is mislabelled, replayed or duplicated."""


class Mailbox:
    """Send counters and receive bookkeeping of one rank in one job."""

    def __init__(
        self,
        job_id: str,
        rank: int,
        ranks: tuple[int, ...],
        name_of: Callable[[int], str] = str,
        max_buffered_bytes: int = BUFFERED_MAX_BYTES,
    ) -> None:
        self.job_id = job_id
        self.rank = rank
        self._ranks = frozenset(ranks)
        self._name_of = name_of
        self._max_buffered_bytes = max_buffered_bytes
        self._next_send: dict[int, int] = {}
        self._next_reserve: dict[int, int] = {}
        # Per sender: every seq below the watermark is consumed; `_consumed`
        # holds the consumed ones at or above it (irecv waited out of order).
        self._watermark: dict[int, int] = {}
        self._consumed: dict[int, set[int]] = {}
        self._buffer: dict[tuple[int, int], mpc_pb2.MpcFrame] = {}
        self._buffered_bytes = 0

    def next_send_seq(self, receiver: int) -> int:
        seq = self._next_send.get(receiver, 0)
        self._next_send[receiver] = seq + 1
        return seq

    def reserve(self, sender: int) -> int:
        """The label of the next frame this rank's program will consume from ``sender``."""
        seq = self._next_reserve.get(sender, 0)
        self._next_reserve[sender] = seq + 1
        return seq

    def _is_consumed(self, sender: int, seq: int) -> bool:
        return seq < self._watermark.get(sender, 0) or seq in self._consumed.get(sender, ())

    def offer(self, frame: mpc_pb2.MpcFrame) -> None:
        """Buffer a whole frame from the transport, or raise LabelError saying why not."""
        sender, seq = frame.sender_rank, frame.seq
        peer = self._name_of(sender) if sender in self._ranks else f"rank {sender}"
        if frame.job_id != self.job_id:
            raise LabelError(f"frame from {peer} for job {frame.job_id!r}, not {self.job_id!r}")
        if frame.receiver_rank != self.rank:
            raise LabelError(f"frame from {peer} addressed to rank {frame.receiver_rank}")
        if sender not in self._ranks or sender == self.rank:
            raise LabelError(f"frame from rank {sender}, which is not a peer in this job")
        if self._is_consumed(sender, seq):
            raise LabelError(f"replayed frame from {peer}: seq {seq} was already consumed")
        if (sender, seq) in self._buffer:
            raise LabelError(f"duplicated frame from {peer}: seq {seq} is already buffered")
        if seq >= self._watermark.get(sender, 0) + SEQ_AHEAD_MAX:
            raise LabelError(f"frame from {peer} with seq {seq}, implausibly far ahead")
        size = len(frame.data)
        if self._buffered_bytes + size > self._max_buffered_bytes:
            raise LabelError(
                f"{peer} sent more than {self._max_buffered_bytes} bytes ahead of this party"
            )
        self._buffer[(sender, seq)] = frame
        self._buffered_bytes += size

    def take(self, sender: int, seq: int) -> mpc_pb2.MpcFrame | None:
        """The frame labelled (sender, seq) if it has arrived; it is consumed."""
        frame = self._buffer.pop((sender, seq), None)
        if frame is None:
            return None
        self._buffered_bytes -= len(frame.data)
        consumed = self._consumed.setdefault(sender, set())
        consumed.add(seq)
        watermark = self._watermark.get(sender, 0)
        while watermark in consumed:
            consumed.discard(watermark)
            watermark += 1
        self._watermark[sender] = watermark
        return frame

    @property
    def buffered_frames(self) -> int:
        return len(self._buffer)
