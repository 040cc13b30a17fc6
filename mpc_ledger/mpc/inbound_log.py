"""The encrypted inbound log: every chunk a worker received, kept so its side can be replayed.

Theory of operation. A party's outgoing messages are a deterministic function
of its data, its committed seed (`job_seed`) and what it received. This module
keeps the third input: `LoggingLink` wraps the worker's `FrameLink` and appends
every `MpcFrame` chunk of every delivery to an `InboundLogWriter` before the
communicator sees it; `read_inbound_log` gives the chunks back, in order, and
`ReplayLink` serves them to a replayed worker. `inbound_prefix_digests` folds
the logged frames into a `Transcript` exactly as the communicator did, so a
replay can check the log against the digests the party signed on the ledger.

The log holds what the party's peers sent it, in the clear inside: it is
encrypted at rest under a key of the party's own (`load_or_create_log_key`,
``LOG_KEY_BYTES`` random bytes, mode 0600, never on the ledger, never logged).

File format (all integers big-endian)::

    header  = MAGIC (8 bytes, b"MPCINLOG")
              version (u16, 1)
              salt (32 random bytes, fresh per file)
              rank (u32)
              job id (u16 length + UTF-8)
              member id (u16 length + UTF-8)
    chunk*  = length (u32) + AES-256-GCM ciphertext with its 16-byte tag

* The file key is HKDF-SHA256(log key, salt, info "mpc-ledger/inbound-log/v1"),
  so every file has a key of its own, and the nonce can be the chunk index (12
  bytes big-endian): unique under that key without any state kept elsewhere.
* The associated data of chunk i is SHA-256(header) + i (u64) + final flag
  (one byte). A chunk changed, moved, dropped, swapped or taken from another
  file (another salt, job, rank or member) fails authentication; the last
  chunk, and only it, is sealed as final, so a file that ends before it is
  "truncated" and anything after it is refused.
* A chunk's plaintext is whole records, each a u32 length and one serialized
  `MpcFrame`. The writer seals a chunk once its buffer reaches ``chunk_bytes``
  (1 MiB by default: 20 bytes of framing and tag per MiB, 4 per record); its
  last chunk is sealed by `InboundLogWriter.close`, possibly empty.

What reaches the disk when: a chunk is written when sealed, the file is
fsynced at close. A worker that dies leaves a log without its final chunk,
which `read_inbound_log` refuses as truncated: a replay is only for a job the
party finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import stat
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf.message import DecodeError

from mpc_ledger.errors import IdentityError
from mpc_ledger.identity.keys import write_private_file
from mpc_ledger.mpc.communicator import FrameLink
from mpc_ledger.mpc.errors import MpcError
from mpc_ledger.mpc.frames import ChunkAssembler, FrameError
from mpc_ledger.mpc.transcript import Transcript
from mpc_ledger.proto.v1 import mpc_pb2

__all__ = [
    "CHUNK_BYTES_DEFAULT",
    "CHUNK_PLAINTEXT_MAX_BYTES",
    "LOG_KEY_BYTES",
    "InboundLogError",
    "InboundLogWriter",
    "LoggingLink",
    "ReplayExhausted",
    "ReplayLink",
    "inbound_channel_counts",
    "inbound_prefix_digests",
    "load_log_key",
    "load_or_create_log_key",
    "read_inbound_log",
]

LOG_KEY_BYTES = 32
CHUNK_BYTES_DEFAULT = 1 << 20
# A record is one MpcFrame chunk from the relay, far below the 16 MiB of a
# gRPC message; the reader refuses a chunk above this before reading it.
CHUNK_PLAINTEXT_MAX_BYTES = 64 << 20
MAGIC = b"MPCINLOG"
VERSION = 1
SALT_BYTES = 32
_ID_MAX_BYTES = 1024
_TAG_BYTES = 16
_HKDF_INFO = b"mpc-ledger/inbound-log/v1"
_LENGTH = struct.Struct(">I")
_FIXED_HEADER = struct.Struct(f">8sH{SALT_BYTES}sI")
_ID_LENGTH = struct.Struct(">H")


class InboundLogError(MpcError):
    """A log key or inbound log that cannot be used; the message names the file and why."""


class ReplayExhausted(MpcError):
    """The replayed program asked for more frames than the party ever received."""


# --- the log key ------------------------------------------------------------------


def load_or_create_log_key(path: Path) -> bytes:
    """The party's log key at ``path``, created (random, mode 0600) the first time.

    Refused, naming the file, when it is not ``LOG_KEY_BYTES`` long or group or
    others have any access to it (the key opens every log of the party).
    """
    path = Path(path)
    if not path.exists():
        # IdentityError: another process created it first; use theirs, checked below.
        with contextlib.suppress(IdentityError):
            write_private_file(path, os.urandom(LOG_KEY_BYTES))
    return load_log_key(path)


def load_log_key(path: Path) -> bytes:
    """The party's existing log key at ``path`` (a replay never makes one); refused as
    `load_or_create_log_key` refuses it, or when it is missing."""
    path = Path(path)
    try:
        info = path.stat()
        key = path.read_bytes()
    except OSError as exc:
        raise InboundLogError(f"{path}: cannot read the log key ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise InboundLogError(f"{path}: the log key is not a regular file")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InboundLogError(
            f"{path}: the log key is open to group or others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); refusing it. Fix with: chmod 600 {path}"
        )
    if len(key) != LOG_KEY_BYTES:
        raise InboundLogError(
            f"{path}: a log key is {LOG_KEY_BYTES} bytes, this file has {len(key)}"
        )
    return key


# --- the format, pure ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Header:
    salt: bytes
    job_id: str
    rank: int
    member: str

    def encode(self) -> bytes:
        job = self.job_id.encode()
        member = self.member.encode()
        for name, raw in (("job id", job), ("member id", member)):
            if len(raw) > _ID_MAX_BYTES:
                raise InboundLogError(f"a {name} of {len(raw)} bytes (limit {_ID_MAX_BYTES})")
        return b"".join(
            (
                _FIXED_HEADER.pack(MAGIC, VERSION, self.salt, self.rank),
                _ID_LENGTH.pack(len(job)),
                job,
                _ID_LENGTH.pack(len(member)),
                member,
            )
        )


def _file_cipher(key: bytes, salt: bytes) -> AESGCM:
    if len(key) != LOG_KEY_BYTES:
        raise InboundLogError(f"a log key is {LOG_KEY_BYTES} bytes, not {len(key)}")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO)
    return AESGCM(hkdf.derive(key))


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _aad(header_digest: bytes, index: int, final: bool) -> bytes:
    return header_digest + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


# --- writing --------------------------------------------------------------------------


class InboundLogWriter:
    """Appends received chunks to a new encrypted log file (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        key: bytes,
        *,
        job_id: str,
        rank: int,
        member: str,
        chunk_bytes: int = CHUNK_BYTES_DEFAULT,
    ) -> None:
        if not 1 <= chunk_bytes <= CHUNK_PLAINTEXT_MAX_BYTES:
            raise ValueError(f"chunk_bytes {chunk_bytes} is not in 1..{CHUNK_PLAINTEXT_MAX_BYTES}")
        self.path = Path(path)
        salt = os.urandom(SALT_BYTES)
        header = _Header(salt, job_id, rank, member).encode()
        self._cipher = _file_cipher(key, salt)
        self._header_digest = hashlib.sha256(header).digest()
        self._chunk_bytes = chunk_bytes
        self._buffer = bytearray()
        self._index = 0
        self._closed = False
        self.appended_bytes = 0  # sum of frame.ByteSize(): the log's overhead is against this
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise InboundLogError(
                f"{self.path}: an inbound log already exists; refusing to overwrite it"
            ) from None
        except OSError as exc:
            raise InboundLogError(
                f"{self.path}: cannot create the inbound log ({exc.strerror or exc})"
            ) from None
        os.fchmod(fd, 0o600)  # whatever the umask: the log is the party's view of the job
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._file.write(header)

    def append(self, frame: mpc_pb2.MpcFrame) -> None:
        """Keep one received chunk; seals a chunk of the log once enough is buffered."""
        if self._closed:
            raise InboundLogError(f"{self.path}: the inbound log is closed")
        record = frame.SerializeToString()
        if len(record) + _LENGTH.size > CHUNK_PLAINTEXT_MAX_BYTES:
            raise InboundLogError(
                f"{self.path}: a frame of {len(record)} bytes does not fit in a log chunk"
            )
        if len(self._buffer) + _LENGTH.size + len(record) > CHUNK_PLAINTEXT_MAX_BYTES:
            self._seal(final=False)
        self._buffer += _LENGTH.pack(len(record))
        self._buffer += record
        self.appended_bytes += len(record)
        if len(self._buffer) >= self._chunk_bytes:
            self._seal(final=False)

    def _seal(self, *, final: bool) -> None:
        index = self._index
        sealed = self._cipher.encrypt(
            _nonce(index), bytes(self._buffer), _aad(self._header_digest, index, final)
        )
        self._file.write(_LENGTH.pack(len(sealed)))
        self._file.write(sealed)
        self._file.flush()  # a sealed chunk is the OS's at once: a crash loses only the buffer
        self._buffer.clear()
        self._index += 1

    def close(self) -> None:
        """Seal the final chunk and fsync; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self._seal(final=True)
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()


# --- reading --------------------------------------------------------------------------


def _read_header(path: Path, handle: BinaryIO) -> tuple[bytes, _Header]:
    """The header's bytes (hashed into every chunk's associated data) and its fields."""
    fixed = handle.read(_FIXED_HEADER.size)
    if fixed[: len(MAGIC)] != MAGIC:
        raise InboundLogError(f"{path}: not an inbound log (no {MAGIC.decode()} header)")
    if len(fixed) < _FIXED_HEADER.size:
        raise InboundLogError(f"{path}: truncated inside its header")
    _, version, salt, rank = _FIXED_HEADER.unpack(fixed)
    if version != VERSION:
        raise InboundLogError(
            f"{path}: inbound log version {version} is unknown (this reader knows {VERSION})"
        )
    parts = [fixed]
    ids: list[str] = []
    for name in ("job id", "member id"):
        raw_length = handle.read(_ID_LENGTH.size)
        if len(raw_length) < _ID_LENGTH.size:
            raise InboundLogError(f"{path}: truncated inside its header")
        (length,) = _ID_LENGTH.unpack(raw_length)
        if length > _ID_MAX_BYTES:
            raise InboundLogError(f"{path}: a {name} of {length} bytes in the header")
        value = handle.read(length)
        if len(value) < length:
            raise InboundLogError(f"{path}: truncated inside its header")
        try:
            ids.append(value.decode())
        except UnicodeDecodeError:
            raise InboundLogError(f"{path}: the header's {name} is not UTF-8") from None
        parts += [raw_length, value]
    return b"".join(parts), _Header(salt, ids[0], rank, ids[1])


def _check_owner(path: Path, found: _Header, job_id: str, rank: int, member: str) -> None:
    if found.job_id != job_id:
        raise InboundLogError(
            f"{path}: belongs to another job ({found.job_id[:64]!r}, not {job_id!r})"
        )
    if found.rank != rank:
        raise InboundLogError(f"{path}: belongs to another rank ({found.rank}, not {rank})")
    if found.member != member:
        raise InboundLogError(
            f"{path}: belongs to another member ({found.member[:64]!r}, not {member!r})"
        )


def _records(path: Path, index: int, plaintext: bytes) -> list[mpc_pb2.MpcFrame]:
    frames: list[mpc_pb2.MpcFrame] = []
    offset = 0
    while offset < len(plaintext):
        where = f"{path}: record {len(frames)} of chunk {index}"
        if offset + _LENGTH.size > len(plaintext):
            raise InboundLogError(f"{where} is cut short inside its length")
        (length,) = _LENGTH.unpack_from(plaintext, offset)
        offset += _LENGTH.size
        if offset + length > len(plaintext):
            raise InboundLogError(f"{where} declares {length} bytes past the chunk's end")
        try:
            frames.append(mpc_pb2.MpcFrame.FromString(plaintext[offset : offset + length]))
        except DecodeError:
            raise InboundLogError(f"{where} is not an MpcFrame") from None
        offset += length
    return frames


def read_inbound_log(
    path: Path, key: bytes, *, job_id: str, rank: int, member: str
) -> list[mpc_pb2.MpcFrame]:
    """Every chunk the log holds, in the order received; InboundLogError naming the file
    and what is wrong if it is not this job's, rank's and member's complete, unaltered log."""
    path = Path(path)
    try:
        handle: BinaryIO = path.open("rb")
    except OSError as exc:
        raise InboundLogError(
            f"{path}: cannot open the inbound log ({exc.strerror or exc})"
        ) from None
    with handle:
        size_bytes = os.fstat(handle.fileno()).st_size
        header, found = _read_header(path, handle)
        _check_owner(path, found, job_id, rank, member)
        cipher = _file_cipher(key, found.salt)
        header_digest = hashlib.sha256(header).digest()
        frames: list[mpc_pb2.MpcFrame] = []
        index = 0
        while True:
            position = handle.tell()
            if position == size_bytes:
                after = "its header" if index == 0 else f"chunk {index - 1}"
                raise InboundLogError(
                    f"{path}: truncated: ends after {after} without the final chunk"
                )
            sealed = _read_chunk(path, handle, index)
            last_in_file = handle.tell() == size_bytes
            plaintext, final = _open_chunk(cipher, header_digest, index, sealed, last_in_file)
            if plaintext is None:
                raise InboundLogError(
                    f"{path}: chunk {index} fails authentication (changed, moved, "
                    "or sealed under another key)"
                )
            if final and not last_in_file:
                raise InboundLogError(
                    f"{path}: {size_bytes - handle.tell()} bytes after the final chunk ({index})"
                )
            frames.extend(_records(path, index, plaintext))
            if final:
                return frames
            if last_in_file:
                raise InboundLogError(
                    f"{path}: truncated: ends after chunk {index} without the final chunk"
                )
            index += 1


def _read_chunk(path: Path, handle: BinaryIO, index: int) -> bytes:
    raw_length = handle.read(_LENGTH.size)
    if len(raw_length) < _LENGTH.size:
        raise InboundLogError(f"{path}: truncated: chunk {index} is cut short inside its length")
    (length,) = _LENGTH.unpack(raw_length)
    if not _TAG_BYTES <= length <= CHUNK_PLAINTEXT_MAX_BYTES + _TAG_BYTES:
        raise InboundLogError(f"{path}: chunk {index} declares an impossible {length} bytes")
    sealed = handle.read(length)
    if len(sealed) < length:
        raise InboundLogError(
            f"{path}: truncated: chunk {index} is cut short ({len(sealed)} of {length} bytes)"
        )
    return sealed


def _open_chunk(
    cipher: AESGCM, header_digest: bytes, index: int, sealed: bytes, last_in_file: bool
) -> tuple[bytes | None, bool]:
    """(plaintext, sealed as final), or (None, _) when it opens neither way. The flag the
    chunk's position suggests is tried first; the other one tells truncation or trailing
    bytes apart from tampering."""
    for final in (last_in_file, not last_in_file):
        try:
            return cipher.decrypt(_nonce(index), sealed, _aad(header_digest, index, final)), final
        except InvalidTag:
            continue
    return None, False


# --- the links ----------------------------------------------------------------------------


class LoggingLink:
    """A `FrameLink` that logs every chunk its inner link delivers, before handing it on."""

    def __init__(self, inner: FrameLink, writer: InboundLogWriter) -> None:
        self._inner = inner
        self._writer = writer

    def send(self, chunks: Sequence[mpc_pb2.MpcFrame]) -> None:
        self._inner.send(chunks)

    def poll(self, timeout_s: float) -> mpc_pb2.RelayToWorker | None:
        delivery = self._inner.poll(timeout_s)
        if delivery is not None:
            # Failure notices are not inputs of the program: a replay never needs them.
            for chunk in delivery.frames:
                self._writer.append(chunk)
        return delivery

    def close(self, *, abort_reason: str | None = None) -> None:
        try:
            self._writer.close()
        finally:
            self._inner.close(abort_reason=abort_reason)


class ReplayLink:
    """A `FrameLink` that serves logged chunks back, one per poll, and drops what is sent.

    Never waits: in a replay every frame the party received is already here, so a
    poll past the last one means the replayed program diverged from the logged run.
    """

    def __init__(self, frames: Sequence[mpc_pb2.MpcFrame]) -> None:
        self._frames = list(frames)
        self._next = 0
        self.sent_chunks = 0
        self.sent_bytes = 0  # sum of chunk.ByteSize()

    @property
    def remaining_chunks(self) -> int:
        return len(self._frames) - self._next

    def send(self, chunks: Sequence[mpc_pb2.MpcFrame]) -> None:
        for chunk in chunks:
            self.sent_chunks += 1
            self.sent_bytes += chunk.ByteSize()

    def poll(self, timeout_s: float) -> mpc_pb2.RelayToWorker | None:
        del timeout_s  # nothing to wait for
        if self._next >= len(self._frames):
            raise ReplayExhausted(
                "the inbound log has no more frames: the replayed program waits for a frame "
                "the party never received"
            )
        chunk = self._frames[self._next]
        self._next += 1
        return mpc_pb2.RelayToWorker(frames=[chunk])

    def close(self, *, abort_reason: str | None = None) -> None:
        return None


# --- checking the log against the ledger ---------------------------------------------------


def _logical_frames(
    frames: Iterable[mpc_pb2.MpcFrame],
) -> dict[tuple[int, int], list[mpc_pb2.MpcFrame]]:
    """Whole frames per channel, in seq order. A frame whose last chunk never came is left
    out (the party never consumed it); a seq seen twice is refused, as the communicator
    refuses it."""
    assembler = ChunkAssembler()
    by_channel: dict[tuple[int, int], dict[int, mpc_pb2.MpcFrame]] = {}
    for position, chunk in enumerate(frames):
        try:
            whole = assembler.add(chunk)
        except FrameError as exc:
            raise InboundLogError(f"logged chunk {position}: {exc}") from None
        if whole is None:
            continue
        channel = by_channel.setdefault((whole.sender_rank, whole.receiver_rank), {})
        if whole.seq in channel:
            raise InboundLogError(
                f"logged chunk {position}: frame seq {whole.seq} of channel "
                f"{whole.sender_rank}->{whole.receiver_rank} arrived twice"
            )
        channel[whole.seq] = whole
    return {key: [seqs[s] for s in sorted(seqs)] for key, seqs in by_channel.items()}


def inbound_channel_counts(frames: Iterable[mpc_pb2.MpcFrame]) -> dict[tuple[int, int], int]:
    """(sender, receiver) -> how many whole logical frames the log holds on that channel."""
    return {key: len(values) for key, values in _logical_frames(frames).items()}


def inbound_prefix_digests(
    frames: Iterable[mpc_pb2.MpcFrame],
    rank: int,
    job_id: str,
    watch: Mapping[tuple[int, int], Iterable[int]],
) -> dict[tuple[int, int], dict[int, str]]:
    """(sender, rank) -> {n: the channel's transcript digest after n messages} for each n in
    ``watch`` that the log reaches: what the party's communicator computed, so a replay can
    compare it with the digests the party recorded on the ledger.

    Frames are folded in seq order, the order an honest receiver consumes them in (its
    digest would not match the sender's otherwise).
    """
    transcript = Transcript(job_id, rank)
    for sender, receiver in watch:
        if receiver != rank:
            raise ValueError(
                f"rank {rank} receives only on channels s->{rank}, not {sender}->{receiver}"
            )
    for (sender, _), counts in watch.items():
        transcript.watch(sender, rank, counts)
    for (sender, receiver), logical in sorted(_logical_frames(frames).items()):
        for frame in logical:
            if frame.job_id != job_id or receiver != rank:
                raise InboundLogError(
                    f"the log holds frame seq {frame.seq} of {sender}->{receiver} in job "
                    f"{frame.job_id[:64]!r}: not rank {rank}'s inbound frame of job {job_id!r}"
                )
            transcript.record(frame)
    return transcript.prefix_digests()
