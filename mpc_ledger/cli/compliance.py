"""Compliance commands: export the ledger, verify an export or a record proof offline.

    mpc-ledger ledger export -o FILE [--from HEIGHT] --config party.toml
    mpc-ledger ledger prove RECORD_ID -o PROOF --config party.toml
    mpc-ledger verify FILE --genesis genesis.json [--job ID] [--format text|json|html]
                           [-o REPORT] [--previous OLDER_EXPORT]
    mpc-ledger verify-proof PROOF --genesis genesis.json [--format text|json]

``ledger export`` and ``ledger prove`` talk to the party's own daemon; they
are added to the ``ledger`` group by :func:`add_ledger_commands`. ``verify``
and ``verify-proof`` never touch the network: this module imports no network
code at the top, and the two daemon commands import the client inside their
handlers.

Exit codes follow ``mpc_ledger.cli.main``: 0 everything verified (or the file
was written), 1 a check failed (or the daemon did not answer), 2 bad input
(an unreadable file, an unknown format version): one line naming the file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpc_ledger.errors import UserError
from mpc_ledger.identity.genesis import load_genesis
from mpc_ledger.proto.v1 import consensus_pb2
from mpc_ledger.verify import read_proof, render, verify_export, verify_record_proof

if TYPE_CHECKING:
    from mpc_ledger.identity.party import Party
    from mpc_ledger.ledger.client import LedgerClient

__all__ = ["add_ledger_commands", "paged_blocks", "register"]

_PAGE_BLOCKS = 256
_PROGRESS_INTERVAL_S = 2.0


def register(groups: Any) -> None:
    """Add ``verify`` and ``verify-proof`` (the offline commands) to the top-level groups."""
    verify = groups.add_parser(
        "verify",
        help="verify a ledger export offline against the genesis, with a report",
        description="Check every block, certificate and record of an export against "
        "genesis.json, without any network. Exit 0 when everything holds, 1 otherwise.",
    )
    verify.add_argument("file", type=Path, help="the export (from `mpc-ledger ledger export`)")
    verify.add_argument("--genesis", required=True, type=Path, help="the consortium's genesis.json")
    verify.add_argument("--job", metavar="ID", help="report on this job only")
    verify.add_argument("--format", choices=("text", "json", "html"), default="text")
    verify.add_argument("-o", "--output", type=Path, metavar="REPORT", help="write the report here")
    verify.add_argument(
        "--previous",
        type=Path,
        metavar="OLDER_EXPORT",
        help="an earlier export this one must extend (reports a fork)",
    )
    verify.set_defaults(handler=verify_command)

    proof = groups.add_parser(
        "verify-proof",
        help="verify one record's inclusion proof offline against the genesis",
    )
    proof.add_argument("file", type=Path, help="the proof (from `mpc-ledger ledger prove`)")
    proof.add_argument("--genesis", required=True, type=Path, help="the consortium's genesis.json")
    proof.add_argument("--format", choices=("text", "json"), default="text")
    proof.set_defaults(handler=verify_proof_command)


def add_ledger_commands(commands: Any) -> None:
    """Add ``export`` and ``prove`` to the subparsers of the ``ledger`` group."""
    export = commands.add_parser(
        "export", help="write this party's copy of the ledger to a self-contained file"
    )
    export.add_argument("--config", required=True, type=Path, help="party.toml")
    export.add_argument("-o", "--output", required=True, type=Path, metavar="FILE")
    export.add_argument(
        "--from",
        dest="from_height",
        type=int,
        default=1,
        metavar="HEIGHT",
        help="first block to include (default 1: the whole ledger)",
    )
    export.set_defaults(handler=export_command)

    prove = commands.add_parser(
        "prove", help="write an inclusion proof for one record, checkable on its own"
    )
    prove.add_argument("record_id", metavar="RECORD_ID", help="the record id (64 hex digits)")
    prove.add_argument("--config", required=True, type=Path, help="party.toml")
    prove.add_argument("-o", "--output", required=True, type=Path, metavar="PROOF")
    prove.set_defaults(handler=prove_command)


# -- offline ------------------------------------------------------------------------------


def _write_text_atomically(path: Path, text: str) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=directory)
    except OSError as exc:
        raise UserError(f"cannot write: {exc.strerror or exc}", path=path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


class _Progress:
    """Progress lines on stderr, at most every few seconds, only for a person watching."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._enabled = sys.stderr.isatty()
        self._last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._enabled and now - self._last >= _PROGRESS_INTERVAL_S:
            self._last = now
            of = f" of {total}" if total else ""
            print(f"{self._what}: {done}{of}", file=sys.stderr, flush=True)


def verify_command(args: argparse.Namespace) -> int:
    genesis = load_genesis(args.genesis)
    progress = _Progress(f"verifying {args.file}: blocks")

    def blocks_done(blocks: int, records: int) -> None:
        progress(blocks, 0)

    report = verify_export(
        args.file, genesis, job_id=args.job, previous=args.previous, progress=blocks_done
    )
    text = render(report, args.format)
    if args.output is None:
        sys.stdout.write(text)
    else:
        _write_text_atomically(args.output, text)
        failures = sum(report.failure_counts.values())
        verdict = "VERIFIED" if report.ok else f"FAILED ({failures} failures)"
        print(f"{verdict}: {args.file}; {args.format} report written to {args.output}")
    return 0 if report.ok else 1


def verify_proof_command(args: argparse.Namespace) -> int:
    genesis = load_genesis(args.genesis)
    verdict = verify_record_proof(read_proof(args.file), genesis)
    if args.format == "json":
        print(json.dumps(verdict.to_json(), indent=2))
    else:
        sys.stdout.write(verdict.render_text())
    return 0 if verdict.ok else 1


# -- against the party's own daemon -------------------------------------------------------


def paged_blocks(
    client: LedgerClient, from_height: int, to_height: int
) -> Iterator[consensus_pb2.CommittedBlock]:
    """Blocks ``from_height..to_height`` in pages (each page one GetBlocks stream)."""
    height = from_height
    while height <= to_height:
        count = min(_PAGE_BLOCKS, to_height - height + 1)
        got = 0
        for committed in client.blocks(height, count):
            yield committed
            got += 1
        if got == 0:
            return
        height += got


def _with_client(args: argparse.Namespace, action: Callable[[Party, LedgerClient], int]) -> int:
    """``action(party, client)`` against this party's own daemon. The daemon code is
    imported here, not at the top, so that the offline commands import no network code."""
    from mpc_ledger.cli._daemon_call import call_party_daemon
    from mpc_ledger.identity.party import load_party

    party = load_party(args.config)
    return call_party_daemon(party, lambda client: action(party, client))


def export_command(args: argparse.Namespace) -> int:
    from mpc_ledger.verify.export import ExportError, write_export

    if args.from_height < 1:
        raise UserError("--from must be a height of at least 1", field="--from")

    def action(party: Party, client: LedgerClient) -> int:
        to_height = int(client.tip().height)
        if args.from_height > to_height + 1:
            raise UserError(
                f"--from {args.from_height} is above this party's ledger (tip at height "
                f"{to_height})",
                field="--from",
            )
        progress = _Progress(f"exporting to {args.output}: height")
        try:
            result = write_export(
                args.output,
                paged_blocks(client, 1, to_height),
                genesis_json=party.config.genesis_path.read_bytes(),
                chain_id=party.genesis.chain_id,
                from_height=args.from_height,
                to_height=to_height,
                exporter_id=party.identity.member.id,
                created_ms=int(time.time() * 1000),
                progress=progress,
            )
        except ExportError as exc:
            print(f"mpc-ledger: export failed: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            raise UserError(f"cannot write: {exc.strerror or exc}", path=args.output) from None
        print(
            f"exported heights {args.from_height}..{to_height} ({result.blocks} blocks, "
            f"{result.records} records) to {args.output}"
        )
        return 0

    return _with_client(args, action)


def _record_id(text: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise UserError(f"{text!r} is not a record id (64 hex digits)", field="RECORD_ID")
    return value


def prove_command(args: argparse.Namespace) -> int:
    from mpc_ledger.verify import build_record_proof, write_proof

    target = _record_id(args.record_id)

    def action(party: Party, client: LedgerClient) -> int:
        where = client.wait_committed(target, timeout_s=1)
        if not where.committed:
            print(
                f"mpc-ledger: record {target.hex()} is not committed on this party's ledger",
                file=sys.stderr,
            )
            return 1
        height = int(where.height)
        proof = build_record_proof(
            paged_blocks(client, 1, height),
            party.genesis.chain_id,
            target,
            created_ms=int(time.time() * 1000),
        )
        if proof is None:
            print(
                f"mpc-ledger: record {target.hex()} is not in blocks 1..{height}", file=sys.stderr
            )
            return 1
        try:
            write_proof(args.output, proof)
        except OSError as exc:
            raise UserError(f"cannot write: {exc.strerror or exc}", path=args.output) from None
        print(
            f"proof for record {target.hex()} (height {height}, log index "
            f"{proof.inclusion.log_index}) written to {args.output}"
        )
        return 0

    return _with_client(args, action)
