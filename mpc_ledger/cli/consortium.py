"""Consortium commands: `consortium assemble` (real deployments) and `consortium init` (local)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mpc_ledger.consortium import create_local_consortium, genesis_time_now, write_genesis
from mpc_ledger.identity.genesis import ConsensusParams, assemble_genesis, load_member_file


def register(groups: Any) -> None:
    consortium = groups.add_parser("consortium", help="build the consortium's genesis")
    commands = consortium.add_subparsers(
        dest="consortium_command", metavar="COMMAND", required=True
    )

    assemble = commands.add_parser(
        "assemble",
        help="validate member files and write genesis.json",
        description="Build the genesis (the consortium's trust root) from the public member "
        "files each operator sent in. Prints the chain id every party must see.",
    )
    assemble.add_argument("member_files", nargs="+", type=Path, metavar="MEMBER_FILE")
    assemble.add_argument("--out", required=True, type=Path, help="genesis.json to write")
    assemble.add_argument("--name", default="consortium", help="consortium name")
    assemble.set_defaults(handler=assemble_command)

    init = commands.add_parser(
        "init",
        help="make a complete local consortium for development",
        description="Generate keys, a genesis and one party config per member, all on one "
        "machine. For development and tests only: a real consortium's keys are made on "
        "each party's own machine (`party keygen`).",
    )
    init.add_argument("--parties", required=True, help="comma-separated data party ids, e.g. a,b,c")
    init.add_argument("--dealer", action="store_true", help="add a 'dealer' member (no data)")
    init.add_argument(
        "--auditor", action="store_true", help="add an 'auditor' validator-only member"
    )
    init.add_argument("--out", required=True, type=Path, help="folder to create")
    init.add_argument("--host", default="127.0.0.1", help="address every member listens on")
    init.add_argument(
        "--base-port",
        type=int,
        default=7001,
        help="first port; members get consecutive ports, metrics ports from first+100 "
        "(0: pick free ports)",
    )
    init.add_argument("--name", default="local-dev", help="consortium name")
    init.add_argument(
        "--empty-block-interval-ms",
        type=int,
        default=ConsensusParams().empty_block_interval_ms,
        help="an idle ledger commits an empty block this often (default: %(default)s)",
    )
    init.set_defaults(handler=init_command)


def assemble_command(args: argparse.Namespace) -> int:
    members = [load_member_file(path) for path in args.member_files]
    genesis = assemble_genesis(
        members,
        consortium=args.name,
        genesis_time=genesis_time_now(),
        sources=[str(p) for p in args.member_files],
    )
    write_genesis(genesis, args.out)
    print(f"wrote {args.out} with {len(genesis.members)} members:")
    for member in genesis.members:
        print(f"  {member.id:<16} {','.join(member.roles):<20} {member.endpoint}")
    print(f"chain id: {genesis.chain_id.hex()}")
    print("every operator must see this chain id when their party starts")
    return 0


def init_command(args: argparse.Namespace) -> int:
    parties = [p.strip() for p in args.parties.split(",") if p.strip()]
    made = create_local_consortium(
        args.out,
        parties,
        dealer=args.dealer,
        auditor=args.auditor,
        host=args.host,
        base_port=args.base_port,
        name=args.name,
        empty_block_interval_ms=args.empty_block_interval_ms,
    )
    out, genesis = made.root, made.genesis
    print(f"local consortium {args.name!r} in {out} (chain id {genesis.chain_id.hex()[:16]}…)")
    for member in genesis.members:
        print(f"  {member.id:<12} {','.join(member.roles):<18} {member.endpoint}")
    print("start each party with:")
    for member_id in made.member_ids:
        print(f"  mpc-ledger party start --config {made.config(member_id)}")
    return 0
