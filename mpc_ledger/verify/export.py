"""Writing an export from a party's committed blocks.

The party's daemon serves committed blocks from height 1 upwards; this module
turns that stream into an export file (see FORMAT.md) without holding more
than one block in memory. For a partial export (``from_height > 1``) it still
reads every block before the range: the Merkle frontier of the log at the
anchor (block ``from_height - 1``) is the roots of its perfect subtrees, and
only the records themselves give them. What it writes for those blocks is the
anchor and the frontier, checked here against the anchor's log root so that a
daemon serving a broken prefix is caught before a file is written.

The exporter trusts its own daemon no further than that: the verifier
re-checks everything.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from pathlib import Path

from mpc_ledger.merkle import MerkleFrontier
from mpc_ledger.proto.v1 import consensus_pb2, export_pb2
from mpc_ledger.verify.container import EXPORT_FORMAT, ExportWriter

__all__ = ["ExportError", "ExportResult", "write_export"]

ExportProgress = Callable[[int, int], None]
"""(height reached, to_height) -> None, called every few blocks."""


class ExportError(Exception):
    """The blocks served are not a chain that can be exported (a gap, a bad log)."""


class ExportResult:
    def __init__(self, path: Path, header: export_pb2.ExportHeader, blocks: int, records: int):
        self.path = path
        self.header = header
        self.blocks = blocks
        self.records = records


def write_export(
    path: Path,
    blocks: Iterable[consensus_pb2.CommittedBlock],
    *,
    genesis_json: bytes,
    chain_id: bytes,
    from_height: int,
    to_height: int,
    exporter_id: str,
    created_ms: int,
    progress: ExportProgress | None = None,
) -> ExportResult:
    """Write blocks ``from_height..to_height`` of ``blocks`` (which start at height 1)."""
    if from_height < 1:
        raise ValueError("from_height starts at 1")
    if to_height < from_height - 1:
        raise ValueError(f"nothing to export: height {from_height} is above {to_height + 1}")
    frontier = MerkleFrontier()
    anchor: consensus_pb2.CommittedBlock | None = None
    stream = iter(blocks)
    first_in_range: list[consensus_pb2.CommittedBlock] = []
    expected = 1
    for committed in stream:
        if expected >= from_height:
            first_in_range.append(committed)
            break
        _check_next(committed, expected, frontier)
        anchor = committed
        expected += 1
        if progress is not None and expected % 256 == 0:
            progress(expected - 1, to_height)
    if expected < from_height:
        raise ExportError(f"the ledger ends at height {expected - 1}, before {from_height}")
    header = export_pb2.ExportHeader(
        format=EXPORT_FORMAT,
        genesis_json=genesis_json,
        chain_id=chain_id,
        from_height=from_height,
        to_height=to_height,
        created_ms=created_ms,
        exporter_id=exporter_id,
    )
    if anchor is not None:
        header.anchor.CopyFrom(anchor)
        header.anchor_log_frontier.extend(frontier.peaks)
    with ExportWriter(path, header) as writer:
        for item in itertools.chain(first_in_range, stream):
            if expected > to_height:
                break
            _check_next(item, expected, frontier)
            writer.block(item)
            expected += 1
            if progress is not None and expected % 256 == 0:
                progress(expected - 1, to_height)
        if expected <= to_height:
            raise ExportError(f"the ledger served blocks up to {expected - 1}, not {to_height}")
        writer.finish(frontier.size, frontier.root())
        return ExportResult(path, header, writer.block_count, writer.record_count)


def _check_next(
    committed: consensus_pb2.CommittedBlock, expected: int, frontier: MerkleFrontier
) -> None:
    header = committed.block.header
    if header.height != expected:
        raise ExportError(f"expected block {expected}, the ledger served block {header.height}")
    frontier.extend(committed.block.records)
    if frontier.size != header.log_size or frontier.root() != header.log_root:
        raise ExportError(f"block {expected}: the records do not give the header's log root")
