"""The block stores: one conformance suite that both pass (what the node and the simulator
rely on), then what only the SQLite store does (durability settings, one chain per folder)."""

from __future__ import annotations

import sqlite3

import pytest

from mpc_ledger.consensus import ValidatorSet, block_id, build_block, genesis_tip, tip_after
from mpc_ledger.errors import ConfigError
from mpc_ledger.ledger.records import record_id
from mpc_ledger.ledger.store import MemoryBlockStore, SqliteBlockStore
from mpc_ledger.proto.v1 import consensus_pb2, ledger_pb2

from .conftest import raw


def chain(authors, count, records_per_block=2, records=None):
    """``count`` certified blocks of fresh notes (or of ``records[height]`` where given)."""
    validators = ValidatorSet([(m.id, m.signing_public_key) for m in authors.genesis.validators])
    tip, blocks = genesis_tip(), []
    for height in range(1, count + 1):
        raws = (records or {}).get(height) or [
            raw(authors.note("a", f"{height}/{i}")) for i in range(records_per_block)
        ]
        block = build_block(tip, validators, "a", raws, 1000 * height)
        certificate = consensus_pb2.Certificate(height=height, block_id=block_id(block.header))
        blocks.append(consensus_pb2.CommittedBlock(block=block, certificate=certificate))
        tip = tip_after(tip, block, block_id(block.header))
    return blocks


def id_of(raw_record):
    return record_id(ledger_pb2.Record.FromString(raw_record).body)


# -- the conformance suite: every BlockStore ------------------------------------------------


@pytest.fixture(params=["sqlite", "memory"])
def open_store(request, tmp_path, authors):
    """Opens the store under test; opening it again is what a restarted node does (the
    simulator's restarted node gets the same in-memory store: it is that node's disk)."""
    if request.param == "sqlite":
        return lambda: SqliteBlockStore(tmp_path / "ledger.sqlite", authors.chain_id)
    memory = MemoryBlockStore()
    return lambda: memory


@pytest.fixture
def store(open_store):
    store = open_store()
    yield store
    store.close()


def test_blocks_come_back_byte_for_byte_and_survive_reopening(open_store, authors, store):
    blocks = chain(authors, 3)
    state = consensus_pb2.ConsensusState(round=2, step=consensus_pb2.STEP_PREVOTE)
    store.save(state, blocks[:2])
    store.save(None, blocks[2:])
    store.close()
    reopened = open_store()
    assert reopened.height() == 3
    assert reopened.log_size() == 6
    assert [b.SerializeToString() for b in reopened.blocks(1, 10)] == [
        b.SerializeToString() for b in blocks
    ]
    assert reopened.consensus_state() == state
    first = blocks[1].block.records[1]
    assert reopened.record_location(id_of(first)) == (2, 3)
    reopened.close()


def test_blocks_are_read_by_height_range_and_one_at_a_time(store, authors):
    blocks = chain(authors, 5, records_per_block=1)
    store.save(None, blocks)
    assert [b.block.header.height for b in store.blocks(2, 2)] == [2, 3]
    assert [b.block.header.height for b in store.blocks(0, 2)] == [1, 2]
    assert store.blocks(6, 10) == []
    assert [b.block.header.height for b in store.iter_blocks(2, batch=2)] == [2, 3, 4, 5]
    assert store.block(4) == blocks[3]
    assert store.block(0) is None and store.block(6) is None
    assert store.record_location(bytes(32)) is None


def test_what_a_caller_changes_afterwards_is_not_stored(store, authors):
    blocks = chain(authors, 1)
    state = consensus_pb2.ConsensusState(round=1)
    stored = blocks[0].SerializeToString()
    store.save(state, blocks)
    state.round = 9  # the saver's objects, after the save
    blocks[0].block.records.append(b"changed by the saver")
    store.blocks(1, 1)[0].block.records.append(b"changed by a reader")
    store.consensus_state().round = 5
    assert store.consensus_state() == consensus_pb2.ConsensusState(round=1)
    assert store.block(1).SerializeToString() == stored


def test_a_failed_save_writes_nothing(store, authors):
    blocks = chain(authors, 2)
    broken = consensus_pb2.CommittedBlock()
    broken.CopyFrom(blocks[1])
    broken.block.records.append(b"\xffnot a record")
    state = consensus_pb2.ConsensusState(round=7)
    with pytest.raises(ValueError, match="holds a bad record"):
        store.save(state, [blocks[0], broken])
    assert store.consensus_state() is None
    assert store.blocks(1, 10) == []
    assert store.height() == 0 and store.log_size() == 0
    store.save(state, blocks)
    assert store.height() == 2


def test_blocks_must_be_consecutive(store, authors):
    blocks = chain(authors, 3)
    with pytest.raises(ValueError, match="does not follow"):
        store.save(None, [blocks[1]])


def test_a_record_is_stored_once(store, authors):
    blocks = chain(authors, 1)
    again = chain(authors, 2, records={2: [blocks[0].block.records[0]]})[1]
    with pytest.raises(ValueError, match="block 2 repeats a stored record"):
        store.save(None, [blocks[0], again])
    assert store.height() == 0 and store.log_size() == 0
    store.save(None, blocks)
    with pytest.raises(ValueError, match="block 2 repeats a stored record"):
        store.save(consensus_pb2.ConsensusState(round=3), [again])
    assert (store.height(), store.log_size(), store.consensus_state()) == (1, 2, None)


def test_evidence_is_kept(store):
    evidence = consensus_pb2.Evidence(
        duplicate_vote=consensus_pb2.DuplicateVoteEvidence(
            first=consensus_pb2.Vote(signature=b"1"), second=consensus_pb2.Vote(signature=b"2")
        )
    )
    store.save(None, [], [evidence])
    assert store.evidence() == [evidence]


# -- the memory store only ---------------------------------------------------------------------


def test_the_memory_store_indexes_opaque_records_by_the_id_it_is_given(authors):
    """The simulator's records are not ledger records: each is its own id there."""
    blocks = chain(authors, 1, records={1: [b"opaque-1", b"opaque-2"]})
    with pytest.raises(ValueError, match="holds a bad record"):
        MemoryBlockStore().save(None, blocks)
    store = MemoryBlockStore(lambda height, record: record)
    store.save(None, blocks)
    assert store.record_location(b"opaque-2") == (1, 1)


# -- the SQLite store only ---------------------------------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path, authors):
    store = SqliteBlockStore(tmp_path / "ledger.sqlite", authors.chain_id)
    yield store
    store.close()


def test_wal_and_full_sync(sqlite_store):
    assert sqlite_store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sqlite_store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_another_chains_folder_is_refused(tmp_path, authors, sqlite_store):
    with pytest.raises(ConfigError, match="holds the ledger of chain") as error:
        SqliteBlockStore(tmp_path / "ledger.sqlite", bytes(32))
    assert str(tmp_path / "ledger.sqlite") in str(error.value)


def test_committed_data_is_on_disk_for_another_connection(tmp_path, sqlite_store, authors):
    sqlite_store.save(None, chain(authors, 1))
    other = sqlite3.connect(tmp_path / "ledger.sqlite")
    assert other.execute("SELECT COUNT(*) FROM blocks").fetchone()[0] == 1
    other.close()
