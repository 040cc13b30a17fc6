"""Outbound gossip: one long-lived `Consensus.Gossip` stream per peer, on one asyncio thread.

Why asyncio: consensus is latency-bound (three message hops per height), and
a synchronous gRPC client stream fed from a generator costs a thread
hand-off inside gRPC per message, several milliseconds on a busy machine.
Here the node's thread hands a message over once (`call_soon_threadsafe`)
and the loop writes it to the stream directly.

Contract:

* `send` never blocks: each peer has a bounded queue; when it is full the
  oldest message is dropped (consensus recovers lost messages through its
  timeouts and re-gossip), so a slow or dead peer never stalls the node.
* Whatever is queued for a peer when its stream is ready goes as one batch.
* A stream that fails is reopened with exponential backoff; messages queued
  meanwhile wait (bounded), those written into the failed stream are lost.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Iterable, Mapping

import grpc

from mpc_ledger.identity.genesis import Member
from mpc_ledger.identity.material import PartyIdentity
from mpc_ledger.net import mtls
from mpc_ledger.net.peers import describe_rpc_error
from mpc_ledger.proto.v1 import ledger_service_pb2, ledger_service_pb2_grpc

__all__ = ["GossipLinks"]

log = logging.getLogger(__name__)

QUEUE_MAX_MESSAGES = 20_000
BATCH_MAX_MESSAGES = 512
BATCH_MAX_BYTES = 4 * 1024 * 1024
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 2.0


class _Link:
    def __init__(self, member: Member) -> None:
        self.member = member
        self.queue: collections.deque[ledger_service_pb2.GossipMessage] = collections.deque()
        self.wake = asyncio.Event()
        self.dropped = 0
        self.connected = False


class GossipLinks:
    """Streams to every peer in ``members`` (see the module docstring)."""

    def __init__(
        self,
        identity: PartyIdentity,
        members: Iterable[Member],
        addresses: Mapping[str, str] | None = None,
    ) -> None:
        self._identity = identity
        self._addresses = dict(addresses or {})
        self._members = list(members)
        self._loop = asyncio.new_event_loop()
        self._links: dict[str, _Link] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run_loop, name="gossip-links", daemon=True)
        self._ready = threading.Event()

    # -- any thread ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(5)

    def stop(self, timeout_s: float = 2.0) -> None:
        if not self._thread.is_alive():
            return
        self._stopping = True
        with contextlib.suppress(RuntimeError):  # loop already closed
            self._loop.call_soon_threadsafe(self._cancel_all)
        self._thread.join(timeout_s)

    def send(self, member_ids: Iterable[str], message: ledger_service_pb2.GossipMessage) -> None:
        """Queue ``message`` for each of ``member_ids`` (returns at once)."""
        targets = tuple(member_ids)
        if targets and not self._stopping:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._enqueue, targets, message)

    def connected(self) -> dict[str, bool]:
        return {member_id: link.connected for member_id, link in self._links.items()}

    def dropped(self) -> int:
        return sum(link.dropped for link in self._links.values())

    # -- the loop thread -----------------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        for member in self._members:
            link = _Link(member)
            self._links[member.id] = link
            self._tasks.append(self._loop.create_task(self._keep_streaming(link)))
        self._ready.set()
        try:
            self._loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
        finally:
            self._loop.close()

    def _cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()

    def _enqueue(self, targets: tuple[str, ...], message: ledger_service_pb2.GossipMessage) -> None:
        for member_id in targets:
            link = self._links.get(member_id)
            if link is None:
                continue
            if len(link.queue) >= QUEUE_MAX_MESSAGES:
                link.queue.popleft()
                link.dropped += 1
            link.queue.append(message)
            link.wake.set()

    async def _keep_streaming(self, link: _Link) -> None:
        member = link.member
        channel = mtls.member_aio_channel(
            self._identity, member, endpoint=self._addresses.get(member.id)
        )
        stub = ledger_service_pb2_grpc.ConsensusStub(channel)
        backoff_s = BACKOFF_MIN_S
        try:
            while not self._stopping:
                try:
                    await self._stream(stub, link)
                    backoff_s = BACKOFF_MIN_S
                except grpc.aio.AioRpcError as exc:
                    log.debug("gossip link to %s: %s", member.id, describe_rpc_error(exc))
                except (asyncio.InvalidStateError, grpc.RpcError) as exc:
                    log.debug("gossip link to %s: %s", member.id, exc)
                finally:
                    link.connected = False
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, BACKOFF_MAX_S)
        finally:
            await channel.close(grace=None)

    async def _stream(self, stub: ledger_service_pb2_grpc.ConsensusStub, link: _Link) -> None:
        call = stub.Gossip(wait_for_ready=True)
        try:
            while not self._stopping:
                if not link.queue:
                    link.wake.clear()
                    await link.wake.wait()
                    continue
                await call.write(_take_batch(link.queue))
                link.connected = True
        finally:
            call.cancel()


def _take_batch(
    queue: collections.deque[ledger_service_pb2.GossipMessage],
) -> ledger_service_pb2.GossipBatch:
    batch = ledger_service_pb2.GossipBatch()
    size = 0
    while queue and len(batch.messages) < BATCH_MAX_MESSAGES and size < BATCH_MAX_BYTES:
        message = queue.popleft()
        batch.messages.append(message)
        size += message.ByteSize()
    return batch
