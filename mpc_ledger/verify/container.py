"""The export and proof file formats: framing, bounds, atomic writing.

Theory of operation
-------------------
An export is a stream, so a party can write one of any length without
holding it in memory and a verifier can check one block at a time::

    export := b"mpc-ledger-export\\n" frame(header) frame(block)* frame(trailer) EOF
    proof  := b"mpc-ledger-proof\\n" frame(RecordProof) EOF
    frame  := u32 big-endian length || protobuf message of that length

Frames of an export are ``mpc_ledger.v1.ExportFrame`` messages (header,
committed block, trailer); ``ExportHeader.format`` is ``mpc-ledger/export/v1``
and a reader refuses any other version. FORMAT.md in this folder is the
reference for the fields and for what a partial (``--from``) export proves.

The file is untrusted input. Reading never allocates more than
``FRAME_MAX_BYTES`` for a frame, refuses frames that do not parse or come
out of order, data after the trailer and a file that ends early, and reports
all of that as :class:`ExportFormatError` (a :class:`UserError`: one line
naming the file, exit code 2). Whether the *content* is true (certificates,
hashes, signatures) is for :mod:`mpc_ledger.verify.chain` to say.

Writing is atomic: frames go to a temporary file next to the target, which is
fsynced and renamed over the target only when the trailer is written; a
failed export leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from google.protobuf.message import DecodeError

from mpc_ledger.errors import UserError
from mpc_ledger.proto.v1 import consensus_pb2, export_pb2

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_MAGIC",
    "FRAME_MAX_BYTES",
    "PROOF_FORMAT",
    "PROOF_MAGIC",
    "ExportFormatError",
    "ExportReader",
    "ExportWriter",
    "read_proof",
    "write_proof",
]

EXPORT_FORMAT = "mpc-ledger/export/v1"
PROOF_FORMAT = "mpc-ledger/proof/v1"
EXPORT_MAGIC = b"mpc-ledger-export\n"
PROOF_MAGIC = b"mpc-ledger-proof\n"
# An honest proposer fills a block with at most 8 x max_record_bytes of
# records (8 MiB with the default genesis); a frame eight times that is
# refused rather than allocated.
FRAME_MAX_BYTES = 64 << 20
PROOF_MAX_BYTES = 8 << 20
_LENGTH = struct.Struct(">I")


class ExportFormatError(UserError):
    """The file is not a readable export or proof of a version we know."""


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class _FrameReader:
    """Length-prefixed frames from a stream, each bounded, each position known."""

    def __init__(self, stream: BinaryIO, path: str, max_frame_bytes: int) -> None:
        self._stream = stream
        self._path = path
        self._max = max_frame_bytes
        self.offset = 0
        self.index = 0

    def error(self, message: str) -> ExportFormatError:
        return ExportFormatError(message, path=self._path)

    def magic(self, expected: bytes, what: str) -> None:
        found = _read_exact(self._stream, len(expected))
        self.offset += len(found)
        if found != expected:
            raise self.error(f"not an mpc-ledger {what} file (it does not start with {expected!r})")

    def next(self) -> bytes | None:
        """The next frame's bytes; None at a clean end of the file."""
        prefix = _read_exact(self._stream, _LENGTH.size)
        if not prefix:
            return None
        if len(prefix) < _LENGTH.size:
            raise self.error(f"truncated: frame {self.index} at byte {self.offset} has no length")
        (length,) = _LENGTH.unpack(prefix)
        if length > self._max:
            raise self.error(
                f"frame {self.index} at byte {self.offset} claims {length} bytes; "
                f"the limit is {self._max}"
            )
        data = _read_exact(self._stream, length)
        if len(data) < length:
            raise self.error(
                f"truncated: frame {self.index} at byte {self.offset} needs {length} bytes, "
                f"the file has {len(data)} left"
            )
        self.offset += _LENGTH.size + length
        self.index += 1
        return data


class ExportReader:
    """Reads an export: ``header`` at once, then ``blocks()``, then ``trailer``.

    Use as a context manager. Every problem with the container is an
    :class:`ExportFormatError`; the content is not judged here.
    """

    def __init__(self, path: Path, *, max_frame_bytes: int = FRAME_MAX_BYTES) -> None:
        self.path = path
        try:
            self._stream: BinaryIO = path.open("rb")
        except FileNotFoundError:
            raise ExportFormatError("file not found", path=path) from None
        except OSError as exc:
            raise ExportFormatError(f"cannot read: {exc.strerror or exc}", path=path) from None
        self._frames = _FrameReader(self._stream, str(path), max_frame_bytes)
        self.trailer: export_pb2.ExportTrailer | None = None
        self.blocks_read = 0
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> ExportReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _frame(self, data: bytes) -> export_pb2.ExportFrame:
        frame = export_pb2.ExportFrame()
        try:
            frame.ParseFromString(data)
        except DecodeError as exc:
            raise self._frames.error(
                f"frame {self._frames.index - 1} is not an export frame ({exc})"
            ) from None
        return frame

    def _read_header(self) -> export_pb2.ExportHeader:
        self._frames.magic(EXPORT_MAGIC, "export")
        data = self._frames.next()
        if data is None:
            raise self._frames.error("truncated: the file ends before the export header")
        frame = self._frame(data)
        if frame.WhichOneof("kind") != "header":
            raise self._frames.error("the first frame is not an export header")
        header = frame.header
        if header.format != EXPORT_FORMAT:
            raise self._frames.error(
                f"export format {header.format!r} is not supported (this version reads "
                f"{EXPORT_FORMAT!r})"
            )
        if header.from_height < 1:
            raise self._frames.error("export header: from_height must be at least 1")
        return header

    def blocks(self) -> Iterator[consensus_pb2.CommittedBlock]:
        """Each committed block in file order; afterwards ``trailer`` is set."""
        while True:
            data = self._frames.next()
            if data is None:
                raise self._frames.error(
                    f"truncated: the file ends after {self.blocks_read} blocks, "
                    "without the export trailer"
                )
            frame = self._frame(data)
            kind = frame.WhichOneof("kind")
            if kind == "block":
                self.blocks_read += 1
                yield frame.block
            elif kind == "trailer":
                self.trailer = frame.trailer
                break
            else:
                raise self._frames.error(
                    f"frame {self._frames.index - 1} is a {kind or 'empty'} frame among the blocks"
                )
        if self._frames.next() is not None:
            raise self._frames.error("data after the export trailer")


class ExportWriter:
    """Writes an export atomically (see the module docstring). Use as a context manager."""

    def __init__(self, path: Path, header: export_pb2.ExportHeader) -> None:
        self.path = path
        self.record_count = 0
        self.block_count = 0
        directory = path.parent if str(path.parent) else Path(".")
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=directory)
        self._temp = Path(temp)
        self._stream = os.fdopen(fd, "wb")
        self._done = False
        self._stream.write(EXPORT_MAGIC)
        self._write(export_pb2.ExportFrame(header=header))

    def _write(self, frame: export_pb2.ExportFrame) -> None:
        data = frame.SerializeToString(deterministic=True)
        if len(data) > FRAME_MAX_BYTES:
            raise ValueError(f"a frame of {len(data)} bytes exceeds {FRAME_MAX_BYTES}")
        self._stream.write(_LENGTH.pack(len(data)))
        self._stream.write(data)

    def block(self, committed: consensus_pb2.CommittedBlock) -> None:
        self._write(export_pb2.ExportFrame(block=committed))
        self.block_count += 1
        self.record_count += len(committed.block.records)

    def finish(self, log_size: int, log_root: bytes) -> None:
        """Write the trailer, fsync, and move the file into place."""
        trailer = export_pb2.ExportTrailer(
            block_count=self.block_count,
            record_count=self.record_count,
            log_size=log_size,
            log_root=log_root,
        )
        self._write(export_pb2.ExportFrame(trailer=trailer))
        self._stream.flush()
        os.fsync(self._stream.fileno())
        self._stream.close()
        os.replace(self._temp, self.path)
        self._done = True

    def abort(self) -> None:
        if not self._done:
            self._stream.close()
            with contextlib.suppress(FileNotFoundError):
                self._temp.unlink()
            self._done = True

    def __enter__(self) -> ExportWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


def write_proof(path: Path, proof: export_pb2.RecordProof) -> None:
    """Write a proof file atomically."""
    data = proof.SerializeToString(deterministic=True)
    directory = path.parent if str(path.parent) else Path(".")
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=directory)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(PROOF_MAGIC + _LENGTH.pack(len(data)) + data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def read_proof(path: Path) -> export_pb2.RecordProof:
    """Read and parse a proof file; :class:`ExportFormatError` when it is not one."""
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise ExportFormatError("file not found", path=path) from None
    except OSError as exc:
        raise ExportFormatError(f"cannot read: {exc.strerror or exc}", path=path) from None
    with stream:
        frames = _FrameReader(stream, str(path), PROOF_MAX_BYTES)
        frames.magic(PROOF_MAGIC, "proof")
        data = frames.next()
        if data is None:
            raise frames.error("truncated: the file ends before the proof")
        if frames.next() is not None:
            raise frames.error("data after the proof")
    proof = export_pb2.RecordProof()
    try:
        proof.ParseFromString(data)
    except DecodeError as exc:
        raise ExportFormatError(f"not a record proof ({exc})", path=path) from None
    if proof.format != PROOF_FORMAT:
        raise ExportFormatError(
            f"proof format {proof.format!r} is not supported (this version reads {PROOF_FORMAT!r})",
            path=path,
        )
    return proof
