"""The worker's end of the relay: one Unix-socket connection to its own party daemon.

CrypTen runs synchronously in the worker's main thread, and so does this
link: a blocking socket, no event loop, no helper thread, nothing between
CrypTen's call and the kernel (see `local_framing` for the wire format and
mpc.proto for why this hop is not gRPC).

Contract: `send` hands chunks to the daemon (several messages when they
exceed the local message limit). `poll` returns the next delivery (frames
and failure notices) or None after its timeout; it raises
`RelayUnavailableError` when the daemon goes away. `close` says ``done`` (or
the abort reason, so the relay tells the peers), half-closes, and waits
briefly for the relay to close its side so nothing queued is lost.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from mpc_ledger.mpc import local_framing
from mpc_ledger.mpc.errors import RelayUnavailableError
from mpc_ledger.proto.v1 import mpc_pb2

__all__ = ["RelayLink"]

_RECV_BYTES = 1 << 16
# Stay well under the local limit when packing chunks into one message.
_PACK_BYTES = local_framing.LOCAL_MESSAGE_MAX_BYTES // 2


class RelayLink:
    """A `communicator.FrameLink` over the relay's Unix socket."""

    def __init__(
        self,
        socket_path: Path,
        hello: mpc_pb2.WorkerHello,
        *,
        connect_timeout_s: float = 10.0,
        close_timeout_s: float = 5.0,
    ) -> None:
        self._socket_path = Path(socket_path)
        self._close_timeout_s = close_timeout_s
        self._buffer = bytearray()
        self._closed = False
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(connect_timeout_s)
        try:
            self._sock.connect(str(self._socket_path))
        except OSError as exc:
            self._sock.close()
            raise RelayUnavailableError(
                f"cannot reach the MPC relay at {self._socket_path} ({exc.strerror or exc}): "
                "is the party daemon running?"
            ) from None
        self._write(mpc_pb2.WorkerToRelay(hello=hello))
        first = self.poll(connect_timeout_s)
        if first is None:
            raise RelayUnavailableError(
                f"the relay at {self._socket_path} did not answer within {connect_timeout_s:g}s"
            )
        if not first.attached:
            reasons = "; ".join(f.reason for f in first.failures) or "no reason given"
            raise RelayUnavailableError(f"the relay refused this worker: {reasons}")

    def _write(self, message: mpc_pb2.WorkerToRelay) -> None:
        try:
            self._sock.settimeout(None)
            self._sock.sendall(local_framing.encode(message.SerializeToString()))
        except OSError as exc:
            raise RelayUnavailableError(f"lost the party daemon's relay: {exc}") from None

    def send(self, chunks: Sequence[mpc_pb2.MpcFrame]) -> None:
        # Whole serialized chunks count, not only their data: many object frames
        # in one call must not add up past the local message limit either.
        for group in local_framing.pack_by_size(chunks, _PACK_BYTES):
            self._write(mpc_pb2.WorkerToRelay(frames=group))

    def _take(self) -> bytes | None:
        if len(self._buffer) < local_framing.HEADER.size:
            return None
        length = local_framing.message_length(bytes(self._buffer[: local_framing.HEADER.size]))
        end = local_framing.HEADER.size + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[local_framing.HEADER.size : end])
        del self._buffer[:end]
        return payload

    def _read(self, timeout_s: float) -> bytes | None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                payload = self._take()
            except local_framing.LocalFramingError as exc:
                raise RelayUnavailableError(f"the relay sent a bad message: {exc}") from None
            if payload is not None:
                return payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._sock.settimeout(remaining)
            try:
                data = self._sock.recv(_RECV_BYTES)
            except TimeoutError:
                return None
            except OSError as exc:
                raise RelayUnavailableError(f"lost the party daemon's relay: {exc}") from None
            if not data:
                raise RelayUnavailableError("the party daemon's relay closed the connection")
            self._buffer += data

    def poll(self, timeout_s: float) -> mpc_pb2.RelayToWorker | None:
        payload = self._read(timeout_s)
        if payload is None:
            return None
        try:
            return mpc_pb2.RelayToWorker.FromString(payload)
        except Exception as exc:
            raise RelayUnavailableError(f"the relay sent an unreadable message: {exc}") from None

    def close(self, *, abort_reason: str | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        goodbye = (
            mpc_pb2.WorkerToRelay(abort_reason=abort_reason)
            if abort_reason
            else mpc_pb2.WorkerToRelay(done=True)
        )
        with contextlib.suppress(RelayUnavailableError, OSError):
            self._write(goodbye)
            self._sock.shutdown(socket.SHUT_WR)
            # The relay closes its side once it has handled everything we sent.
            deadline = time.monotonic() + self._close_timeout_s
            self._sock.settimeout(self._close_timeout_s)
            while time.monotonic() < deadline and self._sock.recv(_RECV_BYTES):
                pass
        self._sock.close()
