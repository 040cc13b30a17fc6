"""`job result` takes the model hash only from a block certified by the genesis validators:
a daemon that serves a forged job_completed record gets nothing written. (The served
model's own check runs against real daemons in test_job_cli.py.)"""

from __future__ import annotations

import pytest

from mpc_ledger.client.jobs import JobError, JobMethods
from mpc_ledger.proto.v1 import consensus_pb2, jobs_pb2
from mpc_ledger.testing.chains import ChainBuilder
from mpc_ledger.testing.consortium import make_consortium

JOB_ID = bytes(range(32))
MODEL_HASH = bytes(32 * [7])


class ServedBlocks(JobMethods):
    """The job methods over the blocks a (possibly lying) daemon serves."""

    def __init__(self, genesis, blocks):
        self.genesis = genesis
        self._served = blocks

    def blocks(self, from_height, max_blocks=1000, timeout_s=30):
        return iter(self._served[from_height - 1 : from_height - 1 + max_blocks])


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    consortium = make_consortium(tmp_path_factory.mktemp("certified") / "c", "a,b,c", auditor=True)
    keys = {m: consortium.party(m).identity.signing_key for m in consortium.ids}
    builder = ChainBuilder(consortium.genesis, keys)
    builder.commit([builder.note("b", "before")])
    completed = jobs_pb2.JobCompleted(
        job_id=JOB_ID, model_hash=MODEL_HASH, metrics=[jobs_pb2.Metric(name="test_x", value=1)]
    )
    builder.commit([builder.record("a", job_completed=completed)])
    return builder


def test_the_model_hash_of_a_certified_block_is_taken(chain):
    assert ServedBlocks(chain.genesis, chain.blocks).model_hash(JOB_ID) == MODEL_HASH


def test_a_forged_job_completed_record_is_refused(chain):
    forged = jobs_pb2.JobCompleted(
        job_id=JOB_ID, model_hash=bytes(32), metrics=[jobs_pb2.Metric(name="test_x", value=1)]
    )
    tampered = consensus_pb2.CommittedBlock()
    tampered.CopyFrom(chain.blocks[1])
    del tampered.block.records[:]
    tampered.block.records.append(chain.record("a", job_completed=forged))
    client = ServedBlocks(chain.genesis, [chain.blocks[0], tampered])
    with pytest.raises(JobError, match="block 2 the daemon served is not certified"):
        client.model_hash(JOB_ID)


def test_a_block_without_a_quorum_is_refused(chain):
    weak = consensus_pb2.CommittedBlock()
    weak.CopyFrom(chain.blocks[1])
    del weak.certificate.signatures[1:]
    client = ServedBlocks(chain.genesis, [chain.blocks[0], weak])
    with pytest.raises(JobError, match="a quorum is 3"):
        client.model_hash(JOB_ID)
