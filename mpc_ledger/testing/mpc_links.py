"""In-memory `FrameLink`s: the relay's contract without sockets, for tests of the communicator.

`MemoryHub(members)` delivers every chunk a rank sends to the receiver's
queue, stamped with the sender's member id as the relay would stamp it from
the TLS session. ``tamper`` lets a test act as the network (or a dishonest
daemon): it sees each chunk and returns the chunks to deliver instead.
`fail(member, reason)` is a relay's failure notice.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence

from mpc_ledger.proto.v1 import mpc_pb2

__all__ = ["MemoryHub", "MemoryLink"]

Tamper = Callable[[mpc_pb2.MpcFrame], Sequence[mpc_pb2.MpcFrame]]


class MemoryLink:
    def __init__(self, hub: MemoryHub, rank: int) -> None:
        self._hub = hub
        self.rank = rank
        self.inbox: queue.Queue[mpc_pb2.RelayToWorker] = queue.Queue()
        self.closed_with: str | None = None
        self.closed = False

    def send(self, chunks: Sequence[mpc_pb2.MpcFrame]) -> None:
        for chunk in chunks:
            self._hub.deliver(self.rank, chunk)

    def poll(self, timeout_s: float) -> mpc_pb2.RelayToWorker | None:
        try:
            return self.inbox.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self, *, abort_reason: str | None = None) -> None:
        self.closed = True
        self.closed_with = abort_reason


class MemoryHub:
    def __init__(self, members: Sequence[str], tamper: Tamper | None = None) -> None:
        self.members = tuple(members)
        self.tamper = tamper
        self.links = [MemoryLink(self, rank) for rank in range(len(members))]
        self._lock = threading.Lock()

    def link(self, rank: int) -> MemoryLink:
        return self.links[rank]

    def deliver(self, sender: int, chunk: mpc_pb2.MpcFrame) -> None:
        copy = mpc_pb2.MpcFrame()
        copy.CopyFrom(chunk)
        copy.sender_member = self.members[sender]
        with self._lock:
            delivered = self.tamper(copy) if self.tamper is not None else [copy]
        for frame in delivered:
            self.links[frame.receiver_rank].inbox.put(mpc_pb2.RelayToWorker(frames=[frame]))

    def fail(self, member_id: str, reason: str, rank: int = -1) -> None:
        notice = mpc_pb2.PartyFailure(member_id=member_id, rank=rank, reason=reason)
        for link in self.links:
            link.inbox.put(mpc_pb2.RelayToWorker(failures=[notice]))
