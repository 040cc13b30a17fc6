"""Blocks: how a proposer builds one on the chain tip, and how everyone checks it.

A block at height h extends the tip (the block at h - 1): its header names
the tip's block id, carries a time no earlier than the tip's, the RFC 6962
root of its own records, and the root and size of the whole record log after
appending them (computed from the tip's Merkle frontier). ``check_block`` is
the paper's ``valid(v)``: deterministic, the same answer on every honest node
that has committed the same chain, with the caller's record rules plugged in
as a pure function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mpc_ledger.consensus.messages import Reason, Rejection
from mpc_ledger.consensus.validators import ValidatorSet
from mpc_ledger.merkle import MerkleFrontier, merkle_root
from mpc_ledger.proto.v1 import consensus_pb2 as pb

__all__ = [
    "GENESIS_PREVIOUS_HASH",
    "BlockLimits",
    "RecordsValidator",
    "build_block",
    "check_block",
    "genesis_tip",
    "tip_after",
    "tip_frontier",
]

GENESIS_PREVIOUS_HASH = bytes(32)

RecordsValidator = Callable[[int, Sequence[bytes]], str | None]
"""(height, records) -> None when the records may commit at that height, else why not.

Must be a pure, deterministic function of its arguments and the committed
chain below ``height``: every honest validator must give the same answer.
"""


@dataclass(frozen=True, slots=True)
class BlockLimits:
    max_block_records: int = 1000
    max_record_bytes: int = 1 << 20


def genesis_tip() -> pb.ChainTip:
    """The tip before the first block: height 0, empty log."""
    return pb.ChainTip(height=0, block_id=GENESIS_PREVIOUS_HASH, time_ms=0, log_size=0)


def tip_frontier(tip: pb.ChainTip) -> MerkleFrontier:
    return MerkleFrontier(tip.log_size, list(tip.log_frontier))


def tip_after(tip: pb.ChainTip, block: pb.Block, block_id: bytes) -> pb.ChainTip:
    """The tip once ``block`` (already checked against ``tip``) is committed."""
    frontier = tip_frontier(tip)
    frontier.extend(block.records)
    return pb.ChainTip(
        height=block.header.height,
        block_id=block_id,
        time_ms=block.header.time_ms,
        log_size=frontier.size,
        log_frontier=frontier.peaks,
    )


def build_block(
    tip: pb.ChainTip,
    validators: ValidatorSet,
    proposer_id: str,
    records: Sequence[bytes],
    time_ms: int,
) -> pb.Block:
    """The block ``proposer_id`` proposes on ``tip``; time never goes backwards."""
    frontier = tip_frontier(tip)
    frontier.extend(records)
    header = pb.BlockHeader(
        height=tip.height + 1,
        previous_block_hash=tip.block_id,
        proposer_id=proposer_id,
        time_ms=max(time_ms, tip.time_ms),
        records_root=merkle_root(records),
        records_count=len(records),
        log_root=frontier.root(),
        log_size=frontier.size,
        validator_set_hash=validators.hash,
    )
    return pb.Block(header=header, records=list(records))


def check_block(
    block: pb.Block,
    tip: pb.ChainTip,
    validators: ValidatorSet,
    limits: BlockLimits,
    records_validator: RecordsValidator,
) -> Rejection | None:
    """``valid(v)``: None when ``block`` may follow ``tip``, else why not."""
    problem = _check_header_links(block.header, tip, validators)
    if problem is None:
        problem = _check_records(block, tip, limits)
    if problem is None:
        problem = records_validator(block.header.height, list(block.records))
    return None if problem is None else Rejection(Reason.INVALID_BLOCK, problem)


def _check_header_links(
    header: pb.BlockHeader, tip: pb.ChainTip, validators: ValidatorSet
) -> str | None:
    if header.height != tip.height + 1:
        return f"block height {header.height}, expected {tip.height + 1}"
    if header.previous_block_hash != tip.block_id:
        return "previous block hash is not the tip's block id"
    if header.validator_set_hash != validators.hash:
        return "validator set hash differs"
    if header.proposer_id not in validators:
        return f"block proposer {header.proposer_id!r} is not a validator"
    if header.time_ms < tip.time_ms:
        return "block time earlier than the previous block's"
    return None


def _check_records(block: pb.Block, tip: pb.ChainTip, limits: BlockLimits) -> str | None:
    header, records = block.header, block.records
    if len(records) > limits.max_block_records:
        return f"{len(records)} records, at most {limits.max_block_records}"
    if header.records_count != len(records):
        return "records_count differs from the number of records"
    if any(len(record) > limits.max_record_bytes for record in records):
        return f"a record exceeds {limits.max_record_bytes} bytes"
    if header.records_root != merkle_root(records):
        return "records root differs"
    frontier = tip_frontier(tip)
    frontier.extend(records)
    if header.log_size != frontier.size or header.log_root != frontier.root():
        return "log root or size differs"
    return None
