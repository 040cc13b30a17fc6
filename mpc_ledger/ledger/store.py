"""Block stores: SQLite in WAL mode with synchronous=FULL, and one in memory.

Contract (what the node and its `ReadyDriver` rely on, both stores keep it):

* `save()` writes, in ONE transaction that is fsynced before it returns, the
  validator's consensus state (its signing high-water mark), any newly
  committed blocks with their certificates and record index, and evidence.
  The node calls it before any message it signed leaves the process and
  before it acknowledges a commit, so a crash at any instant loses nothing
  that was acknowledged or signed. A save that fails writes nothing.
* Blocks follow each other (the next height only); every record of a block
  is indexed by its id (`record_location`).
* Blocks are stored as the exact bytes that were certified; readers get them
  back unchanged, as new objects (what a reader does to one is not stored).

`BlockStore` is the protocol; tests/ledger/test_store.py is its conformance
suite, run against both implementations:

* `SqliteBlockStore`, a party's data folder. A data folder belongs to one
  chain: opening it with another chain id is refused, so a misconfigured
  party can never mix two consortia's ledgers.
* `MemoryBlockStore`, for the simulator and tests. "Persisted" means: held by
  the store object, which outlives the node. The simulator crashes a node by
  dropping its core, driver and mempool and keeps its store; the restarted
  node reads back exactly what every completed `save` wrote. A save is atomic
  because it is checked whole before anything is kept and because crashes
  come between events, never inside a call (no torn writes, no lost fsync:
  what SQLite's FULL sync gives a real disk).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from mpc_ledger.consensus.messages import block_id
from mpc_ledger.errors import ConfigError
from mpc_ledger.ledger.records import parse_record
from mpc_ledger.proto.v1 import consensus_pb2

__all__ = [
    "BlockStore",
    "MemoryBlockStore",
    "RecordLocation",
    "SqliteBlockStore",
    "ledger_record_id",
]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    block_id BLOB NOT NULL UNIQUE,
    committed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    record_id BLOB PRIMARY KEY,
    height INTEGER NOT NULL,
    log_index INTEGER NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    author TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS consensus_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    evidence BLOB NOT NULL
);
"""

RecordLocation = tuple[int, int]
"""(height, log index) of a committed record."""


class BlockStore(Protocol):
    def save(
        self,
        state: consensus_pb2.ConsensusState | None,
        committed: list[consensus_pb2.CommittedBlock],
        evidence: list[consensus_pb2.Evidence] | None = None,
    ) -> None: ...

    def consensus_state(self) -> consensus_pb2.ConsensusState | None: ...

    def height(self) -> int: ...

    def log_size(self) -> int: ...

    def block(self, height: int) -> consensus_pb2.CommittedBlock | None: ...

    def blocks(self, from_height: int, limit: int) -> list[consensus_pb2.CommittedBlock]: ...

    def iter_blocks(
        self, from_height: int = 1, batch: int = 256
    ) -> Iterator[consensus_pb2.CommittedBlock]: ...

    def record_location(self, record_id: bytes) -> RecordLocation | None: ...

    def evidence(self) -> list[consensus_pb2.Evidence]: ...

    def close(self) -> None: ...


class SqliteBlockStore:
    """The block store of a party's data folder (see the module docstring)."""

    def __init__(self, path: Path, chain_id: bytes) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._check_chain(chain_id)
        self._height = self._db.execute("SELECT COALESCE(MAX(height), 0) FROM blocks").fetchone()[0]
        self._log_size = self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0]

    def _check_chain(self, chain_id: bytes) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'chain_id'").fetchone()
        if row is None:
            with self._transaction():
                self._db.execute("INSERT INTO meta VALUES ('chain_id', ?)", (chain_id,))
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            return
        if bytes(row[0]) != chain_id:
            raise ConfigError(
                f"holds the ledger of chain {bytes(row[0]).hex()[:16]}…, not of this genesis "
                f"({chain_id.hex()[:16]}…); use another data_dir for another consortium",
                path=self.path,
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def save(
        self,
        state: consensus_pb2.ConsensusState | None,
        committed: list[consensus_pb2.CommittedBlock],
        evidence: list[consensus_pb2.Evidence] | None = None,
    ) -> None:
        with self._lock:
            height, log_size = self._height, self._log_size
            try:
                with self._transaction():
                    for item in committed:
                        self._insert_block(item)
                    self._write_state(state, evidence)
            except BaseException:
                # the transaction rolled back: so do the counters
                self._height, self._log_size = height, log_size
                raise

    def _write_state(
        self,
        state: consensus_pb2.ConsensusState | None,
        evidence: list[consensus_pb2.Evidence] | None,
    ) -> None:
        if state is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO consensus_state VALUES (1, ?)",
                (state.SerializeToString(deterministic=True),),
            )
        for found in evidence or ():
            self._db.execute(
                "INSERT INTO evidence (evidence) VALUES (?)",
                (found.SerializeToString(deterministic=True),),
            )

    def _insert_block(self, item: consensus_pb2.CommittedBlock) -> None:
        header = item.block.header
        if header.height != self._height + 1:
            raise ValueError(f"block {header.height} does not follow stored height {self._height}")
        self._db.execute(
            "INSERT INTO blocks VALUES (?, ?, ?)",
            (header.height, block_id(header), item.SerializeToString(deterministic=True)),
        )
        rows: list[tuple[bytes, int, int, str, str]] = []
        for raw in item.block.records:
            parsed = parse_record(raw)
            if isinstance(parsed, str):
                raise ValueError(f"committed block {header.height} holds a bad record: {parsed}")
            rows.append(
                (
                    parsed.id,
                    header.height,
                    self._log_size + len(rows),
                    parsed.kind,
                    parsed.body.author,
                )
            )
        try:
            self._db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError as error:  # the record id is the key
            raise ValueError(f"committed block {header.height} repeats a stored record") from error
        self._height += 1
        self._log_size += len(rows)

    def consensus_state(self) -> consensus_pb2.ConsensusState | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM consensus_state WHERE id = 1").fetchone()
        if row is None:
            return None
        return consensus_pb2.ConsensusState.FromString(row[0])

    def height(self) -> int:
        return int(self._height)

    def log_size(self) -> int:
        return int(self._log_size)

    def block(self, height: int) -> consensus_pb2.CommittedBlock | None:
        with self._lock:
            row = self._db.execute(
                "SELECT committed FROM blocks WHERE height = ?", (height,)
            ).fetchone()
        return consensus_pb2.CommittedBlock.FromString(row[0]) if row else None

    def blocks(self, from_height: int, limit: int) -> list[consensus_pb2.CommittedBlock]:
        with self._lock:
            rows = self._db.execute(
                "SELECT committed FROM blocks WHERE height >= ? ORDER BY height LIMIT ?",
                (from_height, limit),
            ).fetchall()
        return [consensus_pb2.CommittedBlock.FromString(row[0]) for row in rows]

    def iter_blocks(
        self, from_height: int = 1, batch: int = 256
    ) -> Iterator[consensus_pb2.CommittedBlock]:
        height = from_height
        while True:
            chunk = self.blocks(height, batch)
            if not chunk:
                return
            yield from chunk
            height = chunk[-1].block.header.height + 1

    def record_location(self, record_id: bytes) -> RecordLocation | None:
        with self._lock:
            row = self._db.execute(
                "SELECT height, log_index FROM records WHERE record_id = ?", (record_id,)
            ).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def evidence(self) -> list[consensus_pb2.Evidence]:
        with self._lock:
            rows = self._db.execute("SELECT evidence FROM evidence ORDER BY id").fetchall()
        return [consensus_pb2.Evidence.FromString(row[0]) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def ledger_record_id(height: int, raw: bytes) -> bytes:
    """The id a ledger record is indexed by; ValueError for bytes that are not a record."""
    parsed = parse_record(raw)
    if isinstance(parsed, str):
        raise ValueError(f"committed block {height} holds a bad record: {parsed}")
    return parsed.id


class MemoryBlockStore:
    """A `BlockStore` in memory (see the module docstring for what persisted means here).

    ``record_id`` says how a record is indexed: by its ledger record id, or,
    for the simulator's opaque records, by anything else that names it once.
    Safe to share between threads, like the SQLite store.
    """

    def __init__(self, record_id: Callable[[int, bytes], bytes] = ledger_record_id) -> None:
        self._record_id = record_id
        self._lock = threading.Lock()
        # serialised, like on a disk: a reader gets new objects, never the stored ones
        self._state: bytes | None = None
        self._blocks: list[bytes] = []  # height h at index h - 1
        self._locations: dict[bytes, RecordLocation] = {}
        self._log_size = 0
        self._evidence: list[bytes] = []

    def save(
        self,
        state: consensus_pb2.ConsensusState | None,
        committed: list[consensus_pb2.CommittedBlock],
        evidence: list[consensus_pb2.Evidence] | None = None,
    ) -> None:
        with self._lock:
            # everything checked before anything is kept: a failed save writes nothing
            blocks, locations = self._encode_blocks(committed)
            self._blocks += blocks
            self._locations.update(locations)
            self._log_size += len(locations)
            if state is not None:
                self._state = state.SerializeToString(deterministic=True)
            self._evidence += [
                found.SerializeToString(deterministic=True) for found in evidence or ()
            ]

    def _encode_blocks(
        self, committed: list[consensus_pb2.CommittedBlock]
    ) -> tuple[list[bytes], dict[bytes, RecordLocation]]:
        blocks: list[bytes] = []
        locations: dict[bytes, RecordLocation] = {}
        for item in committed:
            height = item.block.header.height
            expected = len(self._blocks) + len(blocks) + 1
            if height != expected:
                raise ValueError(f"block {height} does not follow stored height {expected - 1}")
            for raw in item.block.records:
                identifier = self._record_id(height, raw)
                if identifier in locations or identifier in self._locations:
                    raise ValueError(f"committed block {height} repeats a stored record")
                locations[identifier] = (height, self._log_size + len(locations))
            blocks.append(item.SerializeToString(deterministic=True))
        return blocks, locations

    def consensus_state(self) -> consensus_pb2.ConsensusState | None:
        state = self._state
        return None if state is None else consensus_pb2.ConsensusState.FromString(state)

    def height(self) -> int:
        return len(self._blocks)

    def log_size(self) -> int:
        return self._log_size

    def block(self, height: int) -> consensus_pb2.CommittedBlock | None:
        blocks = self.blocks(height, 1) if height >= 1 else []
        return blocks[0] if blocks else None

    def blocks(self, from_height: int, limit: int) -> list[consensus_pb2.CommittedBlock]:
        start = max(from_height, 1) - 1
        with self._lock:
            chunk = self._blocks[start : start + max(limit, 0)]
        return [consensus_pb2.CommittedBlock.FromString(data) for data in chunk]

    def iter_blocks(
        self, from_height: int = 1, batch: int = 256
    ) -> Iterator[consensus_pb2.CommittedBlock]:
        height = from_height
        while chunk := self.blocks(height, batch):
            yield from chunk
            height = chunk[-1].block.header.height + 1

    def record_location(self, record_id: bytes) -> RecordLocation | None:
        return self._locations.get(record_id)

    def evidence(self) -> list[consensus_pb2.Evidence]:
        with self._lock:
            found = list(self._evidence)
        return [consensus_pb2.Evidence.FromString(data) for data in found]

    def close(self) -> None:
        """Nothing to release: what was saved stays readable (it is the simulator's disk)."""


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        if kind is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")
