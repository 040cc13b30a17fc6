"""Durable block store: SQLite in WAL mode with synchronous=FULL.

Contract (what the node relies on):

* `save()` writes, in ONE transaction that is fsynced before it returns, the
  validator's consensus state (its signing high-water mark), any newly
  committed blocks with their certificates and record index, and evidence.
  The node calls it before any message it signed leaves the process and
  before it acknowledges a commit, so a crash at any instant loses nothing
  that was acknowledged or signed.
* A data folder belongs to one chain: opening it with another chain id is
  refused, so a misconfigured party can never mix two consortia's ledgers.
* Blocks are stored as the exact bytes that were certified; readers get them
  back unchanged.

There is one implementation, `SqliteBlockStore`; `BlockStore` is the
protocol the node needs. An in-memory store for the simulator does not exist
yet: when it comes, the same conformance tests should run against both.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from mpc_ledger.consensus.messages import block_id
from mpc_ledger.errors import ConfigError
from mpc_ledger.ledger.records import parse_record
from mpc_ledger.proto.v1 import consensus_pb2

__all__ = ["BlockStore", "RecordLocation", "SqliteBlockStore"]

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

    def block(self, height: int) -> consensus_pb2.CommittedBlock | None: ...

    def blocks(self, from_height: int, limit: int) -> list[consensus_pb2.CommittedBlock]: ...

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
        self._db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", rows)
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
