"""Verifying an export offline against the genesis: the check pipeline.

Theory of operation
-------------------
Only the genesis file the officer brings is trusted. From it come the chain
id (its hash), the validator set and the quorum, the members' keys and the
ledger's parameters; the record rules are this program's own
(:data:`mpc_ledger.rulebook.RULEBOOK`, the rulebook party daemons run). The
export is read one block at a time
(:class:`~mpc_ledger.verify.container.ExportReader`) and every fact is
re-derived, in this order, each failure filed under a named check
(:data:`mpc_ledger.verify.report.CHECKS`) with the block height and, for a
record, its log index and id:

1. ``genesis`` / ``export-header``: the export is of this chain; the header's
   range and embedded genesis agree with it.
2. ``anchor`` (partial exports): the block before the range is certified and
   the log frontier given with it hashes to that block's log root. That
   certified header stands in for everything before the range.
3. For every block: ``hash-chain`` (height, previous-block hash, proposer,
   time), ``certificate`` (a quorum of distinct genesis validators signed a
   precommit for this header's id; see
   :mod:`~mpc_ledger.verify.certificates`), ``block-limits``,
   ``records-root`` (the records hash to the header) and ``log-root`` (the
   whole log's RFC 6962 root and size, carried forward with a Merkle
   frontier, match the header).
4. For every record: ``record-encoding``, ``record-signature``,
   ``record-permission``, by replaying the ledger's state machine
   (:mod:`~mpc_ledger.verify.replay`); each record that passes goes on to the
   job audit (:mod:`~mpc_ledger.verify.jobs`).
5. ``trailer``: the trailer agrees with the last block. ``jobs``: the job
   audit's verdicts.
6. ``consistency`` (with ``previous``): the older export verifies too, and
   this one extends it (:mod:`~mpc_ledger.verify.consistency`).

A failure does not stop the run: the report lists them all (up to a bound).
Only a file that cannot be read as an export stops it, with
:class:`~mpc_ledger.verify.container.ExportFormatError` (exit code 2 at the
CLI). Nothing here opens a socket: this module imports no network code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from mpc_ledger.consensus import Validator, ValidatorSet, block_id
from mpc_ledger.documents import parse_json
from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.merkle import MerkleFrontier, leaf_hash, merkle_root
from mpc_ledger.proto.v1 import consensus_pb2, export_pb2
from mpc_ledger.rulebook import RULEBOOK
from mpc_ledger.timestamps import block_time_text
from mpc_ledger.verify.certificates import assess_certificate
from mpc_ledger.verify.consistency import (
    ChainSummary,
    compare_summaries,
    report_previous_failures,
)
from mpc_ledger.verify.container import ExportReader
from mpc_ledger.verify.jobs import JobAudit, RecordContext
from mpc_ledger.verify.logproofs import LeafHashLog
from mpc_ledger.verify.replay import RecordReplay
from mpc_ledger.verify.report import Report

__all__ = ["ProgressCallback", "genesis_validators", "verify_export"]

ProgressCallback = Callable[[int, int], None]
"""(blocks verified, records verified) -> None, called every few blocks."""


def genesis_validators(genesis: Genesis) -> ValidatorSet:
    return ValidatorSet(Validator(m.id, m.signing_public_key) for m in genesis.validators)


@dataclasses.dataclass
class _Tip:
    height: int
    block_id: bytes
    time_ms: int
    log_size: int
    log_root: bytes


class _ExportVerifier:
    """Runs the pipeline of the module docstring over one export."""

    def __init__(
        self,
        genesis: Genesis,
        report: Report,
        *,
        job_id: str | None,
        keep_log: bool,
        keep_block_ids: bool,
        progress: ProgressCallback | None,
    ) -> None:
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.validators = genesis_validators(genesis)
        self.report = report
        self.job_id = job_id
        # What comparing with another export needs (leaf hashes: only the newer one).
        self.keep_log = keep_log
        self.keep_block_ids = keep_block_ids
        self.progress = progress
        self.frontier: MerkleFrontier | None = MerkleFrontier()
        self.log: LeafHashLog | None = None
        self.block_ids: dict[int, bytes] = {}
        self.tip = _Tip(0, bytes(32), 0, 0, merkle_root([]))
        self.records = 0
        self.blocks = 0
        # Log index of the next record (the anchor's log size in a partial export).
        self.next_log_index = 0

    # -- header and anchor -----------------------------------------------------------------

    def check_header(self, header: export_pb2.ExportHeader) -> bool:
        """False when the export is of another chain (nothing further is meaningful)."""
        report = self.report
        report.ran("genesis")
        report.ran("export-header")
        if header.chain_id != self.chain_id:
            report.fail(
                "genesis",
                f"the export is of chain {header.chain_id.hex()[:16]}…, the genesis file "
                f"defines chain {self.chain_id.hex()[:16]}… (its hash): wrong genesis, "
                "or an export of another consortium",
            )
            return False
        try:
            embedded = parse_json(header.genesis_json)
            recorded = embedded.get("chain_id") if isinstance(embedded, dict) else None
        except (ValueError, UnicodeDecodeError):
            recorded = None
        if recorded != self.chain_id.hex():
            report.fail(
                "export-header",
                "the genesis embedded in the export does not state this chain id",
            )
        return True

    def check_anchor(self, header: export_pb2.ExportHeader) -> None:
        report = self.report
        start = header.from_height
        if start == 1:
            if header.HasField("anchor") or header.anchor_log_frontier:
                report.fail("export-header", "a full export (from height 1) carries an anchor")
            return
        report.ran("anchor")
        report.limitations.extend(_partial_limitations(start))
        anchor = header.anchor
        block_header = anchor.block.header
        if not header.HasField("anchor") or block_header.height != start - 1:
            report.fail("anchor", f"no certified block {start - 1} to start from", height=start - 1)
            self.frontier = None
            self.tip = _Tip(start - 1, b"", 0, 0, b"")
            return
        anchor_id = block_id(block_header)
        verdict = assess_certificate(
            self.validators, self.chain_id, block_header, anchor.certificate, anchor_id
        )
        for problem in verdict.problems:
            report.fail("anchor", f"certificate: {problem}", height=start - 1)
        try:
            frontier: MerkleFrontier | None = MerkleFrontier(
                block_header.log_size, list(header.anchor_log_frontier)
            )
        except ValueError as exc:
            report.fail("anchor", f"log frontier: {exc}", height=start - 1)
            frontier = None
        if frontier is not None and frontier.root() != block_header.log_root:
            report.fail(
                "anchor", "the log frontier does not hash to the block's log root", height=start - 1
            )
            frontier = None
        self.frontier = frontier
        if frontier is None:
            report.limitations.append("log roots were not checked: the anchor's frontier is bad")
        elif self.keep_log:
            self.log = LeafHashLog(frontier)
        self.tip = _Tip(
            start - 1,
            anchor_id,
            block_header.time_ms,
            block_header.log_size,
            bytes(block_header.log_root),
        )
        if self.keep_block_ids:
            self.block_ids[start - 1] = anchor_id
        self.next_log_index = int(block_header.log_size)

    # -- blocks ----------------------------------------------------------------------------

    def check_block(
        self, committed: consensus_pb2.CommittedBlock, replay: RecordReplay, jobs: JobAudit
    ) -> None:
        block = committed.block
        header = block.header
        height = int(header.height)
        header_id = block_id(header)
        self._check_links(header)
        self._check_certificate(header, committed.certificate, header_id)
        records = list(block.records)
        self._check_roots(header, records)
        self._replay(height, header.time_ms, self.next_log_index, records, replay, jobs)
        self.next_log_index += len(records)
        self.tip = _Tip(height, header_id, header.time_ms, header.log_size, bytes(header.log_root))
        if self.keep_block_ids:
            self.block_ids[height] = header_id
        self.blocks += 1

    def _check_links(self, header: consensus_pb2.BlockHeader) -> None:
        report, tip, height = self.report, self.tip, int(header.height)
        if height != tip.height + 1:
            report.fail("hash-chain", f"block {height} follows block {tip.height}", height=height)
        if tip.block_id and header.previous_block_hash != tip.block_id:
            report.fail(
                "hash-chain",
                f"previous block hash is not the hash of block {tip.height}",
                height=height,
            )
        if header.proposer_id not in self.validators:
            report.fail(
                "hash-chain", f"proposer {header.proposer_id!r} is not a validator", height=height
            )
        if header.time_ms < tip.time_ms:
            report.fail(
                "hash-chain", "block time is earlier than the previous block's", height=height
            )

    def _check_certificate(
        self,
        header: consensus_pb2.BlockHeader,
        certificate: consensus_pb2.Certificate,
        header_id: bytes,
    ) -> None:
        verdict = assess_certificate(self.validators, self.chain_id, header, certificate, header_id)
        for problem in verdict.problems:
            self.report.fail("certificate", problem, height=int(header.height))
        self.report.signed_certificates.update(verdict.signers)

    def _check_roots(self, header: consensus_pb2.BlockHeader, records: list[bytes]) -> None:
        report, height = self.report, int(header.height)
        limit = self.genesis.consensus.max_block_records
        if len(records) > limit:
            report.fail("block-limits", f"{len(records)} records, at most {limit}", height=height)
        if header.records_count != len(records):
            report.fail(
                "records-root",
                f"the header counts {header.records_count} records, the block holds {len(records)}",
                height=height,
            )
        if merkle_root(records) != header.records_root:
            report.fail(
                "records-root",
                "the block's records do not hash to its header's records root "
                "(a record changed, dropped, added or moved)",
                height=height,
            )
        if self.log is not None:
            self.log.extend([leaf_hash(record) for record in records])
        frontier = self.frontier
        if frontier is None:
            return
        frontier.extend(records)
        if frontier.size != header.log_size or frontier.root() != header.log_root:
            report.fail(
                "log-root",
                f"the log after this block has {frontier.size} records and root "
                f"{frontier.root().hex()[:16]}…; the header says {header.log_size} records and "
                f"root {header.log_root.hex()[:16]}…",
                height=height,
            )
            report.limitations.append(
                f"log roots after height {height} were not checked: each depends on the one "
                "that failed"
            )
            self.frontier = None

    def _replay(
        self,
        height: int,
        time_ms: int,
        first_index: int,
        records: list[bytes],
        replay: RecordReplay,
        jobs: JobAudit,
    ) -> None:
        report = self.report
        kinds: list[str] = []
        authors: list[str] = []
        replay.begin_block(height)
        for offset, raw in enumerate(records):
            log_index = first_index + offset
            outcome = replay.replay(raw)
            parsed = outcome.parsed
            if parsed is not None:
                kinds.append(parsed.kind)
                authors.append(parsed.body.author)
            if outcome.check is not None:
                report.fail(
                    outcome.check,
                    outcome.message or "",
                    height=height,
                    log_index=log_index,
                    record_id=None if parsed is None else parsed.id,
                )
                if parsed is not None:  # refused, yet certified: the job audit must know
                    jobs.refused(parsed, RecordContext(height, log_index, time_ms))
            elif parsed is not None and not outcome.unverifiable:
                jobs.observe(parsed, RecordContext(height, log_index, time_ms), replay.state)
        # counted per block: Counter.update over a list counts in C
        report.records_by_kind.update(kinds)
        report.records_by_author.update(authors)
        self.records += len(records)

    # -- the whole file --------------------------------------------------------------------

    def run(self, reader: ExportReader) -> ChainSummary | None:
        header = reader.header
        if not self.check_header(header):
            return None
        for check in ("certificate", "hash-chain", "block-limits", "records-root", "log-root"):
            self.report.ran(check)
        for check in ("record-encoding", "record-signature", "record-permission", "trailer"):
            self.report.ran(check)
        partial = header.from_height > 1
        self.check_anchor(header)
        if self.keep_log and self.log is None and not partial:
            self.log = LeafHashLog()
        if self.keep_block_ids:
            self.block_ids.setdefault(self.tip.height, self.tip.block_id)
        replay = RecordReplay(self.genesis, RULEBOOK, partial=partial)
        jobs = JobAudit(self.genesis, job_id=self.job_id, partial=partial)
        first_height: int | None = None
        first_time: int | None = None
        for committed in reader.blocks():
            if first_height is None:
                first_height = int(committed.block.header.height)
                first_time = int(committed.block.header.time_ms)
            self.check_block(committed, replay, jobs)
            if self.progress is not None and self.blocks % 64 == 0:
                self.progress(self.blocks, self.records)
        assert reader.trailer is not None  # blocks() ends only after the trailer
        self._check_trailer(header, reader.trailer, first_height)
        if replay.unverifiable:
            self.report.limitations.append(
                f"{replay.unverifiable} records by users whose keys were bound before height "
                f"{header.from_height} rest on their blocks' certificates: their signatures "
                "and permissions need the records before the range"
            )
        jobs.finish(self.report)
        self._summarise(header, first_time)
        return ChainSummary(
            path=self.report.file,
            from_height=int(header.from_height),
            to_height=self.tip.height,
            log_size=self.tip.log_size,
            log_root=self.tip.log_root,
            block_ids=self.block_ids,
            log=self.log,
        )

    def _check_trailer(
        self,
        header: export_pb2.ExportHeader,
        trailer: export_pb2.ExportTrailer,
        first_height: int | None,
    ) -> None:
        report, tip = self.report, self.tip
        if first_height is not None and first_height != header.from_height:
            report.fail(
                "export-header",
                f"the header says the export starts at height {header.from_height}, "
                f"its first block is {first_height}",
            )
        if header.to_height != tip.height:
            report.fail(
                "export-header",
                f"the header says the export ends at height {header.to_height}, "
                f"its last block is {tip.height}",
            )
        expected = (
            ("block_count", trailer.block_count, self.blocks),
            ("record_count", trailer.record_count, self.records),
            ("log_size", trailer.log_size, tip.log_size),
        )
        for name, stated, found in expected:
            if stated != found:
                report.fail("trailer", f"{name} is {stated}, the export holds {found}")
        if trailer.log_root != tip.log_root:
            report.fail("trailer", "log_root is not the last block's log root")

    def _summarise(self, header: export_pb2.ExportHeader, first_time: int | None) -> None:
        chain = self.report.chain
        chain["consortium"] = self.genesis.consortium
        chain["chain_id"] = self.chain_id.hex()
        chain["validators"] = f"{len(self.validators)} (quorum {self.validators.quorum})"
        chain["heights"] = f"{header.from_height}..{self.tip.height}"
        chain["partial"] = "yes" if header.from_height > 1 else "no"
        chain["blocks"] = self.blocks
        chain["records"] = self.records
        chain["log_size"] = self.tip.log_size
        chain["log_root"] = self.tip.log_root.hex()
        if first_time is not None:
            chain["first_block_time"] = block_time_text(first_time, milliseconds=False)
            chain["last_block_time"] = block_time_text(self.tip.time_ms, milliseconds=False)
        chain["exported_by"] = header.exporter_id or "(not stated)"
        chain["exported_at"] = block_time_text(header.created_ms, milliseconds=False)


def _partial_limitations(start: int) -> list[str]:
    return [
        f"this is a partial export from height {start}: blocks 1..{start - 1} are represented "
        f"only by the certified block {start - 1} and the log frontier after it",
        f"records before height {start} are not in the file: their signatures and "
        "permissions, and that later records do not repeat them, are not re-checked here",
    ]


def verify_export(
    path: Path,
    genesis: Genesis,
    *,
    job_id: str | None = None,
    previous: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Report:
    """Verify the export at ``path`` against ``genesis``; see the module docstring."""
    report = Report(file=str(path))
    comparing = previous is not None
    summary = _verify_into(
        report,
        path,
        genesis,
        job_id=job_id,
        keep_log=comparing,
        compare=comparing,
        progress=progress,
    )
    if previous is not None:
        report.ran("consistency")
        old_report = Report(file=str(previous))
        old = _verify_into(old_report, previous, genesis, job_id=None, keep_log=False, compare=True)
        report_previous_failures(report, old_report)
        if summary is not None and old is not None:
            compare_summaries(report, summary, old)
    return report


def _verify_into(
    report: Report,
    path: Path,
    genesis: Genesis,
    *,
    job_id: str | None,
    keep_log: bool,
    compare: bool,
    progress: ProgressCallback | None = None,
) -> ChainSummary | None:
    verifier = _ExportVerifier(
        genesis,
        report,
        job_id=job_id,
        keep_log=keep_log,
        keep_block_ids=compare,
        progress=progress,
    )
    with ExportReader(path) as reader:
        return verifier.run(reader)
