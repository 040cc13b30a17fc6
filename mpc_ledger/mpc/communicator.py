"""CrypTen's communicator API over typed, labelled, hashed frames (no torch.distributed).

Theory of operation:

* `MpcCommunicator` implements what CrypTen 0.4.1 calls, with the signatures
  of its call sites (see `crypten_compat.install_communicator`, which puts it
  where CrypTen looks): point-to-point (send, recv, isend, irecv), the
  collectives (broadcast, reduce, all_reduce with SUM and BXOR, gather,
  all_gather, scatter, barrier; batched variants as one frame), objects
  (send_obj, recv_obj, broadcast_obj), the dealer's groups, and the
  communication statistics.
* Statistics come in two sets, counted the way CrypTen counts them (a round
  per call, 8 bytes per element, each party's own view). CrypTen's own
  (``comm_rounds``, ``comm_bytes``, ``comm_time``: what
  ``crypten.reset_communication_stats``, ``get_communication_stats`` and
  ``crypten.print_communication_stats`` see) keep CrypTen's contract: counted
  only while ``crypten.cfg.communicator.verbose`` is on, reset by the reset,
  printed through ``crypten.log``; the seed exchange CrypTen's dealer does on
  ``torch.distributed`` directly (`TorchDistributedShim`) is not in them, as
  it is not in CrypTen's. The project's (`transport_stats`: rounds, bytes,
  seconds) are counted always and never reset: the worker's result, the
  benchmarks and the transcript's rounds rely on them.
* Every collective is built from point-to-point frames. A frame gets its
  label (`labels.Mailbox`) when the operation is issued, so receives that
  are posted early, waited on late (irecv) or satisfied by an early frame
  all find the right frame. Frames to several peers go to the transport in
  one call.
* Every logical frame sent or consumed is folded into the `Transcript`
  before it is handed over or after it is taken, and checked before use:
  kind, dtype and shape must be what this party's own program expects, the
  sender member stamped by the daemon (from the TLS session) must be the
  member that holds the sender rank.
* Waiting for a peer is bounded by ``peer_timeout_s`` (the dealer's, twice
  that: it waits on party 0, which may itself be waiting on a hung party that
  its own waiters must name first); the error names the peer. A failure
  notice from the relay (a peer's worker or daemon died) ends the wait at
  once with that peer's name.

A `FrameLink` is the transport underneath: `worker_link.RelayLink` (the
party daemon over a Unix socket) in production, anything with the same two
methods in tests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol

import torch
from torch.distributed import ReduceOp

from mpc_ledger.mpc.errors import (
    MpcError,
    PeerFailedError,
    PeerTimeoutError,
    ProtocolViolation,
    TupleProviderRefused,
)
from mpc_ledger.mpc.frames import (
    ChunkAssembler,
    FrameError,
    decode_tensors,
    encode_tensors,
    frame_problem,
    split_chunks,
)
from mpc_ledger.mpc.labels import LabelError, Mailbox
from mpc_ledger.mpc.objects import ObjectEncodingError, decode_object, encode_object
from mpc_ledger.mpc.round_trips import RoundTripCounter
from mpc_ledger.mpc.transcript import Transcript, TranscriptSnapshot
from mpc_ledger.proto.v1 import mpc_pb2

__all__ = [
    "DEFAULT_PEER_TIMEOUT_S",
    "PROVIDER_DEALER",
    "PROVIDER_TRUSTED_FIRST_PARTY",
    "CommunicatorSetup",
    "FrameLink",
    "Group",
    "MpcCommunicator",
    "PendingRecv",
]

DEFAULT_PEER_TIMEOUT_S = 60.0
DEALER_TIMEOUT_FACTOR = 2.0
PROVIDER_DEALER = "dealer"
PROVIDER_TRUSTED_FIRST_PARTY = "trusted-first-party"
_TENSORS = mpc_pb2.FRAME_KIND_TENSORS
_OBJECT = mpc_pb2.FRAME_KIND_OBJECT
_BARRIER = mpc_pb2.FRAME_KIND_BARRIER


class FrameLink(Protocol):
    """The transport under the communicator: hands chunks over, returns what arrived."""

    def send(self, chunks: Sequence[mpc_pb2.MpcFrame]) -> None: ...

    def poll(self, timeout_s: float) -> mpc_pb2.RelayToWorker | None:
        """The next delivery (frames and failure notices), or None after ``timeout_s``."""
        ...

    def close(self, *, abort_reason: str | None = None) -> None: ...


@dataclasses.dataclass(frozen=True)
class Group:
    """A set of ranks, in place of a torch.distributed process group."""

    ranks: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class CommunicatorSetup:
    """Everything the communicator needs, fixed before `crypten.init()`.

    ``members`` holds the member id of every rank, data parties first
    (0..world_size-1), then the dealer (rank world_size) when there is one.
    """

    job_id: str
    rank: int
    world_size: int
    members: tuple[str, ...]
    link_factory: Callable[[], FrameLink]
    tuple_provider: str = PROVIDER_DEALER
    allow_trusted_first_party: bool = False
    peer_timeout_s: float = DEFAULT_PEER_TIMEOUT_S
    # (sender, receiver) -> message counts whose digests the transcript keeps
    # (`Transcript.watch`): what a replay checks against the ledger's checkpoints.
    watch: Mapping[tuple[int, int], tuple[int, ...]] = dataclasses.field(default_factory=dict)

    @property
    def has_dealer(self) -> bool:
        return len(self.members) > self.world_size

    def member_of(self, rank: int) -> str:
        return self.members[rank] if 0 <= rank < len(self.members) else f"rank {rank}"


class PendingRecv:
    """What `irecv` returns: `.wait()` receives into the tensor given to irecv."""

    def __init__(self, communicator: MpcCommunicator, tensor: torch.Tensor, src: int, seq: int):
        self._communicator = communicator
        self._tensor = tensor
        self._src = src
        self._seq = seq
        self._done = False

    def wait(self) -> None:
        if self._done:
            return
        (received,) = self._communicator._receive_tensors(
            self._src, self._seq, [self._tensor], operation="irecv"
        )
        self._tensor.data.copy_(received)
        self._done = True

    def is_completed(self) -> bool:
        return self._done


class _SentHandle:
    """What `isend` returns: the frame is already with the transport."""

    def wait(self) -> None:
        return None

    def is_completed(self) -> bool:
        return True


def _crypten_verbose() -> bool:
    """CrypTen's ``cfg.communicator.verbose``; off where CrypTen is not loaded (no CrypTen
    program runs then: the transport's own tests, the PSI)."""
    crypten = sys.modules.get("crypten")
    return crypten is not None and bool(crypten.cfg.communicator.verbose)


def _numel(shape: Sequence[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def _op_name(op: Any) -> str:
    if op is None or op == ReduceOp.SUM:
        return "sum"
    if op == ReduceOp.BXOR:
        return "bxor"
    raise MpcError(f"reduce operation {op} is not supported (SUM and BXOR are)")


def _combine(values: list[torch.Tensor], op: str) -> torch.Tensor:
    result = values[0].clone()
    for value in values[1:]:
        if op == "sum":
            result.add_(value)
        else:
            result.bitwise_xor_(value)
    return result


class MpcCommunicator:
    """The communicator CrypTen's `comm.get()` returns in a worker (one per process)."""

    BYTES_PER_ELEMENT = 8
    instance: ClassVar[MpcCommunicator | None] = None
    _dealer_released: bool
    pending_setup: ClassVar[CommunicatorSetup | None] = None

    # --- the class-level API CrypTen's comm module calls ---------------------------

    # `instance` and `pending_setup` always live on MpcCommunicator itself, so a
    # subclass (a test double) is found by code that asks the base class.

    @classmethod
    def configure(cls, setup: CommunicatorSetup) -> None:
        """Fix the setup the next `crypten.init()` will use."""
        MpcCommunicator.pending_setup = setup

    @classmethod
    def is_initialized(cls) -> bool:
        return MpcCommunicator.instance is not None

    @classmethod
    def initialize(cls, rank: int = 0, world_size: int = 1, init_ttp: bool = False) -> None:
        # CrypTen passes placeholders (0, 1); the real ones come from the setup.
        del rank, world_size
        setup = MpcCommunicator.pending_setup
        if setup is None:
            raise MpcError(
                "the MPC communicator is not configured: run CrypTen programs through "
                "mpc_ledger.mpc.worker (MpcCommunicator.configure before crypten.init)"
            )
        MpcCommunicator.instance = cls(setup, init_ttp=init_ttp)

    @classmethod
    def get(cls) -> MpcCommunicator | None:
        return MpcCommunicator.instance

    @classmethod
    def shutdown(cls) -> None:
        instance = MpcCommunicator.instance
        if instance is None:
            return
        try:
            instance.release_dealer()
        finally:
            instance.close()
            MpcCommunicator.instance = None

    def release_dealer(self) -> None:
        """Party 0 tells the dealer the job is over (what CrypTen does at shutdown). Once.

        Call it before the final transcript snapshot, so the snapshot covers
        every frame of the job.
        """
        if self.rank == 0 and self.ttp_initialized and not self._dealer_released:
            self._dealer_released = True
            self.send_obj("terminate", self.get_ttp_rank(), self.ttp_group)

    # --- construction ---------------------------------------------------------------

    def __init__(self, setup: CommunicatorSetup, *, init_ttp: bool) -> None:
        self._check_provider(setup, init_ttp)
        self.setup = setup
        self.rank = setup.rank
        self.world_size = setup.world_size
        self.job_id = setup.job_id
        self.ttp_initialized = init_ttp
        self._dealer_released = False
        total = setup.world_size + (1 if init_ttp else 0)
        if init_ttp and not setup.has_dealer:
            raise TupleProviderRefused("the dealer provider needs a dealer rank in the job")
        self.main_group: Group = Group(tuple(range(setup.world_size)))
        self.ttp_group: Group = Group(tuple(range(total)))
        self.ttp_comm_group: Group = Group((0, total - 1)) if total > 1 else self.ttp_group
        self.transcript = Transcript(setup.job_id, setup.rank)
        for (sender, receiver), counts in setup.watch.items():
            self.transcript.watch(sender, receiver, counts)
        # Sequential round trips, frames and bytes, per peer (the dealer's ranks apart)
        self.traffic = RoundTripCounter(dealer_ranks=range(setup.world_size, len(setup.members)))
        self._streamed = False  # receiving frames sent ahead, unasked (`streamed_receives`)
        self._mailbox = Mailbox(
            setup.job_id, setup.rank, tuple(range(len(setup.members))), self._name
        )
        self._assembler = ChunkAssembler()
        self._name_text = f"rank{setup.rank}"
        self.transport_rounds = 0
        self.transport_bytes = 0
        self.transport_time_s = 0.0
        # Seconds blocked in `FrameLink.poll` waiting for peers' frames: the job's wall time
        # less this is the party's own compute, what a replay (which never waits) compares to.
        self.transport_wait_s = 0.0
        self._crypten_counting_paused = False
        self.reset_communication_stats()
        self.link = setup.link_factory()

    @staticmethod
    def _check_provider(setup: CommunicatorSetup, init_ttp: bool) -> None:
        if init_ttp:
            if setup.tuple_provider != PROVIDER_DEALER:
                raise TupleProviderRefused(
                    f"CrypTen asks for the dealer but the job names {setup.tuple_provider!r}"
                )
            return
        if setup.tuple_provider != PROVIDER_TRUSTED_FIRST_PARTY:
            raise TupleProviderRefused(
                "CrypTen is configured for the trusted-first-party provider but the job names "
                f"{setup.tuple_provider!r}; set crypten's mpc.provider to TTP"
            )
        if not setup.allow_trusted_first_party:
            raise TupleProviderRefused(
                "the trusted-first-party tuple provider lets party 0 see every Beaver triple; "
                "it is refused unless the job explicitly allows it (local demos only)"
            )

    def _name(self, rank: int) -> str:
        return f"{self.setup.member_of(rank)} (rank {rank})"

    def close(self, *, abort_reason: str | None = None) -> None:
        self.link.close(abort_reason=abort_reason)

    # --- statistics ----------------------------------------------------------------------

    # CrypTen's contract (crypten/communicator/communicator.py): counted only in verbose
    # mode; bytes stay as CrypTen adds them (a float once an object is counted).

    def reset_communication_stats(self) -> None:
        self.comm_rounds = 0
        self.comm_bytes: float = 0
        self.comm_time = 0.0

    def get_communication_stats(self) -> dict[str, Any]:
        return {"rounds": self.comm_rounds, "bytes": self.comm_bytes, "time": self.comm_time}

    def print_communication_stats(self) -> None:
        crypten = importlib.import_module("crypten")  # loaded: CrypTen is what calls this
        crypten.log("====Communication Stats====")
        crypten.log(f"Rounds: {self.comm_rounds}")
        crypten.log(f"Bytes: {self.comm_bytes}")
        crypten.log(f"Communication time: {self.comm_time}")

    def transport_stats(self) -> dict[str, Any]:
        """The project's own counts, whatever CrypTen's verbose mode: rounds, bytes, time_s,
        and wait_s (the time blocked waiting for frames, `_await_frame`)."""
        return {
            "rounds": self.transport_rounds,
            "bytes": self.transport_bytes,
            "time_s": self.transport_time_s,
            "wait_s": self.transport_wait_s,
        }

    @contextlib.contextmanager
    def not_counted_by_crypten(self) -> Iterator[None]:
        """Calls CrypTen makes on torch.distributed itself, which its statistics omit."""
        self._crypten_counting_paused = True
        try:
            yield
        finally:
            self._crypten_counting_paused = False

    def _count(
        self, elements: float, started: float, crypten_elements: float | None = None
    ) -> None:
        """One round of ``elements``; ``crypten_elements`` where CrypTen counts otherwise."""
        elapsed_s = time.perf_counter() - started
        self.transport_rounds += 1
        self.transport_bytes += int(elements * self.BYTES_PER_ELEMENT)
        self.transport_time_s += elapsed_s
        self.transcript.end_round()
        if not self._crypten_counting_paused and _crypten_verbose():
            self.comm_rounds += 1
            self.comm_bytes += (elements if crypten_elements is None else crypten_elements) * (
                self.BYTES_PER_ELEMENT
            )
            self.comm_time += elapsed_s

    def snapshot(self, label: str) -> TranscriptSnapshot:
        return self.transcript.snapshot(label)

    # --- identity ------------------------------------------------------------------------

    def get_world_size(self) -> int:
        return self.world_size

    def get_rank(self) -> int:
        return self.rank

    def get_ttp_rank(self) -> int:
        return self.world_size

    def set_name(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"party name must be a string, not {type(name).__name__}")
        self._name_text = name

    def get_name(self) -> str:
        return self._name_text

    def get_distributed_backend(self) -> str:
        return "mpc-ledger-grpc"

    # --- frames out ----------------------------------------------------------------------

    def _frame(self, dst: int, kind: mpc_pb2.FrameKind) -> mpc_pb2.MpcFrame:
        if dst == self.rank or not 0 <= dst < len(self.setup.members):
            raise MpcError(f"rank {self.rank} cannot send to rank {dst}")
        return mpc_pb2.MpcFrame(
            job_id=self.job_id,
            seq=self._mailbox.next_send_seq(dst),
            sender_rank=self.rank,
            receiver_rank=dst,
            kind=kind,
        )

    def _tensor_frame(self, dst: int, tensors: Sequence[torch.Tensor]) -> mpc_pb2.MpcFrame:
        frame = self._frame(dst, _TENSORS)
        specs, data = encode_tensors(tensors)
        frame.tensors.extend(specs)
        frame.data = data
        return frame

    def _object_frame(self, dst: int, obj: Any) -> mpc_pb2.MpcFrame:
        frame = self._frame(dst, _OBJECT)
        frame.object.CopyFrom(encode_object(obj))
        return frame

    def _post(self, frames: Sequence[mpc_pb2.MpcFrame]) -> None:
        """Hash, then hand to the transport (in chunks)."""
        for frame in frames:
            self.transcript.record(frame)
            self.traffic.sent(frame.receiver_rank, frame.ByteSize())
        self._transmit(frames)

    def _transmit(self, frames: Sequence[mpc_pb2.MpcFrame]) -> None:
        chunks = [chunk for frame in frames for chunk in split_chunks(frame)]
        self.link.send(chunks)

    # --- frames in -----------------------------------------------------------------------

    def _await_frame(self, src: int, seq: int, operation: str) -> mpc_pb2.MpcFrame:
        """Block until frame (src, seq) is here; bounded by the peer timeout."""
        timeout_s = self.setup.peer_timeout_s
        if self.ttp_initialized and self.rank == self.world_size:
            # The dealer only serves: party 0 may be legitimately waiting on another
            # party, and that party's direct waiters must time out (and name it) first.
            timeout_s *= DEALER_TIMEOUT_FACTOR
        deadline = time.monotonic() + timeout_s
        while True:
            frame = self._mailbox.take(src, seq)
            if frame is not None:
                return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PeerTimeoutError(
                    self.setup.member_of(src),
                    f"party {self._name(src)} sent nothing expected for "
                    f"{timeout_s:g}s: waiting for frame {seq} of {operation} "
                    f"in job {self.job_id!r}",
                )
            # All of poll counts as waiting, a wrapping link's own work too (`LoggingLink`
            # seals a log chunk there, about a millisecond per MiB): it is not the program's.
            polled = time.perf_counter()
            delivery = self.link.poll(remaining)
            self.transport_wait_s += time.perf_counter() - polled
            if delivery is not None:
                self._accept(delivery)

    def _accept(self, delivery: mpc_pb2.RelayToWorker) -> None:
        for failure in delivery.failures:
            who = failure.member_id
            where = f" (rank {failure.rank})" if failure.rank >= 0 else ""
            raise PeerFailedError(who, f"party {who}{where} failed: {failure.reason}")
        for chunk in delivery.frames:
            sender = chunk.sender_rank
            expected_member = self.setup.member_of(sender)
            if chunk.sender_member != expected_member:
                raise ProtocolViolation(
                    chunk.sender_member or "?",
                    f"frame for rank {sender} ({expected_member}) arrived from member "
                    f"{chunk.sender_member!r}",
                )
            try:
                frame = self._assembler.add(chunk)
                if frame is None:
                    continue
                problem = frame_problem(frame)
                if problem is not None:
                    raise FrameError(problem)
                self._mailbox.offer(frame)
            except (FrameError, LabelError) as exc:
                raise ProtocolViolation(
                    expected_member, f"refused a frame from {self._name(sender)}: {exc}"
                ) from None

    @contextlib.contextmanager
    def streamed_receives(self) -> Iterator[None]:
        """Frames received inside were sent ahead without being asked (the dealer's offline
        phase, `crypten_compat`): counted as frames, not as round trips (`round_trips`)."""
        self._streamed = True
        try:
            yield
        finally:
            self._streamed = False

    def _consume(
        self, src: int, seq: int, kind: mpc_pb2.FrameKind, operation: str
    ) -> mpc_pb2.MpcFrame:
        frame = self._await_frame(src, seq, operation)
        self.transcript.record(frame)
        self.traffic.received(src, frame.ByteSize(), streamed=self._streamed)
        if frame.kind != kind:
            raise ProtocolViolation(
                self.setup.member_of(src),
                f"{operation}: expected a {mpc_pb2.FrameKind.Name(kind)} frame from "
                f"{self._name(src)}, got {mpc_pb2.FrameKind.Name(frame.kind)}",
            )
        return frame

    def _receive_tensors(
        self, src: int, seq: int, like: Sequence[torch.Tensor], *, operation: str
    ) -> list[torch.Tensor]:
        """The tensors of frame (src, seq), which must match ``like`` in dtype and shape."""
        frame = self._consume(src, seq, _TENSORS, operation)
        # Like torch.distributed, only dtype and element count must agree (CrypTen
        # sends a 0-d seed into a 1-element buffer); the result takes our shape.
        got = [(spec.dtype, _numel(spec.shape)) for spec in frame.tensors]
        want = [(str(t.dtype).removeprefix("torch."), t.nelement()) for t in like]
        if got != want:
            raise ProtocolViolation(
                self.setup.member_of(src),
                f"{operation}: {self._name(src)} sent (dtype, elements) {got}, "
                f"this party expects {want}",
            )
        tensors = decode_tensors(frame.tensors, frame.data)
        return [t.reshape(target.shape) for t, target in zip(tensors, like, strict=True)]

    def _receive_object(self, src: int, seq: int, operation: str) -> Any:
        frame = self._consume(src, seq, _OBJECT, operation)
        try:
            return decode_object(frame.object)
        except ObjectEncodingError as exc:
            raise ProtocolViolation(
                self.setup.member_of(src), f"{operation}: bad object from {self._name(src)}: {exc}"
            ) from None

    def _others(self, group: Group | None) -> list[int]:
        ranks = (group or self.main_group).ranks
        if self.rank not in ranks:
            raise MpcError(f"rank {self.rank} is not in the group {ranks}")
        return [r for r in ranks if r != self.rank]

    # --- point to point ------------------------------------------------------------------

    def send(self, tensor: torch.Tensor, dst: int, group: Group | None = None) -> None:
        started = time.perf_counter()
        self._post([self._tensor_frame(dst, [tensor])])
        self._count(tensor.nelement(), started)

    def recv(self, tensor: torch.Tensor, src: int | None = None, group: Group | None = None) -> Any:
        if src is None:
            raise MpcError("receiving from any source is not supported: name src")
        started = time.perf_counter()
        seq = self._mailbox.reserve(src)
        (result,) = self._receive_tensors(src, seq, [tensor], operation="recv")
        self._count(tensor.nelement(), started)
        return result

    def isend(self, tensor: torch.Tensor, dst: int, group: Group | None = None) -> _SentHandle:
        started = time.perf_counter()
        self._post([self._tensor_frame(dst, [tensor])])
        self._count(tensor.nelement(), started)
        return _SentHandle()

    def irecv(
        self, tensor: torch.Tensor, src: int | None = None, group: Group | None = None
    ) -> PendingRecv:
        if src is None:
            raise MpcError("receiving from any source is not supported: name src")
        started = time.perf_counter()
        handle = PendingRecv(self, tensor, src, self._mailbox.reserve(src))
        self._count(tensor.nelement(), started)
        return handle

    # --- collectives ---------------------------------------------------------------------

    def broadcast(
        self, input: Any, src: int, group: Group | None = None, batched: bool = False
    ) -> Any:
        started = time.perf_counter()
        tensors: list[torch.Tensor] = list(input) if batched else [input]
        others = self._others(group)
        if self.rank == src:
            self._post([self._tensor_frame(dst, tensors) for dst in others])
        else:
            seq = self._mailbox.reserve(src)
            received = self._receive_tensors(src, seq, tensors, operation="broadcast")
            for target, value in zip(tensors, received, strict=True):
                target.data.copy_(value)
        elements = sum(t.nelement() for t in tensors)
        multiplier = len(others) if self.rank == src else 1
        crypten_multiplier = self.world_size - 1 if self.rank == src else 1  # any group
        self._count(elements * multiplier, started, elements * crypten_multiplier)
        return input

    def reduce(self, input: Any, dst: int, op: Any = None, batched: bool = False) -> Any:
        started = time.perf_counter()
        name = _op_name(op)
        tensors: list[torch.Tensor] = list(input) if batched else [input]
        others = self._others(None)
        result: Any = None
        if self.rank == dst:
            seqs = {src: self._mailbox.reserve(src) for src in others}
            gathered = [tensors] + [
                self._receive_tensors(src, seqs[src], tensors, operation="reduce") for src in others
            ]
            combined = [_combine([g[i] for g in gathered], name) for i in range(len(tensors))]
            result = combined if batched else combined[0]
        else:
            self._post([self._tensor_frame(dst, tensors)])
        multiplier = len(others) if self.rank == dst else 1
        self._count(sum(t.nelement() for t in tensors) * multiplier, started)
        return result

    def all_reduce(self, input: Any, op: Any = None, batched: bool = False) -> Any:
        started = time.perf_counter()
        name = _op_name(op)
        tensors: list[torch.Tensor] = list(input) if batched else [input]
        others = self._others(None)
        self._post([self._tensor_frame(dst, tensors) for dst in others])
        seqs = {src: self._mailbox.reserve(src) for src in others}
        gathered = [tensors] + [
            self._receive_tensors(src, seqs[src], tensors, operation="all_reduce") for src in others
        ]
        combined = [_combine([g[i] for g in gathered], name) for i in range(len(tensors))]
        self._count(sum(2 * t.nelement() for t in tensors), started)
        return combined if batched else combined[0]

    def gather(self, tensor: torch.Tensor, dst: int) -> list[Any]:
        started = time.perf_counter()
        others = self._others(None)
        result: list[Any]
        if self.rank == dst:
            seqs = {src: self._mailbox.reserve(src) for src in others}
            result = []
            for rank in self.main_group.ranks:
                if rank == self.rank:
                    result.append(tensor.clone())
                else:
                    (value,) = self._receive_tensors(
                        src=rank, seq=seqs[rank], like=[tensor], operation="gather"
                    )
                    result.append(value)
        else:
            self._post([self._tensor_frame(dst, [tensor])])
            result = [None]
        multiplier = len(others) if self.rank == dst else 1
        self._count(tensor.nelement() * multiplier, started)
        return result

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        started = time.perf_counter()
        others = self._others(None)
        self._post([self._tensor_frame(dst, [tensor]) for dst in others])
        seqs = {src: self._mailbox.reserve(src) for src in others}
        result = []
        for rank in self.main_group.ranks:
            if rank == self.rank:
                result.append(tensor.clone())
            else:
                (value,) = self._receive_tensors(rank, seqs[rank], [tensor], operation="all_gather")
                result.append(value)
        self._count(2 * len(others) * tensor.nelement(), started)
        return result

    def scatter(
        self, scatter_list: Sequence[torch.Tensor], src: int, size: Any = None, device: Any = None
    ) -> torch.Tensor:
        started = time.perf_counter()
        others = self._others(None)
        if self.rank == src:
            self._post([self._tensor_frame(dst, [scatter_list[dst]]) for dst in others])
            result = scatter_list[self.rank]
            elements = sum(scatter_list[dst].nelement() for dst in others)
        else:
            if size is None:
                size = scatter_list[self.rank].size()
            like = torch.empty(size=tuple(size), dtype=torch.long)
            (result,) = self._receive_tensors(
                src, self._mailbox.reserve(src), [like], operation="scatter"
            )
            elements = result.nelement()
        self._count(elements, started)
        return result

    def barrier(self, group: Group | None = None) -> None:
        started = time.perf_counter()
        others = self._others(group)
        self._post([self._frame(dst, _BARRIER) for dst in others])
        seqs = {src: self._mailbox.reserve(src) for src in others}
        for src in others:
            self._consume(src, seqs[src], _BARRIER, "barrier")
        self._count(0, started)

    # --- objects -------------------------------------------------------------------------

    def send_obj(self, obj: Any, dst: int, group: Group | None = None) -> None:
        started = time.perf_counter()
        self._post([self._object_frame(dst, obj)])
        self._count(sys.getsizeof(obj) / self.BYTES_PER_ELEMENT, started)

    def recv_obj(self, src: int, group: Group | None = None) -> Any:
        started = time.perf_counter()
        result = self._receive_object(src, self._mailbox.reserve(src), "recv_obj")
        self._count(sys.getsizeof(result) / self.BYTES_PER_ELEMENT, started)
        return result

    def broadcast_obj(self, obj: Any, src: int, group: Group | None = None) -> Any:
        started = time.perf_counter()
        others = self._others(group)
        # CrypTen counts the object it was given (None at a receiver) to every other party.
        crypten_elements = sys.getsizeof(obj) / self.BYTES_PER_ELEMENT * (self.world_size - 1)
        if self.rank == src:
            if obj is None:
                raise MpcError("the source of broadcast_obj must provide the object")
            self._post([self._object_frame(dst, obj) for dst in others])
        else:
            obj = self._receive_object(src, self._mailbox.reserve(src), "broadcast_obj")
        self._count(
            sys.getsizeof(obj) / self.BYTES_PER_ELEMENT * len(others), started, crypten_elements
        )
        return obj


class TorchDistributedShim:
    """Stands in for `torch.distributed` inside CrypTen's dealer module.

    CrypTen's TTP provider exchanges its seeds with ``dist.isend``,
    ``dist.irecv`` and ``dist.barrier`` directly; `crypten_compat` points
    that module's ``dist`` at this object so those calls use our frames too.
    """

    @staticmethod
    def _communicator() -> MpcCommunicator:
        instance = MpcCommunicator.instance
        if instance is None:
            raise MpcError("the MPC communicator is not initialised")
        return instance

    def isend(self, tensor: torch.Tensor, dst: int, group: Any = None, **_: Any) -> _SentHandle:
        communicator = self._communicator()
        with communicator.not_counted_by_crypten():
            return communicator.isend(tensor, dst)

    def irecv(self, tensor: torch.Tensor, src: int, group: Any = None, **_: Any) -> PendingRecv:
        communicator = self._communicator()
        with communicator.not_counted_by_crypten():
            return communicator.irecv(tensor, src)

    def barrier(self, group: Any = None, **_: Any) -> None:
        communicator = self._communicator()
        with communicator.not_counted_by_crypten():
            communicator.barrier(group if isinstance(group, Group) else None)

    def __getattr__(self, name: str) -> Any:
        raise MpcError(
            f"CrypTen's dealer called torch.distributed.{name}, which the MPC transport does "
            "not carry"
        )
