"""The party daemon's MPC relay: local workers <-> peer daemons, over mTLS only.

Theory of operation:

* A worker (one CrypTen party of one job) attaches to its own daemon over a
  Unix socket in the party's data folder (`<data_dir>/mpc.sock`, folder mode
  0700, socket 0600; length-prefixed protobuf, see `local_framing`). Its
  first message is a `WorkerHello` (job id, its rank, the member holding
  every rank, the tuple provider). The relay checks the hello against the
  genesis (members exist, the worker's rank is held by this member, the
  provider is allowed, the dealer rank is held by a dealer) and answers
  ``attached``, or a failure saying why not. Where the daemon has a ledger,
  the hello must also name exactly the job's participants by rank, as the
  job's committed records say (the injected ``participants`` lookup).
* Frames the worker sends go, unchanged and in order, to the daemon of the
  member that holds the receiver rank, on one long-lived `MpcPeer.Link`
  stream per peer (opened on first use): everything queued at the time, as
  `PeerBatch` messages each under half the gRPC message limit
  (`local_framing.pack_by_size`; the worker already cut large tensors into
  chunks), so no tensor size can break the link. Frames for a rank held by this
  member are delivered locally.
* Frames from a peer daemon arrive on the daemon's mTLS port. The relay
  stamps each with the member the TLS session authenticated
  (``sender_member``), never trusting the frame, and refuses (counts, logs
  once per sender and job, never forwards) a frame whose sender does not
  hold its sender rank in the job, whose receiver rank is not held here, or
  whose job this member's ledger does not know; likewise a `PartyFailure`
  from a member that is not a participant of the job. Who holds which rank
  comes from the ``participants`` lookup (the committed job records; an
  honest peer's worker only starts after this member's own ``job_started``
  is committed, so this member knows the job by then) or, in a daemon
  without a ledger (test harnesses), from the attached worker's hello.
* Frames for a worker that has not attached yet wait in `EarlyFrames`
  (bounded in total and per sender and job, whole messages counted,
  dropped when unclaimed after a TTL) and are handed over in messages
  under the local message limit when it attaches.
* Failures are never silent: a worker whose stream ends without ``done``
  (it crashed or was killed) makes the relay send a `PartyFailure` naming
  this member and rank to every peer in the job; a peer link that breaks
  (its daemon died) makes the relay tell every local worker of a job with
  that peer. Workers raise with the failed member's name.
* Everything mutable lives on one asyncio loop in one thread (asyncio
  streams for the workers, grpc.aio for the outgoing links); the only
  cross-thread hand-off is from the daemon's synchronous mTLS server, one
  `call_soon_threadsafe` per inbound batch. Deliveries to a worker are
  written to its socket directly from the callback. The relay reads no
  frame payloads: digests, labels and payload checks are the workers' (see
  `communicator`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.mpc import local_framing
from mpc_ledger.mpc.early_frames import (
    DEFAULT_EARLY_BYTES,
    DEFAULT_EARLY_BYTES_PER_SENDER_JOB,
    DEFAULT_EARLY_TTL_S,
    EarlyFrames,
)
from mpc_ledger.net import mtls
from mpc_ledger.net.peers import describe_rpc_error
from mpc_ledger.proto.v1 import mpc_pb2, mpc_pb2_grpc

if TYPE_CHECKING:
    from mpc_ledger.net.service import DaemonHost

__all__ = [
    "EARLY_MAX_BYTES",
    "RELAYED_FRAME_MAX_BYTES",
    "SOCKET_NAME",
    "MpcRelayService",
    "ParticipantsLookup",
    "RelayError",
    "check_hello",
    "sender_problem",
    "socket_path_for",
]

log = logging.getLogger(__name__)

SOCKET_NAME = "mpc.sock"
# sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
SOCKET_PATH_MAX_BYTES = 107
EARLY_MAX_BYTES = DEFAULT_EARLY_BYTES
# Every message the relay writes (to a worker, to a peer) is packed to at most this,
# half the local and gRPC limit (16 MiB), so protobuf overhead never tips it over.
PACK_MAX_BYTES = local_framing.LOCAL_MESSAGE_MAX_BYTES // 2
# One relayed frame (a chunk) must fit one such message on its own; honest chunks are
# frames.CHUNK_BYTES (4 MiB) of data plus a small header.
RELAYED_FRAME_MAX_BYTES = PACK_MAX_BYTES
EARLY_SWEEP_S = 1.0
# (sender, job, reason) triples logged once each; beyond this many only counted.
LOGGED_REFUSALS_MAX = 4096
DEFAULT_CONNECT_TIMEOUT_S = 10.0
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_PROVIDERS = ("dealer", "trusted-first-party")


# Job id -> the member holding each rank (data parties, then the dealer), from the
# job's committed records; None for a job this member's ledger does not know.
ParticipantsLookup = Callable[[str], Sequence[str] | None]


class RelayError(Exception):
    """The relay cannot start (socket path, folder permissions)."""


def socket_path_for(data_dir: Path) -> Path:
    return Path(data_dir) / SOCKET_NAME


def check_hello(genesis: Genesis, own_member_id: str, hello: mpc_pb2.WorkerHello) -> str | None:
    """Why the relay refuses a worker's hello, or None. Pure."""
    if not _JOB_ID.match(hello.job_id):
        return f"job id {hello.job_id!r} is not 1-128 letters, digits, '.', '_', ':', '-'"
    ranks = sorted(hello.ranks, key=lambda r: r.rank)
    if [r.rank for r in ranks] != list(range(len(ranks))) or len(ranks) < 2:
        return "ranks must be 0..n-1 with n >= 2, each once"
    for entry in ranks:
        if genesis.member(entry.member_id) is None:
            return f"rank {entry.rank} is held by {entry.member_id!r}, not a genesis member"
    if hello.rank >= len(ranks) or ranks[hello.rank].member_id != own_member_id:
        return f"rank {hello.rank} is not held by this member ({own_member_id!r})"
    provider = hello.tuple_provider
    if provider not in _PROVIDERS:
        return f"tuple provider {provider!r} is not one of {list(_PROVIDERS)}"
    if provider not in genesis.mpc.allowed_tuple_providers:
        return (
            f"tuple provider {provider!r} is not allowed by the genesis "
            f"(allowed: {list(genesis.mpc.allowed_tuple_providers)})"
        )
    if provider == "dealer":
        dealer = genesis.member(ranks[-1].member_id)
        if dealer is None or not dealer.has_role("dealer"):
            return f"the last rank ({len(ranks) - 1}) must be held by a member with the dealer role"
    return None


def sender_problem(
    members: Sequence[str], sender: str, frame: mpc_pb2.MpcFrame, own_member_id: str
) -> tuple[str, str] | None:
    """(reason code, text) why ``sender`` may not send ``frame`` to this member, or None. Pure.

    ``members`` holds the member of every rank of the frame's job.
    """
    job = frame.job_id[:32]
    if sender not in members:
        return "not_participant", f"{sender!r} is not a participant of job {job!r}"
    rank = frame.sender_rank
    if rank >= len(members) or members[rank] != sender:
        return "wrong_rank", f"{sender!r} does not hold rank {rank} of job {job!r}"
    rank = frame.receiver_rank
    if rank >= len(members) or members[rank] != own_member_id:
        return "not_receiver", f"rank {rank} of job {job!r} is not held by {own_member_id!r}"
    return None


class _LocalWorker:
    """An attached worker; deliveries are written straight to its socket (no queue, no task)."""

    def __init__(self, hello: mpc_pb2.WorkerHello, writer: asyncio.StreamWriter) -> None:
        self.hello = hello
        self.job_id = hello.job_id
        self.rank = hello.rank
        self.members = {r.rank: r.member_id for r in hello.ranks}
        self.writer = writer
        self.done = False

    def holds(self, member_id: str) -> bool:
        return member_id in self.members.values()

    def send(self, message: mpc_pb2.RelayToWorker) -> None:
        if not self.writer.is_closing():
            self.writer.write(local_framing.encode(message.SerializeToString()))


class _PeerLink:
    """One outgoing `MpcPeer.Link` stream to one peer daemon, fed from a queue."""

    def __init__(self, relay: MpcRelayService, member_id: str) -> None:
        self.relay = relay
        self.member_id = member_id
        self.queue: asyncio.Queue[mpc_pb2.MpcFrame | mpc_pb2.PartyFailure] = asyncio.Queue()
        self.channel: aio.Channel | None = None
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        member = self.relay.genesis.member(self.member_id)
        assert member is not None  # only created for genesis members
        self.channel = mtls.member_aio_channel(
            self.relay.identity, member, endpoint=self.relay.peer_addresses.get(member.id)
        )
        try:
            await asyncio.wait_for(self.channel.channel_ready(), self.relay.connect_timeout_s)
            call = mpc_pb2_grpc.MpcPeerStub(self.channel).Link()
            watcher = asyncio.get_running_loop().create_task(self._watch(call))
            try:
                while True:
                    items = [await self.queue.get()]
                    while not self.queue.empty():
                        items.append(self.queue.get_nowait())
                    for batch in _peer_batches(items):
                        await call.write(batch)
            finally:
                watcher.cancel()
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self.relay.peer_lost(
                self.member_id,
                f"cannot reach its daemon at {member.endpoint} "
                f"within {self.relay.connect_timeout_s:g}s",
            )
        except Exception as exc:
            self.relay.peer_lost(self.member_id, f"link to its daemon failed: {_describe(exc)}")

    async def _watch(self, call: Any) -> None:
        """The call only ends when the peer goes away; report that even when idle."""
        try:
            await call
            reason = "its daemon closed the link"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = f"link to its daemon failed: {_describe(exc)}"
        self.relay.peer_lost(self.member_id, reason)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        if self.channel is not None:
            await self.channel.close(None)


def _peer_batches(
    items: Sequence[mpc_pb2.MpcFrame | mpc_pb2.PartyFailure],
) -> Iterator[mpc_pb2.PeerBatch]:
    """``items`` in order, as batches under `PACK_MAX_BYTES`: gRPC refuses a message over
    16 MiB, and everything queued at once (a 100 MiB tensor's chunks) would be one."""
    frames = [item for item in items if isinstance(item, mpc_pb2.MpcFrame)]
    for group in local_framing.pack_by_size(frames, PACK_MAX_BYTES):
        yield mpc_pb2.PeerBatch(frames=group)
    # Failures are small and come after the frames queued with them, as the receiver
    # handled them before: it delivers what was sent before it reports the failure.
    failures = [item for item in items if isinstance(item, mpc_pb2.PartyFailure)]
    if failures:
        yield mpc_pb2.PeerBatch(failures=failures)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError):
        return describe_rpc_error(exc)
    return f"{type(exc).__name__}: {exc}"


class _PeerServicer(mpc_pb2_grpc.MpcPeerServicer):
    """Runs in the daemon's synchronous mTLS server: hand each batch to the relay's loop."""

    def __init__(self, relay: MpcRelayService) -> None:
        self._relay = relay

    def Link(
        self, request_iterator: Iterator[mpc_pb2.PeerBatch], context: grpc.ServicerContext
    ) -> mpc_pb2.LinkClosed:
        member_id = mtls.peer_of(self._relay.genesis, context).id
        reason = "its daemon closed the link"
        try:
            for batch in request_iterator:
                self._relay.from_thread(self._relay.on_peer_batch, member_id, batch)
        except grpc.RpcError as exc:
            reason = f"link from its daemon broke: {_describe(exc)}"
        except Exception as exc:
            reason = f"link from its daemon broke: {_describe(exc)}"
        if not context.is_active():
            reason = "link from its daemon broke (connection lost)"
        self._relay.from_thread(self._relay.peer_lost, member_id, reason)
        return mpc_pb2.LinkClosed()


class MpcRelayService:
    """A `DaemonService`: registers `MpcPeer` on the mTLS port, serves workers on a Unix socket."""

    def __init__(
        self,
        *,
        participants: ParticipantsLookup | None = None,
        socket_path: Path | None = None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        max_early_bytes: int = EARLY_MAX_BYTES,
        max_early_bytes_per_sender_job: int = DEFAULT_EARLY_BYTES_PER_SENDER_JOB,
        early_ttl_s: float = DEFAULT_EARLY_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``participants`` is the ledger's view of each job (see the module docstring);
        without it (a daemon without a ledger) the attached worker's hello decides."""
        self._participants = participants
        self._socket_path_override = socket_path
        self.connect_timeout_s = connect_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._daemon: DaemonHost | None = None
        self._workers: dict[tuple[str, int], _LocalWorker] = {}
        self._finished: set[tuple[str, int]] = set()
        self._early = EarlyFrames(
            max_bytes=max_early_bytes,
            max_bytes_per_sender_job=max_early_bytes_per_sender_job,
            ttl_s=early_ttl_s,
            clock=clock,
        )
        self._refused: Counter[str] = Counter()
        self._logged_refusals: set[tuple[str, str, str]] = set()
        self._links: dict[str, _PeerLink] = {}
        self.socket_path: Path | None = None

    # --- DaemonService ---------------------------------------------------------------

    def register(self, server: grpc.Server) -> None:
        mpc_pb2_grpc.add_MpcPeerServicer_to_server(_PeerServicer(self), server)

    def start(self, daemon: DaemonHost) -> None:
        self._daemon = daemon
        path = self._socket_path_override or socket_path_for(daemon.party.config.data_dir)
        self.socket_path = _prepare_socket_path(path)
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=self._run_loop, name="mpc-relay", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start_server(), loop).result(30)

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None
        if self.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()

    def status(self, response: Any) -> None:
        """Nothing to add yet: StatusResponse has no MPC section for attached workers."""
        del response

    def counts(self, timeout_s: float = 10.0) -> dict[str, int]:
        """What the relay refused or dropped, by reason, and what its early buffer holds
        (``early_bytes``, ``early_entries``); read on the relay's loop, from any thread."""

        async def read() -> dict[str, int]:
            return {
                **self._refused,
                "early_bytes": self._early.bytes,
                "early_entries": len(self._early),
            }

        assert self._loop is not None, "the relay is not running"
        return asyncio.run_coroutine_threadsafe(read(), self._loop).result(timeout_s)

    # --- loop plumbing -------------------------------------------------------------------

    @property
    def genesis(self) -> Genesis:
        assert self._daemon is not None
        return self._daemon.party.genesis

    @property
    def identity(self) -> Any:
        assert self._daemon is not None
        return self._daemon.party.identity

    @property
    def peer_addresses(self) -> dict[str, str]:
        """Dial-address overrides from the party config's `[peers]` table."""
        assert self._daemon is not None
        return self._daemon.party.config.peer_addresses

    @property
    def member_id(self) -> str:
        return str(self.identity.member.id)

    def _run_loop(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        with contextlib.suppress(Exception):
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    async def _start_server(self) -> None:
        assert self.socket_path is not None
        self._server = await asyncio.start_unix_server(
            self._serve_worker, path=str(self.socket_path), limit=1 << 20
        )
        os.chmod(self.socket_path, 0o600)
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        """Expire unclaimed early frames even when nothing else arrives."""
        assert self._loop is not None
        self._loop.call_later(EARLY_SWEEP_S, self._sweep)

    def _sweep(self) -> None:
        self._expire_early()
        self._schedule_sweep()

    def _expire_early(self) -> None:
        for (job_id, rank), count in self._early.expire():
            self._count_refusal("early_expired", count)
            log.warning(
                "dropped %d early frames for job %r rank %d: no worker attached in time",
                count,
                job_id[:32],
                rank,
            )

    async def _shutdown(self) -> None:
        for link in list(self._links.values()):
            await link.close()
        self._links.clear()
        for worker in list(self._workers.values()):
            worker.writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def from_thread(self, callback: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is stopping
                loop.call_soon_threadsafe(callback, *args)

    # --- workers -------------------------------------------------------------------------

    async def _serve_worker(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        worker: _LocalWorker | None = None
        key: tuple[str, int] | None = None
        try:
            first = mpc_pb2.WorkerToRelay.FromString(await _read_message(reader))
            problem = check_hello(self.genesis, self.member_id, first.hello)
            key = (first.hello.job_id, first.hello.rank)
            if problem is None:
                problem = self._attach_problem(first.hello)
            if problem is None and (key in self._workers or key in self._finished):
                problem = f"rank {key[1]} of job {key[0]!r} is already attached"
            if problem is not None:
                refusal = mpc_pb2.PartyFailure(
                    job_id=first.hello.job_id, member_id=self.member_id, rank=-1, reason=problem
                )
                writer.write(
                    local_framing.encode(
                        mpc_pb2.RelayToWorker(failures=[refusal]).SerializeToString()
                    )
                )
                key = None
                return
            worker = _LocalWorker(first.hello, writer)
            self._workers[key] = worker
            worker.send(mpc_pb2.RelayToWorker(attached=True))
            self._hand_over_early(worker)
            while True:
                message = mpc_pb2.WorkerToRelay.FromString(await _read_message(reader))
                for frame in message.frames:
                    self._route_from_worker(worker, frame)
                if message.abort_reason:
                    worker.done = True
                    self._tell_peers(worker, message.abort_reason)
                if message.done:
                    worker.done = True
        except asyncio.IncompleteReadError:
            pass  # the worker closed its end (after `done`, or because it died)
        except Exception as exc:
            log.info("worker connection ended: %s", _describe(exc))
        finally:
            if worker is not None and key is not None:
                self._workers.pop(key, None)
                self._finished.add(key)
                if not worker.done:
                    self._tell_peers(worker, "its worker stopped without finishing the job")
            writer.close()

    def _attach_problem(self, hello: mpc_pb2.WorkerHello) -> str | None:
        """Why a hello that passed `check_hello` disagrees with the ledger's job, or None."""
        if self._participants is None:
            return None
        members = self._participants(hello.job_id)
        if members is None:
            return f"job {hello.job_id!r} is not on this member's ledger"
        named = [entry.member_id for entry in sorted(hello.ranks, key=lambda r: r.rank)]
        if named != list(members):
            return (
                f"the hello names ranks {named} but the ledger's job {hello.job_id!r} "
                f"has {list(members)}"
            )
        return None

    def _hand_over_early(self, worker: _LocalWorker) -> None:
        """Frames that waited for this worker, re-checked against its hello (a daemon without
        a ledger could not check them before), in messages under the local limit."""
        members = [worker.members[rank] for rank in sorted(worker.members)]
        accepted = []
        for frame in self._early.take((worker.job_id, worker.rank)):
            refusal = sender_problem(members, frame.sender_member, frame, self.member_id)
            if refusal is not None:
                self._refuse(frame.sender_member, frame.job_id, *refusal)
                continue
            accepted.append(frame)
        self._send_frames(worker, accepted)

    def _send_frames(self, worker: _LocalWorker, frames: Sequence[mpc_pb2.MpcFrame]) -> None:
        for group in local_framing.pack_by_size(frames, PACK_MAX_BYTES):
            worker.send(mpc_pb2.RelayToWorker(frames=group))

    def _route_from_worker(self, worker: _LocalWorker, frame: mpc_pb2.MpcFrame) -> None:
        size = frame.ByteSize()
        if size > RELAYED_FRAME_MAX_BYTES:
            self._fail_worker(
                worker,
                self.member_id,
                f"worker sent a frame of {size} bytes; the relay carries at most "
                f"{RELAYED_FRAME_MAX_BYTES} per chunk",
            )
            return
        if frame.job_id != worker.job_id or frame.sender_rank != worker.rank:
            self._fail_worker(
                worker,
                self.member_id,
                f"worker sent a frame labelled job {frame.job_id!r} rank {frame.sender_rank}",
            )
            return
        target = worker.members.get(frame.receiver_rank)
        if target is None:
            self._fail_worker(worker, self.member_id, f"no rank {frame.receiver_rank} in the job")
            return
        if self._daemon is not None:  # what this party sends, per job (never the content)
            metrics = self._daemon.metrics
            metrics.mpc_frames.labels(frame.job_id).inc()
            metrics.mpc_bytes.labels(frame.job_id).inc(len(frame.data))
        if target == self.member_id:
            frame.sender_member = self.member_id
            self._deliver([frame])
        else:
            self._link(target).queue.put_nowait(frame)

    def _link(self, member_id: str) -> _PeerLink:
        link = self._links.get(member_id)
        if link is None:
            link = self._links[member_id] = _PeerLink(self, member_id)
        return link

    def _tell_peers(self, worker: _LocalWorker, reason: str) -> None:
        failure = mpc_pb2.PartyFailure(
            job_id=worker.job_id, member_id=self.member_id, rank=worker.rank, reason=reason
        )
        for member_id in sorted(set(worker.members.values())):
            if member_id != self.member_id:
                self._link(member_id).queue.put_nowait(failure)
            else:
                self._fail_job_locally(failure, except_rank=worker.rank)

    def _fail_worker(self, worker: _LocalWorker, member_id: str, reason: str) -> None:
        failure = mpc_pb2.PartyFailure(
            job_id=worker.job_id, member_id=member_id, rank=-1, reason=reason
        )
        worker.send(mpc_pb2.RelayToWorker(failures=[failure]))

    def _fail_job_locally(self, failure: mpc_pb2.PartyFailure, except_rank: int = -1) -> None:
        for (job_id, rank), worker in self._workers.items():
            if job_id == failure.job_id and rank != except_rank:
                worker.send(mpc_pb2.RelayToWorker(failures=[failure]))

    # --- peers ---------------------------------------------------------------------------

    def _deliver(self, frames: list[mpc_pb2.MpcFrame]) -> None:
        """Hand checked, stamped frames to their local workers; buffer early ones."""
        by_worker: dict[tuple[str, int], list[mpc_pb2.MpcFrame]] = {}
        for frame in frames:
            by_worker.setdefault((frame.job_id, frame.receiver_rank), []).append(frame)
        for key, batch in by_worker.items():
            worker = self._workers.get(key)
            if worker is not None:
                self._send_frames(worker, batch)
            elif key not in self._finished:  # a finished worker needs no late frames
                self._buffer_early(key, batch)

    def _buffer_early(self, key: tuple[str, int], frames: list[mpc_pb2.MpcFrame]) -> None:
        self._expire_early()
        for frame in frames:
            refusal = self._early.add(key, frame.sender_member, frame)
            if refusal is not None:
                text = f"early-frame buffer: {refusal.value.replace('_', ' ')}"
                self._refuse(frame.sender_member, key[0], refusal.value, text)

    def on_peer_batch(self, member_id: str, batch: mpc_pb2.PeerBatch) -> None:
        accepted = []
        for frame in batch.frames:
            frame.sender_member = member_id  # from the TLS session, whatever the frame says
            refusal = self._frame_problem(member_id, frame)
            if refusal is not None:
                self._refuse(member_id, frame.job_id, *refusal)
                continue
            accepted.append(frame)
        self._deliver(accepted)
        for failure in batch.failures:
            failure.member_id = member_id  # a daemon reports only its own parties
            members = self._members_of(failure.job_id)
            if not _JOB_ID.match(failure.job_id):
                self._refuse(member_id, failure.job_id, "bad_job_id", "failure with a bad job id")
            elif members is None and self._participants is not None:
                self._refuse(member_id, failure.job_id, "unknown_job", "failure for an unknown job")
            elif members is not None and member_id not in members:
                text = f"failure notice from {member_id!r}, not a participant of the job"
                self._refuse(member_id, failure.job_id, "not_participant", text)
            else:
                self._fail_job_locally(failure)

    def _members_of(self, job_id: str) -> Sequence[str] | None:
        """Who holds each rank of ``job_id``: the ledger's job, else an attached worker's
        hello (a daemon without a ledger), else None (unknown)."""
        if self._participants is not None:
            return self._participants(job_id)
        for (worker_job, _rank), worker in self._workers.items():
            if worker_job == job_id:
                return [worker.members[rank] for rank in sorted(worker.members)]
        return None

    def _frame_problem(self, member_id: str, frame: mpc_pb2.MpcFrame) -> tuple[str, str] | None:
        size = frame.ByteSize()
        if size > RELAYED_FRAME_MAX_BYTES:
            return "oversized", f"a frame of {size} bytes (limit {RELAYED_FRAME_MAX_BYTES})"
        if not _JOB_ID.match(frame.job_id):  # also bounds what a job id costs the buffer's keys
            return "bad_job_id", "a job id that is not 1-128 letters, digits, '.', '_', ':', '-'"
        members = self._members_of(frame.job_id)
        if members is None:
            if self._participants is not None:
                return "unknown_job", f"job {frame.job_id[:32]!r} is not on this member's ledger"
            return None  # no ledger here: checked against the hello when the worker attaches
        return sender_problem(members, member_id, frame, self.member_id)

    def _refuse(self, member_id: str, job_id: str, code: str, text: str) -> None:
        """Count a refused frame or notice; log it once per (sender, job, reason), no payload."""
        self._count_refusal(code, 1)
        triple = (member_id, job_id[:128], code)  # a bad job id may be long
        if triple in self._logged_refusals or len(self._logged_refusals) >= LOGGED_REFUSALS_MAX:
            return
        self._logged_refusals.add(triple)
        log.warning(
            "MPC relay refused traffic from %s for job %r: %s (logged once)",
            member_id,
            job_id[:32],
            text,
        )

    def _count_refusal(self, code: str, count: int) -> None:
        self._refused[code] += count
        if self._daemon is not None:
            self._daemon.metrics.mpc_refused.labels(code).inc(count)

    def peer_lost(self, member_id: str, reason: str) -> None:
        link = self._links.pop(member_id, None)
        if link is not None:
            link.task.cancel()
        for worker in self._workers.values():
            if worker.holds(member_id) and not worker.done:
                failure = mpc_pb2.PartyFailure(
                    job_id=worker.job_id, member_id=member_id, rank=-1, reason=reason
                )
                worker.send(mpc_pb2.RelayToWorker(failures=[failure]))


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(local_framing.HEADER.size)
    return await reader.readexactly(local_framing.message_length(header))


def _prepare_socket_path(path: Path) -> Path:
    path = Path(path).absolute()
    if len(os.fsencode(path)) > SOCKET_PATH_MAX_BYTES:
        raise RelayError(
            f"MPC relay socket path {path} is {len(os.fsencode(path))} bytes; a Unix socket "
            f"path must be at most {SOCKET_PATH_MAX_BYTES}: use a shorter data_dir"
        )
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o077:
        raise RelayError(
            f"{folder} is open to other users (mode {mode:o}); the MPC relay socket needs a "
            "folder only this party's user can enter (chmod 700)"
        )
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise RelayError(f"{path} exists and is not a socket; refusing to replace it")
        path.unlink()
    return path
