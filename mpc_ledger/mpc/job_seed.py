"""A worker's committed randomness: one 32-byte job seed, everything derived from it.

Theory of operation. A party's outgoing messages are a deterministic function
of its data, its randomness and what it received. To let anyone holding the
party's view re-execute its side of a job (`mpc_ledger.mpc.replay`), every
random choice a worker makes comes from one seed:

* The party daemon draws the seed (`new_job_seed`, the OS's CSPRNG) before
  its worker starts, keeps it in the job folder (`write_job_seed`, mode
  0600) and puts `seed_commitment` on the ledger in its ``job_started``
  record, so the seed is fixed before any party sees a message of the job.
* The worker derives a value per purpose (`derive`, HMAC-SHA256 keyed by the
  seed over a domain-separated purpose string): CrypTen's own generators
  (``crypten_compat.seed_crypten``, which replaces the ``os.urandom`` draws
  in CrypTen's init), the dealer's per-party seeds, torch's, numpy's and
  Python's global generators (`seed_global_generators`), and the PSI's
  blinding scalar and shuffles (`SeededRandom`, a CSPRNG, not Mersenne
  Twister: the shuffles hide an order from the other parties).

The seed is secret: it is the party's share randomness. The commitment
(SHA-256 over a tag, the chain id, the job id, the member id and the seed,
each length-prefixed) reveals nothing of it and binds the party to it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import stat
from pathlib import Path
from typing import Any

from mpc_ledger.identity.keys import write_private_file

__all__ = [
    "SEED_BYTES",
    "JobSeedError",
    "SeededRandom",
    "derive",
    "derive_int64",
    "new_job_seed",
    "read_job_seed",
    "seed_commitment",
    "seed_global_generators",
    "write_job_seed",
]

SEED_BYTES = 32
_COMMITMENT_TAG = b"mpc-ledger/job-seed-commitment/v1"
_DERIVE_TAG = b"mpc-ledger/job-seed-derive/v1\x00"
_STREAM_TAG = b"mpc-ledger/job-seed-stream/v1\x00"


class JobSeedError(ValueError):
    """A seed file that is missing, of the wrong size or readable by others."""


def new_job_seed() -> bytes:
    return os.urandom(SEED_BYTES)


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(8, "big") + value


def seed_commitment(chain_id: bytes, job_id: bytes, member_id: str, seed: bytes) -> bytes:
    """The 32-byte commitment a party writes with its ``job_started``. Pure."""
    if len(seed) != SEED_BYTES:
        raise JobSeedError(f"a job seed is {SEED_BYTES} bytes, not {len(seed)}")
    message = b"".join(
        (
            _field(_COMMITMENT_TAG),
            _field(chain_id),
            _field(job_id),
            _field(member_id.encode()),
            _field(seed),
        )
    )
    return hashlib.sha256(message).digest()


def derive(seed: bytes, purpose: str, size_bytes: int = 32) -> bytes:
    """``size_bytes`` (at most 32) pseudo-random bytes for ``purpose``. Pure."""
    if not 1 <= size_bytes <= 32:
        raise ValueError(f"derive gives 1..32 bytes, not {size_bytes}")
    return hmac.new(seed, _DERIVE_TAG + purpose.encode(), hashlib.sha256).digest()[:size_bytes]


def derive_int64(seed: bytes, purpose: str) -> int:
    """A signed 64-bit value for ``purpose`` (what torch's ``manual_seed`` and CrypTen's
    generators take). Pure."""
    return int.from_bytes(derive(seed, purpose, 8), "big", signed=True)


class SeededRandom(random.Random):
    """`random.Random` whose every draw comes from HMAC-SHA256 in counter mode over a
    derived key: deterministic given the seed and purpose, unpredictable without them
    (unlike Mersenne Twister, whose state its outputs reveal)."""

    def __init__(self, seed: bytes, purpose: str) -> None:
        self._key = derive(seed, "stream:" + purpose)
        self._counter = 0
        self._buffer = b""
        super().__init__(0)

    def seed(self, *args: object, **kwargs: object) -> None:
        # random.Random.__init__ calls this; the stream is fixed by the key instead.
        return None

    def _bytes(self, count: int) -> bytes:
        while len(self._buffer) < count:
            block = hmac.new(
                self._key, _STREAM_TAG + self._counter.to_bytes(8, "big"), hashlib.sha256
            ).digest()
            self._counter += 1
            self._buffer += block
        out, self._buffer = self._buffer[:count], self._buffer[count:]
        return out

    def getrandbits(self, k: int) -> int:
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        if k == 0:
            return 0
        value = int.from_bytes(self._bytes((k + 7) // 8), "big")
        return value >> (8 * ((k + 7) // 8) - k)

    def random(self) -> float:
        return (self.getrandbits(53)) * (2.0**-53)

    def randbytes(self, n: int) -> bytes:
        return self._bytes(n)

    def getstate(self) -> Any:
        raise NotImplementedError("a SeededRandom's state is its seed; it is not exported")

    def setstate(self, state: object) -> None:
        raise NotImplementedError("a SeededRandom's state is its seed; it is not imported")


def seed_global_generators(seed: bytes) -> None:
    """Seed torch's, numpy's and Python's global generators from the job seed, so nothing
    a library draws from them escapes the commitment."""
    import numpy as np
    import torch

    torch.manual_seed(derive_int64(seed, "torch-global") & ((1 << 63) - 1))
    np.random.seed(int.from_bytes(derive(seed, "numpy-global", 4), "big"))
    random.seed(derive(seed, "python-global"))


def write_job_seed(path: Path, seed: bytes) -> None:
    """Keep ``seed`` at ``path`` (a new file, mode 0600; one left by an earlier run of the
    same rank's worker is replaced)."""
    if len(seed) != SEED_BYTES:
        raise JobSeedError(f"a job seed is {SEED_BYTES} bytes, not {len(seed)}")
    path = Path(path)
    path.unlink(missing_ok=True)
    write_private_file(path, seed)


def read_job_seed(path: Path) -> bytes:
    """The seed at ``path``; JobSeedError naming the file if it is missing, not
    ``SEED_BYTES`` long, or readable by group or others."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        seed = path.read_bytes()
    except OSError as exc:
        raise JobSeedError(f"{path}: cannot read the job seed ({exc.strerror or exc})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise JobSeedError(f"{path}: the job seed is readable by others (mode {mode & 0o777:o})")
    if len(seed) != SEED_BYTES:
        raise JobSeedError(f"{path}: a job seed is {SEED_BYTES} bytes, this file has {len(seed)}")
    return seed
