"""Private set intersection of the data parties' id columns (job alignment "psi").

Theory of operation
-------------------
Diffie-Hellman PSI over ristretto255, a prime-order group (libsodium through
`rbcl`; PyNaCl 1.6 does not expose ristretto255). Every data party ``i``
draws a fresh secret scalar ``k_i`` for the job. An id ``x`` maps to the
group as ``H(x) = from_hash(SHA-512(tag || job id || encode(x)))``, so the
same id gives the same point in every party and a different one in every
job. Exponentiation commutes, so ``H(x)^(k_0 k_1 ... k_{n-1})`` -- "fully
blinded" -- is the same for an id whoever started blinding it, and reveals
nothing about ``x`` to anyone missing one of the keys (decisional
Diffie-Hellman).

With n parties (ranks 0..n-1, rank 0 coordinates):

1. **Ring.** Each party shuffles its ids with a secret permutation, hashes
   and blinds them and sends the list to rank+1; n-1 times, each party
   blinds the list it received and passes it on. Afterwards party ``i``
   holds the fully blinded list of party ``i+1`` (its *origin*), in the
   origin's shuffled order. Every hop preserves order.
2. **Collect.** Each party shuffles the list it holds with a second secret
   permutation and sends it to rank 0 (rank 0 keeps its own).
3. **Intersect.** Rank 0 intersects the n lists; the intersection in
   sorted order of its blinded values is the *canonical order*, the same
   for everyone and unrelated to any party's row order. It sends each
   holder the positions, in that holder's shuffled list, of the
   intersection in canonical order.
4. **Return.** Each holder undoes its second shuffle and sends the positions
   to the list's origin, which undoes its first shuffle: it now has its own
   rows of the intersection, in canonical order.

Who learns what (semi-honest parties; messages travel over the parties'
mTLS links, `mpc_ledger.mpc.communicator`):

* every party: the intersection's size and which of its *own* rows are in
  it; the sizes of the other parties' id lists (already public: row counts
  are on the ledger). Nothing else about another party's ids -- a blinded
  value it sees is missing at least one other party's key.
* rank 0, in addition: how many values the n lists share in every
  combination (for three parties: e.g. how many ids a and b hold that c
  does not), never which ids -- the second shuffle hides whose row a value
  came from, including rank 0's own rows.
* the dealer takes no part.

Not protected: parties that collude (together they can unblind what passes
through them), a party that deviates from the protocol (it can, say, put ids
it does not hold into its set to test whether others hold them -- the
semi-honest model the rest of the MPC layer assumes), and the size of the
intersection itself, which every party learns and which goes on the ledger.

The transport is anything with ``send_bytes(dst, payload)`` and
``recv_bytes(src)`` between ranks; `CommunicatorTransport` runs it over the
MPC communicator, so every PSI message is in the job's transcript.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import secrets
import struct
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = [
    "ELEMENT_BYTES",
    "CommunicatorTransport",
    "PsiError",
    "PsiResult",
    "PsiTransport",
    "encode_ids",
    "intersect",
]

ELEMENT_BYTES = 32
_HASH_TAG = b"mpc-ledger/psi/v1\x00"
_INT_TAG, _STR_TAG = b"\x01", b"\x02"
# Limits on what a peer may make this party allocate.
SET_SIZE_MAX = 50_000_000
MESSAGE_MAX_BYTES = SET_SIZE_MAX * ELEMENT_BYTES


class PsiError(ValueError):
    """Bad ids (this party's) or a malformed message (a peer's); the text says which."""


class PsiTransport(Protocol):
    def send_bytes(self, dst: int, payload: bytes) -> None: ...

    def recv_bytes(self, src: int) -> bytes: ...


@dataclasses.dataclass(frozen=True)
class PsiResult:
    """This party's rows (0-based, in its file's order) of the intersection, in canonical
    order: row ``rows[k]`` of every party is the same entity."""

    rows: tuple[int, ...]
    sent_bytes: int

    @property
    def size(self) -> int:
        return len(self.rows)


def encode_ids(values: Sequence[object], column: str) -> list[bytes]:
    """The canonical encoding of each id: a type tag and the value, so the integer 7 and
    the string "7" are different ids. Refuses nulls, mixed types and duplicates, naming
    rows (1-based) but never a value: the error may end up in a ledger record."""
    encoded: list[bytes] = []
    kind: type | None = None
    first_row: dict[bytes, int] = {}
    for index, value in enumerate(values):
        row = index + 1
        if value is None:
            raise PsiError(f"id column {column!r}: row {row} has no id (null)")
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise PsiError(
                f"id column {column!r}: row {row} holds a {type(value).__name__}; "
                "ids are integers or strings"
            )
        if kind is None:
            kind = type(value)
        elif type(value) is not kind:
            raise PsiError(
                f"id column {column!r}: row {row} holds a {type(value).__name__}, "
                f"earlier rows a {kind.__name__}; all ids of a column have one type"
            )
        if isinstance(value, int):
            if not -(2**63) <= value < 2**63:
                raise PsiError(f"id column {column!r}: row {row}'s id does not fit in 64 bits")
            item = _INT_TAG + struct.pack(">q", value)
        else:
            item = _STR_TAG + value.encode("utf-8")
        earlier = first_row.setdefault(item, row)
        if earlier != row:
            raise PsiError(
                f"id column {column!r}: rows {earlier} and {row} hold the same id; "
                "ids must be unique to align rows"
            )
        encoded.append(item)
    return encoded


def _ristretto() -> Any:
    import rbcl

    return rbcl


def _hash_points(items: Sequence[bytes], job_id: bytes) -> list[bytes]:
    group = _ristretto()
    from_hash = group.crypto_core_ristretto255_from_hash
    prefix = hashlib.sha512(_HASH_TAG + struct.pack(">I", len(job_id)) + job_id)
    points = []
    for item in items:
        hasher = prefix.copy()
        hasher.update(item)
        points.append(from_hash(hasher.digest()))
    return points


def _blinder(key: bytes) -> Callable[[Sequence[bytes], str], list[bytes]]:
    group = _ristretto()
    multiply = group.crypto_scalarmult_ristretto255

    def blind(points: Sequence[bytes], source: str) -> list[bytes]:
        try:
            return [multiply(key, point) for point in points]
        except Exception as exc:  # rbcl raises on a non-canonical or identity element
            raise PsiError(f"{source} sent a value that is not a ristretto255 element") from exc

    return blind


def _join(points: Sequence[bytes]) -> bytes:
    return b"".join(points)


def _split(payload: bytes, source: str, expected: int | None, owner: str) -> list[bytes]:
    """``source`` sent a list of ``owner``'s blinded ids, ``expected`` of them if known."""
    if len(payload) % ELEMENT_BYTES:
        raise PsiError(f"{source} sent {len(payload)} bytes, not a list of group elements")
    count = len(payload) // ELEMENT_BYTES
    if expected is not None and count != expected:
        raise PsiError(
            f"{source} sent {count} of {owner}'s ids; {owner}'s dataset has {expected} rows"
        )
    view = memoryview(payload)
    return [bytes(view[i : i + ELEMENT_BYTES]) for i in range(0, len(payload), ELEMENT_BYTES)]


def _encode_positions(positions: Sequence[int]) -> bytes:
    return np.asarray(positions, dtype="<u4").tobytes()


def _decode_positions(payload: bytes, source: str, bound: int, size: int | None) -> list[int]:
    if len(payload) % 4:
        raise PsiError(f"{source} sent a malformed position list ({len(payload)} bytes)")
    positions = np.frombuffer(payload, dtype="<u4").astype(np.int64)
    if size is not None and len(positions) != size:
        raise PsiError(
            f"{source} sent {len(positions)} positions; the intersection has {size} entities"
        )
    if len(positions) and (positions.max() >= bound or len(np.unique(positions)) != len(positions)):
        raise PsiError(f"{source} sent positions outside its list of {bound} or repeated")
    decoded: list[int] = positions.tolist()
    return decoded


def intersect(
    items: Sequence[bytes],
    *,
    rank: int,
    parties: int,
    job_id: bytes,
    transport: PsiTransport,
    set_sizes: Sequence[int] | None = None,
    describe: Callable[[int], str] = lambda r: f"rank {r}",
    rng: random.Random | None = None,
) -> PsiResult:
    """Run this party's side of the PSI (see the module docstring) on ``items`` (from
    `encode_ids`). ``set_sizes`` (every rank's row count, when known) bounds what peers
    may send. Every party calls it with the same ``parties`` and ``job_id``. ``rng`` draws
    the blinding scalar and both shuffles (the OS's CSPRNG by default; a worker passes the
    job seed's `job_seed.SeededRandom`, so a replay re-executes the same PSI)."""
    if parties < 2 or not 0 <= rank < parties:
        raise ValueError(f"rank {rank} of {parties} parties: a PSI needs 2 or more")
    if set_sizes is not None and set_sizes[rank] != len(items):
        raise PsiError(f"this party has {len(items)} ids; the job says {set_sizes[rank]}")
    rng = rng or secrets.SystemRandom()
    group = _ristretto()
    # a uniform scalar from 64 random bytes (libsodium's own method for scalar_random)
    blind = _blinder(group.crypto_core_ristretto255_scalar_reduce(rng.randbytes(64)))
    sent = 0

    def send(dst: int, payload: bytes) -> None:
        nonlocal sent
        transport.send_bytes(dst, payload)
        sent += len(payload)

    def receive(src: int) -> bytes:
        payload = transport.recv_bytes(src)
        if len(payload) > MESSAGE_MAX_BYTES:
            raise PsiError(f"{describe(src)} sent {len(payload)} bytes (limit {MESSAGE_MAX_BYTES})")
        return payload

    def expected(origin: int) -> int | None:
        return None if set_sizes is None else set_sizes[origin]

    following, preceding = (rank + 1) % parties, (rank - 1) % parties
    # 1. the ring: own list first shuffled (first[k] = this party's row at position k)
    first = list(range(len(items)))
    rng.shuffle(first)
    held = blind(_hash_points([items[row] for row in first], job_id), "this party")
    origin = rank
    for _hop in range(parties - 1):
        send(following, _join(held))
        origin = (origin - 1) % parties
        incoming = _split(
            receive(preceding), describe(preceding), expected(origin), describe(origin)
        )
        held = blind(incoming, describe(preceding))
    assert origin == following  # the fully blinded list this party holds is its follower's
    # 2. collect at rank 0, in a second secret order
    second = list(range(len(held)))
    rng.shuffle(second)
    mixed = [held[position] for position in second]
    if rank != 0:
        send(0, _join(mixed))
        size = None
        positions = _decode_positions(receive(0), describe(0), len(mixed), None)
    else:
        # 3. intersect; lists[h] is the one holder h sent
        lists = [mixed] + [
            _split(
                receive(h), describe(h), expected((h + 1) % parties), describe((h + 1) % parties)
            )
            for h in range(1, parties)
        ]
        common = set(lists[0]).intersection(*lists[1:])
        canonical = sorted(common)
        for holder in range(1, parties):
            where = {value: index for index, value in enumerate(lists[holder])}
            send(holder, _encode_positions([where[value] for value in canonical]))
        mine = {value: index for index, value in enumerate(lists[0])}
        positions = [mine[value] for value in canonical]
        size = len(canonical)
    # 4. back to each list's origin, then to this party's rows
    send(following, _encode_positions([second[p] for p in positions]))
    returned = _decode_positions(
        receive(preceding), describe(preceding), len(items), size or len(positions)
    )
    return PsiResult(tuple(first[position] for position in returned), sent)


class CommunicatorTransport:
    """`PsiTransport` over the MPC communicator: a length, then the bytes, as tensors
    (so the frames are in the job's transcript like every other MPC message)."""

    def __init__(self, communicator: Any) -> None:
        self.communicator = communicator

    def send_bytes(self, dst: int, payload: bytes) -> None:
        import torch

        self.communicator.send(torch.tensor([len(payload)], dtype=torch.int64), dst)
        if payload:
            self.communicator.send(torch.frombuffer(bytearray(payload), dtype=torch.uint8), dst)

    def recv_bytes(self, src: int) -> bytes:
        import torch

        # the communicator returns what it received (it does not fill the buffer)
        size = self.communicator.recv(torch.zeros(1, dtype=torch.int64), src)
        count = int(size.item())
        if not 0 <= count <= MESSAGE_MAX_BYTES:
            raise PsiError(f"rank {src} announced a PSI message of {count} bytes")
        if count == 0:
            return b""
        received = self.communicator.recv(torch.zeros(count, dtype=torch.uint8), src)
        return bytes(received.numpy().tobytes())
