"""Consortium commands: `consortium assemble` (real deployments) and `consortium init` (local)."""

from __future__ import annotations

import argparse
import datetime as dt
import random
import socket
from pathlib import Path
from typing import Any

from mpc_ledger.daemon.config import render_config
from mpc_ledger.daemon.server import BindError, check_bindable
from mpc_ledger.errors import UserError
from mpc_ledger.identity.genesis import (
    ConsensusParams,
    Genesis,
    MpcParams,
    assemble_genesis,
    check_member_id,
    load_member_file,
)
from mpc_ledger.identity.keys import write_public_file
from mpc_ledger.identity.material import generate_party_material

DATA_ROLES = ("data", "validator")
DEALER_ROLES = ("dealer",)
AUDITOR_ROLES = ("observer", "validator")


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


_UINT32_MAX = (1 << 32) - 1


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_genesis(genesis: Genesis, out: Path) -> None:
    write_public_file(out, genesis.to_json().encode())


def assemble_command(args: argparse.Namespace) -> int:
    members = [load_member_file(path) for path in args.member_files]
    genesis = assemble_genesis(
        members,
        consortium=args.name,
        genesis_time=_now_text(),
        sources=[str(p) for p in args.member_files],
    )
    _write_genesis(genesis, args.out)
    print(f"wrote {args.out} with {len(genesis.members)} members:")
    for member in genesis.members:
        print(f"  {member.id:<16} {','.join(member.roles):<20} {member.endpoint}")
    print(f"chain id: {genesis.chain_id.hex()}")
    print("every operator must see this chain id when their party starts")
    return 0


# Ports handed out by this process, so that two consortiums made one after the
# other (before either starts) never share one.
_handed_out: set[int] = set()
_LOWEST_PICKED_PORT = 10_000


def _ephemeral_range() -> tuple[int, int] | None:
    """The kernel's range for outgoing connections' local ports (Linux), else None."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def _free_ports(host: str, count: int) -> list[int]:
    """``count`` ports that are free on ``host`` now, for daemons that bind them later.

    A port from ``bind(port 0)`` comes from the ephemeral range, where the
    kernel also picks the local port of every outgoing connection: one of
    those can take it before the daemon starts ("Address already in use").
    Where the range is known, ports are therefore picked at random below it.
    """
    ephemeral = _ephemeral_range()
    if ephemeral is not None and ephemeral[0] - _LOWEST_PICKED_PORT >= 1000:
        candidates = list(range(_LOWEST_PICKED_PORT, ephemeral[0]))
        random.shuffle(candidates)
        chosen: list[int] = []
        for port in candidates:
            if port in _handed_out:
                continue
            try:
                check_bindable(f"{host}:{port}")  # as the daemon will bind it
            except BindError:
                continue
            chosen.append(port)
            if len(chosen) == count:
                _handed_out.update(chosen)
                return chosen
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sock.bind((host, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def init_command(args: argparse.Namespace) -> int:
    parties = [p.strip() for p in args.parties.split(",") if p.strip()]
    if not parties:
        raise UserError("name at least one party", field="--parties")
    members: list[tuple[str, tuple[str, ...]]] = [
        (check_member_id(p, field="--parties"), DATA_ROLES) for p in parties
    ]
    if args.dealer:
        members.append(("dealer", DEALER_ROLES))
    if args.auditor:
        members.append(("auditor", AUDITOR_ROLES))
    ids = [m for m, _ in members]
    if len(set(ids)) != len(ids):
        raise UserError(f"member ids must be unique: {ids}", field="--parties")
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        raise UserError("folder exists and is not empty; refusing to overwrite", path=out)
    if not 0 <= args.empty_block_interval_ms <= _UINT32_MAX:  # the genesis field's range
        raise UserError(f"must be 0 to {_UINT32_MAX}", field="--empty-block-interval-ms")
    if not 0 <= args.base_port <= 65535 - 100 - len(members):
        raise UserError(
            "must be 0 or a port that leaves room for every member", field="--base-port"
        )
    if args.base_port == 0:
        ports = _free_ports(args.host, 2 * len(members))
        ports, metrics_ports = ports[: len(members)], ports[len(members) :]
    else:
        ports = [args.base_port + i for i in range(len(members))]
        metrics_ports = [args.base_port + 100 + i for i in range(len(members))]
    host = f"[{args.host}]" if ":" in args.host else args.host
    made = []
    for (member_id, roles), port, metrics_port in zip(members, ports, metrics_ports, strict=True):
        made.append(
            generate_party_material(
                out / member_id,
                member_id=member_id,
                endpoint=f"{host}:{port}",
                roles=roles,
                organisation=f"{member_id} (local development)",
            )
        )
        (out / member_id / "party.toml").write_text(
            render_config(
                member_id, genesis="../genesis.json", metrics_listen=f"{host}:{metrics_port}"
            )
        )
    providers = ("dealer",) if args.dealer else ("dealer", "trusted-first-party")
    genesis = assemble_genesis(
        made,
        consortium=args.name,
        genesis_time=_now_text(),
        sources=ids,
        mpc=MpcParams(allowed_tuple_providers=providers),
        consensus=ConsensusParams(empty_block_interval_ms=args.empty_block_interval_ms),
    )
    _write_genesis(genesis, out / "genesis.json")
    print(f"local consortium {args.name!r} in {out} (chain id {genesis.chain_id.hex()[:16]}…)")
    for member in genesis.members:
        print(f"  {member.id:<12} {','.join(member.roles):<18} {member.endpoint}")
    print("start each party with:")
    for member_id in ids:
        print(f"  mpc-ledger party start --config {out / member_id / 'party.toml'}")
    return 0
