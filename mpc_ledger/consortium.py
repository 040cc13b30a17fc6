"""A complete local consortium in one folder: every member's keys, party config and the genesis.

For development and tests only: a real consortium's keys are made on each
party's own machine (`party keygen`) and its genesis is assembled from the
members' public files (`consortium assemble`). `consortium init`, `dev up` and
`mpc_ledger.testing.consortium` all call `create_local_consortium`; none of
them goes through another command's argument parser.

Bad input raises `UserError` naming the option as `consortium init` spells it
(``--parties``, ``--base-port``, ...): this function is that command's body,
and the command prints the error as it is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from mpc_ledger.errors import UserError
from mpc_ledger.identity.genesis import (
    ConsensusParams,
    Genesis,
    MpcParams,
    assemble_genesis,
    check_member_id,
)
from mpc_ledger.identity.keys import write_public_file
from mpc_ledger.identity.material import generate_party_material
from mpc_ledger.identity.party import render_config
from mpc_ledger.net.ports import free_ports

__all__ = [
    "AUDITOR_ROLES",
    "DATA_ROLES",
    "DEALER_ROLES",
    "LocalConsortiumFiles",
    "create_local_consortium",
    "genesis_time_now",
    "write_genesis",
]

DATA_ROLES = ("data", "validator")
DEALER_ROLES = ("dealer",)
AUDITOR_ROLES = ("observer", "validator")

_UINT32_MAX = (1 << 32) - 1


@dataclasses.dataclass(frozen=True)
class LocalConsortiumFiles:
    """What `create_local_consortium` wrote: ``root/genesis.json``, ``root/<member>/``."""

    root: Path
    genesis: Genesis
    member_ids: tuple[str, ...]  # the data parties in the order given, then dealer, auditor

    def config(self, member_id: str) -> Path:
        return self.root / member_id / "party.toml"


def genesis_time_now() -> str:
    """The genesis's ``genesis_time`` for now: ISO 8601 in UTC, to the second."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_genesis(genesis: Genesis, out: Path) -> None:
    write_public_file(out, genesis.to_json().encode())


def create_local_consortium(
    out: Path,
    parties: Sequence[str],
    *,
    dealer: bool = False,
    auditor: bool = False,
    host: str = "127.0.0.1",
    base_port: int = 7001,
    name: str = "local-dev",
    empty_block_interval_ms: int = ConsensusParams().empty_block_interval_ms,
) -> LocalConsortiumFiles:
    """Keys, ``party.toml`` and the genesis for ``parties`` (data members), plus a
    ``dealer`` and an ``auditor`` (validator only) if asked, in the empty folder ``out``.

    Members listen on ``host`` at consecutive ports from ``base_port``, their metrics
    from ``base_port + 100``; ``base_port`` 0 picks free ports (`free_ports`).
    """
    if not parties:
        raise UserError("name at least one party", field="--parties")
    members: list[tuple[str, tuple[str, ...]]] = [
        (check_member_id(p, field="--parties"), DATA_ROLES) for p in parties
    ]
    if dealer:
        members.append(("dealer", DEALER_ROLES))
    if auditor:
        members.append(("auditor", AUDITOR_ROLES))
    ids = [m for m, _ in members]
    if len(set(ids)) != len(ids):
        raise UserError(f"member ids must be unique: {ids}", field="--parties")
    if out.exists() and any(out.iterdir()):
        raise UserError("folder exists and is not empty; refusing to overwrite", path=out)
    if not 0 <= empty_block_interval_ms <= _UINT32_MAX:  # the genesis field's range
        raise UserError(f"must be 0 to {_UINT32_MAX}", field="--empty-block-interval-ms")
    if not 0 <= base_port <= 65535 - 100 - len(members):
        raise UserError(
            "must be 0 or a port that leaves room for every member", field="--base-port"
        )
    if base_port == 0:
        ports = free_ports(host, 2 * len(members))
        ports, metrics_ports = ports[: len(members)], ports[len(members) :]
    else:
        ports = [base_port + i for i in range(len(members))]
        metrics_ports = [base_port + 100 + i for i in range(len(members))]
    listen_host = f"[{host}]" if ":" in host else host
    made = []
    for (member_id, roles), port, metrics_port in zip(members, ports, metrics_ports, strict=True):
        made.append(
            generate_party_material(
                out / member_id,
                member_id=member_id,
                endpoint=f"{listen_host}:{port}",
                roles=roles,
                organisation=f"{member_id} (local development)",
            )
        )
        (out / member_id / "party.toml").write_text(
            render_config(
                member_id,
                genesis="../genesis.json",
                metrics_listen=f"{listen_host}:{metrics_port}",
            )
        )
    providers = ("dealer",) if dealer else ("dealer", "trusted-first-party")
    genesis = assemble_genesis(
        made,
        consortium=name,
        genesis_time=genesis_time_now(),
        sources=ids,
        mpc=MpcParams(allowed_tuple_providers=providers),
        consensus=ConsensusParams(empty_block_interval_ms=empty_block_interval_ms),
    )
    write_genesis(genesis, out / "genesis.json")
    return LocalConsortiumFiles(out, genesis, tuple(ids))
