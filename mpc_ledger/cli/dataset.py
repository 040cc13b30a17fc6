"""`mpc-ledger dataset ...`: register a local dataset's fingerprint, list the consortium's datasets.

`register` reads the file here, on the party's own machine, computes its
fingerprint (`mpc_ledger.jobs.datafiles`) and writes a `DatasetRegistration`
signed by the party: schema, row count and fingerprint, never a value. The
data stays where it is. Once the registration is committed it also writes
the party's local catalogue entry (`mpc_ledger.jobs.catalogue`: the file's
absolute path and schema, 0600, never on the ledger), through which the job
runner re-fingerprints the file before each job. `list` reads the registrations from the committed
blocks of this party's copy of the ledger.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mpc_ledger.cli._daemon_call import call_party_daemon, fail
from mpc_ledger.errors import UserError
from mpc_ledger.identity.party import Party, load_party
from mpc_ledger.jobs.catalogue import CatalogueEntry, write_entry
from mpc_ledger.jobs.datafiles import fingerprint_file, load_schema, parse_columns
from mpc_ledger.jobs.datasets import (
    DatasetSchema,
    RegisteredDataset,
    check_dataset_id,
    make_registration,
)
from mpc_ledger.ledger.client import LedgerClient
from mpc_ledger.ledger.records import parse_record

__all__ = ["list_command", "register", "register_command", "registered_datasets"]

_BLOCKS_PER_CALL = 500


def register(groups: Any) -> None:
    dataset = groups.add_parser("dataset", help="register and list datasets (fingerprints only)")
    commands = dataset.add_subparsers(dest="dataset_command", metavar="COMMAND", required=True)

    add = commands.add_parser(
        "register",
        help="fingerprint a local CSV or Parquet file and register it on the ledger",
        description="Compute the file's fingerprint here and put it on the ledger, signed by "
        "this party, with the schema and row count. No value leaves this machine. "
        "The schema is a TOML file (see parties/schemas/) or --columns.",
    )
    add.add_argument("file", type=Path, metavar="FILE", help="the data (.csv, .parquet)")
    add.add_argument("--id", required=True, dest="dataset_id", help="<this member>/<name>")
    schema = add.add_mutually_exclusive_group(required=True)
    schema.add_argument("--schema", type=Path, help="schema TOML file")
    schema.add_argument(
        "--columns",
        help="name:type,... in encoding order; type int64|float64|string|bool, "
        "'?' after the type for a nullable column",
    )
    add.add_argument("--id-column", default="", help="with --columns: the entity id column")
    add.add_argument("--label-column", default="", help="with --columns: the label column")
    add.add_argument("--description", default="", help="a short description for the list")
    add.add_argument("--config", required=True, type=Path, help="party.toml")
    add.add_argument("--format", choices=("text", "json"), default="text")
    add.set_defaults(handler=register_command)

    show = commands.add_parser("list", help="the datasets registered on the ledger")
    show.add_argument("--config", required=True, type=Path, help="party.toml")
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(handler=list_command)


def _schema(args: argparse.Namespace) -> DatasetSchema:
    if args.schema is not None:
        if args.id_column or args.label_column:
            raise UserError("give the id and label columns in the schema file", field="--id-column")
        return load_schema(args.schema)
    return parse_columns(args.columns, id_column=args.id_column, label_column=args.label_column)


def _check_member(party: Party, dataset_id: str) -> None:
    member = party.identity.member
    problem = check_dataset_id(dataset_id, member.id)
    if problem is not None:
        raise UserError(problem, field="--id")
    if not member.has_role("data"):
        raise UserError(
            f"member {member.id!r} lacks the data role in the genesis; it cannot register data",
            path=party.config.path,
        )


def register_command(args: argparse.Namespace) -> int:
    party = load_party(args.config)
    _check_member(party, args.dataset_id)
    schema = _schema(args)
    fingerprint = fingerprint_file(args.file, schema)
    registration = make_registration(args.dataset_id, schema, fingerprint, args.description)

    def action(client: LedgerClient) -> int:
        reply = client.submit(client.sign(dataset_registration=registration))
        if not reply.accepted:
            return fail(f"the ledger refused the registration: {reply.reason}")
        committed = client.wait_committed(reply.record_id)
        if not committed.committed:
            return fail(f"record {reply.record_id.hex()} accepted but not committed yet")
        # Only once committed: the job runner finds the file again through this entry.
        write_entry(
            party.config.data_dir,
            CatalogueEntry(args.dataset_id, args.file.resolve(), schema, fingerprint.fingerprint),
        )
        summary = {
            "dataset_id": args.dataset_id,
            "rows": fingerprint.row_count,
            "fingerprint": fingerprint.fingerprint.hex(),
            "schema_hash": fingerprint.schema_hash.hex(),
            "rows_root": fingerprint.rows_root.hex(),
            "record_id": reply.record_id.hex(),
            "height": committed.height,
        }
        if args.format == "json":
            print(json.dumps(summary))
        else:
            print(f"dataset      {args.dataset_id}")
            print(f"rows         {fingerprint.row_count}")
            print(f"fingerprint  {fingerprint.fingerprint.hex()}")
            print(f"record       {reply.record_id.hex()} (height {committed.height})")
        return 0

    return call_party_daemon(party, action)


def registered_datasets(client: LedgerClient) -> Iterator[RegisteredDataset]:
    """Every dataset registration in this node's committed blocks, in commit order."""
    tip = int(client.tip().height)
    height = 1
    while height <= tip:
        progressed = False
        for item in client.blocks(height, _BLOCKS_PER_CALL):
            progressed = True
            height = int(item.block.header.height) + 1
            for raw in item.block.records:
                parsed = parse_record(raw)
                if isinstance(parsed, str) or parsed.kind != "dataset_registration":
                    continue
                yield RegisteredDataset.from_registration(
                    parsed.body.author, parsed.body.dataset_registration, parsed.id
                )
        if not progressed:
            break


def list_command(args: argparse.Namespace) -> int:
    party = load_party(args.config)

    def action(client: LedgerClient) -> int:
        datasets = list(registered_datasets(client))
        if args.format == "json":
            print(json.dumps([d.to_json() for d in datasets], indent=2))
            return 0
        if not datasets:
            print("no datasets registered")
            return 0
        print(f"{'dataset':<32} {'owner':<16} {'rows':>10}  {'fingerprint':<16}  columns")
        for dataset in datasets:
            columns = ", ".join(c.describe() for c in dataset.schema.columns)
            marks = [
                f"{name} {value}"
                for name, value in (
                    ("id", dataset.schema.id_column),
                    ("label", dataset.schema.label_column),
                )
                if value
            ]
            extra = f" ({'; '.join(marks)})" if marks else ""
            print(
                f"{dataset.dataset_id:<32} {dataset.owner:<16} {dataset.row_count:>10}  "
                f"{dataset.fingerprint.hex()[:16]}  {columns}{extra}"
            )
        return 0

    return call_party_daemon(party, action)
