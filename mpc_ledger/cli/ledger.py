"""`mpc-ledger ledger ...`: read this party's copy of the ledger, write a signed note."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mpc_ledger.cli import compliance
from mpc_ledger.cli._daemon_call import call_party_daemon, fail
from mpc_ledger.consensus import block_id
from mpc_ledger.identity.party import load_party
from mpc_ledger.ledger.client import LedgerClient
from mpc_ledger.ledger.records import parse_record, record_id
from mpc_ledger.proto.v1 import consensus_pb2
from mpc_ledger.timestamps import block_time_text


def register(groups: Any) -> None:
    ledger = groups.add_parser("ledger", help="read the consortium ledger (this party's copy)")
    commands = ledger.add_subparsers(dest="ledger_command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        parser.add_argument("--config", required=True, type=Path, help="party.toml")
        parser.add_argument("--format", choices=("text", "json"), default="text")
        return parser

    status = command("status", "height, records, round and mempool of this party's node")
    status.set_defaults(handler=status_command)
    show = command("show", "one block: header, certificate and records")
    show.add_argument("height", type=int)
    show.set_defaults(handler=show_command)
    tail = command("tail", "the most recent records")
    tail.add_argument("-n", type=int, default=20, help="records to show (default: 20)")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new records")
    tail.set_defaults(handler=tail_command)
    note = command("note", "write a note signed by this party and wait until it commits")
    note.add_argument("text")
    note.set_defaults(handler=note_command)
    compliance.add_ledger_commands(commands)


def status_command(args: argparse.Namespace) -> int:
    def action(client: LedgerClient) -> int:
        tip = client.tip()
        if args.format == "json":
            print(
                json.dumps(
                    {
                        "height": tip.height,
                        "block_id": tip.block_id.hex(),
                        "records": tip.log_size,
                        "round": tip.round,
                        "mempool": tip.mempool_size,
                    }
                )
            )
        else:
            print(f"height   {tip.height}\nblock    {tip.block_id.hex()}\nrecords  {tip.log_size}")
            print(f"round    {tip.round}\nmempool  {tip.mempool_size}")
        return 0

    return call_party_daemon(load_party(args.config), action)


def block_summary(item: consensus_pb2.CommittedBlock) -> dict[str, Any]:
    header = item.block.header
    first = header.log_size - header.records_count
    return {
        "height": header.height,
        "block_id": block_id(header).hex(),
        "previous_block_hash": header.previous_block_hash.hex(),
        "proposer": header.proposer_id,
        "time": block_time_text(header.time_ms),
        "records_root": header.records_root.hex(),
        "log_root": header.log_root.hex(),
        "log_size": header.log_size,
        "certificate": {
            "round": item.certificate.round,
            "signers": [s.validator_id for s in item.certificate.signatures],
        },
        "records": [record_summary(raw, first + i) for i, raw in enumerate(item.block.records)],
    }


def record_summary(raw: bytes, log_index: int) -> dict[str, Any]:
    parsed = parse_record(raw)
    if isinstance(parsed, str):
        return {"log_index": log_index, "error": parsed}
    body = parsed.body
    summary: dict[str, Any] = {
        "log_index": log_index,
        "id": record_id(body).hex(),
        "kind": parsed.kind,
        "author": body.author,
    }
    if parsed.kind == "note":
        summary["text"] = body.note.text
    elif parsed.kind in ("bind_user", "revoke_user"):
        summary["user"] = getattr(body, parsed.kind).user_id
    return summary


def show_command(args: argparse.Namespace) -> int:
    def action(client: LedgerClient) -> int:
        blocks = list(client.blocks(args.height, 1))
        if not blocks or blocks[0].block.header.height != args.height:
            return fail(f"no block at height {args.height} (tip is {client.tip().height})")
        summary = block_summary(blocks[0])
        if args.format == "json":
            print(json.dumps(summary, indent=2))
            return 0
        for key in (
            "height",
            "block_id",
            "previous_block_hash",
            "proposer",
            "time",
            "records_root",
            "log_root",
            "log_size",
        ):
            print(f"{key:<20} {summary[key]}")
        certificate = summary["certificate"]
        print(
            f"{'certificate':<20} round {certificate['round']}, "
            f"signed by {', '.join(certificate['signers'])}"
        )
        print(f"{'records':<20} {len(summary['records'])}")
        _print_records(summary["records"])
        return 0

    return call_party_daemon(load_party(args.config), action)


def _print_records(records: Iterable[dict[str, Any]], as_json: bool = False) -> None:
    for record in records:
        if as_json:
            print(json.dumps(record))
            continue
        detail = record.get("text") or record.get("user") or record.get("error", "")
        print(
            f"  #{record['log_index']:<7} {record.get('id', '')[:16]}  "
            f"{record.get('kind', '?'):<12} {record.get('author', ''):<16} {detail}"
        )


def tail_command(args: argparse.Namespace) -> int:
    def action(client: LedgerClient) -> int:
        tip = client.tip()
        wanted = max(args.n, 0)
        height = int(tip.height)
        shown: list[dict[str, Any]] = []
        while height >= 1 and len(shown) < wanted:  # walk back until n records are found
            start = max(1, height - 63)
            chunk = [block_summary(b) for b in client.blocks(start, height - start + 1)]
            shown = [r for block in chunk for r in block["records"]] + shown
            height = start - 1
        _print_records(shown[-wanted:] if wanted else [], args.format == "json")
        next_height = int(tip.height) + 1
        while args.follow:
            for item in client.blocks(next_height, 1000):
                _print_records(block_summary(item)["records"], args.format == "json")
                next_height = item.block.header.height + 1
            time.sleep(0.5)
        return 0

    try:
        return call_party_daemon(load_party(args.config), action)
    except KeyboardInterrupt:
        return 0


def note_command(args: argparse.Namespace) -> int:
    def action(client: LedgerClient) -> int:
        record = client.note(args.text)
        reply = client.submit(record)
        if not reply.accepted:
            return fail(f"the ledger refused the note: {reply.reason}")
        committed = client.wait_committed(reply.record_id)
        if not committed.committed:
            return fail(f"record {reply.record_id.hex()} accepted but not committed yet")
        if args.format == "json":
            print(
                json.dumps(
                    {
                        "record_id": reply.record_id.hex(),
                        "height": committed.height,
                        "log_index": committed.log_index,
                    }
                )
            )
        else:
            print(
                f"record {reply.record_id.hex()} committed at height {committed.height} "
                f"(log index {committed.log_index})"
            )
        return 0

    return call_party_daemon(load_party(args.config), action)
