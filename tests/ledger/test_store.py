"""The SQLite block store: durability settings, atomic saves, one chain per folder."""

from __future__ import annotations

import sqlite3

import pytest

from mpc_ledger.consensus import ValidatorSet, block_id, build_block, genesis_tip, tip_after
from mpc_ledger.errors import ConfigError
from mpc_ledger.ledger.records import record_id
from mpc_ledger.ledger.store import SqliteBlockStore
from mpc_ledger.proto.v1 import consensus_pb2

from .conftest import raw


def chain(authors, count, records_per_block=2):
    validators = ValidatorSet([(m.id, m.signing_public_key) for m in authors.genesis.validators])
    tip, blocks = genesis_tip(), []
    for height in range(1, count + 1):
        records = [raw(authors.note("a", f"{height}/{i}")) for i in range(records_per_block)]
        block = build_block(tip, validators, "a", records, 1000 * height)
        certificate = consensus_pb2.Certificate(height=height, block_id=block_id(block.header))
        blocks.append(consensus_pb2.CommittedBlock(block=block, certificate=certificate))
        tip = tip_after(tip, block, block_id(block.header))
    return blocks


@pytest.fixture
def store(tmp_path, authors):
    store = SqliteBlockStore(tmp_path / "ledger.sqlite", authors.chain_id)
    yield store
    store.close()


def test_wal_and_full_sync(store):
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_blocks_come_back_byte_for_byte_and_survive_reopening(tmp_path, authors, store):
    blocks = chain(authors, 3)
    state = consensus_pb2.ConsensusState(round=2, step=consensus_pb2.STEP_PREVOTE)
    store.save(state, blocks[:2])
    store.save(None, blocks[2:])
    store.close()
    reopened = SqliteBlockStore(tmp_path / "ledger.sqlite", authors.chain_id)
    assert reopened.height() == 3
    assert reopened.log_size() == 6
    assert [b.SerializeToString() for b in reopened.blocks(1, 10)] == [
        b.SerializeToString() for b in blocks
    ]
    assert reopened.consensus_state() == state
    first = blocks[1].block.records[1]
    from mpc_ledger.proto.v1 import ledger_pb2

    assert reopened.record_location(record_id(ledger_pb2.Record.FromString(first).body)) == (2, 3)
    reopened.close()


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


def test_another_chains_folder_is_refused(tmp_path, authors, store):
    with pytest.raises(ConfigError, match="holds the ledger of chain") as error:
        SqliteBlockStore(tmp_path / "ledger.sqlite", bytes(32))
    assert str(tmp_path / "ledger.sqlite") in str(error.value)


def test_committed_data_is_on_disk_for_another_connection(tmp_path, store, authors):
    store.save(None, chain(authors, 1))
    other = sqlite3.connect(tmp_path / "ledger.sqlite")
    assert other.execute("SELECT COUNT(*) FROM blocks").fetchone()[0] == 1
    other.close()


def test_evidence_is_kept(store):
    evidence = consensus_pb2.Evidence(
        duplicate_vote=consensus_pb2.DuplicateVoteEvidence(
            first=consensus_pb2.Vote(signature=b"1"), second=consensus_pb2.Vote(signature=b"2")
        )
    )
    store.save(None, [], [evidence])
    assert store.evidence() == [evidence]
